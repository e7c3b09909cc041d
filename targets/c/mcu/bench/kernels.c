/* The core's products and row additions on a sweep of shapes and operand layouts, one line per
 * case: what it computed and a hash of the result's bits. Built for a host (any C compiler) and
 * for the Cortex-M4F (make kernels), both must print the same lines: the M4F's kernels
 * (skip2_tiles_m4.inc) give the portable kernels' bits (tests/test_m4_kernels.py). The inputs
 * have rows of zeros and signed zeros, as ReLU outputs do, so that sums of zeros meet. */
#include "bench.h"
#include "bits_hash.h"
#include "skip2_linalg.h"
#include "skip2_prng.h"
#include "skip2_quant.h"

#define POOL_ROWS 600
#define WIDTH 600
#define CASES 400

static float pool[POOL_ROWS * WIDTH], out[WIDTH * WIDTH / 2], pack[WIDTH * WIDTH / 2];
static const float *rows[2][POOL_ROWS];
static uint64_t drawn;

/* A number in lo..hi from the shared PRNG. */
static int draw(int lo, int hi)
{
    return lo + (int)(skip2_draw(42, drawn++) % (uint64_t)(hi - lo + 1));
}

/* m rows of width cols from the pool: strided with a padded leading dimension, or scattered
 * (rows[which] pointing anywhere in the pool), both from a column offset. */
static skip2_rows operand(int m, int cols, int which, char *layout)
{
    int col = draw(0, 3);
    if (draw(0, 1)) {
        *layout = 's';
        for (int i = 0; i < m; i++)
            rows[which][i] = pool + (long)draw(0, POOL_ROWS - 1) * WIDTH;
        return skip2_scattered(rows[which], col);
    }
    *layout = 'd';
    int first = draw(0, 50), ld = cols + col + draw(0, 3);
    return skip2_cols_from(skip2_strided(pool + (long)first * WIDTH, ld), col);
}

static void report(const char *what, int m, int k, int n, char la, char lb, const float *C,
                   long ldc)
{
    char line[80], *s = line;
    s += strlen(strcpy(s, what));
    s = bench_num(bench_num(bench_num(s, (uint64_t)m), (uint64_t)k), (uint64_t)n);
    *s++ = ' ', *s++ = la, *s++ = lb;
    s = bench_num(s, bits_hash(C, m, n, ldc));
    *s++ = '\n';
    *s = '\0';
    bench_print(line);
}

/* A product of a random kind, shape and layout; some shapes are the fan model's. */
static void product(int c)
{
    static const int fan[][4] = { { 0, 20, 512, 96 }, { 1, 512, 20, 96 }, { 2, 20, 96, 96 },
                                  { 2, 20, 512, 4 }, { 1, 4, 20, 512 }, { 2, 20, 2, 96 } };
    int kind = draw(0, 2), m = draw(1, 24), k = draw(1, 72), n = draw(1, 40);
    if (c < (int)(sizeof fan / sizeof *fan))
        kind = fan[c][0], m = fan[c][1], k = fan[c][2], n = fan[c][3];
    else if (kind == 2 && draw(0, 1))
        n = draw(1, 7); /* the dot-product form */
    char la = '-', lb = '-';
    long ldc = n + draw(0, 3), ldb = (kind == 2 ? k : n) + draw(0, 3);
    int first = draw(0, 100), col = draw(0, 3);
    const float *B = pool + (long)first * WIDTH + col;
    uint64_t macs = 0;
    if (kind == 0) {
        skip2_mm_nn(&macs, m, k, n, operand(m, k, 0, &la), B, (int)ldb, out, (int)ldc);
        report("nn", m, k, n, la, lb, out, ldc);
    } else if (kind == 1) {
        skip2_rows A = operand(k, m, 0, &la);
        skip2_mm_tn(&macs, m, k, n, A, operand(k, n, 1, &lb), out, (int)ldc);
        report("tn", m, k, n, la, lb, out, ldc);
    } else {
        skip2_mm_nt(&macs, m, k, n, operand(m, k, 0, &la), B, (int)ldb, out, (int)ldc, pack);
        report("nt", m, k, n, la, lb, out, ldc);
    }
}

/* The row additions: add_scaled (in place or not), add_row, col_sum, sgd. */
static void rows_added(void)
{
    for (int n = 1; n <= 40; n++) {
        int m = draw(1, 5);
        float s = pool[draw(0, WIDTH - 1)];
        char la;
        skip2_rows Z = operand(m, n, 0, &la);
        const float *X = pool + (long)draw(0, 50) * WIDTH;
        skip2_add_scaled(m, n, Z, s, X, WIDTH, out, n);
        report("add_scaled", m, 1, n, la, '-', out, n);
        skip2_add_scaled(m, n, skip2_strided(out, n), 1.0f, X, WIDTH, out, n);
        skip2_add_row(m, n, X + WIDTH, out, n);
        report("add_row", m, 1, n, la, '-', out, n);
        skip2_col_sum(m, n, out, n, out + m * n);
        report("col_sum", 1, m, n, la, '-', out + m * n, n);
        skip2_sgd(n, s, X, out);
        report("sgd", 1, 1, n, la, '-', out, n);
    }
}

/* Dequantisation (skip2_dequantise, the M4F's own too): int8 values of every sign and size, at
 * widths across its 8-value steps, with scales from the pool, zero and one of each extreme. */
static void dequantised(void)
{
    static int8_t q[WIDTH];
    static const float extreme[] = { 0.0f, 1e-38f, 3e38f };
    for (int i = 0; i < WIDTH; i++)
        q[i] = (int8_t)draw(-128, 127);
    for (int c = 0; c < 60; c++) {
        int n = c < 40 ? c : draw(41, WIDTH - 8), from = draw(0, 7);
        float s = c % 10 < 3 ? extreme[c % 10] : pool[draw(0, WIDTH - 1)];
        skip2_dequantise(n, q + from, s, out);
        report("dequantise", 1, from, n, '-', '-', out, n);
    }
}

int main(void)
{
    skip2_uniform_sym(7, POOL_ROWS * WIDTH, 1.0f, pool);
    for (int i = 0; i < POOL_ROWS; i += 7)
        memset(pool + (long)i * WIDTH, 0, WIDTH * sizeof(float));
    for (long j = 3; j < POOL_ROWS * WIDTH; j += 5)
        pool[j] = pool[j] < 0 ? -0.0f : 0.0f;
    for (int c = 0; c < CASES; c++)
        product(c);
    rows_added();
    dequantised();
    bench_exit();
    return 0;
}
