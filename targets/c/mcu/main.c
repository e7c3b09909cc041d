/* The firmware of an MCU board: the serial protocol's device end (docs/serial-protocol.md),
 * running the portable C core (../core) on jobs the host sends. */
#include "board.h"
#include "cortexm.h"
#include "protocol.h"
#include "slot.h"
#include "stack.h"
#include "systick.h"

int main(void)
{
    irq_disable();
    board_init();
    systick_init(board.clock_hz);
    stack_guard_on();
    nvic_enable(board.uart_irq);
    irq_enable();                     /* receiving from here on, also while the slot is checked */
    slot_check();
    protocol_loop();
}
