#include "cobs.h"

long cobs_decode(const uint8_t *in, size_t n, uint8_t *out)
{
    size_t i = 0, o = 0;
    while (i < n) {
        uint8_t code = in[i++];
        if (code == 0 || (size_t)code - 1u > n - i)
            return -1;
        for (uint8_t k = 1; k < code; k++) {
            if (in[i] == 0)
                return -1;
            out[o++] = in[i++];
        }
        /* A block shorter than 254 stood for a zero, unless it ends the frame. */
        if (code != 0xFF && i < n)
            out[o++] = 0;
    }
    return (long)o;
}

static void send_block(const uint8_t *from, size_t count, void (*put)(uint8_t))
{
    put((uint8_t)(count + 1u));
    for (size_t k = 0; k < count; k++)
        put(from[k]);
}

/* As Python's cobs.encode: a full 254-byte block ending the data gets no empty block after it,
 * a zero ending the data does. */
void cobs_send(const uint8_t *data, size_t n, void (*put)(uint8_t))
{
    size_t start = 0;
    int final_zero = 1;
    for (size_t i = 0; i < n; i++) {
        if (data[i] == 0) {
            send_block(data + start, i - start, put);
            start = i + 1;
            final_zero = 1;
        } else if (i - start == 0xFD) {
            send_block(data + start, i - start + 1, put);
            start = i + 1;
            final_zero = 0;
        }
    }
    if (n != start || final_zero)
        send_block(data + start, n - start, put);
    put(0);
}
