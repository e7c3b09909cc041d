/* skip2_port.h for POSIX single-board computers. */
#define _XOPEN_SOURCE 700

#include <stdio.h>
#include <sys/resource.h>
#include <time.h>

#include "skip2_port.h"

#include "port_posix.h"

/* Nanoseconds spent between port_transfer_begin and _end, which the core's clock leaves out. */
static uint64_t transfer, since;

static uint64_t monotonic_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t skip2_port_ticks(void)
{
    return monotonic_ns() - transfer;
}

void port_transfer_begin(void)
{
    since = monotonic_ns();
}

void port_transfer_end(void)
{
    transfer += monotonic_ns() - since;
}

uint64_t skip2_port_ticks_per_second(void)
{
    return 1000000000u;
}

/* This process's own peak RSS. On Linux, getrusage keeps the high-water mark of the parent that
 * forked us (it survives exec), so the kernel's VmHWM is read instead where it exists. */
uint64_t skip2_port_mem_high_water(void)
{
    FILE *status = fopen("/proc/self/status", "r");
    if (status) {
        char line[128];
        unsigned long long kib = 0;
        int found = 0;
        while (!found && fgets(line, sizeof line, status))
            found = sscanf(line, "VmHWM: %llu kB", &kib) == 1;
        fclose(status);
        if (found)
            return (uint64_t)kib * 1024u;
    }
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0)
        return 0;
#ifdef __APPLE__
    return (uint64_t)ru.ru_maxrss; /* bytes on macOS */
#else
    return (uint64_t)ru.ru_maxrss * 1024u; /* KiB on Linux and the BSDs */
#endif
}
