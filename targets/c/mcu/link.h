/* The frame layer of docs/serial-protocol.md: COBS frames of type, flags, seq, len, session,
 * token, payload and CRC-32; stop-and-wait requests with retransmission; duplicate requests
 * answered from the kept last response. It knows no message's meaning. */
#ifndef LINK_H
#define LINK_H

#include <stdint.h>

#define LINK_MAX_PAYLOAD 4096u
#define LINK_RESPONSE 0x01u           /* flags bit 0: a response */
#define LINK_REFUSED 0x02u            /* bit 1: a response refusing a request of another session */
#define LINK_NOTICE 0x04u             /* bit 2: a device frame that needs no answer (BOOT, BEAT) */
#define LINK_FOREVER UINT64_MAX

typedef struct {
    uint8_t type, flags;
    uint16_t seq, len;
    uint32_t session, token;          /* the host's session nonce; the job's token (0: none) */
    const uint8_t *payload;           /* valid until the next link_receive */
    uint32_t crc;                     /* the frame's CRC: tells a retransmission from a new request */
} link_frame;

/* What STATUS reports. */
typedef struct {
    uint32_t frames_ok, bad_crc, bad_frames, retransmissions, duplicates;
} link_counters;
extern link_counters link_stats;

/* Every frame the device sends carries these: the session HELLO opened (0 until one did) and
 * the token of the job running (0 outside a job), so the host can tell its frames from stale
 * ones of an earlier session or job. */
extern uint32_t link_session, link_token;

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

/* A response refusing `request` as one of another session: its payload names both sessions
 * (u32 the request's, u32 the board's). */
void link_refuse(const link_frame *request);

/* An unsolicited frame (LINK_NOTICE) of `len` payload bytes built in link_request_payload():
 * sent once, never answered. */
void link_notice(uint8_t type, uint32_t len);

/* Requesting. Build the payload in link_request_payload() (LINK_MAX_PAYLOAD bytes), then
 * link_request() sends it and waits for the matching response, retransmitting after
 * LINK_TIMEOUT_MS of silence up to LINK_TRIES sends. Only a response of this session and
 * token counts. Requests from the other side that arrive meanwhile go to `other` (repeats are
 * answered here), which returns nonzero to give the request up. 1 with the response in *resp,
 * or 0 when the other side never answered or `other` gave up. */
#define LINK_TIMEOUT_MS 250u
#define LINK_TRIES 20u
uint8_t *link_request_payload(void);
int link_request(uint8_t type, uint32_t len, link_frame *resp, int (*other)(const link_frame *));

#endif
