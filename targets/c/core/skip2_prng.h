/* The shared counter-based PRNG of docs/prng.md: every number is a pure function of
 * (seed, stream, counter), bit-identical to targets/numpy/skip2_prng.py. */
#ifndef SKIP2_PRNG_H
#define SKIP2_PRNG_H

#include <stdint.h>

#define SKIP2_STREAM_ADAPTER 0x100u   /* + layer index: adapter A matrices */
#define SKIP2_STREAM_FAR 0x300u       /* + layer index: far-random's kept neurons */
#define SKIP2_STREAM_SHUFFLE 0x10000u /* + epoch index: fine-tuning epoch order */
#define SKIP2_STREAM_PRETRAIN_SHUFFLE 0x20000u /* + epoch index: pre-training epoch order (host) */

/* Output number i (0-based) of SplitMix64 whose state starts at key. */
uint64_t skip2_draw(uint64_t key, uint64_t i);

/* Key of stream `stream` under `seed`. */
uint64_t skip2_stream_key(uint64_t seed, uint64_t stream);

/* out[i] = (2 u_i - 1) * bound for i < n, with u_i the top 24 bits of draw i times 2^-24. */
void skip2_uniform_sym(uint64_t key, uint32_t n, float bound, float *out);

/* order[0..n-1] = indices sorted by (draw, index); scratch holds 2n numbers. */
void skip2_permutation(uint64_t key, uint32_t n, uint32_t *order, uint64_t *scratch);

#endif
