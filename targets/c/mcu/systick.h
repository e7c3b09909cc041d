/* The device clock: SysTick at the core clock, reloading every 10 ms, plus a count of reloads
 * kept by its interrupt: a 64-bit tick count that never wraps. The 10 ms period also bounds how
 * late a timeout is noticed while the CPU sleeps in wfi. */
#ifndef SYSTICK_H
#define SYSTICK_H

#include <stdint.h>

void systick_init(uint32_t clock_hz);
uint64_t systick_now(void);
uint64_t systick_rate(void);
void SysTick_Handler(void);

/* Starts a new reload period now, time running on: called where work to be counted begins
 * (a job, the end of a transfer), so the SysTick interrupts inside that work fall at the same
 * instructions on every run, however long the host took before it. */
void systick_restart(void);

/* A flag the SysTick interrupt raises once `reloads` periods of 10 ms have passed since it was
 * last armed (0: never): polling it costs counted work a load, where reading the clock would
 * cost a 64-bit computation. */
extern volatile uint32_t systick_alarm;
void systick_alarm_arm(uint32_t reloads);

/* Whether the clock is the DWT cycle counter (a real chip) rather than the SysTick count (QEMU). */
int systick_uses_dwt(void);

#endif
