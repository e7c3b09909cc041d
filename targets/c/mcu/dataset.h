/* The data set of the next jobs in RAM (DATA_BEGIN, DATA_CHUNK, DATA_END): labels, and the
 * scaled inputs too unless they are streamed. Keyed by the SHA-256 the host names it by. The
 * model slot may hold a data set too, with int8 inputs (slot.h); both are a `dataset`. */
#ifndef DATASET_H
#define DATASET_H

#include <stdint.h>

#include "link.h"
#include "ram.h"

typedef struct {
    uint8_t hash[32];
    uint32_t n_ft, n_test, D;
    int with_inputs;
    ram_block block;                  /* in RAM; region -1 for the slot's set in flash */
    /* Views into the set: y_ft, y_test, then with inputs x_ft, x_test (float32, a set in RAM) or
     * x8_ft, x8_test with one scale per row (int8, the slot's set). */
    const int32_t *y_ft, *y_test;
    const float *x_ft, *x_test;
    const int8_t *x8_ft, *x8_test;
    const float *scale_ft, *scale_test;
} dataset;

/* The complete, CRC-checked set in RAM, or NULL. */
const dataset *dataset_current(void);

/* Forgets the set in RAM (a job whose arena may overwrite it). */
void dataset_discard(void);

/* The request handlers; each answers through link_respond. */
void dataset_on_begin(const link_frame *f);
void dataset_on_chunk(const link_frame *f);
void dataset_on_end(const link_frame *f);

#endif
