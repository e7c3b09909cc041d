/* skip2_port.h for the Cortex-M boards: SysTick ticks, and a RAM high-water mark of static
 * data, the deepest stack seen, and the largest data set plus arena a job used. */
#include "skip2_port.h"

#include "port.h"

#include "ram.h"
#include "serial.h"
#include "stack.h"
#include "systick.h"

/* Ticks spent waiting for and moving the host's data (ROWS), reporting progress and sending
 * heartbeats, which the core's clock leaves out: its phases are the board's own work, whatever
 * the host and the line were doing. */
static uint64_t transfer, since;
static uint32_t rx_at_reset, rx_in_transfers, rx_since, rx_at_end;

uint64_t skip2_port_ticks(void)
{
    return systick_now() - transfer;
}

void port_transfer_reset(void)
{
    transfer = 0;
    rx_in_transfers = 0;
    rx_at_reset = serial_rx_count();
    rx_at_end = rx_at_reset;
    systick_restart();
}

uint64_t port_transfer_ticks(void)
{
    return transfer;
}

void port_transfer_begin(void)
{
    since = systick_now();
    rx_since = serial_rx_count();
}

void port_transfer_end(void)
{
    systick_restart();
    transfer += systick_now() - since;
    rx_at_end = serial_rx_count();
    rx_in_transfers += rx_at_end - rx_since;
}

uint32_t port_bytes_during_compute(void)
{
    return serial_rx_count() - rx_at_reset - rx_in_transfers;
}

int port_received_since_transfer(void)
{
    return serial_rx_count() != rx_at_end;
}

uint64_t skip2_port_ticks_per_second(void)
{
    return systick_rate();
}

uint64_t skip2_port_mem_high_water(void)
{
    return ram_static_bytes() + stack_used() + ram_peak_use();
}
