#include "skip2_quant.h"

#include <math.h>
#include <string.h>

#define LEVELS 127.0f
/* 1.5 * 2^23: for |t| < 2^22, t + ROUNDER lies in [2^23, 2^24), where the floats are the
 * integers, so the addition rounds t to an integer (half to even in the default rounding mode)
 * and the subtraction is exact: rintf's bits without its library call (some 45 instructions on
 * a Cortex-M4F). Needs IEEE float arithmetic: no -ffast-math, which would fold the pair to t. */
#define ROUNDER 12582912.0f

static const char *const FORMAT_NAMES[SKIP2_N_FORMATS] = { "f32", "int8" };

const char *skip2_format_name(skip2_format format)
{
    return (unsigned)format < SKIP2_N_FORMATS ? FORMAT_NAMES[format] : "?";
}

int skip2_format_from_name(const char *name)
{
    for (int f = 0; f < SKIP2_N_FORMATS; f++)
        if (strcmp(name, FORMAT_NAMES[f]) == 0)
            return f;
    return -1;
}

float skip2_quantise(int n, float *v, int8_t *q)
{
    float top = 0.0f;
    for (int i = 0; i < n; i++) {
        float a = fabsf(v[i]);
        if (a > top) /* false for NaN */
            top = a;
    }
    float scale = top / LEVELS;
    for (int i = 0; i < n; i++) {
        /* A zero scale gives 0/0 = NaN or +-inf; the clamp and the NaN rule keep q defined. */
        float t = v[i] / scale;
        t = t > LEVELS ? LEVELS : t < -LEVELS ? -LEVELS : t;
        float shifted = t + ROUNDER; /* a statement of its own: rounded to float here */
        int8_t k = t == t ? (int8_t)(shifted - ROUNDER) : 0;
        if (q)
            q[i] = k;
        v[i] = (float)k * scale;
    }
    return scale;
}

void skip2_dequantise(int n, const int8_t *q, float scale, float *out)
{
    for (int i = 0; i < n; i++)
        out[i] = (float)q[i] * scale;
}
