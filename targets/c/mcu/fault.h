/* Faults and unexpected exceptions: a report on the UART, then a reset. A fault never leaves the
 * board hanging silently; the host sees its requests time out, and HELLO answers again. */
#ifndef FAULT_H
#define FAULT_H

void NMI_Handler(void);
void HardFault_Handler(void);
void Unexpected_Handler(void);

/* Reports `why` and resets; for states the firmware cannot continue from. */
void fault_panic(const char *why) __attribute__((noreturn));

#endif
