/* STM32F405 (QEMU -M netduinoplus2, and the real chip): Cortex-M4F at 168 MHz, USART1 on
 * PA9 (TX) / PA10 (RX), its interrupt NVIC IRQ 37. */
#include "board.h"

#include "cortexm.h"
#include "fault.h"
#include "serial.h"

#define USART1 0x40011000u
#define USART_SR  REG32(USART1 + 0x00u)       /* bit 5 RXNE, bit 7 TXE */
#define USART_DR  REG32(USART1 + 0x04u)
#define USART_BRR REG32(USART1 + 0x08u)
#define USART_CR1 REG32(USART1 + 0x0Cu)       /* UE 13, RXNEIE 5, TE 3, RE 2 */

#define RCC 0x40023800u
#define RCC_CR      REG32(RCC + 0x00u)
#define RCC_PLLCFGR REG32(RCC + 0x04u)
#define RCC_CFGR    REG32(RCC + 0x08u)
#define RCC_AHB1ENR REG32(RCC + 0x30u)
#define RCC_APB2ENR REG32(RCC + 0x44u)
#define FLASH_ACR   REG32(0x40023C00u)
#define DBGMCU_CR   REG32(0xE0042004u)
#define GPIOA 0x40020000u
#define GPIOA_MODER REG32(GPIOA + 0x00u)
#define GPIOA_PUPDR REG32(GPIOA + 0x0Cu)
#define GPIOA_AFRH  REG32(GPIOA + 0x24u)

#define CLOCK_HZ 168000000u
#define APB2_HZ (CLOCK_HZ / 2u)
#ifndef BAUD
#define BAUD 115200u
#endif

extern unsigned char __sram_free_start[], __sram_free_end[];
extern unsigned char __ccm_free_start[], __ccm_free_end[];

/* The CCM's address is the layout's (memory-*.ld): 0x10000000 on the chip, 0x20020000 in QEMU. */
static const board_region regions[] = {
    { "sram", 0x20000000u, 128u << 10, __sram_free_start, __sram_free_end },
    { "ccm", (uint32_t)(uintptr_t)__ccm_free_start, 64u << 10, __ccm_free_start, __ccm_free_end },
};

const board_facts board = {
    .name = "stm32f405",
    .clock_hz = CLOCK_HZ,
    .flash_bytes = 1u << 20,
    .model_slot = 0x08040000u,        /* flash sectors 6-11 */
    .model_slot_bytes = 768u << 10,
    .uart_irq = 37,
    .n_regions = 2,
    .regions = regions,
};

#ifdef STM32F405_SILICON
/* Waits for bits of a register; a clock that never becomes ready is reported, not hung on. */
static void wait_set(volatile uint32_t *reg, uint32_t mask, uint32_t want, const char *what)
{
    for (uint32_t n = 0; (*reg & mask) != want; n++)
        if (n > 10000000u)
            fault_panic(what);
}

/* 168 MHz from the internal 16 MHz oscillator (every board has it, whatever its crystal):
 * PLL M=16, N=336, P=2 (Q=7 for 48 MHz); AHB 168, APB1 42, APB2 84 MHz; 5 flash wait states
 * with prefetch and both caches. QEMU models no RCC, so the qemu layout skips this: its
 * SysTick already counts at 168 MHz. */
static void clock_init(void)
{
    FLASH_ACR = (1u << 8) | (1u << 9) | (1u << 10) | 5u;
    wait_set(&FLASH_ACR, 0xFu, 5u, "flash wait states not set");
    RCC_CFGR = (5u << 10) | (4u << 13);                  /* APB1 /4, APB2 /2 */
    RCC_PLLCFGR = 16u | (336u << 6) | (0u << 16) | (0u << 22) | (7u << 24);  /* HSI source */
    RCC_CR |= 1u << 24;                                  /* PLL on */
    wait_set(&RCC_CR, 1u << 25, 1u << 25, "PLL did not lock");
    RCC_CFGR = (RCC_CFGR & ~3u) | 2u;                    /* SYSCLK = PLL */
    wait_set(&RCC_CFGR, 3u << 2, 2u << 2, "SYSCLK did not switch to the PLL");
    /* Keep the debug port clocked while the core sleeps in wfi, so st-flash and openocd can
     * attach to an idle board without a reset. */
    DBGMCU_CR |= 1u << 0;
}
#endif

void board_init(void)
{
#ifdef STM32F405_SILICON
    clock_init();
#endif
    RCC_AHB1ENR |= 1u << 0;           /* GPIOA */
    RCC_APB2ENR |= 1u << 4;           /* USART1 */
    (void)RCC_APB2ENR;                /* the enable takes effect before the first access */
    /* PA9, PA10: alternate function 7 (USART1); RX pulled up so an open line idles high. */
    GPIOA_MODER = (GPIOA_MODER & ~(0xFu << 18)) | (0xAu << 18);
    GPIOA_AFRH = (GPIOA_AFRH & ~(0xFFu << 4)) | (0x77u << 4);
    GPIOA_PUPDR = (GPIOA_PUPDR & ~(3u << 20)) | (1u << 20);
    USART_CR1 = 0;
    USART_BRR = (APB2_HZ + BAUD / 2u) / BAUD;  /* 16x oversampling: mantissa and fraction */
    USART_CR1 = (1u << 13) | (1u << 5) | (1u << 3) | (1u << 2);
}

void board_uart_putc(uint8_t c)
{
    while (!(USART_SR & (1u << 7)))
        ;
    USART_DR = c;
}

void board_uart_irq(void)
{
    /* Reading SR then DR clears RXNE (and an overrun) and lowers the interrupt. */
    while (USART_SR & (1u << 5))
        serial_rx_push((uint8_t)USART_DR);
}
