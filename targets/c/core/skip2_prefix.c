#include "skip2_prefix.h"

#include <string.h>

void skip2_prefix_plan(skip2_prefix *p, const skip2_model *model, int with_logits, int cache,
                       int64_t budget_bytes, uint32_t n)
{
    int L = model->n_layers;
    *p = (skip2_prefix){ .with_logits = with_logits };
    p->off[1] = 0;
    for (int k = 1; k < L; k++)
        p->off[k + 1] = p->off[k] + model->dims[k];
    p->row = p->off[L] + (with_logits ? model->dims[L] : 0);
    if (cache) {
        int64_t row_bytes = (int64_t)p->row * (int64_t)sizeof(float);
        int64_t fit = budget_bytes < 0 ? (int64_t)n : budget_bytes / row_bytes;
        p->capacity = fit < (int64_t)n ? (uint32_t)fit : n;
    }
}

void skip2_prefix_compute(const skip2_prefix *p, const skip2_model *model, int m, skip2_rows x,
                          float *rows, uint64_t *macs)
{
    skip2_rows h = x;
    int L = model->n_layers;
    for (int k = 0; k < L - 1; k++) {
        float *out = rows + p->off[k + 1];
        skip2_linear(macs, m, model->dims[k], model->dims[k + 1], h, model->W[k], model->b[k],
                     out, p->row);
        skip2_relu(m, model->dims[k + 1], out, p->row);
        h = skip2_strided(out, p->row);
    }
    if (p->with_logits)
        skip2_linear(macs, m, model->dims[L - 1], model->dims[L], h, model->W[L - 1],
                     model->b[L - 1], rows + p->off[L], p->row);
}

void skip2_prefix_get(skip2_prefix *p, const skip2_model *model, const skip2_data *train,
                      const uint32_t *idx, int nb, int need_x0, float *xb, const float **x0,
                      float *rows, skip2_meter *meter)
{
    int D = model->dims[0];
    if (p->capacity == 0) {
        skip2_meter_phase(meter, SKIP2_FWD);
        skip2_data_rows(train, D, idx, (uint32_t)nb, xb, x0);
        skip2_prefix_compute(p, model, nb, skip2_scattered(x0, 0), rows, &meter->macs);
        for (int i = 0; i < nb; i++)
            p->at[i] = rows + (size_t)i * p->row;
        return;
    }
    skip2_meter_phase(meter, SKIP2_CACHE);
    uint32_t n_miss = 0;
    for (int i = 0; i < nb; i++) {
        int32_t s = p->slot[idx[i]];
        if (s >= 0)
            p->at[i] = p->store + (size_t)s * p->row;
        else
            p->miss[n_miss++] = (uint32_t)i;
    }
    p->hits += (uint32_t)nb - n_miss;
    p->misses += n_miss;
    skip2_meter_phase(meter, SKIP2_FWD);
    if (need_x0)
        skip2_data_rows(train, D, idx, (uint32_t)nb, xb, x0);
    if (n_miss == 0)
        return;
    for (uint32_t j = 0; j < n_miss; j++)
        p->miss_idx[j] = idx[p->miss[j]];
    if (need_x0) /* the batch's inputs are at hand; else only the misses' are fetched */
        for (uint32_t j = 0; j < n_miss; j++)
            p->x_miss[j] = x0[p->miss[j]];
    else
        skip2_data_rows(train, D, p->miss_idx, n_miss, xb, p->x_miss);
    skip2_prefix_compute(p, model, (int)n_miss, skip2_scattered(p->x_miss, 0), rows,
                         &meter->macs);
    skip2_meter_phase(meter, SKIP2_CACHE);
    for (uint32_t j = 0; j < n_miss; j++) {
        const float *computed = rows + (size_t)j * p->row;
        p->at[p->miss[j]] = computed;
        if (p->used < p->capacity) {
            memcpy(p->store + (size_t)p->used * p->row, computed, (size_t)p->row * sizeof(float));
            p->slot[p->miss_idx[j]] = (int32_t)p->used++;
        }
    }
    skip2_meter_phase(meter, SKIP2_FWD);
}
