/* skip2 core: fine-tuning of an MLP backbone by the methods of docs/methods.md, operation for
 * operation like targets/numpy/skip2_methods.py. Portable C99, libc and libm only, no file
 * I/O; the per-board clock comes from skip2_port.h.
 *
 * Memory: all working memory (trained parameters and their gradients, activations, the prefix
 * cache, shuffle buffers, per-epoch records) lives in caller-provided memory whose size
 * skip2_arena_bytes() computes from the job; nothing is allocated afterwards: ONE arena, or
 * the arena and apart from it the cache store (the cached rows, capacity x row bytes: the one
 * large buffer that can live elsewhere, e.g. in another RAM region of an MCU). The caller's
 * model is only read: the tensors a method trains are copied into the arena first.
 *
 * Use:
 *     size_t bytes, store;  skip2_arena_bytes(&model, &job, &train, &bytes, &store); // checks
 *     skip2_ctx ctx; skip2_result r;
 *     skip2_run(&ctx, &model, &job, &train, &test, arena, bytes, NULL, 0, &r);  // one arena
 *     skip2_run(..., arena, bytes - store, store_block, store, &r);             // or two parts
 *     for (i < ctx.n_params) save ctx.params[i] // trained tensors by their NumPy names
 */
#ifndef SKIP2_CORE_H
#define SKIP2_CORE_H

#include <stddef.h>
#include <stdint.h>

#include "skip2_meter.h"
#include "skip2_model.h"
#include "skip2_prefix.h"
#include "skip2_prng.h"
#include "skip2_quant.h"

/* The methods and the fields of a job (skip2_job.def). */
typedef enum {
#define SKIP2_METHOD(ENUM, name, cache) SKIP2_##ENUM,
#define SKIP2_JOB_FIELD(name, type, lo, hi, def, methods, source, run_type, run_at)
#include "skip2_job.def"
#undef SKIP2_METHOD
#undef SKIP2_JOB_FIELD
    SKIP2_N_METHODS
} skip2_method;

/* Each field's index: SKIP2_FIELD_<name>. */
enum {
#define SKIP2_METHOD(ENUM, name, cache)
#define SKIP2_JOB_FIELD(name, type, lo, hi, def, methods, source, run_type, run_at) \
    SKIP2_FIELD_##name,
#include "skip2_job.def"
#undef SKIP2_METHOD
#undef SKIP2_JOB_FIELD
    SKIP2_N_FIELDS
};

/* A field's C type by its type in skip2_job.def. */
#define SKIP2_CTYPE_METHOD skip2_method
#define SKIP2_CTYPE_BOOL int
#define SKIP2_CTYPE_FORMAT skip2_format
#define SKIP2_CTYPE_INT int32_t
#define SKIP2_CTYPE_REAL float
#define SKIP2_CTYPE_LAYERS int32_t

/* The method's name as in the runner contract ("ft-all", ...), and back (-1 if unknown). */
const char *skip2_method_name(skip2_method method);
int skip2_method_from_name(const char *name);
/* Whether jobs of `method` hold field SKIP2_FIELD_<name> (skip2_job.def's methods column). */
int skip2_job_holds(skip2_method method, int field);

typedef struct {
    /* The fields of skip2_job.def, each as its type says: a method's own options (far's,
     * bsr's, oselm-head's) are ignored by the others. bsr_layers: bit k trains layer k, 0 the
     * upper half. seed: docs/prng.md. cache: skip2-lora always caches, skip-lora never. */
#define SKIP2_METHOD(ENUM, name, cache)
#define SKIP2_JOB_FIELD(name, type, lo, hi, def, methods, source, run_type, run_at) \
    SKIP2_CTYPE_##type name;
#include "skip2_job.def"
#undef SKIP2_METHOD
#undef SKIP2_JOB_FIELD
    /* Called after every epoch, or NULL: an MCU reports progress to its host from here (its
     * port keeps that transfer out of the core's clock). */
    void (*on_epoch)(int epoch, uint64_t ticks, double loss, void *user);
    /* Called after every mini-batch of training and evaluation, or NULL: an MCU tells its host
     * it is alive from here (kept out of the core's clock the same way). */
    void (*on_batch)(void *user);
    void *user;
    /* Nonzero: the host's pre-training of a backbone, whose epochs take their order from the
     * pre-training stream (SKIP2_STREAM_PRETRAIN_SHUFFLE), not the fine-tuning one. */
    int pretrain;
} skip2_job;

