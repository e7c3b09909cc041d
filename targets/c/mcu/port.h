/* The firmware's side of skip2_port.h: host transfers kept out of the core's clock. */
#ifndef PORT_H
#define PORT_H

#include <stdint.h>

/* At a job's start: no transfer time yet, and a fresh SysTick period. */
void port_transfer_reset(void);
/* After a transfer that began at systick_now() == since: its ticks leave the core's clock. */
void port_transfer_add(uint64_t since);
/* The job's transfer ticks so far (reported in DONE). */
uint64_t port_transfer_ticks(void);

#endif
