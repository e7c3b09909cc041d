#include "skip2_prefix.h"

#include <string.h>

void skip2_prefix_plan(skip2_prefix *p, const skip2_model *model, int with_logits, int cache,
                       skip2_format format, int64_t budget_bytes, uint32_t n)
{
    int L = model->n_layers;
    *p = (skip2_prefix){ .with_logits = with_logits, .segments = L - 1 + (with_logits != 0),
                         .int8 = cache && format == SKIP2_INT8 };
    p->off[1] = 0;
    for (int k = 1; k < L; k++)
        p->off[k + 1] = p->off[k] + model->dims[k];
    p->row = p->off[L] + (with_logits ? model->dims[L] : 0);
    p->off[p->segments + 1] = p->row;
    /* An int8 row: one byte per value and a float32 scale per segment. */
    p->row_bytes = p->int8 ? (int64_t)p->row + (int64_t)p->segments * (int64_t)sizeof(float)
                           : (int64_t)p->row * (int64_t)sizeof(float);
    if (cache) {
        int64_t fit = budget_bytes < 0 ? (int64_t)n : budget_bytes / p->row_bytes;
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

/* A computed row read back through int8, segment by segment; its bytes are stored in the cache
 * row `slot` unless slot < 0. */
static void round_trip(const skip2_prefix *p, float *row, int32_t slot)
{
    int8_t *q = slot < 0 ? NULL : p->store8 + (size_t)slot * p->row;
    for (int s = 0; s < p->segments; s++) {
        int from = p->off[s + 1];
        float scale = skip2_quantise(p->off[s + 2] - from, row + from, q ? q + from : NULL);
        if (q)
            p->scale[(size_t)slot * p->segments + s] = scale;
    }
}

/* The int8 cache row `slot` as floats, in out. */
static const float *load(const skip2_prefix *p, int32_t slot, float *out)
{
    const int8_t *q = p->store8 + (size_t)slot * p->row;
    const float *scale = p->scale + (size_t)slot * p->segments;
    for (int s = 0; s < p->segments; s++) {
        int from = p->off[s + 1];
        skip2_dequantise(p->off[s + 2] - from, q + from, scale[s], out + from);
    }
    return out;
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
        if (p->int8)
            skip2_meter_phase(meter, SKIP2_CACHE);
        for (int i = 0; i < nb; i++) {
            float *row = rows + (size_t)i * p->row;
            if (p->int8)
                round_trip(p, row, -1);
            p->at[i] = row;
        }
        if (p->int8)
            skip2_meter_phase(meter, SKIP2_FWD);
        return;
    }
    skip2_meter_phase(meter, SKIP2_CACHE);
    uint32_t n_miss = 0, n_hit = 0;
    for (int i = 0; i < nb; i++) {
        int32_t s = p->slot[idx[i]];
        if (s < 0)
            p->miss[n_miss++] = (uint32_t)i;
        else if (p->int8) /* into the batch's rows from the end: the misses' fill them from 0 */
            p->at[i] = load(p, s, rows + (size_t)((uint32_t)nb - ++n_hit) * p->row);
        else
            p->at[i] = p->store + (size_t)s * p->row;
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
        float *computed = rows + (size_t)j * p->row;
        int32_t s = p->used < p->capacity ? (int32_t)p->used++ : -1;
        p->at[p->miss[j]] = computed;
        if (p->int8)
            round_trip(p, computed, s);
        else if (s >= 0)
            memcpy(p->store + (size_t)s * p->row, computed, (size_t)p->row * sizeof(float));
        if (s >= 0)
            p->slot[p->miss_idx[j]] = s;
    }
    skip2_meter_phase(meter, SKIP2_FWD);
}
