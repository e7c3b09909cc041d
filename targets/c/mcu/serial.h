/* The UART's receive side as the firmware sees it: bytes the interrupt put in a ring buffer, and
 * a wait that sleeps (wfi) until one arrives or a deadline passes. Sending is board_uart_putc. */
#ifndef SERIAL_H
#define SERIAL_H

#include <stdint.h>

#define SERIAL_FOREVER UINT64_MAX

void serial_rx_push(uint8_t c);       /* interrupt side */

/* Bytes received since reset (also those a full ring lost), wrapping at 2^32. */
uint32_t serial_rx_count(void);

/* Whether a received byte waits to be read. */
int serial_waiting(void);

/* The next received byte into *c: 1, or 0 once systick_now() >= deadline. */
int serial_getc(uint8_t *c, uint64_t deadline);

#endif
