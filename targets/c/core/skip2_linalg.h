/* Dense float32 kernels of the core. The three matrix products add m*k*n to *macs, the
 * ft_macs rule of docs/methods.md; the elementwise helpers are not counted. Matrices are
 * row-major; an operand's rows are given by a skip2_rows, so a product can read a column block
 * of a wider row (one layer's slice of a cache row) or rows that lie scattered (the batch's
 * rows of the data set or of the cache, read in place).
 *
 * Each product sums every output element over the inner dimension in ascending order (the dot
 * form of skip2_mm_nt: in 16 interleaved partial sums added in a fixed tree), so results do not
 * depend on the batch size, on how rows are split or on the vector width: a sample's numbers
 * are the same in training, cache fills and evaluation. */
#ifndef SKIP2_LINALG_H
#define SKIP2_LINALG_H

#include <stddef.h>
#include <stdint.h>

/* Where the rows of a matrix operand lie. */
typedef struct {
    const float *base;        /* row i at base + i * ld ... */
    long ld;
    const float *const *at;   /* ... unless at is set: row i at at[i] + col */
    long col;
} skip2_rows;

/* Rows of a matrix stored with leading dimension ld (floats between row starts). */
static inline skip2_rows skip2_strided(const float *base, long ld)
{
    skip2_rows v = { base, ld, NULL, 0 };
    return v;
}

/* Rows that lie anywhere: row i at at[i] + col. */
static inline skip2_rows skip2_scattered(const float *const *at, long col)
{
    skip2_rows v = { NULL, 0, at, col };
    return v;
}

static inline const float *skip2_row(skip2_rows v, long i)
{
    return v.at ? v.at[i] + v.col : v.base + i * v.ld;
}

/* The same matrix from row i on, and from column j on. */
static inline skip2_rows skip2_rows_from(skip2_rows v, long i)
{
    if (v.at)
        v.at += i;
    else
        v.base += i * v.ld;
    return v;
}

static inline skip2_rows skip2_cols_from(skip2_rows v, long j)
{
    if (v.at)
        v.col += j;
    else
        v.base += j;
    return v;
}

/* C (m x n) = A (m x k) B (k x n). */
void skip2_mm_nn(uint64_t *macs, int m, int k, int n, skip2_rows A, const float *B, int ldb,
                 float *C, int ldc);

/* C (m x n) = A^T B, with A stored k x m and B stored k x n. */
void skip2_mm_tn(uint64_t *macs, int m, int k, int n, skip2_rows A, skip2_rows B, float *C,
                 int ldc);

/* C (m x n) = A B^T, with A stored m x k and B stored n x k; pack is scratch of k*n floats.
 * A narrow C with long rows (n < 8, k >= 16) is computed as dot products of rows. */
void skip2_mm_nt(uint64_t *macs, int m, int k, int n, skip2_rows A, const float *B, int ldb,
                 float *C, int ldc, float *pack);

/* out (n x m) = X^T, X being m x n. */
void skip2_transpose(int m, int n, const float *X, int ldx, float *out);

/* Y (m x n) = X (m x k) W (k x n) + b: a dense layer (the product is counted). */
void skip2_linear(uint64_t *macs, int m, int k, int n, skip2_rows X, const float *W,
                  const float *b, float *Y, int ldy);

/* Y (m x n) = Z (m x n) + s * X (m x n); Z may be Y. s = 1 adds X exactly. */
void skip2_add_scaled(int m, int n, skip2_rows Z, float s, const float *X, int ldx, float *Y,
                      int ldy);

/* Y (m x n) += b, the same row vector on every row. */
void skip2_add_row(int m, int n, const float *b, float *Y, int ldy);

/* Y (m x n) = max(Y, 0) in place (NaN stays NaN, as with np.maximum). */
void skip2_relu(int m, int n, float *Y, int ldy);

/* Y (m x n) *= [mask > 0] elementwise (a multiplication, so NaN and inf propagate like NumPy's). */
void skip2_mask_positive(int m, int n, const float *mask, int ldmask, float *Y, int ldy);

/* x[0..n-1] *= s. */
void skip2_scale(int n, float s, float *x);

/* out[j] = sum over the m rows of X[i][j], rows in ascending order. */
void skip2_col_sum(int m, int n, const float *X, int ldx, float *out);

/* x[0..n-1] = expf(x) and logf(x) in place: the core's own (skip2_vmath.inc), so every C
 * library and every board gives the same bits. logf of a negative x or NaN is NaN. */
void skip2_exp(int n, float *x);
void skip2_log(int n, float *x);

/* p[0..n-1] -= lr * g[0..n-1] (the SGD update; counted by the caller, one MAC per scalar). */
void skip2_sgd(int n, float lr, const float *g, float *p);

#endif
