/* The frozen prefix of a method whose backbone never changes (ft-last, lora-last, skip-lora,
 * skip2-lora) and its per-sample cache with a byte budget (docs/methods.md, "The cache").
 *
 * A row is [x[1] | ... | x[L-1] | z0], the hidden activations and (optionally) the frozen
 * logits of one sample. Rows are stored first come, first stored while the capacity lasts;
 * samples that never fit are recomputed whenever they are drawn. */
#ifndef SKIP2_PREFIX_H
#define SKIP2_PREFIX_H

#include <stdint.h>

#include "skip2_linalg.h"
#include "skip2_meter.h"
#include "skip2_model.h"

typedef struct {
    int with_logits;                /* the row ends with the frozen logits z0 */
    int row;                        /* floats per row */
    int off[SKIP2_MAX_LAYERS + 1];  /* column of x[k] in a row (k = 1..L-1); off[L] is z0's */
    uint32_t capacity, used;        /* rows the cache may hold / holds */
    uint64_t hits, misses;          /* lookups served from the cache / computed */
    /* Arena buffers. */
    const float **at;               /* the batch's rows, where they lie (batch size pointers) */
    /* Present when capacity > 0. */
    float *store;                   /* capacity x row */
    int32_t *slot;                  /* per training sample: its store row, or -1 */
    uint32_t *miss, *miss_idx;      /* batch positions of the misses, and their sample indices */
    const float **x_miss;           /* the misses' inputs */
} skip2_prefix;

/* Derives the row layout and the capacity for n training samples. */
void skip2_prefix_plan(skip2_prefix *p, const skip2_model *model, int with_logits, int cache,
                       int64_t budget_bytes, uint32_t n);

/* Frozen forward of m inputs (m x D) into rows (m x p->row). */
void skip2_prefix_compute(const skip2_prefix *p, const skip2_model *model, int m, skip2_rows x,
                          float *rows, uint64_t *macs);

/* Points p->at[0..nb-1] at the rows of training samples idx[0..nb-1]: in the cache, or computed
 * into rows (nb x p->row; then stored while capacity lasts). Without a cache, or when need_x0
 * is set, also points x0[0..nb-1] at their inputs (in place, or fetched into xb, nb x D).
 * Leaves the meter in phase fwd. */
void skip2_prefix_get(skip2_prefix *p, const skip2_model *model, const skip2_data *train,
                      const uint32_t *idx, int nb, int need_x0, float *xb, const float **x0,
                      float *rows, skip2_meter *meter);

#endif
