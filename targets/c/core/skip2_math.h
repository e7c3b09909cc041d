/* The training loss, as NumPy computes it, on expf and logf of the core's own (skip2_exp and
 * skip2_log), so every board computes the same bits: C libraries differ in the last bit
 * (newlib's fdlibm-derived expf differs from glibc's on ~0.8 % of inputs), and a job must train
 * on the same sequence on the host, an SBC and an MCU. */
#ifndef SKIP2_MATH_H
#define SKIP2_MATH_H

#include <stdint.h>

/* Mean softmax cross-entropy of z (n x C) against the labels y[idx[i]]; writes dL/dz to dz
 * (n x C). scratch holds n floats. */
float skip2_softmax_xent(int n, int C, const float *z, const int32_t *y, const uint32_t *idx,
                         float *dz, float *scratch);

#endif
