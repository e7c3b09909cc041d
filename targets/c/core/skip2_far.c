/* far and far-random (Freeze And Reconfigure), as targets/numpy/skip2_methods.py: Far.
 *
 * Priming trains every W and b in the layout of ft-all (theta = X, gradients in gtheta = Y).
 * Reconfiguring gathers the values from X into Y as [W0 kept | b0 kept | W1 kept | ... | W[L-1]
 * | b[L-1] | frozen columns and biases], and Y becomes theta: the trained scalars lead, so the
 * SGD update, the gradients (now in X) and dW cover only them. Restoring scatters Y back into X. */
#include "skip2_rivals.h"

#include <math.h>

/* floor(f * count + 1/2) in double: the priming steps and the kept neurons. */
static uint64_t rounded(float f, uint64_t count)
{
    return (uint64_t)floor((double)f * (double)count + 0.5);
}

void skip2_far_plan(skip2_ctx *c, uint32_t n_train)
{
    const int *dims = c->net.dims;
    int L = c->net.n_layers;
    uint64_t bs = (uint64_t)c->job.batch_size;
    uint64_t steps = (uint64_t)c->job.epochs * ((n_train + bs - 1) / bs);
    c->priming = rounded(c->job.far_prime, steps);
    c->far_trained = 0;
    for (int k = 0; k < L; k++) {
        uint32_t M = (uint32_t)dims[k + 1], kept = (uint32_t)rounded(c->job.far_keep, M);
        c->kept[k] = k == L - 1 ? M : kept > 0 ? kept : 1;
        c->far_trained += (uint32_t)dims[k] * c->kept[k] + c->kept[k];
    }
}

/* Whether neuron a goes before b: higher score first, NaN last, ties to the lower index (the
 * order of NumPy's stable argsort of -score). */
static int before(const double *score, uint32_t a, uint32_t b)
{
    double x = score[a], y = score[b];
    if (!isnan(x) != !isnan(y))
        return !isnan(x);
    if (x != y && !isnan(x))
        return x > y;
    return a < b;
}

static void sift_down(uint32_t *v, uint32_t root, uint32_t n, const double *score)
{
    for (uint32_t child; (child = 2 * root + 1) < n; root = child) {
        if (child + 1 < n && before(score, v[child], v[child + 1]))
            child++;
        if (!before(score, v[root], v[child]))
            return;
        uint32_t t = v[root];
        v[root] = v[child];
        v[child] = t;
    }
}

/* v[0..n) in the order of before(): a heapsort, in place, for any n. */
static void rank_by_score(uint32_t *v, uint32_t n, const double *score)
{
    for (uint32_t i = n / 2; i-- > 0;)
        sift_down(v, i, n, score);
    for (uint32_t end = n; end-- > 1;) {
        uint32_t t = v[0];
        v[0] = v[end];
        v[end] = t;
        sift_down(v, 0, end, score);
    }
}

/* order[0..M) = layer k's neurons, kept ones first, each part ascending. */
static void choose(skip2_ctx *c, int k, uint32_t *order)
{
    int N = c->net.dims[k];
    uint32_t M = (uint32_t)c->net.dims[k + 1];
    double *mark = (double *)c->far_scratch;
    if (c->far == SKIP2_FAR) {
        /* The L1 change of each neuron's column of W and of its bias, in double, rows in order. */
        for (uint32_t j = 0; j < M; j++)
            mark[j] = 0.0;
        for (int i = 0; i < N; i++)
            for (uint32_t j = 0; j < M; j++)
                mark[j] += fabsf(c->net.W[k][(size_t)i * M + j] - c->W0[k][(size_t)i * M + j]);
        for (uint32_t j = 0; j < M; j++) {
            mark[j] += fabsf(c->net.b[k][j] - c->b0[k][j]);
            order[j] = j;
        }
        rank_by_score(order, M, mark);
    } else {
        skip2_permutation(skip2_stream_key(c->job.seed, SKIP2_STREAM_FAR + (uint64_t)k), M, order,
                          c->far_scratch);
    }
    for (uint32_t j = 0; j < M; j++)
        mark[j] = 0.0;
    for (uint32_t j = 0; j < c->kept[k]; j++)
        mark[order[j]] = 1.0;
    uint32_t at = 0;
    for (int part = 1; part >= 0; part--)
        for (uint32_t j = 0; j < M; j++)
            if (mark[j] == (double)part)
                order[at++] = j;
}

