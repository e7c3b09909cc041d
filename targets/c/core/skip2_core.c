#include "skip2_core.h"

#include <float.h>
#include <math.h>
#include <string.h>

#include "skip2_linalg.h"
#include "skip2_math.h"
#include "skip2_port.h"
#include "skip2_rivals.h"

/* The method and field tables of skip2_job.def. The methods column's words, for these tables
 * only: */
#define M(ENUM) (1u << SKIP2_##ENUM)
#define ALL ((1u << SKIP2_N_METHODS) - 1u)
#define ALL_BUT(mask) (ALL & ~(uint32_t)(mask))
#define ONLY(mask) ((uint32_t)(mask))

static const char *const METHOD_NAMES[SKIP2_N_METHODS] = {
#define SKIP2_METHOD(ENUM, name, cache) name,
#define SKIP2_JOB_FIELD(name, type, lo, hi, def, methods, source, run_type, run_at)
#include "skip2_job.def"
#undef SKIP2_METHOD
#undef SKIP2_JOB_FIELD
};

static const uint32_t HOLDERS[SKIP2_N_FIELDS] = {
#define SKIP2_METHOD(ENUM, name, cache)
#define SKIP2_JOB_FIELD(name, type, lo, hi, def, methods, source, run_type, run_at) methods,
#include "skip2_job.def"
#undef SKIP2_METHOD
#undef SKIP2_JOB_FIELD
};

#undef M
#undef ALL
#undef ALL_BUT
#undef ONLY

/* Why a field was refused (skip2_strerror). */
static const char *const FIELD_ERRORS[SKIP2_N_FIELDS] = {
#define SKIP2_METHOD(ENUM, name, cache)
#define SKIP2_JOB_FIELD(name, type, lo, hi, def, methods, source, run_type, run_at) \
    #name " is out of its range (skip2_job.def)",
#include "skip2_job.def"
#undef SKIP2_METHOD
#undef SKIP2_JOB_FIELD
};

static int in_range(float v, float lo, float hi)
{
    return v >= lo && v <= hi; /* false for NaN */
}

const char *skip2_method_name(skip2_method method)
{
    return (unsigned)method < SKIP2_N_METHODS ? METHOD_NAMES[method] : "?";
}

int skip2_method_from_name(const char *name)
{
    for (int m = 0; m < SKIP2_N_METHODS; m++)
        if (strcmp(name, METHOD_NAMES[m]) == 0)
            return m;
    return -1;
}

int skip2_job_holds(skip2_method method, int field)
{
    return (unsigned)method < SKIP2_N_METHODS && (unsigned)field < SKIP2_N_FIELDS
        && (HOLDERS[field] >> method & 1u);
}

/* Whether a field's value is within what skip2_job.def allows, by its type; n_layers for a
 * LAYERS mask. */
#define SKIP2_VALID_METHOD(v, lo, hi) 1 /* checked before any field */
#define SKIP2_VALID_BOOL(v, lo, hi) 1
#define SKIP2_VALID_FORMAT(v, lo, hi) ((unsigned)(v) < SKIP2_N_FORMATS)
#define SKIP2_VALID_INT(v, lo, hi) ((v) >= (lo) && (v) <= (hi))
#define SKIP2_VALID_REAL(v, lo, hi) in_range((v), (float)(lo), (float)(hi))
#define SKIP2_VALID_LAYERS(v, lo, hi) ((v) >= (lo) && (v) <= (hi) && !((v) >> n_layers))

