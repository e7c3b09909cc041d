/* The POSIX port's own calls beside skip2_port.h. */
#ifndef PORT_POSIX_H
#define PORT_POSIX_H

/* Around work that is not the core's (a session's progress line): its time is left out of
 * skip2_port_ticks, as the firmware's port leaves out its transfers (targets/c/mcu/port.c). */
void port_transfer_begin(void);
void port_transfer_end(void);

#endif
