#include "dataset.h"

#include <string.h>

#include "board.h"
#include "bytes.h"
#include "crc32.h"

enum { NONE, LOADING, READY };
enum { BEGIN_OK = 0, BEGIN_NO_FIT = 1, CHUNK_OK = 0, CHUNK_RANGE = 2, END_OK = 0, END_CRC = 3 };

static dataset set;
static int state = NONE;

const dataset *dataset_current(void)
{
    return state == READY ? &set : NULL;
}

void dataset_discard(void)
{
    state = NONE;
}

static void answer_status(const link_frame *f, uint32_t status)
{
    writer w = { link_response_payload(), 0, LINK_RESPONSE_MAX, 0 };
    put_u8(&w, status);
    link_respond(f, w.len);
}

/* Request: u8[32] hash, u32 n_ft, u32 n_test, u16 D, u8 with_inputs, u8 reserved.
 * Answer: u8 status, u32 needed, u32 largest_free. A new set always replaces the old one. */
void dataset_on_begin(const link_frame *f)
{
    const uint8_t *p = f->payload;
    state = NONE;
    set = (dataset){ .n_ft = get_u32(p + 32), .n_test = get_u32(p + 36), .D = get_u16(p + 40),
                     .with_inputs = p[42] != 0 };
    memcpy(set.hash, p, 32);
    uint64_t n = (uint64_t)set.n_ft + set.n_test;
    uint64_t needed = 4u * n + (set.with_inputs ? 4u * n * set.D : 0u);
    int region = ram_smallest_fit(needed);

    writer w = { link_response_payload(), 0, LINK_RESPONSE_MAX, 0 };
    put_u8(&w, region >= 0 ? BEGIN_OK : BEGIN_NO_FIT);
    put_u32(&w, needed > UINT32_MAX ? UINT32_MAX : (uint32_t)needed);
    put_u32(&w, ram_largest_free());
    if (region >= 0) {
        unsigned char *start = board.regions[region].free_start;
        set.block = (ram_block){ region, start, (uint32_t)needed };
        set.y_ft = (const int32_t *)start;
        set.y_test = set.y_ft + set.n_ft;
        set.x_ft = set.with_inputs ? (const float *)(set.y_test + set.n_test) : NULL;
        set.x_test = set.with_inputs ? set.x_ft + (uint64_t)set.n_ft * set.D : NULL;
        memset(start, 0, set.block.bytes);  /* bytes never sent read as zeros, not as old data */
        ram_note_use(needed);
        state = LOADING;
    }
    link_respond(f, w.len);
}

/* Request: u32 offset, then bytes. Answer: u8 status. */
void dataset_on_chunk(const link_frame *f)
{
    uint32_t offset = get_u32(f->payload), n = f->len - 4u;
    if (state != LOADING || offset > set.block.bytes || n > set.block.bytes - offset) {
        answer_status(f, CHUNK_RANGE);
        return;
    }
    memcpy(set.block.start + offset, f->payload + 4, n);
    answer_status(f, CHUNK_OK);
}

/* Request: u32 crc32 of the whole set. Answer: u8 status; a mismatch discards the set. */
void dataset_on_end(const link_frame *f)
{
    int ok = state != NONE && crc32_update(0, set.block.start, set.block.bytes) == get_u32(f->payload);
    state = ok ? READY : NONE;
    answer_status(f, ok ? END_OK : END_CRC);
}
