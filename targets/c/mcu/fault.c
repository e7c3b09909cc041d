/* Fault reports. The report is one text line between two 0x00 bytes: the host's COBS framing
 * drops it as a damaged frame (it never parses as a message), while a raw capture of the line,
 * or a terminal, shows what happened. Then the board resets, so it never hangs silently. */
#include <stdint.h>

#include "board.h"
#include "cortexm.h"
#include "fault.h"
#include "reset.h"
#include "stack.h"

/* The handlers run on their own stack: after a stack overflow the main stack is not usable. */
uint32_t fault_stack[64] __attribute__((aligned(8)));
void fault_report(const uint32_t *frame, uint32_t exc_return);

static void say(const char *s)
{
    while (*s)
        board_uart_putc((uint8_t)*s++);
}

static void say_hex(const char *label, uint32_t v)
{
    say(label);
    for (int shift = 28; shift >= 0; shift -= 4)
        board_uart_putc((uint8_t)"0123456789abcdef"[(v >> shift) & 0xFu]);
}

void cm_reset(void)
{
    dsb_isb();
    SCB_AIRCR = 0x05FA0004u; /* VECTKEY | SYSRESETREQ */
    dsb_isb();
    for (;;)
        ;
}

/* Whether the 8-word exception frame lies in RAM, so reading it cannot fault again. */
static int frame_readable(const uint32_t *frame)
{
    uintptr_t at = (uintptr_t)frame;
    for (int i = 0; i < board.n_regions; i++) {
        const board_region *r = &board.regions[i];
        if (at % 4u == 0 && at >= r->base && at + 32u <= (uintptr_t)r->base + r->size)
            return 1;
    }
    return 0;
}

void fault_report(const uint32_t *frame, uint32_t exc_return)
{
    uint32_t ipsr, cfsr = SCB_CFSR;
    __asm__ volatile ("mrs %0, ipsr" : "=r"(ipsr));
    int overflow = stack_guard_hit(cfsr, SCB_MMFAR);
    reset_note(overflow ? RESET_STACK_OVERFLOW : RESET_FAULT, frame_readable(frame) ? frame[6] : 0,
               overflow ? "stack overflow" : "exception");
    board_uart_putc(0);
    say("FAULT ");
    say(overflow ? "stack overflow" : "exception");
    say_hex(" exc=", ipsr & 0x1FFu);
    if (frame_readable(frame)) {
        say_hex(" pc=", frame[6]);
        say_hex(" lr=", frame[5]);
        say_hex(" psr=", frame[7]);
    }
    say_hex(" exc_return=", exc_return);
    say_hex(" cfsr=", cfsr);
    say_hex(" hfsr=", SCB_HFSR);
    say_hex(" mmfar=", SCB_MMFAR);
    say_hex(" bfar=", SCB_BFAR);
    say(" board=");
    say(board.name);
    say("; resetting\r\n");
    board_uart_putc(0);
    cm_reset();
}

/* Picks the stack the fault was stacked on, moves to the fault stack, reports. */
__attribute__((naked)) void HardFault_Handler(void)
{
    __asm__ volatile (
        "tst lr, #4\n\t"
        "ite eq\n\t"
        "mrseq r0, msp\n\t"
        "mrsne r0, psp\n\t"
        "mov r1, lr\n\t"
        "ldr r2, =fault_stack + 256\n\t"
        "mov sp, r2\n\t"
        "b fault_report\n\t"
        ".ltorg");
}

void NMI_Handler(void) __attribute__((alias("HardFault_Handler")));
void Unexpected_Handler(void) __attribute__((alias("HardFault_Handler")));

void fault_panic(const char *why)
{
    irq_disable();
    reset_note(RESET_PANIC, 0, why);
    board_uart_putc(0);
    say("FAULT ");
    say(why);
    say(" board=");
    say(board.name);
    say("; resetting\r\n");
    board_uart_putc(0);
    cm_reset();
}