/* SKIP2_OK, or SKIP2_ERR_FIELD + the first field of the method's jobs out of its range. */
static int check_fields(const skip2_job *job, int n_layers)
{
#define SKIP2_METHOD(ENUM, name, cache)
#define SKIP2_JOB_FIELD(name, type, lo, hi, def, methods, source, run_type, run_at) \
    if (skip2_job_holds(job->method, SKIP2_FIELD_##name) && !SKIP2_VALID_##type(job->name, lo, hi)) \
        return SKIP2_ERR_FIELD + SKIP2_FIELD_##name;
#include "skip2_job.def"
#undef SKIP2_METHOD
#undef SKIP2_JOB_FIELD
    return SKIP2_OK;
}

const char *skip2_strerror(int status)
{
    if (status >= SKIP2_ERR_FIELD && status < SKIP2_ERR_FIELD + SKIP2_N_FIELDS)
        return FIELD_ERRORS[status - SKIP2_ERR_FIELD];
    switch (status) {
    case SKIP2_OK: return "ok";
    case SKIP2_ERR_METHOD: return "unknown method";
    case SKIP2_ERR_LAYERS:
        return "n_layers must be 1..8 (SKIP2_MAX_LAYERS; ft-last and oselm-head need at least 2)";
    case SKIP2_ERR_DIMS: return "every layer width must be 1..65535 (SKIP2_MAX_WIDTH)";
    case SKIP2_ERR_EMPTY: return "the data set has no samples";
    case SKIP2_ERR_LABEL: return "a label is not a class index of the model's output layer";
    case SKIP2_ERR_ARENA: return "the arena is smaller than skip2_arena_bytes() asked for";
    case SKIP2_ERR_TOO_BIG: return "the job's arena exceeds this machine's address space";
    default: return "unknown error";
    }
}

/* ---- plan and arena ---------------------------------------------------------------------- */

/* Bump allocator over the arena; with base NULL it only measures. Blocks are 64-byte aligned
 * so rows start on cache lines and vector loads stay aligned. Sizes are summed in 64 bits: on a
 * 32-bit MCU a job within the limits may need more than 4 GB, which must not wrap to a small
 * number (skip2_arena_bytes refuses what the address space cannot hold). */
typedef struct {
    unsigned char *base;
    uint64_t used;
} arena;

static void *take(arena *a, uint64_t count, uint64_t size)
{
    uint64_t at = (a->used + 63) & ~(uint64_t)63;
    a->used = at + count * size;
    return a->base ? a->base + (size_t)at : NULL;
}

static int out_width(const skip2_ctx *c, int k)
{
    /* lora-all adapters sit beside layer k; skip adapters write into the logits. */
    return c->kind == SKIP2_FULL ? c->net.dims[k + 1] : c->net.dims[c->net.n_layers];
}

/* Registers a trained tensor: its name (`letter` and the layer digit, none for ft-last), shape
 * and offset in the flat buffers. cols 0 means a vector. */
static void add_param(skip2_ctx *c, char letter, int k, uint32_t rows, uint32_t cols)
{
    skip2_param *p = &c->params[c->n_params++];
    p->name[0] = letter;
    p->name[1] = c->kind == SKIP2_LAST_LINEAR ? '\0' : (char)('0' + k); /* k < 8 */
    p->name[2] = '\0';
    p->layer = k;
    p->ndim = cols ? 2 : 1;
    p->shape[0] = rows;
    p->shape[1] = cols;
    p->size = cols ? rows * cols : rows;
    p->offset = c->n_theta;
    c->n_theta += p->size;
}

/* The trained tensors in the NumPy reference's order, which is also their order in theta:
 * the B blocks of the skip adapters end up stacked, (R * adapters) x C, as one matrix. */
static void register_params(skip2_ctx *c)
{
    const int *dims = c->net.dims;
    int L = c->net.n_layers, R = c->job.rank;
    if (c->kind == SKIP2_LAST_LINEAR) {
        add_param(c, 'W', L - 1, dims[L - 1], dims[L]);
        add_param(c, 'b', L - 1, dims[L], 0);
    } else if (c->kind == SKIP2_SKIP_ADAPTERS) {
        for (int k = c->first_adapter; k < L; k++)
            add_param(c, 'A', k, dims[k], R);
        for (int k = c->first_adapter; k < L; k++)
            add_param(c, 'B', k, R, dims[L]);
    } else {
        for (int k = 0; k < L; k++) {
            if (c->train_w && (c->trained >> k & 1))
                add_param(c, 'W', k, dims[k], dims[k + 1]);
            if (c->train_b && (c->trained >> k & 1))
                add_param(c, 'b', k, dims[k + 1], 0);
            if (k >= c->first_adapter) {
                add_param(c, 'A', k, dims[k], R);
                add_param(c, 'B', k, R, dims[k + 1]);
            }
        }
    }
}

static int plan(skip2_ctx *c, const skip2_model *model, const skip2_job *job, uint32_t n_train)
{
    int L = model->n_layers;
    *c = (skip2_ctx){ .job = *job, .net = *model };
    if ((unsigned)job->method >= SKIP2_N_METHODS)
        return SKIP2_ERR_METHOD;
    if (L < 1 || L > SKIP2_MAX_LAYERS
        || ((job->method == SKIP2_FT_LAST || job->method == SKIP2_OSELM_HEAD) && L < 2))
        return SKIP2_ERR_LAYERS;
    for (int k = 0; k <= L; k++) {
        if (model->dims[k] <= 0 || model->dims[k] > SKIP2_MAX_WIDTH)
            return SKIP2_ERR_DIMS;
        if (k > 0 && model->dims[k] > c->widest)
            c->widest = model->dims[k];
    }
    int status = check_fields(job, L);
    if (status != SKIP2_OK)
        return status;
    if (n_train == 0)
        return SKIP2_ERR_EMPTY;

    skip2_method m = job->method;
    int far = m == SKIP2_FAR || m == SKIP2_FAR_RANDOM;
    c->prefix_net = *model;
    for (int k = 0; k < L; k++)
        c->cols[k] = model->dims[k + 1];
    if (m == SKIP2_FT_ALL || m == SKIP2_FT_BIAS || m == SKIP2_LORA_ALL || far || m == SKIP2_BSR) {
        c->kind = SKIP2_FULL;
        c->train_w = m != SKIP2_FT_BIAS && m != SKIP2_LORA_ALL;
        c->train_b = m != SKIP2_LORA_ALL;
        c->first_adapter = m == SKIP2_LORA_ALL ? 0 : L;
        /* bit k trains layer k; bsr's default: the upper half */
        c->trained = (1u << L) - 1;
        if (m == SKIP2_BSR)
            c->trained = job->bsr_layers ? (unsigned)job->bsr_layers : c->trained >> L / 2 << L / 2;
        while (!(c->trained >> c->first & 1))
            c->first++;
        if (c->first > 0) { /* bsr: the layers below the first trained one are a prefix */
            c->prefix_net.n_layers = c->first + 1;
            skip2_prefix_plan(&c->prefix, &c->prefix_net, 0, job->cache, job->cache_format,
                              job->cache_budget_bytes, n_train);
        }
        if (far) {
            c->far = m;
            for (int k = 0; k < L; k++) {
                c->W0[k] = model->W[k];
                c->b0[k] = model->b[k];
            }
            skip2_far_plan(c, n_train);
        }
    } else {
        c->kind = m == SKIP2_FT_LAST || m == SKIP2_OSELM_HEAD ? SKIP2_LAST_LINEAR
                                                               : SKIP2_SKIP_ADAPTERS;
        c->rls = m == SKIP2_OSELM_HEAD;
        c->first_adapter = c->kind == SKIP2_LAST_LINEAR ? L : m == SKIP2_LORA_LAST ? L - 1 : 0;
        c->need_x0 = c->first_adapter == 0;
        if (c->rls)
            c->job.epochs = job->oselm_passes;
        /* ft-last and oselm-head train the last layer, so their prefix ends at x[L-1]; the
         * adapter methods also keep the frozen logits. skip-lora is skip2-lora's cache-less
         * counterpart. */
        int cache = m == SKIP2_SKIP2_LORA || (job->cache && m != SKIP2_SKIP_LORA);
        skip2_prefix_plan(&c->prefix, model, c->kind == SKIP2_SKIP_ADAPTERS, cache,
                          job->cache_format, job->cache_budget_bytes, n_train);
    }
    register_params(c);
    c->n_train = c->n_theta;
    return SKIP2_OK;
}

/* With bases NULL it only measures: c->arena_used, c->store_used. */
static void layout(skip2_ctx *c, void *base, void *store_base)
{
    arena a = { base, 0 }, store = { store_base, 0 };
    const int *dims = c->net.dims;
    int L = c->net.n_layers, D = dims[0], C = dims[L], R = c->job.rank;
    uint64_t bs = (uint64_t)c->job.batch_size, n = c->train.n, f = sizeof(float);
    uint64_t adapters = (uint64_t)(L - c->first_adapter);

    c->theta = take(&a, c->n_theta, f);
    c->gtheta = take(&a, c->rls ? 0 : c->n_theta, f); /* recursive least squares: no gradients */
    /* Float inputs in memory are read where they lie; int8 ones are dequantised and streamed
     * ones fetched, a batch at a time. */
    if (c->train.x == NULL)
        c->xb = take(&a, bs * D, f);
    c->x0_at = take(&a, bs, sizeof *c->x0_at);
    if (c->kind == SKIP2_FULL)
        for (int k = c->first; k < L; k++)
            c->act[k] = take(&a, bs * dims[k + 1], f);
    if (c->kind != SKIP2_FULL || c->first > 0) {
        c->prefix.at = take(&a, bs, sizeof *c->prefix.at);
        c->rows = take(&a, bs * c->prefix.row, f);
    }
    if (c->kind != SKIP2_FULL)
        c->z = take(&a, bs * C, f);
    if (adapters > 0) {
        c->u = take(&a, bs * R * adapters, f);
        c->du = take(&a, bs * R * adapters, f);
    }
    if (c->rls) { /* P, and one sample's u = h P */
        uint64_t H = (uint64_t)dims[L - 1] + 1;
        c->P = take(&a, H * H, f);
        c->u = take(&a, H, f);
    }
    if (c->far) {
        uint64_t hidden = 0;
        for (int k = 0; k < L - 1; k++)
            hidden += (uint64_t)dims[k + 1];
        c->far_order = take(&a, hidden, sizeof *c->far_order);
        c->far_scratch = take(&a, 2 * (uint64_t)c->widest, sizeof *c->far_scratch);
    }
    /* Products added into a layer's outputs (adapters; far's frozen columns' part of dx), and
     * the softmax's row sums. */
    c->tmp = take(&a, bs * (adapters > 0 || c->far ? (uint64_t)c->widest : 1), f);
    uint64_t widest_in = 0; /* of the adapters */
    for (int k = c->first_adapter; k < L; k++)
        widest_in = (uint64_t)dims[k] > widest_in ? (uint64_t)dims[k] : widest_in;
    c->grad = take(&a, bs * c->widest, f);
    if (c->kind == SKIP2_FULL && L > 1)
        c->grad_next = take(&a, bs * c->widest, f);
    /* skip2_mm_nt packs its B^T: W[k]^T for dx (k >= 1, both widths <= widest), and for the
     * adapters A[k] (N_k x R, when R is too wide for the dot-product form) or B_stack^T
     * (width x R * adapters); A[k] is also turned around there (init_params, export_params). */
    uint64_t pack = 0, w = (uint64_t)c->widest;
    if (c->kind == SKIP2_FULL && L > 1)
        pack = w * w;
    if (adapters > 0 && w * R * adapters > pack)
        pack = w * R * adapters;
    if (adapters > 0 && widest_in * R > pack)
        pack = widest_in * R;
    if (pack > 0)
        c->pack = take(&a, pack, f);
    skip2_prefix *p = &c->prefix;
    if (p->capacity > 0) {
        if (p->int8) {
            p->store8 = take(&store, (uint64_t)p->capacity * p->row, 1);
            p->scale = take(&store, (uint64_t)p->capacity * p->segments, f);
        } else {
            p->store = take(&store, (uint64_t)p->capacity * p->row, f);
        }
        p->slot = take(&a, n, sizeof *p->slot);
        p->miss = take(&a, bs, sizeof *p->miss);
        p->miss_idx = take(&a, bs, sizeof *p->miss_idx);
        p->x_miss = take(&a, bs, sizeof *p->x_miss);
    }
    c->order = take(&a, n, sizeof *c->order);
    c->sort_keys = take(&a, 2 * n, sizeof *c->sort_keys);
    c->epoch_ticks = take(&a, (uint64_t)c->job.epochs, sizeof *c->epoch_ticks);
    c->epoch_loss = take(&a, (uint64_t)c->job.epochs, sizeof *c->epoch_loss);
    c->arena_used = a.used;
    c->store_used = store.used;
}

/* A block holding `used` bytes from an arbitrary base: room to align it too. */
static uint64_t block_bytes(uint64_t used)
{
    return used ? used + 63 : 0;
}

int skip2_arena_bytes(const skip2_model *model, const skip2_job *job, const skip2_data *train,
                      size_t *bytes, size_t *store_bytes)
{
    skip2_ctx c;
    int status = plan(&c, model, job, train->n);
    if (status != SKIP2_OK)
        return status;
    c.train = *train;
    layout(&c, NULL, NULL);
    uint64_t total = block_bytes(c.arena_used) + block_bytes(c.store_used);
    if (total > SIZE_MAX)
        return SKIP2_ERR_TOO_BIG;
    *bytes = (size_t)total;
    if (store_bytes)
        *store_bytes = (size_t)block_bytes(c.store_used);
    return SKIP2_OK;
}

/* Points the parameter views into the arena and sets the initial values: trained backbone
 * tensors are copied (the backbone then uses the copies), A is uniform in +-1/sqrt(N_k) from
 * the layer's stream, computed in float32, and B is zero. */
static void init_params(skip2_ctx *c)
{
    for (int i = 0; i < c->n_params; i++) {
        skip2_param *p = &c->params[i];
        int k = p->layer;
        p->value = c->theta + p->offset;
        p->grad = c->gtheta + p->offset;
        switch (p->name[0]) {
        case 'W':
            memcpy(p->value, c->net.W[k], p->size * sizeof(float));
            c->net.W[k] = p->value;
            c->gW[k] = p->grad;
            break;
        case 'b':
            memcpy(p->value, c->net.b[k], p->size * sizeof(float));
            c->net.b[k] = p->value;
            c->gb[k] = p->grad;
            break;
        case 'A': /* drawn N_k x R, held as A^T (export_params) */
            skip2_uniform_sym(skip2_stream_key(c->job.seed, SKIP2_STREAM_ADAPTER + (uint64_t)k),
                              p->size, 1.0f / sqrtf((float)p->shape[0]), c->pack);
            skip2_transpose((int)p->shape[0], (int)p->shape[1], c->pack, (int)p->shape[1],
                            p->value);
            c->A[k] = p->value;
            c->gA[k] = p->grad;
            break;
        default: /* 'B' */
            memset(p->value, 0, p->size * sizeof(float));
            c->B[k] = p->value;
            c->gB[k] = p->grad;
            break;
        }
    }
}

/* The adapters' A are trained transposed, R x N_k (x A is then dot products of a row with the
 * rows of A^T, and dA^T = du^T x is stored a row at a time); the result has them N_k x R, as
 * NumPy does. */
static void export_params(skip2_ctx *c)
{
    for (int i = 0; i < c->n_params; i++) {
        skip2_param *p = &c->params[i];
        if (p->name[0] == 'A') {
            memcpy(c->pack, p->value, p->size * sizeof(float));
            skip2_transpose((int)p->shape[1], (int)p->shape[0], c->pack, (int)p->shape[0],
                            p->value);
        }
    }
}

int skip2_check_labels(const skip2_model *model, const skip2_data *data)
{
    int C = model->dims[model->n_layers];
    for (uint32_t i = 0; i < data->n; i++)
        if (data->y[i] < 0 || data->y[i] >= C)
            return SKIP2_ERR_LABEL;
    return SKIP2_OK;
}

/* The block's base rounded up to 64 bytes in *at; whether `used` bytes fit from there. */
static int place(void *base, size_t bytes, uint64_t used, void **at)
{
    uintptr_t start = ((uintptr_t)base + 63) & ~(uintptr_t)63;
    *at = (void *)start;
    return used == 0 || (start - (uintptr_t)base) + used <= bytes;
}

int skip2_init(skip2_ctx *c, const skip2_model *model, const skip2_job *job,
               const skip2_data *train, void *arena, size_t arena_bytes, void *store,
               size_t store_bytes)
{
    int status = plan(c, model, job, train->n);
    if (status == SKIP2_OK)
        status = skip2_check_labels(model, train);
    if (status != SKIP2_OK)
        return status;
    c->train = *train;
    layout(c, NULL, NULL);
    uint64_t main_bytes = block_bytes(c->arena_used);
    if (!store) { /* the store's block is the arena's end */
        if (main_bytes > arena_bytes)
            return SKIP2_ERR_ARENA;
        store = (unsigned char *)arena + main_bytes;
        store_bytes = arena_bytes - (size_t)main_bytes;
    }
    void *arena_at, *store_at;
    if (!place(arena, arena_bytes, c->arena_used, &arena_at)
        || !place(store, store_bytes, c->store_used, &store_at))
        return SKIP2_ERR_ARENA;
    layout(c, arena_at, store_at);
    init_params(c);
    if (c->rls)
        skip2_oselm_init(c);
    if (c->prefix.capacity > 0)
        for (uint32_t i = 0; i < train->n; i++)
            c->prefix.slot[i] = -1;
    skip2_meter_reset(&c->meter);
    return SKIP2_OK;
}

/* ---- forward and backward ---------------------------------------------------------------- */

/* Rows of the input of layer k for the batch: x[0] is the input rows, x[k >= 1] a prefix-row
 * column block (prefix methods) or the ReLU'd activations of layer k-1 (full backprop). */
static skip2_rows layer_input(const skip2_ctx *c, int k)
{
    if (k == 0)
        return c->x0;
    if (c->kind == SKIP2_FULL && k > c->first)
        return skip2_strided(c->act[k - 1], c->net.dims[k]);
    return skip2_cols_from(c->pre, c->prefix.off[k]);
}

/* A group of adapters on layers first..first+count-1 whose B blocks are stacked in theta:
 * one adapter beside a layer (lora-all), or all skip adapters at once. Their hiddens
 * u_k = x[k] A[k] sit side by side in u, so out = base + s * [u_first ... u_last] B_stack. */
static void adapters_forward(skip2_ctx *c, int first, int count, int nb, skip2_rows base,
                             float *out, int ldout, uint64_t *macs)
{
    int R = c->job.rank, w = out_width(c, first);
    int ldu = R * (c->net.n_layers - c->first_adapter);
    float *u = c->u + (first - c->first_adapter) * R;
    for (int k = first; k < first + count; k++) /* R long dot products per row */
        skip2_mm_nt(macs, nb, c->net.dims[k], R, layer_input(c, k), c->A[k], c->net.dims[k],
                    u + (k - first) * R, ldu, c->pack);
    skip2_mm_nn(macs, nb, count * R, w, skip2_strided(u, ldu), c->B[first], w, c->tmp, w);
    skip2_add_scaled(nb, w, base, c->job.scale, c->tmp, w, out, ldout);
}

/* dB_stack = s (u^T da), du = s (da B_stack^T) (nb x count*R, in c->du), dA[k]^T = du_k^T x[k]. */
static void adapters_backward(skip2_ctx *c, int first, int count, int nb, const float *da,
                              int ldda)
{
    int R = c->job.rank, w = out_width(c, first), cols = count * R;
    int ldu = R * (c->net.n_layers - c->first_adapter);
    const float *u = c->u + (first - c->first_adapter) * R;
    uint64_t *macs = &c->meter.macs;
    skip2_mm_tn(macs, cols, nb, w, skip2_strided(u, ldu), skip2_strided(da, ldda), c->gB[first],
                w);
    skip2_scale(cols * w, c->job.scale, c->gB[first]);
    skip2_mm_nt(macs, nb, w, cols, skip2_strided(da, ldda), c->B[first], w, c->du, cols,
                c->pack);
    skip2_scale(nb * cols, c->job.scale, c->du);
    for (int k = first; k < first + count; k++)
        skip2_mm_tn(macs, R, nb, c->net.dims[k], skip2_strided(c->du + (k - first) * R, cols),
                    layer_input(c, k), c->gA[k], c->net.dims[k]);
}

/* dW = x^T da, db = column sums of da, for whichever of them is trained (of the trained
 * columns: far's frozen ones have no gradient). */
static void linear_backward(skip2_ctx *c, int k, int nb, const float *da)
{
    int M = c->net.dims[k + 1], K = c->cols[k];
    if (c->gW[k])
        skip2_mm_tn(&c->meter.macs, c->net.dims[k], nb, K, layer_input(c, k),
                    skip2_strided(da, M), c->gW[k], K);
    if (c->gb[k])
        skip2_col_sum(nb, K, da, M, c->gb[k]);
}

/* Full backprop methods: layers first..L-1, adapters beside them; a layer's columns in one
 * block, or (far after priming) its trained columns and then its frozen ones. Returns the
 * logits (nb x C). */
static float *full_forward(skip2_ctx *c, int nb, uint64_t *macs)
{
    const skip2_model *m = &c->net;
    int L = m->n_layers;
    for (int k = c->first; k < L; k++) {
        int N = m->dims[k], M = m->dims[k + 1], K = c->cols[k];
        skip2_linear(macs, nb, N, K, layer_input(c, k), m->W[k], m->b[k], c->act[k], M);
        if (K < M)
            skip2_linear(macs, nb, N, M - K, layer_input(c, k), c->Wf[k], c->bf[k], c->act[k] + K,
                         M);
        if (k >= c->first_adapter)
            adapters_forward(c, k, 1, nb, skip2_strided(c->act[k], M), c->act[k], M, macs);
        if (k < L - 1)
            skip2_relu(nb, M, c->act[k], M);
    }
    return c->act[L - 1];
}

static void full_backward(skip2_ctx *c, int nb)
{
    const skip2_model *m = &c->net;
    int R = c->job.rank;
    float *da = c->grad, *dx = c->grad_next;
    for (int k = m->n_layers - 1; k >= c->first; k--) {
        int N = m->dims[k], M = m->dims[k + 1], K = c->cols[k];
        linear_backward(c, k, nb, da);
        if (k >= c->first_adapter)
            adapters_backward(c, k, 1, nb, da, M);
        if (k == c->first)
            break;
        skip2_mm_nt(&c->meter.macs, nb, K, N, skip2_strided(da, M), m->W[k], K, dx, N, c->pack);
        if (K < M) {
            skip2_mm_nt(&c->meter.macs, nb, M - K, N, skip2_strided(da + K, M), c->Wf[k], M - K,
                        c->tmp, N, c->pack);
            skip2_add_scaled(nb, N, skip2_strided(dx, N), 1.0f, c->tmp, N, dx, N);
        }
        if (k >= c->first_adapter) {
            skip2_mm_nn(&c->meter.macs, nb, R, N, skip2_strided(c->du, R), c->A[k], N, c->tmp, N);
            skip2_add_scaled(nb, N, skip2_strided(dx, N), 1.0f, c->tmp, N, dx, N);
        }
        /* ReLU'd x[k] > 0 exactly where a[k-1] > 0. */
        skip2_mask_positive(nb, N, c->act[k - 1], N, dx, N);
        float *t = da;
        da = dx;
        dx = t;
    }
}

/* Prefix methods: the trained head on top of the prefix rows. Returns the logits (nb x C). */
static float *head_forward(skip2_ctx *c, int nb, uint64_t *macs)
{
    const skip2_model *m = &c->net;
    int L = m->n_layers, C = m->dims[L];
    if (c->kind == SKIP2_LAST_LINEAR) {
        skip2_linear(macs, nb, m->dims[L - 1], C, layer_input(c, L - 1), m->W[L - 1], m->b[L - 1],
                     c->z, C);
        return c->z;
    }
    /* z = z0 + s [u_k ...] B_stack, z0 read from the prefix rows */
    adapters_forward(c, c->first_adapter, L - c->first_adapter, nb,
                     skip2_cols_from(c->pre, c->prefix.off[L]), c->z, C, macs);
    return c->z;
}

static void head_backward(skip2_ctx *c, int nb)
{
    int L = c->net.n_layers;
    if (c->kind == SKIP2_LAST_LINEAR)
        linear_backward(c, L - 1, nb, c->grad);
    else
        adapters_backward(c, c->first_adapter, L - c->first_adapter, nb, c->grad,
                          c->net.dims[L]);
}

/* Logits of nb contiguous input rows, outside the training cache (evaluation). */
static const float *logits(skip2_ctx *c, const float *x, int nb, uint64_t *macs)
{
    c->x0 = skip2_strided(x, c->net.dims[0]);
    if (c->kind != SKIP2_FULL || c->first > 0) {
        skip2_prefix_compute(&c->prefix, &c->prefix_net, nb, c->x0, c->rows, macs);
        c->pre = skip2_strided(c->rows, c->prefix.row);
    }
    return c->kind == SKIP2_FULL ? full_forward(c, nb, macs) : head_forward(c, nb, macs);
}

/* ---- loss, training and evaluation ------------------------------------------------------- */

static float train_step(skip2_ctx *c, const uint32_t *idx, int nb)
{
    skip2_meter *m = &c->meter;
    int C = c->net.dims[c->net.n_layers];
    const float *z;
    c->x0 = skip2_scattered(c->x0_at, 0);
    if (c->kind == SKIP2_FULL && c->first == 0) {
        skip2_meter_phase(m, SKIP2_FWD);
        skip2_data_rows(&c->train, c->net.dims[0], idx, (uint32_t)nb, c->xb, c->x0_at);
    } else {
        skip2_prefix_get(&c->prefix, &c->prefix_net, &c->train, idx, nb, c->need_x0, c->xb,
                         c->x0_at, c->rows, m);
        c->pre = skip2_scattered(c->prefix.at, 0);
        if (c->rls)
            return skip2_oselm_step(c, idx, nb);
    }
    z = c->kind == SKIP2_FULL ? full_forward(c, nb, &m->macs) : head_forward(c, nb, &m->macs);
    float loss = skip2_softmax_xent(nb, C, z, c->train.y, idx, c->grad, c->tmp);
    skip2_meter_phase(m, SKIP2_BWD);
    if (c->kind == SKIP2_FULL)
        full_backward(c, nb);
    else
        head_backward(c, nb);
    skip2_meter_phase(m, SKIP2_UPD);
    skip2_sgd((int)c->n_train, c->job.lr, c->gtheta, c->theta);
    m->macs += c->n_train;
    return loss;
}

void skip2_finetune(skip2_ctx *c)
{
    uint32_t n = c->train.n, bs = (uint32_t)c->job.batch_size;
    uint64_t start = skip2_port_ticks();
    uint64_t stream = c->job.pretrain ? SKIP2_STREAM_PRETRAIN_SHUFFLE : SKIP2_STREAM_SHUFFLE;
    for (int e = 0; e < c->job.epochs; e++) {
        uint64_t t0 = skip2_port_ticks();
        skip2_permutation(skip2_stream_key(c->job.seed, stream + (uint64_t)e), n,
                          c->order, c->sort_keys);
        double total = 0.0;
        for (uint32_t s = 0; s < n && !c->diverged; s += bs) {
            int nb = (int)(n - s < bs ? n - s : bs);
            if (c->far && c->steps == c->priming) {
                skip2_meter_phase(&c->meter, SKIP2_UPD);
                skip2_far_reconfigure(c);
            }
            c->steps++;
            total += (double)train_step(c, c->order + s, nb) * nb;
            if (c->job.on_batch)
                c->job.on_batch(c->job.user);
        }
        skip2_meter_phase(&c->meter, SKIP2_IDLE);
        c->epoch_ticks[e] = skip2_port_ticks() - t0;
        c->epoch_loss[e] = total / n;
        c->epochs_run = e + 1;
        if (c->job.on_epoch)
            c->job.on_epoch(e, c->epoch_ticks[e], c->epoch_loss[e], c->job.user);
        if (!isfinite(total)) {
            if (!c->diverged)
                c->diverged = SKIP2_DIVERGED_LOSS;
            break;
        }
    }
    if (c->far && c->steps > c->priming) { /* reconfigured: evaluation runs the plain network */
        skip2_meter_phase(&c->meter, SKIP2_UPD);
        skip2_far_restore(c);
        skip2_meter_phase(&c->meter, SKIP2_IDLE);
    }
    c->ft_ticks = skip2_port_ticks() - start;
}

static int argmax(int n, const float *v)
{
    /* First maximum wins; a NaN counts as the maximum, as in np.argmax. */
    int best = 0;
    for (int j = 1; j < n && !isnan(v[best]); j++)
        if (v[j] > v[best] || isnan(v[j]))
            best = j;
    return best;
}

uint32_t skip2_correct(skip2_ctx *c, const skip2_data *data)
{
    int D = c->net.dims[0], C = c->net.dims[c->net.n_layers];
    uint32_t bs = (uint32_t)c->job.batch_size, correct = 0;
    uint64_t uncounted = 0; /* evaluation is not fine-tuning work */
    for (uint32_t s = 0; s < data->n; s += bs) {
        uint32_t nb = data->n - s < bs ? data->n - s : bs;
        const float *x = skip2_data_block(data, D, s, nb, c->xb);
        const float *z = logits(c, x, (int)nb, &uncounted);
        for (uint32_t i = 0; i < nb; i++)
            correct += argmax(C, z + (size_t)i * C) == data->y[s + i];
        if (c->job.on_batch)
            c->job.on_batch(c->job.user);
    }
    return correct;
}

int skip2_run(skip2_ctx *c, const skip2_model *model, const skip2_job *job, const skip2_data *train,
              const skip2_data *test, void *arena, size_t arena_bytes, void *store,
              size_t store_bytes, skip2_result *r)
{
    *r = (skip2_result){ .n_ft = train->n, .n_test = test->n };
    r->status = skip2_check_labels(model, test);
    if (r->status == SKIP2_OK)
        r->status = skip2_init(c, model, job, train, arena, arena_bytes, store, store_bytes);
    if (r->status != SKIP2_OK)
        return r->status;
    r->correct_before = skip2_correct(c, test);
    skip2_finetune(c);
    r->diverged = c->diverged;
    r->correct_after = c->diverged ? 0 : skip2_correct(c, test);
    export_params(c);
    r->epochs_run = c->epochs_run;
    r->epoch_ticks = c->epoch_ticks;
    r->epoch_loss = c->epoch_loss;
    r->ft_ticks = c->ft_ticks;
    memcpy(r->phase_ticks, c->meter.ticks, sizeof r->phase_ticks);
    r->ft_macs = c->meter.macs;
    r->trainable_params = skip2_trainable_params(c);
    r->cache_capacity = c->prefix.capacity;
    r->cache_hits = c->prefix.hits;
    r->cache_misses = c->prefix.misses;
    r->arena_bytes = c->arena_used + c->store_used;
    skip2_memory_bytes(c, &r->mem);
    return SKIP2_OK;
}

/* ---- reports ----------------------------------------------------------------------------- */

uint64_t skip2_trainable_params(const skip2_ctx *c)
{
    return c->far ? c->far_trained : c->n_theta;
}

void skip2_memory_bytes(const skip2_ctx *c, skip2_memory *mem)
{
    const int *dims = c->net.dims;
    int L = c->net.n_layers, R = c->job.rank;
    uint64_t weights = 0, widths = 0, f = sizeof(float);
    for (int k = 0; k < L; k++) {
        weights += (uint64_t)dims[k] * dims[k + 1] + dims[k + 1];
        widths += dims[k + 1];
        if (k >= c->first_adapter) {
            weights += (uint64_t)dims[k] * R + (uint64_t)R * out_width(c, k);
            widths += R;
        }
    }
    uint64_t H = (uint64_t)dims[L - 1] + 1; /* oselm-head's head input [x[L-1], 1] */
    mem->weights = weights * f;
    /* far: its priming's gradients, whose first ones the trained phase reuses */
    mem->grads = (c->rls ? 0 : c->n_theta) * f;
    mem->optimizer = (c->rls ? H * H : 0) * f; /* P; plain SGD keeps no state */
    /* oselm-head: the batch's prefix rows, then per sample u and the error */
    mem->activations = (c->rls ? (uint64_t)c->job.batch_size * c->prefix.row + H + dims[L]
                               : (uint64_t)c->job.batch_size * widths) * f;
    mem->cache = (uint64_t)c->prefix.used * (uint64_t)c->prefix.row_bytes;
}

void skip2_scale_inputs(float *x, uint32_t n, int d, const float *mean, const float *std)
{
    for (uint32_t i = 0; i < n; i++)
        for (int j = 0; j < d; j++) {
            float *v = x + (size_t)i * d + j;
            *v = (*v - mean[j]) / std[j];
        }
}
