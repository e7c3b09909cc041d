/* The frozen prefix of a method whose backbone never changes (ft-last, lora-last, skip-lora,
 * skip2-lora) and its per-sample cache with a byte budget (docs/methods.md, "The cache").
 *
 * A row is [x[1] | ... | x[L-1] | z0], the hidden activations and (optionally) the frozen
 * logits of one sample. Rows are stored first come, first stored while the capacity lasts;
 * samples that never fit are recomputed whenever they are drawn. In the int8 format a row is
 * stored as int8 with one scale per segment (each x[k] and z0), and every computed row, stored
 * or not, is read back through it: the budget changes time, never results. */
#ifndef SKIP2_PREFIX_H
#define SKIP2_PREFIX_H

#include <stdint.h>

#include "skip2_linalg.h"
#include "skip2_meter.h"
#include "skip2_model.h"
#include "skip2_quant.h"

typedef struct {
    int with_logits;                /* the row ends with the frozen logits z0 */
    int row;                        /* floats per row */
    int segments;                   /* x[1..L-1] and z0: segment s spans off[s+1]..off[s+2] */
    int off[SKIP2_MAX_LAYERS + 2];  /* column of x[k] in a row (k = 1..L-1); then z0's, the end */
    int int8;                       /* rows pass through the int8 format (the cache is on) */
    int64_t row_bytes;              /* bytes of a stored row */
    uint32_t capacity, used;        /* rows the cache may hold / holds */
    uint64_t hits, misses;          /* lookups served from the cache / computed */
    /* Arena buffers. */
    const float **at;               /* the batch's rows, where they lie (batch size pointers) */
    /* Present when capacity > 0. */
    float *store;                   /* f32: capacity x row */
    int8_t *store8;                 /* int8: capacity x row, with ... */
    float *scale;                   /* ... capacity x segments scales */
    int32_t *slot;                  /* per training sample: its store row, or -1 */
    uint32_t *miss, *miss_idx;      /* batch positions of the misses, and their sample indices */
    const float **x_miss;           /* the misses' inputs */
} skip2_prefix;

/* Derives the row layout and the capacity for n training samples. */
void skip2_prefix_plan(skip2_prefix *p, const skip2_model *model, int with_logits, int cache,
                       skip2_format format, int64_t budget_bytes, uint32_t n);

/* Frozen forward of m inputs (m x D) into rows (m x p->row). */
void skip2_prefix_compute(const skip2_prefix *p, const skip2_model *model, int m, skip2_rows x,
                          float *rows, uint64_t *macs);

/* Points p->at[0..nb-1] at the rows of training samples idx[0..nb-1]: in the cache (f32), or
 * computed or dequantised into rows (nb x p->row; computed ones are then stored while capacity
 * lasts). Without a cache, or when need_x0 is set, also points x0[0..nb-1] at their inputs (in
 * place, or fetched into xb, nb x D). Leaves the meter in phase fwd. */
void skip2_prefix_get(skip2_prefix *p, const skip2_model *model, const skip2_data *train,
                      const uint32_t *idx, int nb, int need_x0, float *xb, const float **x0,
                      float *rows, skip2_meter *meter);

#endif
