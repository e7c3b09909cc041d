#include "skip2_math.h"

#include <float.h>
#include <stddef.h>

#include "skip2_linalg.h"

float skip2_softmax_xent(int n, int C, const float *z, const int32_t *y, const uint32_t *idx,
                         float *dz, float *scratch)
{
    /* The exponentials and the logarithms of all rows at once, a vector of lanes at a time. */
    for (int i = 0; i < n; i++) {
        const float *zi = z + (size_t)i * C;
        float top = zi[0];
        for (int j = 1; j < C; j++)
            top = zi[j] > top ? zi[j] : top;
        for (int j = 0; j < C; j++)
            dz[(size_t)i * C + j] = zi[j] - top;
    }
    skip2_exp(n * C, dz);
    for (int i = 0; i < n; i++) {
        float *p = dz + (size_t)i * C, sum = 0.0f;
        for (int j = 0; j < C; j++)
            sum += p[j];
        for (int j = 0; j < C; j++)
            p[j] = p[j] / sum;
        /* Clamped like NumPy's maximum(p, tiny): a NaN stays NaN. */
        float pt = p[y[idx[i]]];
        scratch[i] = pt < FLT_MIN ? FLT_MIN : pt;
    }
    skip2_log(n, scratch);
    float loss = 0.0f;
    for (int i = 0; i < n; i++) {
        loss += -scratch[i];
        dz[(size_t)i * C + y[idx[i]]] -= 1.0f;
    }
    float count = (float)n;
    for (int i = 0; i < n * C; i++)
        dz[i] = dz[i] / count;
    return loss / count;
}