typedef enum {
    SKIP2_OK, SKIP2_ERR_METHOD, SKIP2_ERR_LAYERS, SKIP2_ERR_DIMS, SKIP2_ERR_EMPTY,
    SKIP2_ERR_LABEL, SKIP2_ERR_ARENA, SKIP2_ERR_TOO_BIG,
    SKIP2_ERR_FIELD     /* + SKIP2_FIELD_<name>: that field is out of its range */
} skip2_status;

/* Why training stopped early (skip2_ctx.diverged, skip2_result.diverged): a non-finite loss,
 * or oselm-head's RLS denominator not positive. */
enum { SKIP2_DIVERGED_LOSS = 1, SKIP2_DIVERGED_RLS = 2 };

const char *skip2_strerror(int status);

/* A trained tensor: its NumPy name (W{k}, b{k}, W, b, A{k}, B{k}), shape and place in the flat
 * parameter and gradient buffers. */
typedef struct {
    char name[4];
    int layer;
    float *value, *grad;
    uint32_t offset, size;
    int ndim;
    uint32_t shape[2];
} skip2_param;

/* Analytic memory in bytes (docs/methods.md). */
typedef struct {
    uint64_t weights, grads, optimizer, activations, cache;
} skip2_memory;

/* How a method trains: through every layer, a last dense layer on the prefix, or adapters
 * from the prefix into the logits. */
enum { SKIP2_FULL, SKIP2_LAST_LINEAR, SKIP2_SKIP_ADAPTERS };

typedef struct {
    /* Inputs. */
    skip2_job job;
    skip2_data train;
    skip2_model net;            /* the backbone as used: the caller's arrays, or for the
                                   tensors being trained their copies in theta */

    /* Results, filled by skip2_finetune. */
    skip2_meter meter;          /* ft_macs and the fwd/bwd/upd/cache split in ticks */
    uint64_t ft_ticks;          /* the whole epoch loop */
    int epochs_run;             /* < job.epochs when training stopped early */
    int diverged;               /* 0, or SKIP2_DIVERGED_* */
    uint64_t *epoch_ticks;      /* epochs_run entries */
    double *epoch_loss;         /* mean training loss per epoch */
    skip2_prefix prefix;        /* cache capacity, use, hits and misses (prefix methods) */
    int n_params;
    skip2_param params[2 * SKIP2_MAX_LAYERS]; /* as NumPy has them once skip2_run is done */
    uint64_t arena_used, store_used;    /* bytes laid out in the arena and in the cache store */

    /* The plan (see skip2_core.c). */
    int kind;                   /* SKIP2_FULL, SKIP2_LAST_LINEAR or SKIP2_SKIP_ADAPTERS */
    int train_w, train_b;       /* SKIP2_FULL: W / b of the layers in `trained` are trained */
    unsigned trained;           /* SKIP2_FULL: bit k for layer k */
    int first;                  /* SKIP2_FULL: lowest layer backward reaches; the layers below
                                   it are a frozen prefix (bsr) */
    skip2_model prefix_net;     /* the caller's backbone as the prefix computes it (bsr: only
                                   the layers below `first`) */
    int rls;                    /* SKIP2_LAST_LINEAR solved by recursive least squares */
    int first_adapter;          /* adapters on layers first_adapter..L-1; L when none */
    int need_x0;                /* the head reads the input itself, not only the prefix */
    int widest;                 /* widest layer output */
    uint32_t n_theta;           /* scalars in theta: the trained ones (far: its priming's) */
    uint32_t n_train;           /* of them updated by a step (far: fewer after priming) */

    /* Arena buffers. */
    float *theta, *gtheta;              /* all trained scalars and their gradients, flat */
    float *A[SKIP2_MAX_LAYERS], *B[SKIP2_MAX_LAYERS];   /* views into theta; A[k] holds A^T,
                                                           R x N_k, until skip2_run ends */
    float *gA[SKIP2_MAX_LAYERS], *gB[SKIP2_MAX_LAYERS]; /* views into gtheta */
    float *gW[SKIP2_MAX_LAYERS], *gb[SKIP2_MAX_LAYERS]; /* views into gtheta, or NULL */
    float *xb;                          /* streamed data: fetched batch inputs, bs x D */
    const float **x0_at;                /* the training batch's input rows, where they lie */
    skip2_rows x0, pre;                 /* the batch being computed: its inputs x[0] and (prefix
                                           methods) its prefix rows */
    float *act[SKIP2_MAX_LAYERS];       /* SKIP2_FULL: a[k], ReLU'd in place for k < L-1 */
    float *rows, *z;                    /* prefix methods: batch prefix rows, logits */
    float *u, *du;                      /* adapter hiddens x A and their gradients, side by
                                           side: bs x (R * adapters) */
    float *tmp, *grad, *grad_next;      /* bs x widest scratch */
    float *pack;                        /* skip2_mm_nt scratch (see layout()) */
    uint32_t *order;
    uint64_t *sort_keys;                /* 2n: skip2_permutation's scratch */

    /* far, far-random (skip2_far.c). */
    int far;                            /* 0, or SKIP2_FAR / SKIP2_FAR_RANDOM */
    const float *W0[SKIP2_MAX_LAYERS], *b0[SKIP2_MAX_LAYERS]; /* the backbone before priming */
    uint64_t priming, steps;            /* priming steps; steps taken */
    int cols[SKIP2_MAX_LAYERS];         /* columns of W[k]: dims[k+1], or its kept neurons */
    const float *Wf[SKIP2_MAX_LAYERS], *bf[SKIP2_MAX_LAYERS]; /* frozen columns, or NULL */
    uint32_t kept[SKIP2_MAX_LAYERS];    /* neurons kept trained per hidden layer */
    uint32_t far_trained;               /* trained scalars after priming */
    uint32_t *far_order;                /* per hidden layer: kept neurons, then frozen ones */
    uint64_t *far_scratch;              /* 2 x widest: scores, or skip2_permutation's scratch */

    /* oselm-head (skip2_oselm.c). */
    float *P;                           /* (N+1) x (N+1), N = dims[L-1] */
} skip2_ctx;

