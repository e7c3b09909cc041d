#include "systick.h"

#include "cortexm.h"

static uint32_t period;               /* ticks per reload */
static uint64_t rate;
static volatile uint64_t reloads;     /* written by the interrupt only */

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
    return n * period + (period - 1u - value);
}

uint64_t systick_rate(void)
{
    return rate;
}