/* Between a matrix in the original order (N x M) and the block of its columns cols[c0..c1)
 * with its rows in the order rows (NULL: as they are; cols NULL likewise): into the block when
 * gather is set, else back. A bias is the case N = 1. */
static void move(float *full, int N, int M, const uint32_t *rows, const uint32_t *cols, uint32_t c0,
                 uint32_t c1, float *block, int gather)
{
    uint32_t w = c1 - c0;
    for (int i = 0; i < N; i++) {
        float *row = full + (size_t)(rows ? rows[i] : (uint32_t)i) * M, *b = block + (size_t)i * w;
        for (uint32_t j = c0; j < c1; j++) {
            float *f = row + (cols ? cols[j] : j);
            if (gather)
                b[j - c0] = *f;
            else
                *f = b[j - c0];
        }
    }
}

/* Walks every layer's kept and frozen blocks in the reconfigured layout of `far` (Y), moving
 * them from or to the original layout in `plain` (X, the params' offsets). */
static void walk(skip2_ctx *c, float *far, float *plain, int gather)
{
    const int *dims = c->net.dims;
    int L = c->net.n_layers;
    float *trained = far, *frozen = far + c->far_trained;
    const uint32_t *rows = NULL, *order = c->far_order;
    for (int k = 0; k < L; k++) {
        int N = dims[k], M = dims[k + 1];
        uint32_t K = c->kept[k];
        const uint32_t *cols = k < L - 1 ? order : NULL;
        float *W = plain + c->params[2 * k].offset, *b = plain + c->params[2 * k + 1].offset;
        move(W, N, M, rows, cols, 0, K, trained, gather);
        c->net.W[k] = trained;
        trained += (size_t)N * K;
        move(b, 1, M, NULL, cols, 0, K, trained, gather);
        c->net.b[k] = trained;
        trained += K;
        c->Wf[k] = c->bf[k] = NULL;
        if (K < (uint32_t)M) {
            move(W, N, M, rows, cols, K, (uint32_t)M, frozen, gather);
            c->Wf[k] = frozen;
            frozen += (size_t)N * (M - K);
            move(b, 1, M, NULL, cols, K, (uint32_t)M, frozen, gather);
            c->bf[k] = frozen;
            frozen += M - K;
        }
        c->cols[k] = (int)K;
        rows = cols;
        order += M;
    }
}

void skip2_far_reconfigure(skip2_ctx *c)
{
    uint32_t *order = c->far_order;
    for (int k = 0; k < c->net.n_layers - 1; k++) {
        choose(c, k, order);
        order += c->net.dims[k + 1];
    }
    float *plain = c->theta;
    walk(c, c->gtheta, plain, 1);
    c->theta = c->gtheta;
    c->gtheta = plain;
    c->n_train = c->far_trained;
    for (int k = 0; k < c->net.n_layers; k++) {
        c->gW[k] = c->gtheta + (c->net.W[k] - c->theta);
        c->gb[k] = c->gtheta + (c->net.b[k] - c->theta);
    }
}

void skip2_far_restore(skip2_ctx *c)
{
    float *plain = c->gtheta;
    walk(c, c->theta, plain, 0);
    c->gtheta = c->theta;
    c->theta = plain;
    c->n_train = c->n_theta;
    for (int k = 0; k < c->net.n_layers; k++) {
        const skip2_param *W = &c->params[2 * k], *b = &c->params[2 * k + 1];
        c->net.W[k] = plain + W->offset;
        c->net.b[k] = plain + b->offset;
        c->gW[k] = c->gtheta + W->offset;
        c->gb[k] = c->gtheta + b->offset;
        c->cols[k] = c->net.dims[k + 1];
        c->Wf[k] = c->bf[k] = NULL;
    }
}
