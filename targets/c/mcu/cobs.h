/* COBS framing (Cheshire and Baker): 0x00 never occurs inside an encoded frame, so it can end
 * every frame. Byte-compatible with Python's `cobs` package. */
#ifndef COBS_H
#define COBS_H

#include <stddef.h>
#include <stdint.h>

/* Decodes n encoded bytes (no delimiter); out may equal in (decoding never grows). Returns the
 * decoded length, or -1 when the bytes are not valid COBS. */
long cobs_decode(const uint8_t *in, size_t n, uint8_t *out);

/* Sends the encoding of data[0..n) through put, then the 0x00 delimiter. No buffer needed. */
void cobs_send(const uint8_t *data, size_t n, void (*put)(uint8_t));

#endif
