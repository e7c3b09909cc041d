#include "ram.h"

#include "board.h"

static uint64_t peak;

uint32_t ram_free(int r)
{
    return (uint32_t)(board.regions[r].free_end - board.regions[r].free_start);
}

uint32_t ram_largest_free(void)
{
    uint32_t best = 0;
    for (int r = 0; r < board.n_regions; r++)
        best = ram_free(r) > best ? ram_free(r) : best;
    return best;
}

int ram_smallest_fit(uint64_t bytes)
{
    int best = -1;
    for (int r = 0; r < board.n_regions; r++)
        if (bytes <= ram_free(r) && (best < 0 || ram_free(r) < ram_free(best)))
            best = r;
    return best;
}

ram_block ram_largest_left(const ram_block *taken, int except)
{
    ram_block best = { -1, 0, 0 };
    for (int r = 0; r < board.n_regions; r++) {
        if (r == except)
            continue;
        unsigned char *start = board.regions[r].free_start;
        if (taken && taken->region == r)  /* after the block, 64-byte aligned like the arena's rows */
            start += (taken->bytes + 63u) & ~63u;
        uint32_t bytes = start < board.regions[r].free_end
                             ? (uint32_t)(board.regions[r].free_end - start) : 0;
        if (best.region < 0 || bytes > best.bytes)
            best = (ram_block){ r, start, bytes };
    }
    return best;
}

void ram_note_use(uint64_t bytes)
{
    peak = bytes > peak ? bytes : peak;
}

uint64_t ram_static_bytes(void)
{
    uint64_t bytes = 0;
    for (int r = 0; r < board.n_regions; r++)
        bytes += (uint64_t)(board.regions[r].free_start - (unsigned char *)(uintptr_t)board.regions[r].base);
    return bytes;
}

uint64_t ram_peak_use(void)
{
    return peak;
}
