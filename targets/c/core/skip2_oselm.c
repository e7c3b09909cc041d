/* oselm-head: recursive least squares on the last layer, as targets/numpy/skip2_methods.py:
 * OselmHead. The head's input is h = [x[L-1], 1] and its weights beta = [W; b], which lie so in
 * theta (W, N x C, then b). Per sample, mu the forgetting factor:
 *     e = t - h beta,  u = h P,  d = mu + h u^T,  beta += (u^T / d) e,  P = (P - u^T u / d) / mu.
 * u_i u_j is symmetric bit for bit, so P stays exactly symmetric. */
#include "skip2_rivals.h"

#include <math.h>
#include <string.h>

void skip2_oselm_init(skip2_ctx *c)
{
    int H = c->net.dims[c->net.n_layers - 1] + 1;
    memset(c->P, 0, (size_t)H * H * sizeof(float));
    for (int i = 0; i < H; i++)
        c->P[(size_t)i * H + i] = 1.0f / c->job.oselm_lambda;
}

float skip2_oselm_step(skip2_ctx *c, const uint32_t *idx, int nb)
{
    int L = c->net.n_layers, N = c->net.dims[L - 1], C = c->net.dims[L], H = N + 1;
    float *beta = c->theta, *P = c->P, *u = c->u, *e = c->z;
    float mu = c->job.oselm_forget, shrink = 1.0f / mu, total = 0.0f;
    skip2_meter *m = &c->meter;
    for (int i = 0; i < nb; i++) {
        skip2_rows h = skip2_rows_from(skip2_cols_from(c->pre, c->prefix.off[L - 1]), i);
        skip2_meter_phase(m, SKIP2_FWD);
        skip2_linear(&m->macs, 1, N, C, h, beta, beta + (size_t)N * C, e, C);
        float loss = 0.0f;
        for (int j = 0; j < C; j++) {
            e[j] = (j == c->train.y[idx[i]] ? 1.0f : 0.0f) - e[j];
            loss += e[j] * e[j];
        }
        total += loss;
        skip2_meter_phase(m, SKIP2_UPD);
        float s;
        skip2_mm_nn(&m->macs, 1, N, H, h, P, H, u, H);
        skip2_add_row(1, H, P + (size_t)N * H, u, H);
        skip2_mm_nn(&m->macs, 1, N, 1, h, u, 1, &s, 1);
        float d = mu + (s + u[N]);
        if (!(d > 0.0f) || isinf(d)) {
            c->diverged = SKIP2_DIVERGED_RLS;
            return NAN;
        }
        float r = 1.0f / d;
        for (int a = 0; a < H; a++) {
            float k = u[a] * r;
            for (int j = 0; j < C; j++)
                beta[(size_t)a * C + j] += k * e[j];
        }
        for (int a = 0; a < H; a++)
            for (int j = 0; j < H; j++)
                P[(size_t)a * H + j] = (P[(size_t)a * H + j] - u[a] * u[j] * r) * shrink;
        m->macs += (uint64_t)H * C + (uint64_t)H * H; /* the two outer products */
    }
    return total / (float)nb;
}
