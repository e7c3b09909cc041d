/* expf and logf of the core's own, so every board computes the same bits: C libraries differ in
 * the last bit (newlib's fdlibm-derived expf differs from glibc's on ~0.8 % of inputs), and a
 * job must train on the same sequence on the host, an SBC and an MCU. Float only (no double on
 * a Cortex-M4F's FPU), about 1 ulp from the correctly rounded value. */
#ifndef SKIP2_MATH_H
#define SKIP2_MATH_H

float skip2_expf(float x);
float skip2_logf(float x); /* x > 0; NaN stays NaN */

#endif
