/* mps2-an386 (QEMU -M mps2-an386): Cortex-M4F at 25 MHz, CMSDK APB UART0 at 0x40004000 whose
 * receive interrupt is NVIC IRQ 0. */
#include "board.h"

#include "cortexm.h"
#include "serial.h"

#define UART0 0x40004000u
#define UART_DATA     REG32(UART0 + 0x00u)
#define UART_STATE    REG32(UART0 + 0x04u)    /* bit 0 TX full, bit 1 RX full */
#define UART_CTRL     REG32(UART0 + 0x08u)    /* bit 0 TX on, bit 1 RX on, bit 3 RX interrupt */
#define UART_INTCLEAR REG32(UART0 + 0x0Cu)    /* write bit 1: clear the RX interrupt */
#define UART_BAUDDIV  REG32(UART0 + 0x10u)    /* >= 16 */

#define CLOCK_HZ 25000000u
#define BAUD 115200u

extern unsigned char __sram_free_start[], __sram_free_end[];

static const board_region regions[] = {
    { "sram", 0x20000000u, 4u << 20, __sram_free_start, __sram_free_end },
};

const board_facts board = {
    .name = "mps2-an386",
    .clock_hz = CLOCK_HZ,
    .flash_bytes = 4u << 20,          /* SSRAM1, the code memory */
    .model_slot = 0x00200000u,
    .model_slot_bytes = 2u << 20,
    .uart_irq = 0,
    .n_regions = 1,
    .regions = regions,
};

void board_init(void)
{
    UART_CTRL = 0;
    UART_BAUDDIV = CLOCK_HZ / BAUD;   /* QEMU ignores the rate, but checks the divider */
    UART_INTCLEAR = 0xFu;
    UART_CTRL = (1u << 0) | (1u << 1) | (1u << 3);
}

void board_uart_putc(uint8_t c)
{
    while (UART_STATE & 1u)
        ;
    UART_DATA = c;
}

void board_uart_irq(void)
{
    /* Clear first, then drain: a byte that lands after the drain raises the interrupt again
     * rather than being lost behind a cleared flag. */
    UART_INTCLEAR = 2u;
    while (UART_STATE & 2u)
        serial_rx_push((uint8_t)UART_DATA);
}
