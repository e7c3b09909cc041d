/* Storage formats of the cache rows and the inputs (docs/methods.md, "Compact formats"): float32
 * as computed, or int8 with one float32 scale per segment, defined exactly so that every runner
 * (this core, the NumPy runner, the host building an MCU's flash image) stores the same bytes
 * and reads back the same floats:
 *
 *     scale = max |v_i| / 127           (float32; NaN ignored, 0 when every value is 0 or NaN)
 *     q_i   = v_i / scale, clamped to [-127, 127], rounded half to even (NaN -> 0)
 *     v'_i  = (float)q_i * scale        (float32)
 */
#ifndef SKIP2_QUANT_H
#define SKIP2_QUANT_H

#include <stdint.h>

typedef enum { SKIP2_F32, SKIP2_INT8, SKIP2_N_FORMATS } skip2_format;

/* The format's name as in the runner contract ("f32", "int8"), and back (-1 if unknown). */
const char *skip2_format_name(skip2_format format);
int skip2_format_from_name(const char *name);

/* Quantises v[0..n-1]: stores q (unless q is NULL), replaces v by its dequantised values and
 * returns the scale. */
float skip2_quantise(int n, float *v, int8_t *q);

/* out[0..n-1] = (float)q[i] * scale. */
void skip2_dequantise(int n, const int8_t *q, float scale, float *out);

#endif
