#include "skip2_meter.h"

#include "skip2_port.h"

void skip2_meter_reset(skip2_meter *m)
{
    *m = (skip2_meter){ .phase = SKIP2_IDLE };
}

void skip2_meter_phase(skip2_meter *m, int phase)
{
    uint64_t now = skip2_port_ticks();
    if (m->phase != SKIP2_IDLE)
        m->ticks[m->phase] += now - m->since;
    m->phase = phase;
    m->since = now;
}
