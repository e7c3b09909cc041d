#include "slot.h"

#include <string.h>

#include "board.h"
#include "bytes.h"
#include "crc32.h"

#define HEADER_BYTES 128u
#define VERSION 1u
#define DATA_HEADER_BYTES 64u
#define DATA_VERSION 1u

static skip2_model model;
static uint8_t hash[32];
static int valid;
static dataset data;
static int data_valid;

/* 1 when the header is consistent: known version, layer count and widths within the core's
 * limits, unused widths zero, and a payload of exactly the layers' sizes inside the slot. */
static int header_ok(const uint8_t *h)
{
    if (memcmp(h, "S2BM", 4) != 0 || get_u16(h + 4) != VERSION)
        return 0;
    uint32_t L = get_u16(h + 6);
    if (L < 1 || L > SKIP2_MAX_LAYERS)
        return 0;
    uint64_t floats = 0;
    for (uint32_t k = 0; k <= SKIP2_MAX_LAYERS; k++) {
        uint32_t d = get_u32(h + 8 + 4 * k);
        if ((k <= L && (d < 1 || d > SKIP2_MAX_WIDTH)) || (k > L && d != 0))
            return 0;
        if (k >= 1 && k <= L)
            floats += (uint64_t)get_u32(h + 8 + 4 * (k - 1)) * d + d;
    }
    uint32_t payload = get_u32(h + 44);
    return floats * 4u == payload && payload <= board.model_slot_bytes - HEADER_BYTES;
}

/* The data section at byte `at` of the slot, when it is one: known version, sizes that agree
 * with each other and stay inside the slot, and its payload's CRC-32. */
static void data_check(const uint8_t *slot, uint32_t at)
{
    const uint8_t *h = slot + at;
    uint32_t room = board.model_slot_bytes - at;  /* at <= the slot's size: header_ok */
    if (room < DATA_HEADER_BYTES || memcmp(h, "S2BD", 4) != 0 || get_u16(h + 4) != DATA_VERSION)
        return;
    uint32_t D = get_u16(h + 6), n_ft = get_u32(h + 8), n_test = get_u32(h + 12);
    uint64_t n = (uint64_t)n_ft + n_test, bytes = get_u32(h + 16);
    /* per sample: an i32 label, an f32 scale and D int8 inputs */
    if (D < 1 || n_ft == 0 || n_test == 0 || bytes != n * (8u + D)
        || bytes > room - DATA_HEADER_BYTES
        || crc32_update(0, h + DATA_HEADER_BYTES, (uint32_t)bytes) != get_u32(h + 20))
        return;
    const uint8_t *p = h + DATA_HEADER_BYTES;   /* 4-byte aligned: the model's payload is */
    data = (dataset){ .n_ft = n_ft, .n_test = n_test, .D = D, .with_inputs = 1,
                      .block = { -1, 0, 0 } };
    memcpy(data.hash, h + 24, sizeof data.hash);
    data.y_ft = (const int32_t *)p;
    data.y_test = data.y_ft + n_ft;
    data.scale_ft = (const float *)(data.y_test + n_test);
    data.scale_test = data.scale_ft + n_ft;
    data.x8_ft = (const int8_t *)(data.scale_test + n_test);
    data.x8_test = data.x8_ft + (size_t)n_ft * D;
    data_valid = 1;
}

void slot_check(void)
{
    const uint8_t *h = (const uint8_t *)(uintptr_t)board.model_slot;
    valid = 0;
    data_valid = 0;
    memset(hash, 0, sizeof hash);
    if (!header_ok(h) || crc32_update(0, h + HEADER_BYTES, get_u32(h + 44)) != get_u32(h + 48))
        return;
    model = (skip2_model){ .n_layers = get_u16(h + 6) };
    const float *at = (const float *)(h + HEADER_BYTES);   /* 4-byte aligned: the slot is */
    for (int k = 0; k <= model.n_layers; k++)
        model.dims[k] = (int)get_u32(h + 8 + 4 * k);
    for (int k = 0; k < model.n_layers; k++) {
        model.W[k] = at;
        at += (uint32_t)model.dims[k] * (uint32_t)model.dims[k + 1];
        model.b[k] = at;
        at += model.dims[k + 1];
    }
    memcpy(hash, h + 52, sizeof hash);
    valid = 1;
    data_check(h, HEADER_BYTES + get_u32(h + 44));
}

const skip2_model *slot_model(void)
{
    return valid ? &model : NULL;
}

const uint8_t *slot_hash(void)
{
    return hash;
}

const dataset *slot_data(void)
{
    return data_valid ? &data : NULL;
}
