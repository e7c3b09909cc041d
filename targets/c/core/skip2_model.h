/* The backbone and the data as the core sees them: plain read-only arrays owned by the caller
 * (an MCU may keep them in flash; the core copies what a method trains into its arena). */
#ifndef SKIP2_MODEL_H
#define SKIP2_MODEL_H

#include <stdint.h>

/* SKIP2_MAX_LAYERS, SKIP2_MAX_WIDTH, ...: the job limits every runner enforces. */
enum {
#define SKIP2_LIMIT(name, value) SKIP2_##name = value,
#include "skip2_limits.def"
#undef SKIP2_LIMIT
};

/* An MLP of n_layers dense layers: a[k] = x[k] W[k] + b[k], x[k+1] = ReLU(a[k]), logits a[L-1]. */
typedef struct {
    int n_layers;                     /* L */
    int dims[SKIP2_MAX_LAYERS + 1];   /* dims[0] = input width D; dims[k+1] = outputs of layer k */
    const float *W[SKIP2_MAX_LAYERS]; /* dims[k] x dims[k+1], row-major */
    const float *b[SKIP2_MAX_LAYERS]; /* dims[k+1] */
} skip2_model;

/* n samples: x is n x D row-major (already scaled), y the class indices. Inputs stored in int8
 * (input_format int8) are x8 (n x D) with one scale per row in x8_scale, x being NULL; rows are
 * dequantised (skip2_quant.h) as they are read. When x and x8 are NULL the rows live elsewhere
 * (an MCU streams them from the host): fetch copies rows idx[0..m-1], or rows first..first+m-1
 * when idx is NULL, scaled, into out (m x D). */
typedef struct skip2_data {
    const float *x;
    const int8_t *x8;
    const float *x8_scale;
    const int32_t *y;
    uint32_t n;
    void (*fetch)(const struct skip2_data *data, const uint32_t *idx, uint32_t first, uint32_t m,
                  float *out);
    void *user;
} skip2_data;

/* Points rows[0..m-1] at the rows idx[0..m-1] of data: where they lie when data is in memory as
 * float32, else dequantised or fetched into scratch (m x D). */
void skip2_data_rows(const skip2_data *data, int D, const uint32_t *idx, uint32_t m,
                     float *scratch, const float **rows);

/* Rows first..first+m-1 of data: in place when data is in memory as float32, else dequantised or
 * fetched into scratch. */
const float *skip2_data_block(const skip2_data *data, int D, uint32_t first, uint32_t m,
                              float *scratch);

#endif
