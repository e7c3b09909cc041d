#include "systick.h"

#include "cortexm.h"

static uint32_t period;               /* ticks per reload */
static uint64_t rate;
static volatile uint64_t reloads;     /* written by the interrupt, and by systick_restart */
static uint64_t offset;               /* ticks before the running count, kept across restarts */

void systick_init(uint32_t clock_hz)
{
    rate = clock_hz;
    period = clock_hz / 100u;
    if (period > 0x1000000u)          /* a 24-bit counter */
        period = 0x1000000u;
    SYST_CSR = 0;
    SYST_RVR = period - 1u;
    SYST_CVR = 0;
    SYST_CSR = 7u;                    /* core clock, interrupt, enable */
}

void SysTick_Handler(void)
{
    reloads = reloads + 1u;
}

uint64_t systick_now(void)
{
    uint32_t primask = irq_save();
    uint64_t n = reloads;
    uint32_t value = SYST_CVR;
    /* A reload whose interrupt has not run yet (masked, or just now): count it here, and read the
     * counter again, since the value read may predate the reload. */
    if (SCB_ICSR & ICSR_PENDSTSET) {
        n++;
        value = SYST_CVR;
    }
    irq_restore(primask);
    return offset + n * period + (period - 1u - value);
}

void systick_restart(void)
{
    uint32_t primask = irq_save();
    uint64_t now = systick_now();
    SYST_CSR = 0;
    SYST_CVR = 0;                     /* any write clears the counter (and a pending wrap flag) */
    SCB_ICSR = ICSR_PENDSTCLR;
    reloads = 0;
    SYST_CSR = 7u;
    while (SYST_CVR == 0) {           /* the counter loads the reload value on its first tick */
    }
    offset = now + 1u;
    irq_restore(primask);
}

uint64_t systick_rate(void)
{
    return rate;
}
