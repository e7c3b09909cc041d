#include "product.h"

#include "bits_hash.h"
#include "bytes.h"
#include "dataset.h"
#include "skip2_linalg.h"
#include "skip2_prng.h"
#include "systick.h"

enum { PRODUCT_TIMED = 0, PRODUCT_NO_FIT = 1, PRODUCT_INVALID = 2 };

int product_read(const uint8_t *p, product_shape *s)
{
    *s = (product_shape){ p[0], p[1], get_u16(p + 2), get_u16(p + 4), get_u16(p + 6) };
    return s->kind <= PRODUCT_NT && s->m && s->k && s->n
           && (s->x0 == PRODUCT_X0_NONE || s->x0 == PRODUCT_X0_A
               || (s->x0 == PRODUCT_X0_B && s->kind == PRODUCT_TN));
}

/* The scattered operand's rows and their width: A is m x k (k x m in TN), B k x n in TN. */
static void scattered(const product_shape *s, uint32_t *rows, uint32_t *width)
{
    *rows = s->kind == PRODUCT_TN ? s->k : s->m;
    *width = s->x0 == PRODUCT_X0_B ? s->n : s->kind == PRODUCT_TN ? s->m : s->k;
}

/* In `mem`: the scattered rows' pool (twice their rows, so they lie apart and out of order),
 * A, B, the result, NT's packing scratch, then the scattered rows' pointers. */
uint64_t product_bytes(const product_shape *s)
{
    uint32_t rows = 0, width = 0;
    if (s->x0 != PRODUCT_X0_NONE)
        scattered(s, &rows, &width);
    uint64_t m = s->m, k = s->k, n = s->n;
    uint64_t floats = 2u * (uint64_t)rows * width + m * k + k * n + m * n + (s->kind == PRODUCT_NT ? k * n : 0);
    return floats * sizeof(float) + rows * sizeof(const float *);
}

void *product_place(const product_shape *s, ram_block room)
{
    if (product_bytes(s) + 7u > room.bytes)  /* 7: room for the alignment */
        return 0;
    return (void *)(((uintptr_t)room.start + 7u) & ~(uintptr_t)7u);
}

product_timing product_time(const product_shape *s, void *mem)
{
    int m = s->m, k = s->k, n = s->n;
    uint32_t rows = 0, width = 0;
    if (s->x0 != PRODUCT_X0_NONE)
        scattered(s, &rows, &width);
    float *pool = mem, *a = pool + 2u * rows * width, *b = a + (uint32_t)m * k, *out = b + (uint32_t)k * n;
    float *pack = out + (uint32_t)m * n;
    const float **row = (const float **)(pack + (s->kind == PRODUCT_NT ? (uint32_t)k * n : 0));
    skip2_uniform_sym(1, 2u * rows * width, 1.0f, pool);
    skip2_uniform_sym(2, (uint32_t)m * k, 1.0f, a);
    skip2_uniform_sym(3, (uint32_t)k * n, 1.0f, b);
    for (uint32_t i = 0; i < rows; i++)  /* odd pool rows, last first: out of order, as shuffled */
        row[i] = pool + (size_t)(2u * (rows - 1u - i) + 1u) * width;
    skip2_rows x0 = skip2_scattered(row, 0);
    skip2_rows A = s->x0 == PRODUCT_X0_A ? x0 : skip2_strided(a, s->kind == PRODUCT_TN ? m : k);
    skip2_rows B = s->x0 == PRODUCT_X0_B ? x0 : skip2_strided(b, n);
    product_timing t = { 0, 0, 0 };
    uint64_t t0 = systick_now();
    switch (s->kind) {
    case PRODUCT_NN: skip2_mm_nn(&t.macs, m, k, n, A, b, n, out, n); break;
    case PRODUCT_TN: skip2_mm_tn(&t.macs, m, k, n, A, B, out, n); break;
    default: skip2_mm_nt(&t.macs, m, k, n, A, b, k, out, n, pack); break;
    }
    t.ticks = systick_now() - t0;
    t.hash = bits_hash(out, m, n, n);
    return t;
}

/* Answer: u8 status (0 timed, 1 does not fit, 2 invalid), u64 bytes needed, u32 bytes free,
 * u64 MACs, u64 ticks, u32 hash. */
void product_on_request(const link_frame *f)
{
    const dataset *set = dataset_current();
    ram_block room = ram_largest_left(set ? &set->block : 0, -1);
    product_shape s;
    product_timing t = { 0, 0, 0 };
    uint64_t needed = 0;
    uint32_t status = PRODUCT_INVALID;
    if (product_read(f->payload, &s)) {
        void *mem = product_place(&s, room);
        needed = product_bytes(&s);
        status = mem ? PRODUCT_TIMED : PRODUCT_NO_FIT;
        if (mem)
            t = product_time(&s, mem);
    }
    writer w = { link_response_payload(), 0, LINK_RESPONSE_MAX, 0 };
    put_u8(&w, status);
    put_u64(&w, needed);
    put_u32(&w, room.bytes);
    put_u64(&w, t.macs);
    put_u64(&w, t.ticks);
    put_u32(&w, t.hash);
    link_respond(f, w.len);
}
