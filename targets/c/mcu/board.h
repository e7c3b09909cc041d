/* What one board's port (ports/<board>/board.c and its linker script) supplies to the shared
 * firmware: the facts HELLO reports, where free RAM is, and a UART that receives by interrupt.
 * The th_* layer of MLPerf Tiny in spirit: everything board-specific sits behind this header. */
#ifndef BOARD_H
#define BOARD_H

#include <stdint.h>

/* A RAM region. Its free space [free_start, free_end) is what static data (.data, .bss) and the
 * stack leave; the data set and the job arena go there. */
typedef struct {
    const char *name;             /* at most 8 characters (HELLO's char[8]) */
    uint32_t base, size;
    unsigned char *free_start, *free_end;
} board_region;

typedef struct {
    const char *name;             /* at most 16 characters (HELLO's char[16]) */
    uint32_t clock_hz;            /* core clock; SysTick counts at this rate */
    uint32_t flash_bytes;
    uint32_t model_slot, model_slot_bytes;
    unsigned uart_irq;            /* NVIC number of the UART's receive interrupt */
    int n_regions;
    const board_region *regions;
} board_facts;

extern const board_facts board;

/* Clocks, pins and the UART with its receive interrupt enabled at the UART (the caller enables
 * it in the NVIC). Runs with interrupts masked. */
void board_init(void);

/* Sends one byte, waiting while the transmitter is full. Safe with interrupts masked. */
void board_uart_putc(uint8_t c);

/* The UART's interrupt: every received byte goes to serial_rx_push(), and the interrupt is
 * acknowledged so the line does not stay asserted. */
void board_uart_irq(void);

#endif
