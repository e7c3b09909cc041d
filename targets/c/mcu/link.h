/* The frame layer of docs/serial-protocol.md: COBS frames of type, flags, seq, len, payload and
 * CRC-32; stop-and-wait requests with retransmission; duplicate requests answered from the kept
 * last response. It knows no message's meaning. */
#ifndef LINK_H
#define LINK_H

#include <stdint.h>

#define LINK_MAX_PAYLOAD 4096u
#define LINK_RESPONSE 0x01u           /* flags bit 0 */
#define LINK_FOREVER UINT64_MAX

typedef struct {
    uint8_t type, flags;
    uint16_t seq, len;
    const uint8_t *payload;           /* valid until the next link_receive */
    uint32_t crc;                     /* the frame's CRC: tells a retransmission from a new request */
} link_frame;

/* What STATUS reports. */
typedef struct {
    uint32_t frames_ok, bad_crc, bad_frames, retransmissions, duplicates;
} link_counters;
extern link_counters link_stats;

/* The next undamaged frame: 1, or 0 after `silence` ticks without a byte (LINK_FOREVER: wait
 * for good). Damaged frames are counted and dropped. */
int link_receive(link_frame *f, uint64_t silence);

/* Responding. Build the payload in the buffer link_response_payload() returns (at most
 * LINK_RESPONSE_MAX bytes), then link_respond() sends it and keeps it for repeats. */
#define LINK_RESPONSE_MAX 320u
uint8_t *link_response_payload(void);
void link_respond(const link_frame *request, uint32_t len);

/* A request that is the last one answered, sent again: answered from the kept response (and
 * counted); returns 0 for anything else. */
int link_answer_repeat(const link_frame *f);

/* Requesting. Build the payload in link_request_payload() (LINK_MAX_PAYLOAD bytes), then
 * link_request() sends it and waits for the matching response, retransmitting after
 * LINK_TIMEOUT_MS of silence up to LINK_TRIES sends. Requests from the other side that arrive
 * meanwhile go to `other` (repeats are answered here). 1 with the response in *resp, or 0 when
 * the other side never answered. */
#define LINK_TIMEOUT_MS 250u
#define LINK_TRIES 20u
uint8_t *link_request_payload(void);
int link_request(uint8_t type, uint32_t len, link_frame *resp, void (*other)(const link_frame *));

#endif
