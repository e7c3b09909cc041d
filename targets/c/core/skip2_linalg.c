#include "skip2_linalg.h"

#include <float.h>
#include <stdlib.h>
#include <string.h>

#include "skip2_m4.h"

/* The kernels below are written for constant shapes: each call with constants must become its
 * own loop, which GCC and clang only do for code they inline. */
#if defined(__GNUC__)
#define INLINE static inline __attribute__((always_inline))
#else
#define INLINE static inline
#endif

/* The rows i.. of op(A): rows of A, or columns when A^T is read as stored (a_by_p). */
static inline skip2_rows sub_rows(skip2_rows A, int a_by_p, long i)
{
    return a_by_p ? skip2_cols_from(A, i) : skip2_rows_from(A, i);
}

/* Columns left over after the vector tiles: mr (1 or 4) rows x n (1..3) columns of scalar
 * sums, same sum order; all of them advance together (one running sum at a time would wait on
 * each add's latency), and constant shapes keep them in registers. */
INLINE void edge_tile(int mr, int n, int a_by_p, int k, skip2_rows A, skip2_rows B, float *C,
                      long crs, long ccs)
{
    float acc[4][3] = { { 0 } };
    const float *a_row[4];
#pragma GCC unroll 4
    for (int r = 0; r < mr; r++)
        a_row[r] = a_by_p ? NULL : skip2_row(A, r);
    for (int p = 0; p < k; p++) {
        const float *b = skip2_row(B, p), *a_col = a_by_p ? skip2_row(A, p) : NULL;
#pragma GCC unroll 4
        for (int r = 0; r < mr; r++) {
            float a = a_by_p ? a_col[r] : a_row[r][p];
#pragma GCC unroll 3
            for (int l = 0; l < n; l++)
                acc[r][l] += a * b[l];
        }
    }
#pragma GCC unroll 4
    for (int r = 0; r < mr; r++)
#pragma GCC unroll 3
        for (int l = 0; l < n; l++)
            C[r * crs + l * ccs] = acc[r][l];
}

INLINE void edge_rows(int n, int a_by_p, int m, int k, skip2_rows A, skip2_rows B, float *C,
                      long crs, long ccs)
{
    int i = 0;
    for (; i + 4 <= m; i += 4)
        edge_tile(4, n, a_by_p, k, sub_rows(A, a_by_p, i), B, C + i * crs, crs, ccs);
    for (; i < m; i++)
        edge_tile(1, n, a_by_p, k, sub_rows(A, a_by_p, i), B, C + i * crs, crs, ccs);
}

static void edge(int m, int k, int n, skip2_rows A, int a_by_p, skip2_rows B, float *C, long crs,
                 long ccs)
{
    switch (n * 2 + a_by_p) {
    case 2: edge_rows(1, 0, m, k, A, B, C, crs, ccs); break;
    case 3: edge_rows(1, 1, m, k, A, B, C, crs, ccs); break;
    case 4: edge_rows(2, 0, m, k, A, B, C, crs, ccs); break;
    case 5: edge_rows(2, 1, m, k, A, B, C, crs, ccs); break;
    case 6: edge_rows(3, 0, m, k, A, B, C, crs, ccs); break;
    default: edge_rows(3, 1, m, k, A, B, C, crs, ccs); break;
    }
}

/* Partial sums of the dot-product form (skip2_tiles.inc): a multiple of every width. */
#define DOT_LANES 16

/* Lane shuffles of the dot form's trees (skip2_tiles.inc). VSHUF(a, b, F, w) is the vector
 * whose lane t is lane F(w, t) of a and b side by side (b's lanes from VW on); F is one of
 * these masks, with w the width of the lane groups being halved. VFOLD sums the halves of every
 * lane group of two vectors into one (lane j of a group meets lane j + w/2: one of the trees'
 * additions), the first vector's halves before the second's; VHALVE does so within one vector,
 * packed into the low half of the lanes. After the folds, output o of 2^n sits in the lane of
 * o's n bits reversed; VREV puts it back in lane o. */
