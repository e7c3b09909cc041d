/* Work and time accounting of a fine-tuning run, like the NumPy Meter: a MAC counter that the
 * counted products add to, and a clock that charges elapsed ticks to the current phase. */
#ifndef SKIP2_METER_H
#define SKIP2_METER_H

#include <stdint.h>

typedef enum {
    SKIP2_FWD, SKIP2_BWD, SKIP2_UPD, SKIP2_CACHE, SKIP2_N_PHASES, SKIP2_IDLE = -1
} skip2_phase;

typedef struct {
    uint64_t macs;
    uint64_t ticks[SKIP2_N_PHASES];
    int phase;     /* running phase, or SKIP2_IDLE */
    uint64_t since; /* tick count when the running phase started */
} skip2_meter;

void skip2_meter_reset(skip2_meter *m);

/* Charges the time since the last switch to the running phase and starts `phase`
 * (SKIP2_IDLE stops the clock). */
void skip2_meter_phase(skip2_meter *m, int phase);

#endif
