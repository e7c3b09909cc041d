/* skip2_port.h for POSIX single-board computers. */
#define _XOPEN_SOURCE 700

#include <stdio.h>
#include <sys/resource.h>
#include <time.h>

#include "skip2_port.h"

uint64_t skip2_port_ticks(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t skip2_port_ticks_per_second(void)
{
    return 1000000000u;
}

void skip2_port_write(const char *text)
{
    fputs(text, stdout);
    fflush(stdout);
}

uint64_t skip2_port_mem_high_water(void)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0)
        return 0;
#ifdef __APPLE__
    return (uint64_t)ru.ru_maxrss; /* bytes on macOS */
#else
    return (uint64_t)ru.ru_maxrss * 1024u; /* KiB on Linux and the BSDs */
#endif
}
