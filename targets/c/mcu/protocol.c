#include "protocol.h"

#include <string.h>

#include "board.h"
#include "bytes.h"
#include "dataset.h"
#include "job.h"
#include "product.h"
#include "ram.h"
#include "reset.h"
#include "slot.h"
#include "systick.h"

#ifndef SKIP2_FW_HASH
#define SKIP2_FW_HASH "unknown"
#endif

static const uint8_t zeros[32];

/* Request: u16 protocol, u32 session (the host's nonce for the session it opens; every later
 * request carries it, and every frame of ours does).
 * Answer: u16 protocol, u16 firmware_version, char[16] board, u32 clock_hz, u32 ticks_per_second,
 * u32 flash_bytes, u32 model_slot, u32 model_slot_bytes, char[64] firmware_hash, u8[32]
 * model_hash, u8[32] data_hash, u8 n_regions, per region char[8] name, u32 base, size, free,
 * u8 timer, u8[32] slot_data_hash. Answered whatever the request holds: a host of another
 * protocol version learns ours. */
static void on_hello(const link_frame *f)
{
    if (f->len >= 6)
        link_session = get_u32(f->payload + 2);
    const dataset *set = dataset_current(), *in_slot = slot_data();
    writer w = { link_response_payload(), 0, LINK_RESPONSE_MAX, 0 };
    put_u16(&w, PROTOCOL_VERSION);
    put_u16(&w, FIRMWARE_VERSION);
    put_text(&w, board.name, 16);
    put_u32(&w, board.clock_hz);
    put_u32(&w, (uint32_t)systick_rate());
    put_u32(&w, board.flash_bytes);
    put_u32(&w, board.model_slot);
    put_u32(&w, board.model_slot_bytes);
    put_text(&w, SKIP2_FW_HASH, 64);
    put_bytes(&w, slot_hash(), 32);
    put_bytes(&w, set ? set->hash : zeros, 32);
    put_u8(&w, (uint32_t)board.n_regions);
    for (int r = 0; r < board.n_regions; r++) {
        put_text(&w, board.regions[r].name, 8);
        put_u32(&w, board.regions[r].base);
        put_u32(&w, board.regions[r].size);
        put_u32(&w, ram_free(r));
    }
    put_u8(&w, (uint32_t)systick_uses_dwt());
    put_bytes(&w, in_slot ? in_slot->hash : zeros, 32);
    link_respond(f, w.len);
}

/* Answer: u32 frames_ok, bad_crc, bad_frames, retransmissions, duplicates, u8 state. */
static void on_status(const link_frame *f, int running)
{
    writer w = { link_response_payload(), 0, LINK_RESPONSE_MAX, 0 };
    put_u32(&w, link_stats.frames_ok);
    put_u32(&w, link_stats.bad_crc);
    put_u32(&w, link_stats.bad_frames);
    put_u32(&w, link_stats.retransmissions);
    put_u32(&w, link_stats.duplicates);
    put_u8(&w, (uint32_t)running);
    link_respond(f, w.len);
}

/* Whether a request's payload has its message's size; HELLO takes any. */
static int size_ok(const link_frame *f)
{
    switch (f->type) {
    case MSG_HELLO: return 1;
    case MSG_STATUS: return f->len == 0;
    case MSG_DATA_BEGIN: return f->len == 44;
    case MSG_DATA_CHUNK: return f->len >= 4;
    case MSG_DATA_END: return f->len == 4;
    case MSG_RUN: return f->len == JOB_RUN_BYTES;
    case MSG_PRODUCT: return f->len == PRODUCT_REQUEST_BYTES;
    default: return 0;  /* not a request the host sends */
    }
}

static void dispatch(const link_frame *f)
{
    if (!size_ok(f)) {
        /* Unknown, or malformed like a frame whose length disagrees: dropped and counted. */
        link_stats.bad_frames++;
        return;
    }
    switch (f->type) {
    case MSG_HELLO: on_hello(f); break;
    case MSG_STATUS: on_status(f, 0); break;
    case MSG_DATA_BEGIN: dataset_on_begin(f); break;
    case MSG_DATA_CHUNK: dataset_on_chunk(f); break;
    case MSG_DATA_END: dataset_on_end(f); break;
    case MSG_RUN: job_on_run(f); break;  /* answers, then runs the job to its end */
    case MSG_PRODUCT: product_on_request(f); break;
    default: break;
    }
}

/* A HELLO that arrived during a job, answered once the job has ended. */
static struct {
    link_frame frame;
    uint8_t payload[16];
    int waiting;
} held;

int protocol_while_running(const link_frame *f)
{
    if (f->type == MSG_HELLO) {
        if (f->len < 6 || f->len > sizeof held.payload || get_u32(f->payload + 2) == link_session)
            return 0;                 /* a late copy of this session's HELLO */
        memcpy(held.payload, f->payload, f->len);
        held.frame = *f;
        held.frame.payload = held.payload;
        held.waiting = 1;
        return 1;
    }
    if (f->session != link_session)
        link_refuse(f);
    else if (f->type == MSG_STATUS && f->len == 0)
        on_status(f, 1);
    return 0;
}

/* BOOT: u16 protocol, u8 reason (reset.h), u32 pc, char[48] detail. Session and token 0. */
static void announce_boot(void)
{
    char detail[RESET_DETAIL_BYTES];
    uint32_t pc;
    uint32_t reason = reset_take(&pc, detail);
    writer w = { link_request_payload(), 0, LINK_MAX_PAYLOAD, 0 };
    put_u16(&w, PROTOCOL_VERSION);
    put_u8(&w, reason);
    put_u32(&w, pc);
    put_text(&w, detail, RESET_DETAIL_BYTES);
    link_notice(MSG_BOOT, w.len);
}

/* A request at most STALE_WINDOW behind the last one executed is a copy that arrived late (a
 * reordered line): dropped, not executed again. HELLO starts a session and is always executed. */
#define STALE_WINDOW 1024u

void protocol_loop(void)
{
    link_frame f;
    uint16_t last = 0;
    int have_last = 0;
    announce_boot();
    for (;;) {
        if (held.waiting) {
            f = held.frame;
            held.waiting = 0;
        } else if (!link_receive(&f, LINK_FOREVER)) {
            continue;
        }
        if (f.flags & LINK_RESPONSE)
            continue;                 /* a late response to a job's request: dropped */
        if (link_answer_repeat(&f))
            continue;
        if (f.type != MSG_HELLO && f.session != link_session) {
            link_refuse(&f);          /* of another session: its host learns both nonces */
            continue;
        }
        uint16_t behind = (uint16_t)(last - f.seq);
        if (f.type != MSG_HELLO && have_last && behind != 0 && behind <= STALE_WINDOW) {
            link_stats.duplicates++;
            continue;
        }
        last = f.seq;
        have_last = 1;
        dispatch(&f);
    }
}
