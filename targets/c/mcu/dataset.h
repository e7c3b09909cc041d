/* The data set of the next jobs in RAM (DATA_BEGIN, DATA_CHUNK, DATA_END): labels, and the
 * scaled inputs too unless they are streamed. Keyed by the SHA-256 the host names it by. */
#ifndef DATASET_H
#define DATASET_H

#include <stdint.h>

#include "link.h"
#include "ram.h"

typedef struct {
    uint8_t hash[32];
    uint32_t n_ft, n_test, D;
    int with_inputs;
    ram_block block;
    /* Views into block: y_ft, y_test, then with inputs x_ft, x_test. */
    const int32_t *y_ft, *y_test;
    const float *x_ft, *x_test;
} dataset;

/* The complete, CRC-checked set, or NULL. */
const dataset *dataset_current(void);

/* The request handlers; each answers through link_respond. */
void dataset_on_begin(const link_frame *f);
void dataset_on_chunk(const link_frame *f);
void dataset_on_end(const link_frame *f);

#endif
