#include "systick.h"

#include "cortexm.h"

static uint32_t period;               /* ticks per reload */
static uint64_t rate;
static volatile uint64_t reloads;     /* written by the interrupt, and by systick_restart */
static uint64_t offset;               /* ticks before the running count, kept across restarts */
/* On a real Cortex-M4 the DWT cycle counter counts core cycles, extended here to 64 bits (it
 * wraps every 2^32 cycles, 25 s at 168 MHz; the 10 ms SysTick interrupt sees every wrap).
 * QEMU does not implement it (it reads 0), and there the SysTick count is the clock. */
static int use_dwt;
volatile uint32_t systick_alarm;
static volatile uint32_t alarm_left;  /* reloads until the alarm; 0: not armed */
static uint32_t dwt_last;
static uint64_t dwt_high;

static void dwt_start(void)
{
    DEMCR |= DEMCR_TRCENA;
    DWT_CYCCNT = 0;
    DWT_CTRL |= DWT_CYCCNTENA;
    for (volatile int i = 0; i < 16; i++) {
    }
    use_dwt = DWT_CYCCNT != 0;
}

int systick_uses_dwt(void)
{
    return use_dwt;
}

static uint64_t dwt_now(void)
{
    uint32_t primask = irq_save();
    uint32_t c = DWT_CYCCNT;
    if (c < dwt_last)
        dwt_high += 1ull << 32;
    dwt_last = c;
    uint64_t now = dwt_high | c;
    irq_restore(primask);
    return now;
}

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
    dwt_start();
}

void systick_alarm_arm(uint32_t periods)
{
    uint32_t primask = irq_save();
    systick_alarm = 0;
    alarm_left = periods;
    irq_restore(primask);
}

void SysTick_Handler(void)
{
    reloads = reloads + 1u;
    if (alarm_left && --alarm_left == 0)
        systick_alarm = 1;
    if (use_dwt)
        dwt_now();                    /* notices a wrap of the cycle counter */
}

uint64_t systick_now(void)
{
    if (use_dwt)
        return dwt_now();
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