#define FOLD_LO(w, t) ((t) % (w) < (w) / 2 ? (t) : VW + (t) - (w) / 2)
#define FOLD_HI(w, t) ((t) % (w) < (w) / 2 ? (t) + (w) / 2 : VW + (t))
#define HALVE_LO(w, t) ((t) % (VW / 2) / ((w) / 2) * (w) + (t) % ((w) / 2))
#define HALVE_HI(w, t) (HALVE_LO(w, t) + (w) / 2)
#define REV(w, t) (((t) & 1 ? (w) / 2 : 0) + ((t) & 2 ? (w) / 4 : 0) + ((t) & 4 ? (w) / 8 : 0) \
                   + ((t) & 8 ? (w) / 16 : 0))
#define VFOLD(a, b, w) VADD(VSHUF(a, b, FOLD_LO, w), VSHUF(a, b, FOLD_HI, w))
#define VHALVE(v, w) VADD(VSHUF(v, v, HALVE_LO, w), VSHUF(v, v, HALVE_HI, w))
#define VREV(v, count) VSHUF(v, v, REV, count)
#define LANES4(F, w) F(w, 0), F(w, 1), F(w, 2), F(w, 3)
#define LANES8(F, w) LANES4(F, w), F(w, 4), F(w, 5), F(w, 6), F(w, 7)
#define LANES16(F, w) LANES8(F, w), F(w, 8), F(w, 9), F(w, 10), F(w, 11), F(w, 12), F(w, 13), \
    F(w, 14), F(w, 15)

/* Product tiles on vectors of 4 floats: the 128-bit registers every SSE2 and NEON target has,
 * and narrow enough for the products of LoRA ranks and small class counts. GCC and clang map
 * them to registers, or to scalars on targets without SIMD; other compilers get the same
 * arithmetic on a struct (and expf and logf one float at a time). VMADD multiplies then adds,
 * two roundings, as NumPy does. */
#if defined(__GNUC__)
typedef float vf4 __attribute__((vector_size(4 * sizeof(float))));
typedef int vi4 __attribute__((vector_size(4 * sizeof(int))));
#define VZERO { 0 }
#define VMADD(acc, a, b) ((acc) + (a) * (b))
#define VMADDV VMADD
#define VADD(a, b) ((a) + (b))
#if defined(__clang__)
#define SHUFFLE(VI, LANES, a, b, F, w) __builtin_shufflevector(a, b, LANES(F, w))
#else
#define SHUFFLE(VI, LANES, a, b, F, w) __builtin_shuffle(a, b, (VI){ LANES(F, w) })
#endif
/* Lane selection and conversions of skip2_vmath.inc; a comparison gives lanes of 0 or -1. */
#define VSEL(m, a, b) ((VF)(((m) & (VI)(a)) | (~(m) & (VI)(b))))
#define VSELI(m, a, b) (((m) & (a)) | (~(m) & (b)))
#define VTRUNC(x) __builtin_convertvector(x, VI)
#define VTOF(i) __builtin_convertvector(i, VF)
#define VBITS(x) ((VI)(x))
#define VFLOAT(i) ((VF)(i))
#define VSHUF(a, b, F, w) SHUFFLE(vi4, LANES4, a, b, F, w)
#define VW 4
#define VF vf4
#define VI vi4
#define MR 4
#define DR 1
#define NAME(x) x##4
#define NARROWER edge
#ifdef SKIP2_M4
#include "skip2_tiles_m4.inc" /* the same results */
#else
#include "skip2_tiles.inc"
#endif
#include "skip2_vmath.inc"
#undef VSHUF
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
static inline vf4 vshuf4(vf4 a, vf4 b, int l0, int l1, int l2, int l3)
{
    int lane[4] = { l0, l1, l2, l3 };
    vf4 s;
    for (int t = 0; t < 4; t++)
        s.f[t] = lane[t] < 4 ? a.f[lane[t]] : b.f[lane[t] - 4];
    return s;
}
#define VSHUF(a, b, F, w) vshuf4(a, b, LANES4(F, w))
#define VW 4
#define VF vf4
#define MR 4
#define DR 1
#define NAME(x) x##4
#define NARROWER edge
#include "skip2_tiles.inc"
#undef VF
#undef NAME
static inline int32_t bits_of(float x)
{
    int32_t i;
    memcpy(&i, &x, sizeof i);
    return i;
}
static inline float float_of(int32_t i)
{
    float x;
    memcpy(&x, &i, sizeof x);
    return x;
}
#define VSEL(m, a, b) ((m) ? (a) : (b))
#define VSELI VSEL
#define VTRUNC(x) ((int32_t)(x))
#define VTOF(i) ((float)(i))
#define VBITS bits_of
#define VFLOAT float_of
#define VF float
#define VI int32_t
#define NAME(x) x##4
#include "skip2_vmath.inc"
#endif
#undef VW
#undef VF
#undef VI
#undef MR
#undef DR
#undef NAME
#undef NARROWER

