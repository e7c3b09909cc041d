/* SKIP2_M4 when compiling for a Cortex-M4F (ARMv7E-M with its FPU): the core then uses kernels
 * of its own there (skip2_tiles_m4.inc, skip2_quant.c), which give the same bits. */
#ifndef SKIP2_M4_H
#define SKIP2_M4_H

#if defined(__GNUC__) && defined(__ARM_ARCH_7EM__) && defined(__ARM_FP)
#define SKIP2_M4 1
#endif

#endif
