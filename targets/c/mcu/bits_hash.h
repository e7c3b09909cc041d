/* A hash of floats' bits: equal hashes, the same results to the last bit (the product probe's
 * answer, bench/ programs' lines). */
#ifndef BITS_HASH_H
#define BITS_HASH_H

#include <stdint.h>
#include <string.h>

/* FNV-1a over the bits of rows x cols floats, rows ld apart. */
static inline uint32_t bits_hash(const float *x, int rows, int cols, long ld)
{
    uint32_t h = 2166136261u;
    for (int i = 0; i < rows; i++)
        for (int j = 0; j < cols; j++) {
            uint32_t bits;
            memcpy(&bits, x + i * ld + j, sizeof bits);
            h = (h ^ bits) * 16777619u;
        }
    return h;
}

#endif