/* On x86-64, GCC also builds 8-float kernels for AVX2 and 16-float ones for AVX-512F (two and
 * four times the work per instruction; AVX-512's 32 registers hold 8-row tiles), chosen at run
 * time, so a plain -O2 build without -march uses the widest registers the CPU has. Same
 * operations, no FMA: results are identical to the 4-float kernels'. */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#define SKIP2_X86_WIDE 1
#pragma GCC push_options
#pragma GCC target("avx2")
typedef float vf8 __attribute__((vector_size(8 * sizeof(float))));
typedef int vi8 __attribute__((vector_size(8 * sizeof(int))));
#define VSHUF(a, b, F, w) SHUFFLE(vi8, LANES8, a, b, F, w)
#define VW 8
#define VF vf8
#define VI vi8
#define MR 4
#define DR 1
#define NAME(x) x##8
#define NARROWER product4
#include "skip2_tiles.inc"
#include "skip2_vmath.inc"
#undef VSHUF
#undef VW
#undef VF
#undef VI
#undef MR
#undef DR
#undef NAME
#undef NARROWER
#pragma GCC pop_options

#pragma GCC push_options
#pragma GCC target("avx512f")
typedef float vf16 __attribute__((vector_size(16 * sizeof(float))));
typedef int vi16 __attribute__((vector_size(16 * sizeof(int))));
#define VSHUF(a, b, F, w) SHUFFLE(vi16, LANES16, a, b, F, w)
#define VW 16
#define VF vf16
#define VI vi16
#define MR 8
#define DR 4
#define NAME(x) x##16
#define NARROWER product8
#include "skip2_tiles.inc"
#include "skip2_vmath.inc"
#pragma GCC pop_options
#endif

/* The kernels of one vector width. */
typedef struct kernels {
    int vw;
    void (*product)(int m, int k, int n, skip2_rows A, int a_by_p, skip2_rows B, float *C,
                    long crs, long ccs);
    void (*dots)(int m, int k, int n, skip2_rows A, const float *B, long ldb, float *C, long ldc);
    void (*axpy)(int n, const float *z, float s, const float *x, float *y);
    void (*exp_log)(int n, float *x, int log);
    const struct kernels *narrower;
} kernels;

static const kernels k4 = { 4, product4, dots4, axpy4, exp_log4, NULL };
#ifdef SKIP2_X86_WIDE
static const kernels k8 = { 8, product8, dots8, axpy8, exp_log8, &k4 };
static const kernels k16 = { 16, product16, dots16, axpy16, exp_log16, &k8 };
#endif

static const kernels *pick(void)
{
#ifdef SKIP2_X86_WIDE
    /* The widest the CPU has; SKIP2_VECTOR_WIDTH=4 or 8 in the environment asks for a narrower
     * one, so tests can check that every width gives the same bits. */
    const char *want = getenv("SKIP2_VECTOR_WIDTH");
    int limit = want ? atoi(want) : 16;
    if (limit >= 16 && __builtin_cpu_supports("avx512f"))
        return &k16;
    if (limit >= 8 && __builtin_cpu_supports("avx2"))
        return &k8;
#endif
    return &k4;
}

static const kernels *widest(void)
{
    static const kernels *chosen;
    if (!chosen)
        chosen = pick();
    return chosen;
}

/* A product at the widest width that fills a vector with n columns: a narrow product starts
 * where it would end up anyway, without passing through the wider kernels. */
static void product(int m, int k, int n, skip2_rows A, int a_by_p, skip2_rows B, float *C,
                    long crs, long ccs)
{
    const kernels *kn = widest();
    while (n < kn->vw && kn->narrower)
        kn = kn->narrower;
    if (n < kn->vw)
        edge(m, k, n, A, a_by_p, B, C, crs, ccs);
    else
        kn->product(m, k, n, A, a_by_p, B, C, crs, ccs);
}

