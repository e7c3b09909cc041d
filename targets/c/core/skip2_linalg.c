#include "skip2_linalg.h"

#include <string.h>

/* Vectors of VW = 4 floats for the product tiles: the 128-bit registers every SSE2 and NEON
 * target has (wider ones would leave the narrow products of LoRA ranks and small class counts
 * to scalar edges). GCC and clang map them to registers, or to scalars on targets without
 * SIMD; other compilers get the same arithmetic on a struct. vmadd multiplies then adds, two
 * roundings, as NumPy does. */
#define VW 4

#if defined(__GNUC__)
typedef float vf __attribute__((vector_size(VW * sizeof(float))));
static inline vf vzero(void) { return (vf){ 0 }; }
static inline vf vmadd(vf acc, float a, vf b) { return acc + a * b; }
#else
typedef struct { float f[VW]; } vf;
static inline vf vzero(void) { vf v = { { 0 } }; return v; }
static inline vf vmadd(vf acc, float a, vf b)
{
    for (int l = 0; l < VW; l++)
        acc.f[l] += a * b.f[l];
    return acc;
}
#endif

static inline vf vload(const float *p)
{
    vf v;
    memcpy(&v, p, sizeof v);
    return v;
}

static inline void vstore(float *p, long stride, vf v)
{
    if (stride == 1) {
        memcpy(p, &v, sizeof v);
        return;
    }
    float f[VW];
    memcpy(f, &v, sizeof f);
    for (int l = 0; l < VW; l++)
        p[l * stride] = f[l];
}

/* One register tile of a product: mr (1 or 4) output rows x nv (1 or 2) vectors of output
 * columns accumulate across the whole inner dimension, so each B chunk is loaded once per mr
 * rows and each output is stored once. Callers pass constants, so the unused accumulators
 * vanish. Output (r, l) is the sum over p ascending of a(r, p) * B[p][l], with
 * a(r, p) = A[r * ars + p * aps], stored at C[r * crs + l * ccs]: the strides let one kernel
 * serve A and A^T, C and C^T. */
static inline void tile(int mr, int nv, int k, const float *restrict A, long ars, long aps,
                        const float *restrict B, long ldb, float *restrict C, long crs, long ccs)
{
    vf c00 = vzero(), c01 = vzero(), c10 = vzero(), c11 = vzero();
    vf c20 = vzero(), c21 = vzero(), c30 = vzero(), c31 = vzero();
    for (int p = 0; p < k; p++) {
        const float *b = B + p * ldb, *a = A + p * aps;
        vf b0 = vload(b), b1 = nv == 2 ? vload(b + VW) : b0;
        c00 = vmadd(c00, a[0], b0);
        if (nv == 2)
            c01 = vmadd(c01, a[0], b1);
        if (mr == 4) {
            float a1 = a[ars], a2 = a[2 * ars], a3 = a[3 * ars];
            c10 = vmadd(c10, a1, b0);
            c20 = vmadd(c20, a2, b0);
            c30 = vmadd(c30, a3, b0);
            if (nv == 2) {
                c11 = vmadd(c11, a1, b1);
                c21 = vmadd(c21, a2, b1);
                c31 = vmadd(c31, a3, b1);
            }
        }
    }
    vf rows[4][2] = { { c00, c01 }, { c10, c11 }, { c20, c21 }, { c30, c31 } };
    for (int r = 0; r < mr; r++)
        for (int v = 0; v < nv; v++)
            vstore(C + r * crs + VW * v * ccs, ccs, rows[r][v]);
}

/* Columns left over after the vector tiles (fewer than VW), with the same sum order. */
static void tile_edge(int mr, int nr, int k, const float *A, long ars, long aps, const float *B,
                      long ldb, float *C, long crs, long ccs)
{
    for (int r = 0; r < mr; r++) {
        float acc[VW] = { 0 };
        for (int p = 0; p < k; p++) {
            float a = A[r * ars + p * aps];
            for (int l = 0; l < nr; l++)
                acc[l] += a * B[p * ldb + l];
        }
        for (int l = 0; l < nr; l++)
            C[r * crs + l * ccs] = acc[l];
    }
}

/* Output rows i..i+mr-1 (mr = 1 or 4) across all n columns. */
static inline void row_block(int mr, int k, int n, const float *A, long ars, long aps,
                             const float *B, long ldb, float *C, long crs, long ccs)
{
    int j = 0;
    for (; j + 2 * VW <= n; j += 2 * VW)
        tile(mr, 2, k, A, ars, aps, B + j, ldb, C + j * ccs, crs, ccs);
    if (j + VW <= n) {
        tile(mr, 1, k, A, ars, aps, B + j, ldb, C + j * ccs, crs, ccs);
        j += VW;
    }
    if (j < n)
        tile_edge(mr, n - j, k, A, ars, aps, B + j, ldb, C + j * ccs, crs, ccs);
}

/* The one product loop behind the three public products. */
static void product(int m, int k, int n, const float *A, long ars, long aps, const float *B,
                    long ldb, float *C, long crs, long ccs)
{
    int i = 0;
    for (; i + 4 <= m; i += 4)
        row_block(4, k, n, A + i * ars, ars, aps, B, ldb, C + i * crs, crs, ccs);
    for (; i < m; i++)
        row_block(1, k, n, A + i * ars, ars, aps, B, ldb, C + i * crs, crs, ccs);
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
    product(m, k, n, A, 1, lda, B, ldb, C, ldc, 1);
}

void skip2_mm_nt(uint64_t *macs, int m, int k, int n, const float *A, int lda,
                 const float *B, int ldb, float *C, int ldc, float *pack)
{
    *macs += count(m, k, n);
    /* C^T = B A^T: A^T (k x m) is packed so its rows are contiguous, B is read row by row,
     * and tiles are stored transposed straight into C. */
    for (int i = 0; i < m; i++)
        for (int p = 0; p < k; p++)
            pack[(long)p * m + i] = A[(long)i * lda + p];
    product(n, k, m, B, ldb, 1, pack, m, C, 1, ldc);
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