/* Bytes the job needs for this training data (its size, and whether it is streamed), with
 * alignment slack: *bytes in all, of which *store_bytes (unless store_bytes is NULL; 0 when the
 * job caches no rows) are the cache store's. Checks the job against every limit
 * (skip2_limits.def). */
int skip2_arena_bytes(const skip2_model *model, const skip2_job *job, const skip2_data *train,
                      size_t *bytes, size_t *store_bytes);

/* Checks the job, lays out the arena and the cache store and initialises the trained tensors.
 * With store NULL the arena holds both (arena_bytes >= skip2_arena_bytes' *bytes); otherwise
 * the store is that block (store_bytes >= *store_bytes) and the arena needs the rest of *bytes.
 * The model's and train's arrays are referenced, not copied (apart from the trained tensors),
 * and must stay valid while ctx is used. */
int skip2_init(skip2_ctx *ctx, const skip2_model *model, const skip2_job *job,
               const skip2_data *train, void *arena, size_t arena_bytes, void *store,
               size_t store_bytes);

/* SKIP2_OK when every label of data is a class index of the model, else SKIP2_ERR_LABEL. */
int skip2_check_labels(const skip2_model *model, const skip2_data *data);

/* Samples of data whose arg-max logit (first maximum wins) equals the label. Streamed data needs
 * streamed training data in skip2_init (its batch buffer holds the fetched rows). */
uint32_t skip2_correct(skip2_ctx *ctx, const skip2_data *data);

/* Mini-batch SGD for job.epochs epochs, stopping after an epoch whose loss is non-finite
 * (then ctx->diverged is set). */
void skip2_finetune(skip2_ctx *ctx);

/* Everything a runner reports of one job, assembled here once for every binding (the SBC
 * runner's JSON, the firmware's result frame). The epoch arrays live in the arena. */
typedef struct {
    int status;                 /* SKIP2_OK, or why the job was refused */
    int diverged, epochs_run;
    uint32_t n_ft, n_test, correct_before, correct_after;
    uint64_t ft_macs, trainable_params, arena_bytes;   /* arena_bytes: laid out, store included */
    uint64_t ft_ticks, phase_ticks[SKIP2_N_PHASES];
    uint32_t cache_capacity;
    uint64_t cache_hits, cache_misses;
    skip2_memory mem;
    const uint64_t *epoch_ticks;
    const double *epoch_loss;
} skip2_result;

/* The whole job: check the test labels, init (arena and store as skip2_init takes them), count
 * correct before, fine-tune, count after. */
int skip2_run(skip2_ctx *ctx, const skip2_model *model, const skip2_job *job,
              const skip2_data *train, const skip2_data *test, void *arena, size_t arena_bytes,
              void *store, size_t store_bytes, skip2_result *result);

uint64_t skip2_trainable_params(const skip2_ctx *ctx);
void skip2_memory_bytes(const skip2_ctx *ctx, skip2_memory *mem);

/* x (n x d) = (x - mean) / std in place, in float32: the input scaling of the runner contract. */
void skip2_scale_inputs(float *x, uint32_t n, int d, const float *mean, const float *std);

#endif
