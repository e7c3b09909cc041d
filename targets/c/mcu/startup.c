/* Reset and the vector table for every board: copy .data, zero .bss, enable the FPU before any
 * float instruction, then main(). Every external interrupt enters one dispatcher that hands the
 * UART's to the port, so ports need no vector table of their own. */
#include <stdint.h>
#include <string.h>

#include "board.h"
#include "cortexm.h"
#include "fault.h"
#include "stack.h"
#include "systick.h"

/* Linker script symbols (cortexm.ld). */
extern uint32_t __data_load[], __data_start[], __data_end[], __bss_start[], __bss_end[];
extern uint32_t __stack_top[];

int main(void);
void Reset_Handler(void);
static void irq_dispatch(void);

/* 96 external interrupts cover both boards (the STM32F405's USART1 is 37). The table is
 * 448 bytes, so it needs 512-byte alignment for VTOR; the linker puts it first in code. */
#define N_IRQS 96
typedef void (*vector)(void);
__attribute__((section(".vectors"), used)) static const vector vectors[16 + N_IRQS] = {
    [0] = (vector)(uintptr_t)__stack_top,
    [1] = Reset_Handler,
    [2] = NMI_Handler,
    [3] = HardFault_Handler,
    [4] = HardFault_Handler,      /* MemManage, BusFault, UsageFault: report like a hard fault */
    [5] = HardFault_Handler,
    [6] = HardFault_Handler,
    [11] = Unexpected_Handler,    /* SVCall */
    [12] = Unexpected_Handler,    /* DebugMonitor */
    [14] = Unexpected_Handler,    /* PendSV */
    [15] = SysTick_Handler,
    [16 ... 16 + N_IRQS - 1] = irq_dispatch,
};

void Reset_Handler(void)
{
    /* CP10/CP11 full access: the C library and the core use the FPU from the start. */
    SCB_CPACR |= 0xFu << 20;
    dsb_isb();
    SCB_VTOR = (uint32_t)(uintptr_t)vectors;
    memcpy(__data_start, __data_load, (size_t)((char *)__data_end - (char *)__data_start));
    memset(__bss_start, 0, (size_t)((char *)__bss_end - (char *)__bss_start));
    stack_paint();
    main();
    fault_panic("main returned");
}

static void irq_dispatch(void)
{
    uint32_t ipsr;
    __asm__ volatile ("mrs %0, ipsr" : "=r"(ipsr));
    unsigned irq = (ipsr & 0x1FFu) - 16u;
    if (irq == board.uart_irq)
        board_uart_irq();
    else
        NVIC_ICER(irq / 32u) = 1u << (irq % 32u); /* never enabled by us: silence it */
}