static uint64_t count(int m, int k, int n)
{
    return (uint64_t)m * (uint64_t)k * (uint64_t)n;
}

void skip2_mm_nn(uint64_t *macs, int m, int k, int n, skip2_rows A, const float *B, int ldb,
                 float *C, int ldc)
{
    *macs += count(m, k, n);
    product(m, k, n, A, 0, skip2_strided(B, ldb), C, ldc, 1);
}

void skip2_mm_tn(uint64_t *macs, int m, int k, int n, skip2_rows A, skip2_rows B, float *C,
                 int ldc)
{
    *macs += count(m, k, n);
    /* A narrow C (a class count wide, such as dW of the last layer) would leave vector lanes
     * idle: C^T = B^T A puts the long side m in the lanes instead, B^T and A being read as
     * stored. */
    if (n < 8 && n < m)
        product(n, k, m, B, 1, A, C, 1, ldc);
    else
        product(m, k, n, A, 1, B, C, ldc, 1);
}

void skip2_mm_nt(uint64_t *macs, int m, int k, int n, skip2_rows A, const float *B, int ldb,
                 float *C, int ldc, float *pack)
{
    *macs += count(m, k, n);
    /* Few long dot products per row (x A with A^T stored, a rank wide) keep every lane busy
     * along k, where the tiles would leave most lanes of a narrow C idle. */
    if (n < 8 && k >= DOT_LANES) {
        widest()->dots(m, k, n, A, B, ldb, C, ldc);
        return;
    }
#ifdef SKIP2_M4
    /* Long rows on the M4F: each output the product form's ascending sum, as one chain of
     * VMLAs over the rows of A and B read in place. */
    if (k >= DOT_LANES) {
        m4_chains(m, k, n, A, B, ldb, C, ldc);
        return;
    }
#endif
    /* Otherwise B^T (k x n) is packed so the product reads full rows and stores rows straight
     * into C (packing A^T instead and storing C^T column by column is slower). */
    skip2_transpose(n, k, B, ldb, pack);
    product(m, k, n, A, 0, skip2_strided(pack, n), C, ldc, 1);
}

/* out[0..m-1] = x[i * ld]: one column of a matrix, written as a row. */
static void column(int m, const float *restrict x, long ld, float *restrict out)
{
#pragma GCC unroll 4
    for (int i = 0; i < m; i++)
        out[i] = x[i * ld];
}

void skip2_transpose(int m, int n, const float *X, int ldx, float *out)
{
    for (int j = 0; j < n; j++)
        column(m, X + j, ldx, out + (long)j * m);
}

void skip2_linear(uint64_t *macs, int m, int k, int n, skip2_rows X, const float *W,
                  const float *b, float *Y, int ldy)
{
    skip2_mm_nn(macs, m, k, n, X, W, n, Y, ldy);
    skip2_add_row(m, n, b, Y, ldy);
}

void skip2_add_scaled(int m, int n, skip2_rows Z, float s, const float *X, int ldx, float *Y,
                      int ldy)
{
    const kernels *kn = widest();
    for (int i = 0; i < m; i++)
        kn->axpy(n, skip2_row(Z, i), s, X + (long)i * ldx, Y + (long)i * ldy);
}

void skip2_add_row(int m, int n, const float *b, float *Y, int ldy)
{
    const kernels *kn = widest();
    for (int i = 0; i < m; i++) {
        float *y = Y + (long)i * ldy;
        kn->axpy(n, y, 1.0f, b, y);
    }
}

/* Elementwise loops work on one row at a time with restrict parameters (which compilers
 * honour on parameters) in fixed chunks of VL elements, which they vectorise even under the
 * conservative cost model of -O2, and then a scalar tail; per element the arithmetic is the
 * same either way. */
#define VL 8

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
    skip2_add_scaled(m, n, skip2_strided(out, 0), 1.0f, X, ldx, out, 0);
}

void skip2_exp(int n, float *x)
{
    widest()->exp_log(n, x, 0);
}

void skip2_log(int n, float *x)
{
    widest()->exp_log(n, x, 1);
}

void skip2_sgd(int n, float lr, const float *g, float *p)
{
    widest()->axpy(n, p, -lr, g, p); /* p + (-lr) g is exactly p - lr g */
}
