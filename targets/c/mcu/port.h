/* The firmware's side of skip2_port.h: host transfers kept out of the core's clock.
 * The emulated lab's cycle model times the same stretches by the entries of these functions and
 * of skip2_port_ticks (harness/mcu/cycle_model.py): keep them functions of their own, and
 * port_transfer_ticks called only for DONE. */
#ifndef PORT_H
#define PORT_H

#include <stdint.h>

/* At a job's start: no transfer time yet, and a fresh SysTick period. */
void port_transfer_reset(void);
/* Around a transfer (or any talk with the host): its ticks leave the core's clock, and the
 * bytes received meanwhile are the transfer's. Not nested. */
void port_transfer_begin(void);
void port_transfer_end(void);
/* The job's transfer ticks so far (reported in DONE). */
uint64_t port_transfer_ticks(void);
/* Bytes received since port_transfer_reset outside every transfer: they arrived while the
 * board counted the job's work, whose count their interrupts disturbed (reported in DONE). */
uint32_t port_bytes_during_compute(void);
/* Whether bytes arrived since the last transfer ended (or the job started). Bytes left waiting
 * by a transfer do not count: talking to the host for them would cut the job's clock where a
 * clean line does not, and every cut rounds the clock to a tick. */
int port_received_since_transfer(void);

#endif
