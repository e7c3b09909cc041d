#include "skip2_linalg.h"

#include <string.h>

/* Columns left over after the vector tiles (nr < 4), same sum order. All mr x nr sums advance
 * together: one running sum at a time would wait on each add's latency. */
static inline void tile_edge(int mr, int k, int nr, const float *A, long ars, long aps,
                             const float *B, long ldb, float *C, long crs, long ccs)
{
    float acc[4][4] = { { 0 } };
    for (int p = 0; p < k; p++)
        for (int r = 0; r < mr; r++) {
            float a = A[r * ars + p * aps];
            for (int l = 0; l < nr; l++)
                acc[r][l] += a * B[p * ldb + l];
        }
    for (int r = 0; r < mr; r++)
        for (int l = 0; l < nr; l++)
            C[r * crs + l * ccs] = acc[r][l];
}

/* Partial sums of the dot-product form (skip2_tiles.inc): a multiple of every width. */
#define DOT_LANES 16

/* Product tiles on vectors of 4 floats: the 128-bit registers every SSE2 and NEON target has,
 * and narrow enough for the products of LoRA ranks and small class counts. GCC and clang map
 * them to registers, or to scalars on targets without SIMD; other compilers get the same
 * arithmetic on a struct. VMADD multiplies then adds, two roundings, as NumPy does. */
#if defined(__GNUC__)
typedef float vf4 __attribute__((vector_size(4 * sizeof(float))));
#define VZERO { 0 }
#define VMADD(acc, a, b) ((acc) + (a) * (b))
#define VMADDV VMADD
#define VADD(a, b) ((a) + (b))
#else
typedef struct { float f[4]; } vf4;
#define VZERO { { 0 } }
static inline vf4 vmadd4(vf4 acc, float a, vf4 b)
{
    for (int l = 0; l < 4; l++)
        acc.f[l] += a * b.f[l];
    return acc;
}
#define VMADD(acc, a, b) vmadd4(acc, a, b)
static inline vf4 vmaddv4(vf4 acc, vf4 a, vf4 b)
{
    for (int l = 0; l < 4; l++)
        acc.f[l] += a.f[l] * b.f[l];
    return acc;
}
#define VMADDV(acc, a, b) vmaddv4(acc, a, b)
static inline vf4 vadd4(vf4 a, vf4 b)
{
    for (int l = 0; l < 4; l++)
        a.f[l] += b.f[l];
    return a;
}
#define VADD(a, b) vadd4(a, b)
#endif
#define VW 4
#define VF vf4
#define NAME(x) x##4
#define NARROWER_ROWS tile_edge
#include "skip2_tiles.inc"

/* On x86-64, GCC also builds 8-float tiles for AVX2 and 16-float tiles for AVX-512F (two and
 * four times the work per instruction), chosen at run time, so a plain -O2 build without -march
 * uses the widest registers the CPU has. Same operations, no FMA: results are identical to the
 * 4-float tiles'. */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#define SKIP2_X86_WIDE 1
#pragma GCC push_options
#pragma GCC target("avx2")
typedef float vf8 __attribute__((vector_size(8 * sizeof(float))));
#define VW 8
#define VF vf8
#define NAME(x) x##8
#define NARROWER_ROWS row_block4
#include "skip2_tiles.inc"
#pragma GCC pop_options

#pragma GCC push_options
#pragma GCC target("avx512f")
typedef float vf16 __attribute__((vector_size(16 * sizeof(float))));
#define VW 16
#define VF vf16
#define NAME(x) x##16
#define NARROWER_ROWS row_block8
#include "skip2_tiles.inc"
#pragma GCC pop_options
#endif

/* The kernels of one vector width. */
typedef struct {
    void (*product)(int m, int k, int n, const float *A, long ars, long aps, const float *B,
                    long ldb, float *C, long crs, long ccs);
    void (*dots)(int m, int k, int n, const float *A, long lda, const float *B, long ldb,
                 float *C, long ldc);
} kernels;

/* The widest width the CPU has. */
static const kernels *widest(void)
{
    static const kernels k4 = { product4, dots4 };
#ifdef SKIP2_X86_WIDE
    static const kernels k8 = { product8, dots8 }, k16 = { product16, dots16 };
    if (__builtin_cpu_supports("avx512f"))
        return &k16;
    if (__builtin_cpu_supports("avx2"))
        return &k8;
#endif
    return &k4;
}

static void product(int m, int k, int n, const float *A, long ars, long aps, const float *B,
                    long ldb, float *C, long crs, long ccs)
{
    widest()->product(m, k, n, A, ars, aps, B, ldb, C, crs, ccs);
}

/* out[0..m-1] = x[i * ld]: one column of a matrix, written as a row. */
static void column(int m, const float *restrict x, long ld, float *restrict out)
{
#pragma GCC unroll 4
    for (int i = 0; i < m; i++)
        out[i] = x[i * ld];
}

static uint64_t count(int m, int k, int n)
{
    return (uint64_t)m * (uint64_t)k * (uint64_t)n;
}

void skip2_mm_nn(uint64_t *macs, int m, int k, int n, const float *A, int lda,
                 const float *B, int ldb, float *C, int ldc)
{
    *macs += count(m, k, n);
    product(m, k, n, A, lda, 1, B, ldb, C, ldc, 1);
}

