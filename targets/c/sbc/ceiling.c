/* skip2run --ceiling: the core's own speed limits on this machine, against which the benchmark
 * holds fine-tuning times (harness/bench/bounds.py). Built with the runner's flags, so it measures
 * what the runner's code can reach, not what a tuned BLAS could:
 * - compute: the best GFLOP/s (2 flops per MAC) of the core's own product skip2_mm_nn on
 *   square operands that sit in cache;
 * - memory: read bandwidth over working sets of growing size, from L1 out to main memory;
 * - the clock as measured: a chain of dependent integer adds retires one add per cycle on the
 *   cores this runs on, so adds per second estimate cycles per second. */
#define _POSIX_C_SOURCE 200809L

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ceiling.h"
#include "skip2_linalg.h"

#define MIN_ROUND_S 0.02 /* a timed round repeats its work for at least this long */
#define ROUNDS 5         /* best of: the ceiling is what the machine can do, not its average */
#define LANES 64         /* independent sums: enough to hide the add latency at any vector width */

typedef float vf16 __attribute__((vector_size(16 * sizeof(float))));

static const int sides[] = { 32, 64, 96, 128, 192, 256 };
static const size_t read_kib[] = { 16, 256, 1024, 8192, 262144 };

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* Seconds per call of work(arg): repetitions grow until a round lasts MIN_ROUND_S; best round. */
static double seconds_per_call(void (*work)(void *), void *arg)
{
    long reps = 1;
    double t = 0;
    for (;;) {
        double t0 = now();
        for (long r = 0; r < reps; r++)
            work(arg);
        t = now() - t0;
        if (t >= MIN_ROUND_S)
            break;
        reps *= 2;
    }
    double best = t;
    for (int i = 1; i < ROUNDS; i++) {
        double t0 = now();
        for (long r = 0; r < reps; r++)
            work(arg);
        double dt = now() - t0;
        best = dt < best ? dt : best;
    }
    return best / (double)reps;
}

typedef struct {
    int n;
    const float *A, *B;
    float *C;
    uint64_t macs;
} product;

static void run_product(void *arg)
{
    product *p = arg;
    skip2_mm_nn(&p->macs, p->n, p->n, p->n, skip2_strided(p->A, p->n), p->B, p->n, p->C, p->n);
}

typedef struct {
    size_t n;
    const float *x;
    volatile float sink; /* the sum goes somewhere, so the reads are not optimised away */
} reading;

/* Read at the widest vector width the CPU has, as the core's kernels do (a plain -O2 x86-64
 * build would read with 16-byte loads and measure the loop, not the memory). */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
__attribute__((target_clones("avx512f", "avx2", "default")))
#endif
static void run_read(void *arg)
{
    reading *r = arg;
    vf16 acc[LANES / 16] = { { 0 } };
    for (size_t i = 0; i + LANES <= r->n; i += LANES)
#pragma GCC unroll 4 /* keeps the sums in registers at -O2 */
        for (int j = 0; j < LANES / 16; j++) {
            vf16 v;
            memcpy(&v, r->x + i + 16 * j, sizeof v);
            acc[j] += v;
        }
    float s = 0;
    for (int j = 0; j < LANES / 16; j++)
        for (int l = 0; l < 16; l++)
            s += acc[j][l];
    r->sink = s;
}

#define CHAIN 16 /* dependent adds per loop step: the loop's own instructions run beside them */
#define ADD(x) x += 1; __asm__ volatile("" : "+r"(x)) /* the barrier keeps every add, in order */

typedef struct {
    long steps;
    volatile uint64_t sink;
} chain;

static void run_chain(void *arg)
{
    chain *c = arg;
    uint64_t x = 0;
    for (long i = 0; i < c->steps; i++) {
        ADD(x); ADD(x); ADD(x); ADD(x); ADD(x); ADD(x); ADD(x); ADD(x);
        ADD(x); ADD(x); ADD(x); ADD(x); ADD(x); ADD(x); ADD(x); ADD(x);
    }
    c->sink = x;
}

int skip2_ceiling(json_out *o)
{
    chain c = { 1000000, 0 };
    jo_double(o, "clock_mhz", (double)(CHAIN * c.steps) / seconds_per_call(run_chain, &c) / 1e6);

    int best_side = 0;
    double best_gflops = 0;
    for (size_t s = 0; s < sizeof sides / sizeof sides[0]; s++) {
        int n = sides[s];
        float *m = malloc(3 * sizeof(float) * (size_t)n * (size_t)n);
        if (!m)
            return -1;
        for (long i = 0; i < 2L * n * n; i++)
            m[i] = (float)(i % 7) * 0.125f;
        product p = { n, m, m + (size_t)n * n, m + 2 * (size_t)n * n, 0 };
        double gflops = 2.0 * n * n * n / seconds_per_call(run_product, &p) / 1e9;
        if (gflops > best_gflops) {
            best_gflops = gflops;
            best_side = n;
        }
        free(m);
    }
    jo_double(o, "core_gflops", best_gflops);
    jo_uint(o, "core_square", (uint64_t)best_side);

    jo_open(o, "read_gbs", '[');
    for (size_t s = 0; s < sizeof read_kib / sizeof read_kib[0]; s++) {
        size_t n = read_kib[s] * 1024 / sizeof(float);
        float *x = malloc(n * sizeof(float));
        if (!x)
            return -1;
        for (size_t i = 0; i < n; i++)
            x[i] = (float)(i & 15);
        reading r = { n, x, 0 };
        double gbs = (double)(n * sizeof(float)) / seconds_per_call(run_read, &r) / 1e9;
        jo_open(o, NULL, '[');
        jo_uint(o, NULL, (uint64_t)(n * sizeof(float)));
        jo_double(o, NULL, gbs);
        jo_close(o, ']');
        free(x);
    }
    jo_close(o, ']');
    return 0;
}
