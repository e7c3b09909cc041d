/* What the programs of bench/ share: lines of text out and the end of the run (semihosting on
 * the board under QEMU, stdio on a host) and decimal numbers; bits_hash.h hashes results. */
#ifndef BENCH_H
#define BENCH_H

#include <stdint.h>
#include <string.h>

#ifdef __arm__
static inline void semihost(int op, const void *arg)
{
    register int r0 __asm__("r0") = op;
    register const void *r1 __asm__("r1") = arg;
    __asm__ volatile("bkpt 0xab" : "+r"(r0) : "r"(r1) : "memory");
}

static inline void bench_print(const char *line)
{
    semihost(0x04, line); /* SYS_WRITE0 */
}

static inline void bench_exit(void)
{
    semihost(0x18, (const void *)0x20026); /* SYS_EXIT, ADP_Stopped_ApplicationExit */
}
#else
#include <stdio.h>

static inline void bench_print(const char *line)
{
    fputs(line, stdout);
}

static inline void bench_exit(void)
{
}
#endif

/* Appends " v" at s; returns the new end. */
static inline char *bench_num(char *s, uint64_t v)
{
    char digits[20];
    int n = 0;
    do
        digits[n++] = (char)('0' + v % 10);
    while (v /= 10);
    *s++ = ' ';
    while (n)
        *s++ = digits[--n];
    return s;
}

#endif
