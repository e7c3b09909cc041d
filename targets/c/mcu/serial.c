#include "serial.h"

#include "cortexm.h"
#include "systick.h"

/* One frame's worth is never buffered here: the main loop drains the ring while a frame arrives,
 * and stop-and-wait means nothing arrives while it computes. 1 KB absorbs the rest. */
#define RING 1024u
static uint8_t ring[RING];
static volatile uint32_t head;        /* written by the interrupt */
static volatile uint32_t tail;        /* written by the main loop */
static volatile uint32_t received;    /* written by the interrupt */

uint32_t serial_rx_count(void)
{
    return received;
}

int serial_waiting(void)
{
    return head != tail;
}

void serial_rx_push(uint8_t c)
{
    received = received + 1u;
    uint32_t h = head;
    if (h - tail == RING)
        return;                       /* full: the byte is lost, and its frame fails its CRC */
    ring[h % RING] = c;
    head = h + 1u;
}

int serial_getc(uint8_t *c, uint64_t deadline)
{
    for (;;) {
        /* Masked between the check and wfi: an interrupt arriving in between stays pending and
         * ends the wfi at once instead of being slept through. */
        irq_disable();
        if (head != tail) {
            irq_enable();
            uint32_t t = tail;
            *c = ring[t % RING];
            tail = t + 1u;
            return 1;
        }
        if (deadline != SERIAL_FOREVER && systick_now() >= deadline) {
            irq_enable();
            return 0;
        }
        wait_for_interrupt();
        irq_enable();                 /* the pending interrupt (UART, SysTick) runs here */
    }
}
