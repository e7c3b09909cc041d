/* The main stack: a fixed reservation at the top of sram (linker script), painted at reset so its
 * high-water mark can be measured, with an MPU guard at its bottom so an overflow faults instead
 * of silently overwriting the data set or the arena below it. */
#ifndef STACK_H
#define STACK_H

#include <stdint.h>

void stack_paint(void);          /* at reset, before anything deep runs */
void stack_repaint(void);        /* before a job: its high-water mark alone from here */
void stack_guard_on(void);       /* MPU region over the lowest 32 bytes */
uint32_t stack_used(void);       /* deepest use so far, in bytes */
int stack_guard_hit(uint32_t cfsr, uint32_t mmfar);  /* whether a fault came from the guard */

#endif
