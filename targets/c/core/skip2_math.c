/* Cephes-style range reduction and minimax polynomials (S. Moshier), written out in float with
 * every operation rounded on its own (-ffp-contract=off), and ldexpf/frexpf, which are exact. */
#include "skip2_math.h"

#include <math.h>

float skip2_expf(float x)
{
    if (x != x)
        return x;
    if (x > 88.72283905206835f)
        return INFINITY;
    if (x < -103.97208f)
        return 0.0f;
    /* x = k ln2 + r, |r| <= ln2 / 2, with ln2 split in two so k * C1 is exact. */
    float k = floorf(1.44269504088896341f * x + 0.5f);
    float r = x - k * 0.693359375f;
    r = r - k * -2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    float e = p * (r * r) + r + 1.0f;
    return ldexpf(e, (int)k);
}

float skip2_logf(float x)
{
    if (x != x || x < 0.0f)
        return NAN;
    if (x == 0.0f)
        return -INFINITY;
    if (x == INFINITY)
        return x;
    int e;
    float m = frexpf(x, &e); /* x = m 2^e, 0.5 <= m < 1 */
    if (m < 0.707106781186547524f) {
        e -= 1;
        m = m + m - 1.0f;
    } else {
        m = m - 1.0f;
    }
    float z = m * m;
    float y = 7.0376836292e-2f;
    y = y * m - 1.1514610310e-1f;
    y = y * m + 1.1676998740e-1f;
    y = y * m - 1.2420140846e-1f;
    y = y * m + 1.4249322787e-1f;
    y = y * m - 1.6668057665e-1f;
    y = y * m + 2.0000714765e-1f;
    y = y * m - 2.4999993993e-1f;
    y = y * m + 3.3333331174e-1f;
    y = y * m * z;
    float fe = (float)e;
    y = y + fe * -2.12194440e-4f;
    y = y - 0.5f * z;
    return m + y + fe * 0.693359375f;
}
