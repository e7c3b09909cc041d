#include "skip2_prng.h"

#define GAMMA UINT64_C(0x9E3779B97F4A7C15)

static uint64_t mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
    return z ^ (z >> 31);
}

uint64_t skip2_draw(uint64_t key, uint64_t i)
{
    return mix64(key + (i + 1) * GAMMA);
}

uint64_t skip2_stream_key(uint64_t seed, uint64_t stream)
{
    return skip2_draw(seed, stream);
}

void skip2_uniform_sym(uint64_t key, uint32_t n, float bound, float *out)
{
    for (uint32_t i = 0; i < n; i++) {
        /* 24 bits fit a float mantissa, so u is exact and only the last two steps round. */
        float u = (float)(skip2_draw(key, i) >> 40) * 0x1p-24f;
        out[i] = (2.0f * u - 1.0f) * bound;
    }
}

/* Sorts v[0..n) by bits 32..63, 8 bits a pass from the lowest (LSD radix: each pass is stable,
 * so equal top halves keep their order), through tmp; after the 4 passes v holds the result. */
static void sort_top_halves(uint64_t *v, uint64_t *tmp, uint32_t n)
{
    for (int shift = 32; shift < 64; shift += 8) {
        uint32_t start[256] = { 0 };
        for (uint32_t i = 0; i < n; i++)
            start[(v[i] >> shift) & 255]++;
        for (uint32_t b = 0, sum = 0; b < 256; b++) {
            uint32_t count = start[b];
            start[b] = sum;
            sum += count;
        }
        for (uint32_t i = 0; i < n; i++)
            tmp[start[(v[i] >> shift) & 255]++] = v[i];
        uint64_t *t = v;
        v = tmp;
        tmp = t;
    }
}

void skip2_permutation(uint64_t key, uint32_t n, uint32_t *order, uint64_t *scratch)
{
    /* The (draw, index) order is total, so any correct sort gives NumPy's stable argsort. Each
     * entry is the draw's top half with the index below it, radix-sorted by the top half (in
     * place, no recursion, no allocation: the training loop never allocates); the index order
     * of entries with equal top halves (rare) is then mended by their whole draws, by insertion
     * (strictly greater moves, so equal draws stay in index order). */
    uint64_t *v = scratch;
    const uint64_t top = ~(uint64_t)0 << 32;
    for (uint32_t i = 0; i < n; i++)
        v[i] = (skip2_draw(key, i) & top) | i;
    sort_top_halves(v, scratch + n, n);
    for (uint32_t i = 1; i < n; i++) {
        uint64_t e = v[i];
        if ((v[i - 1] ^ e) & top)
            continue;
        uint64_t d = skip2_draw(key, (uint32_t)e);
        uint32_t j = i;
        for (; j > 0 && !((v[j - 1] ^ e) & top) && skip2_draw(key, (uint32_t)v[j - 1]) > d; j--)
            v[j] = v[j - 1];
        v[j] = e;
    }
    for (uint32_t i = 0; i < n; i++)
        order[i] = (uint32_t)v[i];
}
