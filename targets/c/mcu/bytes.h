/* Little-endian fields of the protocol's payloads, byte by byte (no struct layout assumed). */
#ifndef BYTES_H
#define BYTES_H

#include <stdint.h>
#include <string.h>

static inline uint16_t get_u16(const uint8_t *p)
{
    return (uint16_t)(p[0] | (p[1] << 8));
}

static inline uint32_t get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline float get_f32(const uint8_t *p)
{
    uint32_t bits = get_u32(p);
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

/* A payload being written: put_* append at `len`, never past `cap` (then `overflow` is set). */
typedef struct {
    uint8_t *buf;
    uint32_t len, cap;
    int overflow;
} writer;

static inline void put_bytes(writer *w, const void *src, uint32_t n)
{
    if (w->len + n > w->cap) {
        w->overflow = 1;
        return;
    }
    memcpy(w->buf + w->len, src, n);
    w->len += n;
}

static inline void put_u8(writer *w, uint32_t v)
{
    uint8_t b = (uint8_t)v;
    put_bytes(w, &b, 1);
}

static inline void put_u16(writer *w, uint32_t v)
{
    uint8_t b[2] = { (uint8_t)v, (uint8_t)(v >> 8) };
    put_bytes(w, b, 2);
}

static inline void put_u32(writer *w, uint32_t v)
{
    uint8_t b[4] = { (uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24) };
    put_bytes(w, b, 4);
}

static inline void put_u64(writer *w, uint64_t v)
{
    put_u32(w, (uint32_t)v);
    put_u32(w, (uint32_t)(v >> 32));
}

static inline void put_f32(writer *w, float f)
{
    uint32_t bits;
    memcpy(&bits, &f, sizeof bits);
    put_u32(w, bits);
}

static inline void put_f64(writer *w, double d)
{
    uint64_t bits;
    memcpy(&bits, &d, sizeof bits);
    put_u64(w, bits);
}

/* A fixed-size NUL-padded string field (a string of exactly `size` characters has no NUL). */
static inline void put_text(writer *w, const char *s, uint32_t size)
{
    int ended = 0;
    for (uint32_t i = 0; i < size; i++) {
        ended = ended || s[i] == '\0';
        put_u8(w, ended ? 0u : (uint8_t)s[i]);
    }
}

#endif
