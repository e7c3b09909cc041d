/* The board's RAM regions as the jobs see them: static data and the stack are already taken;
 * the data set goes to the smallest region it fits (leaving the big ones for the arena), the
 * job's arena to the largest space left. */
#ifndef RAM_H
#define RAM_H

#include <stdint.h>

/* Free bytes of region r with nothing loaded (what HELLO reports: a fixed fact of the build). */
uint32_t ram_free(int r);
uint32_t ram_largest_free(void);

/* The region with the least free space that still holds `bytes`, or -1. */
int ram_smallest_fit(uint64_t bytes);

/* A block of RAM. */
typedef struct {
    int region;
    unsigned char *start;
    uint32_t bytes;
} ram_block;

/* The largest space left in a region other than `except` (-1: any) when `taken` (region < 0:
 * nothing) sits at the start of its region; region -1 when there is none. */
ram_block ram_largest_left(const ram_block *taken, int except);

/* Peak of the RAM the jobs used beyond static data and stack (data set plus arena). */
void ram_note_use(uint64_t bytes);
uint64_t ram_static_bytes(void);
uint64_t ram_peak_use(void);

#endif
