#include "link.h"

#include "board.h"
#include "bytes.h"
#include "cobs.h"
#include "crc32.h"
#include "serial.h"
#include "systick.h"

#define HEADER 14u
#define TRAILER 4u
#define MAX_FRAME (HEADER + LINK_MAX_PAYLOAD + TRAILER)
/* COBS adds one byte per 254 and one at the start. */
#define MAX_ENCODED (MAX_FRAME + MAX_FRAME / 254u + 2u)

link_counters link_stats;
uint32_t link_session, link_token;

/* Receive: encoded bytes up to the delimiter, decoded in place. */
static uint8_t rx[MAX_ENCODED];
static uint32_t rx_len;
static int rx_overflow;

/* The device's own requests, and the kept last response (decoded; re-encoded on each send). */
static uint8_t tx[MAX_FRAME];
static uint8_t kept[HEADER + LINK_RESPONSE_MAX + TRAILER];
static uint32_t kept_len;             /* 0: nothing answered yet */
static uint8_t kept_type;
static uint16_t kept_seq;
static uint32_t kept_request_crc;
static uint16_t next_seq;

/* A complete encoded frame in rx[0..n): 1 and *f when it is undamaged. */
static int parse(uint32_t n, link_frame *f)
{
    long m = cobs_decode(rx, n, rx);
    if (m < (long)(HEADER + TRAILER)) {
        link_stats.bad_frames++;
        return 0;
    }
    uint32_t len = get_u16(rx + 4);
    if (len > LINK_MAX_PAYLOAD || (long)(HEADER + len + TRAILER) != m) {
        link_stats.bad_frames++;
        return 0;
    }
    uint32_t crc = get_u32(rx + HEADER + len);
    if (crc32_update(0, rx, HEADER + len) != crc) {
        link_stats.bad_crc++;
        return 0;
    }
    link_stats.frames_ok++;
    *f = (link_frame){ .type = rx[0], .flags = rx[1], .seq = get_u16(rx + 2), .len = (uint16_t)len,
                       .session = get_u32(rx + 6), .token = get_u32(rx + 10), .payload = rx + HEADER,
                       .crc = crc };
    return 1;
}

int link_receive(link_frame *f, uint64_t silence)
{
    uint64_t deadline = silence == LINK_FOREVER ? SERIAL_FOREVER : systick_now() + silence;
    uint8_t c;
    while (serial_getc(&c, deadline)) {
        if (silence != LINK_FOREVER)
            deadline = systick_now() + silence;   /* a frame still arriving is not silence */
        if (c != 0) {
            if (rx_len < sizeof rx)
                rx[rx_len++] = c;
            else
                rx_overflow = 1;
            continue;
        }
        uint32_t n = rx_len;
        int overflow = rx_overflow;
        rx_len = 0;
        rx_overflow = 0;
        if (overflow)
            link_stats.bad_frames++;
        else if (n > 0 && parse(n, f))    /* n == 0: a bare delimiter, used to resynchronise */
            return 1;
    }
    return 0;
}

static void put_frame_header(uint8_t *frame, uint8_t type, uint8_t flags, uint16_t seq, uint32_t len)
{
    frame[0] = type;
    frame[1] = flags;
    frame[2] = (uint8_t)seq;
    frame[3] = (uint8_t)(seq >> 8);
    frame[4] = (uint8_t)len;
    frame[5] = (uint8_t)(len >> 8);
    for (int i = 0; i < 4; i++) {
        frame[6 + i] = (uint8_t)(link_session >> (8 * i));
        frame[10 + i] = (uint8_t)(link_token >> (8 * i));
    }
    uint32_t crc = crc32_update(0, frame, HEADER + len);
    for (int i = 0; i < 4; i++)
        frame[HEADER + len + i] = (uint8_t)(crc >> (8 * i));
}

uint8_t *link_response_payload(void)
{
    return kept + HEADER;
}

void link_respond(const link_frame *request, uint32_t len)
{
    put_frame_header(kept, request->type, LINK_RESPONSE, request->seq, len);
    kept_len = HEADER + len + TRAILER;
    kept_type = request->type;
    kept_seq = request->seq;
    kept_request_crc = request->crc;
    cobs_send(kept, kept_len, board_uart_putc);
}

void link_refuse(const link_frame *request)
{
    /* Not kept: a repeat of this session's last request is still answered from `kept`. */
    uint8_t frame[HEADER + 8 + TRAILER];
    writer w = { frame + HEADER, 0, 8, 0 };
    put_u32(&w, request->session);
    put_u32(&w, link_session);
    put_frame_header(frame, request->type, LINK_RESPONSE | LINK_REFUSED, request->seq, w.len);
    cobs_send(frame, sizeof frame, board_uart_putc);
}

void link_notice(uint8_t type, uint32_t len)
{
    put_frame_header(tx, type, LINK_NOTICE, next_seq++, len);
    cobs_send(tx, HEADER + len + TRAILER, board_uart_putc);
}

int link_answer_repeat(const link_frame *f)
{
    /* The identical frame again (a retransmission, or a line that repeated it). Comparing the
     * CRC as well as seq and type keeps a restarted host that reuses a seq from being answered
     * with another request's response. */
    if (kept_len == 0 || (f->flags & LINK_RESPONSE) || f->seq != kept_seq || f->type != kept_type
        || f->crc != kept_request_crc)
        return 0;
    link_stats.duplicates++;
    cobs_send(kept, kept_len, board_uart_putc);
    return 1;
}

uint8_t *link_request_payload(void)
{
    return tx + HEADER;
}

int link_request(uint8_t type, uint32_t len, link_frame *resp, int (*other)(const link_frame *))
{
    uint16_t seq = next_seq++;
    uint64_t timeout = systick_rate() * LINK_TIMEOUT_MS / 1000u;
    put_frame_header(tx, type, 0, seq, len);
    for (uint32_t attempt = 0; attempt < LINK_TRIES; attempt++) {
        if (attempt)
            link_stats.retransmissions++;
        cobs_send(tx, HEADER + len + TRAILER, board_uart_putc);
        while (link_receive(resp, timeout)) {
            if (resp->flags & LINK_RESPONSE) {
                if (resp->type == type && resp->seq == seq && resp->session == link_session
                    && resp->token == link_token && !(resp->flags & LINK_REFUSED))
                    return 1;
                continue;                 /* late, stray or of another session or job: dropped */
            }
            if (!link_answer_repeat(resp) && other && other(resp))
                return 0;
        }
    }
    return 0;
}
