/* The messages of docs/serial-protocol.md (protocol version 4) and the firmware's main loop:
 * the host's requests are answered one at a time; RUN hands over to job.c. */
#ifndef PROTOCOL_H
#define PROTOCOL_H

#include "link.h"

#define PROTOCOL_VERSION 5u
#define FIRMWARE_VERSION 5u

enum {
    MSG_HELLO = 0x01, MSG_STATUS = 0x02, MSG_DATA_BEGIN = 0x03, MSG_DATA_CHUNK = 0x04,
    MSG_DATA_END = 0x05, MSG_RUN = 0x06,
    MSG_ROWS = 0x10, MSG_PROGRESS = 0x11, MSG_DONE = 0x12
};

void protocol_loop(void) __attribute__((noreturn));

/* A host request that arrives while a job runs and the firmware waits for an answer (repeats of
 * the last request are already answered by the link): STATUS is answered (state 1), anything
 * else is dropped, as the host only answers during a job. */
void protocol_while_running(const link_frame *f);

#endif
