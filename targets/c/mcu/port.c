/* skip2_port.h for the Cortex-M boards: SysTick ticks, and a RAM high-water mark of static
 * data, the deepest stack seen, and the largest data set plus arena a job used. */
#include "skip2_port.h"

#include "ram.h"
#include "stack.h"
#include "systick.h"

uint64_t skip2_port_ticks(void)
{
    return systick_now();
}

uint64_t skip2_port_ticks_per_second(void)
{
    return systick_rate();
}

uint64_t skip2_port_mem_high_water(void)
{
    return ram_static_bytes() + stack_used() + ram_peak_use();
}
