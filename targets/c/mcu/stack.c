#include "stack.h"

#include "cortexm.h"

extern uint32_t __stack_limit[], __stack_top[];   /* cortexm.ld */

#define PAINT 0x57AC57ACu
#define GUARD_BYTES 32u

void stack_paint(void)
{
    uint32_t *sp;
    __asm__ volatile ("mov %0, sp" : "=r"(sp));
    /* Everything below the caller's frame, with a margin for this function's own, above the
     * guard (which the MPU forbids once it is on). */
    for (volatile uint32_t *p = __stack_limit + GUARD_BYTES / 4u; p < sp - 16; p++)
        *p = PAINT;
}

void stack_repaint(void)
{
    /* Masked: an interrupt's frame pushed mid-paint would stay behind as used stack. */
    uint32_t primask = irq_save();
    stack_paint();
    irq_restore(primask);
}

void stack_guard_on(void)
{
    MPU_RNR = 0;
    MPU_RBAR = (uint32_t)(uintptr_t)__stack_limit;    /* 32-byte aligned by the linker script */
    /* XN, no access (AP=000), size 2^(4+1) = 32 bytes, enabled. */
    MPU_RASR = (1u << 28) | (4u << 1) | 1u;
    /* Enabled, with the default memory map for everything else (PRIVDEFENA). HFNMIENA stays 0:
     * the HardFault handler runs without the MPU, so it can report a guard hit. MemManage stays
     * disabled and escalates to HardFault. */
    MPU_CTRL = (1u << 2) | 1u;
    dsb_isb();
}

uint32_t stack_used(void)
{
    const uint32_t *p = __stack_limit + GUARD_BYTES / 4u;
    while (p < __stack_top && *p == PAINT)
        p++;
    return (uint32_t)((uintptr_t)__stack_top - (uintptr_t)p);
}

int stack_guard_hit(uint32_t cfsr, uint32_t mmfar)
{
    uint32_t guard = (uint32_t)(uintptr_t)__stack_limit;
    int mmar_valid = (cfsr & (1u << 7)) != 0, stacking = (cfsr & (1u << 4)) != 0;
    return stacking || (mmar_valid && mmfar >= guard && mmfar < guard + GUARD_BYTES);
}
