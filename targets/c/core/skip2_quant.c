#include "skip2_quant.h"

#include "skip2_m4.h"

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

/* The Cortex-M4F converts eight values a step: two word loads, a sign extension each, the
 * integers into the FPU two at a time (one VMOV of a register pair), a VCVT and a VMUL each, one
 * VSTM of the eight: some 4 instructions a value against 7 for the loop below (a byte load, a
 * VMOV, VCVT, VMUL and VSTR each, and the loop's own). The same operations on the same values,
 * so the same bits. */
#ifdef SKIP2_M4
static int dequantise8_m4(int n, const int8_t *q, float scale, float *out)
{
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        uint32_t lo, hi, t0, t1;
        memcpy(&lo, q + i, 4); /* an LDR: the Cortex-M4 reads unaligned words */
        memcpy(&hi, q + i + 4, 4);
        __asm__("sxtb %[t0], %[lo]\n\t"
                "sxtb %[t1], %[lo], ror #8\n\t"
                "vmov s0, s1, %[t0], %[t1]\n\t"
                "sxtb %[t0], %[lo], ror #16\n\t"
                "asr %[t1], %[lo], #24\n\t"
                "vmov s2, s3, %[t0], %[t1]\n\t"
                "sxtb %[t0], %[hi]\n\t"
                "sxtb %[t1], %[hi], ror #8\n\t"
                "vmov s4, s5, %[t0], %[t1]\n\t"
                "sxtb %[t0], %[hi], ror #16\n\t"
                "asr %[t1], %[hi], #24\n\t"
                "vmov s6, s7, %[t0], %[t1]\n\t"
                "vcvt.f32.s32 s0, s0\n\t"
                "vcvt.f32.s32 s1, s1\n\t"
                "vcvt.f32.s32 s2, s2\n\t"
                "vcvt.f32.s32 s3, s3\n\t"
                "vcvt.f32.s32 s4, s4\n\t"
                "vcvt.f32.s32 s5, s5\n\t"
                "vcvt.f32.s32 s6, s6\n\t"
                "vcvt.f32.s32 s7, s7\n\t"
                "vmul.f32 s0, s0, %[s]\n\t"
                "vmul.f32 s1, s1, %[s]\n\t"
                "vmul.f32 s2, s2, %[s]\n\t"
                "vmul.f32 s3, s3, %[s]\n\t"
                "vmul.f32 s4, s4, %[s]\n\t"
                "vmul.f32 s5, s5, %[s]\n\t"
                "vmul.f32 s6, s6, %[s]\n\t"
                "vmul.f32 s7, s7, %[s]\n\t"
                "vstmia %[o], {s0-s7}"
                : [t0] "=&r"(t0), [t1] "=&r"(t1), "=m"(*(float(*)[8])(out + i))
                : [lo] "r"(lo), [hi] "r"(hi), [s] "t"(scale), [o] "r"(out + i)
                : "s0", "s1", "s2", "s3", "s4", "s5", "s6", "s7");
    }
    return i;
}
#endif

void skip2_dequantise(int n, const int8_t *q, float scale, float *out)
{
    int i = 0;
#ifdef SKIP2_M4
    i = dequantise8_m4(n, q, scale, out); /* the values up to a multiple of 8 */
#endif
    for (; i < n; i++)
        out[i] = (float)q[i] * scale;
}
