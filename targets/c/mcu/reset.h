/* Why the board last reset: noted by the firmware before a reset it makes (a fault, a stack
 * overflow, a panic), kept across the reset in 64 bytes at the top of sram that no ELF section
 * covers (so neither the startup code nor a loader, QEMU's system_reset included, writes them),
 * and announced to the host in the BOOT frame. */
#ifndef RESET_H
#define RESET_H

#include <stdint.h>

enum {
    RESET_POWER_ON = 0,               /* no note: the RAM did not hold one */
    RESET_EXTERNAL = 1,               /* a note of a running firmware: the reset pin, a debugger */
    RESET_STACK_OVERFLOW = 2,
    RESET_FAULT = 3,                  /* a HardFault or another exception */
    RESET_PANIC = 4                   /* a state the firmware cannot go on from */
};
#define RESET_DETAIL_BYTES 48u

/* Notes `reason`, the faulting pc (0: none) and a text for the next boot. */
void reset_note(uint32_t reason, uint32_t pc, const char *detail);

/* At boot: the reason of the last reset, its pc and detail; then notes RESET_EXTERNAL, which
 * stays unless the firmware notes another reason before the next reset. */
uint32_t reset_take(uint32_t *pc, char detail[RESET_DETAIL_BYTES]);

#endif
