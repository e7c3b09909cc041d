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

static int before(const skip2_sort_key *a, const skip2_sort_key *b)
{
    return a->draw < b->draw || (a->draw == b->draw && a->index < b->index);
}

static void sift_down(skip2_sort_key *heap, uint32_t root, uint32_t n)
{
    for (;;) {
        uint64_t child = 2 * (uint64_t)root + 1;
        if (child >= n)
            return;
        if (child + 1 < n && before(&heap[child], &heap[child + 1]))
            child++;
        if (!before(&heap[root], &heap[child]))
            return;
        skip2_sort_key t = heap[root];
        heap[root] = heap[child];
        heap[child] = t;
        root = (uint32_t)child;
    }
}

void skip2_permutation(uint64_t key, uint32_t n, uint32_t *order, skip2_sort_key *scratch)
{
    for (uint32_t i = 0; i < n; i++) {
        scratch[i].draw = skip2_draw(key, i);
        scratch[i].index = i;
    }
    /* The (draw, index) order is total, so any correct sort gives NumPy's stable argsort.
     * Heapsort rather than qsort: in place, without recursion or the temporary buffer that
     * some C libraries' qsort allocates, so the training loop never allocates. */
    for (uint32_t i = n / 2; i-- > 0;)
        sift_down(scratch, i, n);
    for (uint32_t end = n; end-- > 1;) {
        skip2_sort_key t = scratch[0];
        scratch[0] = scratch[end];
        scratch[end] = t;
        sift_down(scratch, 0, end);
    }
    for (uint32_t i = 0; i < n; i++)
        order[i] = scratch[i].index;
}
