/* The core's parts for far / far-random (skip2_far.c) and oselm-head (skip2_oselm.c): internal
 * to the core, called from skip2_core.c (docs/methods.md defines the methods). */
#ifndef SKIP2_RIVALS_H
#define SKIP2_RIVALS_H

#include "skip2_core.h"

/* far at plan time: priming steps, kept neurons per layer, trained scalars after priming. */
void skip2_far_plan(skip2_ctx *c, uint32_t n_train);

/* After the priming steps: chooses each hidden layer's kept neurons, gathers their columns (and
 * the next layer's rows in the new order) into the trained blocks, and sets the frozen columns
 * apart; theta and gtheta swap roles. */
void skip2_far_reconfigure(skip2_ctx *c);

/* After training: the original order of every layer, in theta again. */
void skip2_far_restore(skip2_ctx *c);

/* P = I / lambda. */
void skip2_oselm_init(skip2_ctx *c);

/* Recursive least squares over the batch's samples, whose prefix rows are at c->pre; returns
 * the mean squared error before each update, or NaN (and sets c->diverged) when a denominator
 * is not positive. */
float skip2_oselm_step(skip2_ctx *c, const uint32_t *idx, int nb);

#endif
