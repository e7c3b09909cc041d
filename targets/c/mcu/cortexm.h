/* Cortex-M4 system registers and the few instructions the firmware needs (no CMSIS: the
 * handful of addresses below is all of it). */
#ifndef CORTEXM_H
#define CORTEXM_H

#include <stdint.h>

#define REG32(addr) (*(volatile uint32_t *)(addr))

/* System control block. */
#define SCB_ICSR  REG32(0xE000ED04u)
#define SCB_VTOR  REG32(0xE000ED08u)
#define SCB_AIRCR REG32(0xE000ED0Cu)
#define SCB_CFSR  REG32(0xE000ED28u)
#define SCB_HFSR  REG32(0xE000ED2Cu)
#define SCB_MMFAR REG32(0xE000ED34u)
#define SCB_BFAR  REG32(0xE000ED38u)
#define SCB_CPACR REG32(0xE000ED88u)
#define ICSR_PENDSTSET (1u << 26)
#define ICSR_PENDSTCLR (1u << 25)

/* SysTick. */
#define DEMCR REG32(0xE000EDFCu)
#define DEMCR_TRCENA (1u << 24)
#define DWT_CTRL REG32(0xE0001000u)
#define DWT_CYCCNT REG32(0xE0001004u)
#define DWT_CYCCNTENA 1u

#define SYST_CSR REG32(0xE000E010u)
#define SYST_RVR REG32(0xE000E014u)
#define SYST_CVR REG32(0xE000E018u)

/* NVIC: one bit per external interrupt in each bank of 32. */
#define NVIC_ISER(n) REG32(0xE000E100u + 4u * (n))
#define NVIC_ICER(n) REG32(0xE000E180u + 4u * (n))
#define NVIC_ICPR(n) REG32(0xE000E280u + 4u * (n))

/* MPU (PMSAv7). */
#define MPU_CTRL REG32(0xE000ED94u)
#define MPU_RNR  REG32(0xE000ED98u)
#define MPU_RBAR REG32(0xE000ED9Cu)
#define MPU_RASR REG32(0xE000EDA0u)

static inline void irq_enable(void) { __asm__ volatile ("cpsie i" ::: "memory"); }
static inline void irq_disable(void) { __asm__ volatile ("cpsid i" ::: "memory"); }
static inline void wait_for_interrupt(void) { __asm__ volatile ("wfi" ::: "memory"); }
static inline void dsb_isb(void) { __asm__ volatile ("dsb\n\tisb" ::: "memory"); }

/* PRIMASK as it was, then masked: for short critical sections that may nest. */
static inline uint32_t irq_save(void)
{
    uint32_t primask;
    __asm__ volatile ("mrs %0, primask\n\tcpsid i" : "=r"(primask) :: "memory");
    return primask;
}

static inline void irq_restore(uint32_t primask)
{
    __asm__ volatile ("msr primask, %0" :: "r"(primask) : "memory");
}

static inline void nvic_enable(unsigned irq)
{
    NVIC_ICPR(irq / 32u) = 1u << (irq % 32u);
    NVIC_ISER(irq / 32u) = 1u << (irq % 32u);
}

/* Requests a system reset; does not return. */
void cm_reset(void) __attribute__((noreturn));

#endif
