/* The core's products at the shapes of one training step of the fan-damage1 model (512-96-96-2,
 * batch 20, rank 4), each timed on its own: not part of the firmware, but linked with its
 * objects (all but main.o) and run under QEMU with -icount and semihosting by
 * `skip2bench mcu-speed`. One line per product on the semihosting console:
 * NAME MACS TICKS CLOCK_HZ HASH, HASH being a hash of the output's bits (equal hashes before
 * and after a change of the kernels: the same results). */
#include "bench.h"
#include "board.h"
#include "skip2_linalg.h"
#include "skip2_prng.h"
#include "systick.h"

#define D 512
#define H 96
#define C 2
#define NB 20
#define R 4

typedef enum { NN, TN, NT } kind;

/* Grouped by name: dense (ft-all's products: the layers forward, dW, dx), rank4 (the rank-4
 * adapter products x A, du, dA), adapter (lora-all's other adapter products), skip (the skip
 * adapters' stacked B). x0 says which operand is the batch's input rows ('a' or 'b'), which
 * the core reads in place where they lie in the data set (scattered); the others are strided. */
static const struct {
    const char *name;
    kind kind;
    int m, k, n;
    char x0;
} PRODUCTS[] = {
    { "dense:x0.W0", NN, NB, D, H, 'a' },
    { "dense:x1.W1", NN, NB, H, H, 0 },
    { "dense:x2.W2", NN, NB, H, C, 0 },
    { "dense:dW0=x0^T.da", TN, D, NB, H, 'a' },
    { "dense:dW1=x1^T.da", TN, H, NB, H, 0 },
    { "dense:dW2=x2^T.da", TN, H, NB, C, 0 },
    { "dense:dx2=da.W2^T", NT, NB, C, H, 0 },
    { "dense:dx1=da.W1^T", NT, NB, H, H, 0 },
    { "rank4:x0.A0", NT, NB, D, R, 'a' },
    { "rank4:x1.A1", NT, NB, H, R, 0 },
    { "rank4:du1=da.B1^T", NT, NB, H, R, 0 },
    { "rank4:du2=da.B2^T", NT, NB, C, R, 0 },
    { "rank4:dA0=du^T.x0", TN, R, NB, D, 'b' },
    { "rank4:dA1=du^T.x1", TN, R, NB, H, 0 },
    { "adapter:u.B1", NN, NB, R, H, 0 },
    { "adapter:u.B2", NN, NB, R, C, 0 },
    { "adapter:dB1=u^T.da", TN, R, NB, H, 0 },
    { "adapter:dB2=u^T.da", TN, R, NB, C, 0 },
    { "adapter:du.A1^T", NN, NB, R, H, 0 },
    { "skip:u.Bstack", NN, NB, 3 * R, C, 0 },
    { "skip:dBstack=u^T.dz", TN, 3 * R, NB, C, 0 },
    { "skip:du=dz.Bstack^T", NT, NB, C, 3 * R, 0 },
};

static float data[4 * NB * D], left[D * H], right[D * H], out[D * H], pack[H * H];
static const float *rows[NB];

int main(void)
{
    systick_init(board.clock_hz);
    skip2_uniform_sym(1, sizeof data / sizeof *data, 1.0f, data);
    skip2_uniform_sym(2, sizeof left / sizeof *left, 1.0f, left);
    skip2_uniform_sym(3, sizeof right / sizeof *right, 1.0f, right);
    for (int i = 0; i < NB; i++)
        rows[i] = data + (size_t)((i * 7) % (4 * NB)) * D; /* out of order, as shuffled */
    for (unsigned i = 0; i < sizeof PRODUCTS / sizeof *PRODUCTS; i++) {
        int m = PRODUCTS[i].m, k = PRODUCTS[i].k, n = PRODUCTS[i].n;
        /* A is m x k (k x m for TN), B k x n (n x k for NT). */
        skip2_rows x0 = skip2_scattered(rows, 0);
        skip2_rows a = PRODUCTS[i].x0 == 'a' ? x0
                                              : skip2_strided(left, PRODUCTS[i].kind == TN ? m : k);
        skip2_rows b = PRODUCTS[i].x0 == 'b' ? x0 : skip2_strided(right, n);
        uint64_t macs = 0, t0 = systick_now();
        switch (PRODUCTS[i].kind) {
        case NN: skip2_mm_nn(&macs, m, k, n, a, right, n, out, n); break;
        case TN: skip2_mm_tn(&macs, m, k, n, a, b, out, n); break;
        case NT: skip2_mm_nt(&macs, m, k, n, a, right, k, out, n, pack); break;
        }
        uint64_t ticks = systick_now() - t0;
        char line[96], *s = line + strlen(PRODUCTS[i].name);
        memcpy(line, PRODUCTS[i].name, (size_t)(s - line));
        s = bench_num(bench_num(bench_num(s, macs), ticks), board.clock_hz);
        s = bench_num(s, bench_hash(out, m, n, n));
        *s++ = '\n';
        *s = '\0';
        bench_print(line);
    }
    bench_exit();
    return 0;
}
