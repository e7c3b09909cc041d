/* One of the core's products timed on its own (PRODUCT, docs/serial-protocol.md): the MCU's
 * product micro-benchmark, run by the engine as the `products` probe, and by bench/products.c
 * under QEMU with semihosting (`skip2bench mcu-speed`, to compare two revisions' cores). */
#ifndef PRODUCT_H
#define PRODUCT_H

#include <stdint.h>

#include "link.h"
#include "ram.h"

enum { PRODUCT_NN = 0, PRODUCT_TN = 1, PRODUCT_NT = 2 };
/* The operand whose rows lie scattered, as a batch's rows of the data set that the core reads
 * in place: none, A or B (B only in TN); the others are strided. */
enum { PRODUCT_X0_NONE = 0, PRODUCT_X0_A = 1, PRODUCT_X0_B = 2 };
#define PRODUCT_REQUEST_BYTES 8u

typedef struct {
    uint8_t kind, x0;
    uint16_t m, k, n;
} product_shape;

typedef struct {
    uint64_t macs, ticks;
    uint32_t hash;                    /* bits_hash of the m x n result */
} product_timing;

/* The shape of a request's payload (u8 kind, u8 x0, u16 m, k, n); 0 when it is not one. */
int product_read(const uint8_t *payload, product_shape *s);

/* The bytes the product's operands take (product_time's `mem`). */
uint64_t product_bytes(const product_shape *s);

/* Where in `room` its operands go (aligned), or NULL when they do not fit. */
void *product_place(const product_shape *s, ram_block room);

/* Fills the operands in `mem` from the shared PRNG (the same values on every board), then times
 * the product alone. */
product_timing product_time(const product_shape *s, void *mem);

/* PRODUCT's handler: times it in the largest RAM space the data set leaves, and answers. */
void product_on_request(const link_frame *f);

#endif
