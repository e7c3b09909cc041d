/* The messages of docs/serial-protocol.md and the firmware's main loop:
 * the host's requests are answered one at a time; RUN hands over to job.c. */
#ifndef PROTOCOL_H
#define PROTOCOL_H

#include "link.h"

#define PROTOCOL_VERSION 7u
#define FIRMWARE_VERSION 7u

enum {
    MSG_HELLO = 0x01, MSG_STATUS = 0x02, MSG_DATA_BEGIN = 0x03, MSG_DATA_CHUNK = 0x04,
    MSG_DATA_END = 0x05, MSG_RUN = 0x06, MSG_PRODUCT = 0x07,
    MSG_ROWS = 0x10, MSG_PROGRESS = 0x11, MSG_DONE = 0x12,
    MSG_BOOT = 0x13, MSG_BEAT = 0x14   /* notices: after every reset; while a job works */
};

/* Announces the boot (BOOT, with the reason of the last reset), then answers the host. */
void protocol_loop(void) __attribute__((noreturn));

/* A host frame that arrives while a job runs (repeats of the last request are already answered
 * by the link): STATUS is answered (state 1), a request of another session refused, anything
 * else dropped, as the host only answers during a job. Returns 1 for a HELLO that opens a new
 * session: the job is given up at once, and the HELLO answered once it has ended. */
int protocol_while_running(const link_frame *f);

#endif
