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

/* n samples: x is n x D row-major (already scaled), y the class indices. */
typedef struct {
    const float *x;
    const int32_t *y;
    uint32_t n;
} skip2_data;

#endif
