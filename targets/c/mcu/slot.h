/* The model slot in flash (docs/serial-protocol.md): a 128-byte header, then per layer W_k and
 * b_k as float32, optionally followed by a data set with int8 inputs. Checked once at boot
 * (flashing a model resets the board); the core then reads the weights and that data set in
 * place, straight from flash. */
#ifndef SLOT_H
#define SLOT_H

#include <stdint.h>

#include "dataset.h"
#include "skip2_model.h"

void slot_check(void);

/* The backbone in the slot, or NULL when the slot holds no valid model. */
const skip2_model *slot_model(void);

/* The SHA-256 in the slot's header, or 32 zero bytes when the slot is not valid. */
const uint8_t *slot_hash(void);

/* The data set after the model, or NULL when the slot holds none (or no valid model). */
const dataset *slot_data(void);

#endif
