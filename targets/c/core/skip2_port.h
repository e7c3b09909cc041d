/* The per-board layer under the portable core: each board (SBC runner, MCU firmware) supplies
 * these functions in its own port file, so the core itself never touches an OS or a peripheral. */
#ifndef SKIP2_PORT_H
#define SKIP2_PORT_H

#include <stddef.h>
#include <stdint.h>

/* A monotonic tick counter and its rate. The core reads it a few times per mini-batch and
 * only subtracts and sums ticks, so boards without an FPU pay no float cost in the loop. */
uint64_t skip2_port_ticks(void);
uint64_t skip2_port_ticks_per_second(void);

/* Peak memory in use by the program in bytes (peak RSS, or a RAM high-water mark); 0 if unknown. */
uint64_t skip2_port_mem_high_water(void);

#endif
