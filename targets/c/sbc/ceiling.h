/* skip2run --ceiling (ceiling.c): the core's compute ceiling and the machine's read bandwidth. */
#ifndef CEILING_H
#define CEILING_H

#include "json_out.h"

/* Adds core_gflops, core_square and read_gbs ([[bytes, GB/s], ...]) to the open object o;
 * -1 when out of memory. */
int skip2_ceiling(json_out *o);

#endif