void skip2_mm_tn(uint64_t *macs, int m, int k, int n, const float *A, int lda,
                 const float *B, int ldb, float *C, int ldc)
{
    *macs += count(m, k, n);
    /* A narrow C (a class count or LoRA rank wide, such as dW of the last layer) would leave
     * vector lanes idle: C^T = B^T A puts the long side m in the lanes instead, B^T and A
     * being read as stored. */
    if (n < 8 && n < m)
        product(n, k, m, B, 1, ldb, A, lda, C, 1, ldc);
    else
        product(m, k, n, A, 1, lda, B, ldb, C, ldc, 1);
}

void skip2_mm_nt(uint64_t *macs, int m, int k, int n, const float *A, int lda,
                 const float *B, int ldb, float *C, int ldc, float *pack)
{
    *macs += count(m, k, n);
    /* Few long dot products per row (x A with A^T packed, a rank wide) keep every lane busy
     * along k, where the tiles would leave most lanes of a narrow C idle. */
    if (n < 8 && k >= DOT_LANES) {
        widest()->dots(m, k, n, A, lda, B, ldb, C, ldc);
        return;
    }
    /* Otherwise B^T (k x n) is packed so the product reads full rows and stores rows straight
     * into C (packing A^T instead and storing C^T column by column is slower). */
    skip2_transpose(n, k, B, ldb, pack);
    product(m, k, n, A, lda, 1, pack, n, C, ldc, 1);
}

void skip2_transpose(int m, int n, const float *X, int ldx, float *out)
{
    for (int j = 0; j < n; j++)
        column(m, X + j, ldx, out + (long)j * m);
}

void skip2_linear(uint64_t *macs, int m, int k, int n, const float *X, int ldx, const float *W,
                  const float *b, float *Y, int ldy)
{
    skip2_mm_nn(macs, m, k, n, X, ldx, W, n, Y, ldy);
    skip2_add_row(m, n, b, Y, ldy);
}

/* Elementwise loops work on one row at a time with restrict parameters (which compilers
 * honour on parameters) in fixed chunks of VL elements, which they vectorise even under the
 * conservative cost model of -O2, and then a scalar tail; per element the arithmetic is the
 * same either way. */
#define VL 8

/* y += s * x */
static void axpy_row(int n, float s, const float *restrict x, float *restrict y)
{
    int j = 0;
    for (; j + VL <= n; j += VL)
        for (int l = 0; l < VL; l++)
            y[j + l] += s * x[j + l];
    for (; j < n; j++)
        y[j] += s * x[j];
}

/* y = max(y, 0) like np.maximum: a NaN stays NaN. */
static void relu_row(int n, float *restrict y)
{
    int j = 0;
    for (; j + VL <= n; j += VL)
        for (int l = 0; l < VL; l++)
            y[j + l] = y[j + l] < 0.0f ? 0.0f : y[j + l];
    for (; j < n; j++)
        y[j] = y[j] < 0.0f ? 0.0f : y[j];
}

/* y *= [g > 0] with the boolean as a float factor, as NumPy multiplies it (0 * inf is NaN). */
static void mask_row(int n, const float *restrict g, float *restrict y)
{
    int j = 0;
    for (; j + VL <= n; j += VL)
        for (int l = 0; l < VL; l++) {
            float keep = g[j + l] > 0.0f ? 1.0f : 0.0f;
            y[j + l] *= keep;
        }
    for (; j < n; j++) {
        float keep = g[j] > 0.0f ? 1.0f : 0.0f;
        y[j] *= keep;
    }
}

void skip2_add_scaled(int m, int n, float s, const float *X, int ldx, float *Y, int ldy)
{
    for (int i = 0; i < m; i++)
        axpy_row(n, s, X + (long)i * ldx, Y + (long)i * ldy);
}

void skip2_add_row(int m, int n, const float *b, float *Y, int ldy)
{
    skip2_add_scaled(m, n, 1.0f, b, 0, Y, ldy);
}

void skip2_relu(int m, int n, float *Y, int ldy)
{
    for (int i = 0; i < m; i++)
        relu_row(n, Y + (long)i * ldy);
}

void skip2_mask_positive(int m, int n, const float *mask, int ldmask, float *Y, int ldy)
{
    for (int i = 0; i < m; i++)
        mask_row(n, mask + (long)i * ldmask, Y + (long)i * ldy);
}

void skip2_scale(int n, float s, float *x)
{
    int j = 0;
    for (; j + VL <= n; j += VL)
        for (int l = 0; l < VL; l++)
            x[j + l] *= s;
    for (; j < n; j++)
        x[j] *= s;
}

void skip2_col_sum(int m, int n, const float *X, int ldx, float *out)
{
    memset(out, 0, (size_t)n * sizeof *out);
    for (int i = 0; i < m; i++)
        axpy_row(n, 1.0f, X + (long)i * ldx, out);
}

void skip2_gather_rows(int m, int d, const float *X, const uint32_t *idx, float *out)
{
    for (int i = 0; i < m; i++)
        memcpy(out + (long)i * d, X + (long)idx[i] * d, (size_t)d * sizeof *out);
}

void skip2_sgd(int n, float lr, const float *g, float *p)
{
    axpy_row(n, -lr, g, p); /* p + (-lr) g is exactly p - lr g */
}
