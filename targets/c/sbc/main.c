/* skip2run WORKDIR: the SBC runner of the C core (docs/runner-contract.md). Reads
 * WORKDIR/job.json and the .npy files it names, fine-tunes, prints one JSON result on stdout.
 * Any problem with the inputs is reported on stderr as "skip2run: FILE: reason" with exit 1.
 * skip2run --session serves jobs one per line of stdin, each as a forked WORKDIR run (session.c). */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>

#include "ceiling.h"
#include "job_json.h"
#include "json_out.h"
#include "npy.h"
#include "session.h"
#include "skip2_core.h"
#include "skip2_port.h"

#ifndef SKIP2_CFLAGS
#define SKIP2_CFLAGS "unknown"
#endif
#if defined(__clang__)
#define COMPILER "clang " __clang_version__
#elif defined(__GNUC__)
#define COMPILER "gcc " __VERSION__
#else
#define COMPILER "unknown"
#endif

/* Everything the run loads. Kept in one static object so that memory still held when an
 * error exits early is reachable, not a leak, for sanitiser builds. */
static struct {
    job_json job_text;
    char *model_dir, *data_dir;
    const char *token;  /* the host's name of this attempt, echoed; NULL when job.json has none */
    npy_array W[SKIP2_MAX_LAYERS], b[SKIP2_MAX_LAYERS], mean, std, x[2], y[2];
    int8_t *x8[2];      /* input_format int8: the inputs as the core reads them */
    float *x8_scale[2];
    void *arena;
    json_out out;
} run;

static void die(const char *file, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "skip2run: %s: ", file);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(1);
}

static char *join(const char *dir, const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *path = malloc(n);
    if (!path)
        die(name, "out of memory");
    snprintf(path, n, "%s/%s", dir, name);
    return path;
}

static char *read_text(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        die(path, "cannot open: %s", strerror(errno));
    size_t cap = 4096, n = 0;
    char *text = malloc(cap);
    while (text) {
        n += fread(text + n, 1, cap - n - 1, f);
        if (n < cap - 1 || ferror(f))
            break;
        char *bigger = realloc(text, cap * 2);
        if (!bigger)
            free(text);
        text = bigger;
        cap *= 2;
    }
    if (!text || ferror(f))
        die(path, text ? "read error" : "out of memory");
    fclose(f);
    text[n] = '\0';
    if (strlen(text) != n)
        die(path, "contains a NUL byte");
    return text;
}

/* Checks a job getter's status: exits on a bad value or a missing required key; 1 if present. */
static int need(const char *path, job_json *j, int status, const char *key, int required)
{
    if (status < 0)
        die(path, "%s", j->err);
    if (status == 0 && required)
        die(path, "missing key '%s'", key);
    return status;
}

/* "ft-all, ft-last, ...": the methods this runner knows. */
static const char *method_names(void)
{
    static char names[256];
    for (int m = 0; m < SKIP2_N_METHODS; m++) {
        if (m)
            strncat(names, ", ", sizeof names - strlen(names) - 1);
        strncat(names, skip2_method_name((skip2_method)m), sizeof names - strlen(names) - 1);
    }
    return names;
}

/* A storage format key (skip2_quant.h). */
static skip2_format format_of(const char *path, job_json *j, const char *key)
{
    const char *s;
    need(path, j, job_json_string(j, key, &s), key, 1);
    int format = skip2_format_from_name(s);
    if (format < 0)
        die(path, "'%s' must be one of f32, int8; got '%s'", key, s);
    return (skip2_format)format;
}

/* Reading a field of skip2_job.def by its type: required, since the job's method holds it.
 * Numbers are read as far as their C type reaches; their ranges are checked by the core. */
#define READ_METHOD(field) /* read first: which fields a job holds depends on it */
#define READ_BOOL(field) need(path, j, job_json_bool(j, #field, &job->field), #field, 1)
#define READ_FORMAT(field) job->field = format_of(path, j, #field)
#define READ_INT(field) \
    need(path, j, job_json_int(j, #field, INT32_MIN, INT32_MAX, &v), #field, 1); \
    job->field = (int32_t)v
#define READ_LAYERS READ_INT
#define READ_REAL(field) \
    need(path, j, job_json_number(j, #field, &number), #field, 1); \
    job->field = (float)number

static void read_job(const char *workdir, skip2_job *job, int *n_layers, int *save_params)
{
    char *path = join(workdir, "job.json");
    char *text = read_text(path);
    job_json *j = &run.job_text;
    if (job_json_parse(j, text) != 0)
        die(path, "%s", j->err);
    free(text);

    const char *s;
    double number;
    int64_t v;
    *job = (skip2_job){ 0 };
    need(path, j, job_json_string(j, "method", &s), "method", 1);
    int method = skip2_method_from_name(s);
    if (method < 0)
        die(path, "'method' must be one of %s; got '%s'", method_names(), s);
    job->method = (skip2_method)method;
    /* The fields the method's jobs hold are required; the others are ignored. */
#define SKIP2_METHOD(ENUM, name, cache)
#define SKIP2_JOB_FIELD(name, type, lo, hi, def, methods, source, run_type, run_at) \
    if (skip2_job_holds(job->method, SKIP2_FIELD_##name)) { READ_##type(name); }
#include "skip2_job.def"
#undef SKIP2_METHOD
#undef SKIP2_JOB_FIELD
    run.token = NULL;
    need(path, j, job_json_string(j, "token", &run.token), "token", 0);
    need(path, j, job_json_int(j, "n_layers", 1, SKIP2_MAX_LAYERS, &v), "n_layers", 1);
    *n_layers = (int)v;
    *save_params = 0;
    need(path, j, job_json_bool(j, "save_params", save_params), "save_params", 0);
    need(path, j, job_json_bool(j, "pretrain", &job->pretrain), "pretrain", 0);

    const char *dir;
    need(path, j, job_json_string(j, "model_dir", &dir), "model_dir", 1);
    run.model_dir = dir[0] == '/' ? strdup(dir) : join(workdir, dir);
    need(path, j, job_json_string(j, "data_dir", &dir), "data_dir", 1);
    run.data_dir = dir[0] == '/' ? strdup(dir) : join(workdir, dir);
    if (!run.model_dir || !run.data_dir)
        die(path, "out of memory");
    free(path);
}

/* Loads dir/name as float32 (labels: int) and checks its dimensions; rows/cols 0 = any. */
static void load(const char *dir, const char *name, npy_array *a, int labels, int ndim,
                 uint32_t rows, uint32_t cols)
{
    char err[256];
    char *path = join(dir, name);
    int status = labels ? npy_load_labels(path, a, err, sizeof err)
                        : npy_load_f32(path, a, err, sizeof err);
    if (status != 0)
        die(path, "%s", err);
    if (a->ndim != ndim)
        die(path, "expected a %d-D array, found %d-D", ndim, a->ndim);
    if ((rows && a->shape[0] != rows) || (ndim == 2 && cols && a->shape[1] != cols))
        die(path, "shape (%lu, %lu) does not fit (expected %lu x %lu; 0 = any)",
            (unsigned long)a->shape[0], (unsigned long)a->shape[1], (unsigned long)rows,
            (unsigned long)cols);
    if (a->shape[0] == 0 || a->shape[1] == 0)
        die(path, "the array is empty");
    free(path);
}

/* The scaled inputs of a split stored as int8 rows (one scale each), replacing the floats. */
static void store_int8(int i, skip2_data *data, int D)
{
    run.x8[i] = malloc((size_t)data->n * D);
    run.x8_scale[i] = malloc((size_t)data->n * sizeof(float));
    if (!run.x8[i] || !run.x8_scale[i])
        die(run.data_dir, "out of memory");
    for (uint32_t r = 0; r < data->n; r++) {
        size_t at = (size_t)r * D;
        run.x8_scale[i][r] = skip2_quantise(D, run.x[i].f32 + at, run.x8[i] + at);
    }
    npy_free(&run.x[i]);
    *data = (skip2_data){ .x8 = run.x8[i], .x8_scale = run.x8_scale[i], .y = data->y,
                          .n = data->n };
}

static void load_inputs(int n_layers, skip2_format input_format, skip2_model *model,
                        skip2_data data[2])
{
    char name[32];
    *model = (skip2_model){ .n_layers = n_layers };
    for (int k = 0; k < n_layers; k++) {
        snprintf(name, sizeof name, "W%d.npy", k);
        load(run.model_dir, name, &run.W[k], 0, 2, k ? (uint32_t)model->dims[k] : 0, 0);
        model->dims[k] = (int)run.W[k].shape[0];
        model->dims[k + 1] = (int)run.W[k].shape[1];
        model->W[k] = run.W[k].f32;
        snprintf(name, sizeof name, "b%d.npy", k);
        load(run.model_dir, name, &run.b[k], 0, 1, (uint32_t)model->dims[k + 1], 0);
        model->b[k] = run.b[k].f32;
    }
    uint32_t D = (uint32_t)model->dims[0];
    load(run.model_dir, "mean.npy", &run.mean, 0, 1, D, 0);
    load(run.model_dir, "std.npy", &run.std, 0, 1, D, 0);
    static const char *const parts[2] = { "ft", "test" };
    for (int i = 0; i < 2; i++) {
        snprintf(name, sizeof name, "x_%s.npy", parts[i]);
        load(run.data_dir, name, &run.x[i], 0, 2, 0, D);
        snprintf(name, sizeof name, "y_%s.npy", parts[i]);
        load(run.data_dir, name, &run.y[i], 1, 1, run.x[i].shape[0], 0);
        data[i] = (skip2_data){ .x = run.x[i].f32, .y = run.y[i].i32, .n = run.x[i].shape[0] };
        if (skip2_check_labels(model, &data[i]) != SKIP2_OK) {
            char *path = join(run.data_dir, name);
            die(path, "labels must be class indices 0..%d", model->dims[n_layers] - 1);
        }
        skip2_scale_inputs(run.x[i].f32, data[i].n, (int)D, run.mean.f32, run.std.f32);
        if (input_format == SKIP2_INT8)
            store_int8(i, &data[i], (int)D);
    }
}

static void save_params(const char *workdir, const skip2_ctx *ctx)
{
    char err[256], name[16];
    char *dir = join(workdir, "trained");
    if (mkdir(dir, 0777) != 0 && errno != EEXIST)
        die(dir, "cannot create: %s", strerror(errno));
    for (int i = 0; i < ctx->n_params; i++) {
        const skip2_param *p = &ctx->params[i];
        snprintf(name, sizeof name, "%s.npy", p->name);
        char *path = join(dir, name);
        if (npy_save_f32(path, p->value, p->ndim, p->shape, err, sizeof err) != 0)
            die(path, "%s", err);
        free(path);
    }
    free(dir);
}

/* What built this binary and where it runs (a result's "runtime"; all that --about prints). */
static void runtime_fields(json_out *o)
{
    struct utsname uts;
    jo_str(o, "compiler", COMPILER);
    jo_str(o, "cflags", SKIP2_CFLAGS);
    jo_str(o, "machine", uname(&uts) == 0 ? uts.machine : "unknown");
}

static void print_json(json_out *o)
{
    if (o->failed)
        die("stdout", "out of memory while writing the result");
    fputs(o->buf, stdout);
    fputc('\n', stdout);
    if (fflush(stdout) != 0)
        die("stdout", "%s", strerror(errno));
}

/* Writing a field of skip2_job.def by its type, as read. */
#define ECHO_METHOD(o, field, v) jo_str(o, field, skip2_method_name(v))
#define ECHO_BOOL(o, field, v) jo_bool(o, field, v)
#define ECHO_FORMAT(o, field, v) jo_str(o, field, skip2_format_name(v))
#define ECHO_INT(o, field, v) jo_int(o, field, v)
#define ECHO_LAYERS ECHO_INT
#define ECHO_REAL(o, field, v) jo_double(o, field, (double)(v))

/* The result's "job": the fields of the job as this runner read them, those its method holds,
 * so the host can check that the runner ran the job it was sent. */
static void echo_job(json_out *o, const skip2_job *job)
{
    jo_open(o, "job", '{');
#define SKIP2_METHOD(ENUM, name, cache)
#define SKIP2_JOB_FIELD(name, type, lo, hi, def, methods, source, run_type, run_at) \
    if (skip2_job_holds(job->method, SKIP2_FIELD_##name)) { ECHO_##type(o, #name, job->name); }
#include "skip2_job.def"
#undef SKIP2_METHOD
#undef SKIP2_JOB_FIELD
    jo_close(o, '}');
}

static void emit_result(const skip2_job *job, const skip2_result *r)
{
    static const char *const phase_keys[SKIP2_N_PHASES] = {
        [SKIP2_FWD] = "fwd_time_s", [SKIP2_BWD] = "bwd_time_s", [SKIP2_UPD] = "upd_time_s",
        [SKIP2_CACHE] = "cache_time_s"
    };
    double tps = (double)skip2_port_ticks_per_second();
    json_out *o = &run.out;
    char reason[96];
    uint64_t lookups = r->cache_hits + r->cache_misses;

    jo_open(o, NULL, '{');
    jo_str(o, "impl", "c");
    jo_str(o, "method", skip2_method_name(job->method));
    jo_str(o, "status", r->diverged ? "fail" : "ok");
    if (r->diverged) {
        snprintf(reason, sizeof reason, r->diverged == SKIP2_DIVERGED_RLS
                 ? "the RLS denominator (forget + h P h^T) was not positive in epoch %d"
                 : "loss became non-finite in epoch %d", r->epochs_run);
        jo_str(o, "reason", reason);
    } else {
        jo_null(o, "reason");
    }
    jo_double(o, "acc_before", (double)r->correct_before / r->n_test);
    if (r->diverged)
        jo_null(o, "acc_after");
    else
        jo_double(o, "acc_after", (double)r->correct_after / r->n_test);
    jo_double(o, "ft_time_s", (double)r->ft_ticks / tps);
    for (int ph = 0; ph < SKIP2_N_PHASES; ph++)
        jo_double(o, phase_keys[ph], (double)r->phase_ticks[ph] / tps);
    jo_open(o, "epoch_times_s", '[');
    for (int e = 0; e < r->epochs_run; e++)
        jo_double(o, NULL, (double)r->epoch_ticks[e] / tps);
    jo_close(o, ']');
    jo_open(o, "epoch_loss", '[');
    for (int e = 0; e < r->epochs_run; e++)
        jo_double(o, NULL, r->epoch_loss[e]);
    jo_close(o, ']');
    jo_uint(o, "n_ft", r->n_ft);
    jo_uint(o, "n_test", r->n_test);
    jo_uint(o, "ft_macs", r->ft_macs);
    jo_uint(o, "trainable_params", r->trainable_params);
    jo_uint(o, "cache_capacity_samples", r->cache_capacity);
    jo_uint(o, "cache_hits", r->cache_hits);
    jo_uint(o, "cache_misses", r->cache_misses);
    if (lookups && r->cache_capacity)
        jo_double(o, "cache_hit_rate", (double)r->cache_hits / (double)lookups);
    else
        jo_null(o, "cache_hit_rate");
    jo_open(o, "mem", '{');
    jo_uint(o, "weights_bytes", r->mem.weights);
    jo_uint(o, "grads_bytes", r->mem.grads);
    jo_uint(o, "optimizer_bytes", r->mem.optimizer);
    jo_uint(o, "activations_bytes", r->mem.activations);
    jo_uint(o, "cache_bytes", r->mem.cache);
    jo_close(o, '}');
    jo_uint(o, "peak_rss_bytes", skip2_port_mem_high_water());
    echo_job(o, job);
    if (run.token)
        jo_str(o, "token", run.token);
    jo_open(o, "runtime", '{');
    runtime_fields(o);
    jo_uint(o, "arena_bytes", r->arena_bytes);
    jo_close(o, '}');
    jo_close(o, '}');
    print_json(o);
}

/* skip2run --about: how the harness probes a deployed binary (under an emulator, "machine"
 * is the emulated one). */
static int about(void)
{
    json_out *o = &run.out;
    jo_open(o, NULL, '{');
    jo_str(o, "impl", "c");
    jo_open(o, "runtime", '{');
    runtime_fields(o);
    jo_close(o, '}');
    jo_close(o, '}');
    print_json(o);
    free(o->buf);
    return 0;
}

/* skip2run --ceiling: what the benchmark holds fine-tuning times against (ceiling.c). */
static int ceiling(void)
{
    json_out *o = &run.out;
    jo_open(o, NULL, '{');
    if (skip2_ceiling(o) != 0)
        die("--ceiling", "out of memory");
    jo_close(o, '}');
    print_json(o);
    free(o->buf);
    return 0;
}

/* skip2_job.on_epoch (user: the run's skip2_ctx, whose job.epochs is oselm-head's passes too): a
 * session's progress line. The core calls it after the epoch's ticks are taken and with no phase
 * running, so epoch and phase times never hold it; ft_ticks spans it, but session_progress leaves
 * its time out of the port's clock. */
static void on_epoch(int epoch, uint64_t ticks, double loss, void *ctx)
{
    (void)ticks;
    (void)loss;
    session_progress(epoch + 1, ((const skip2_ctx *)ctx)->job.epochs);
}

/* skip2run WORKDIR: one job, its result on stdout; exits 1 through die() on any problem. */
static int run_job(const char *workdir)
{
    skip2_job job;
    skip2_model model;
    skip2_data data[2];
    int n_layers, save;
    read_job(workdir, &job, &n_layers, &save);
    load_inputs(n_layers, job.input_format, &model, data);

    char *job_path = join(workdir, "job.json");
    size_t bytes;
    int status = skip2_arena_bytes(&model, &job, &data[0], &bytes, NULL);
    if (status == SKIP2_OK) {
        run.arena = malloc(bytes);
        if (!run.arena)
            die(job_path, "cannot allocate the %zu-byte arena", bytes);
        skip2_ctx ctx;
        skip2_result result;
        job.on_epoch = on_epoch;
        job.user = &ctx;
        status = skip2_run(&ctx, &model, &job, &data[0], &data[1], run.arena, bytes, NULL, 0, &result);
        if (status == SKIP2_OK) {
            if (save)
                save_params(workdir, &ctx);
            emit_result(&job, &result);
        }
    }
    if (status != SKIP2_OK)
        die(job_path, "%s", skip2_strerror(status));

    free(job_path);
    free(run.arena);
    free(run.out.buf);
    for (int k = 0; k < n_layers; k++) {
        npy_free(&run.W[k]);
        npy_free(&run.b[k]);
    }
    npy_free(&run.mean);
    npy_free(&run.std);
    for (int i = 0; i < 2; i++) {
        npy_free(&run.x[i]);
        npy_free(&run.y[i]);
        free(run.x8[i]);
        free(run.x8_scale[i]);
    }
    free(run.model_dir);
    free(run.data_dir);
    job_json_free(&run.job_text);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[1], "--about") == 0)
        return about();
    if (argc == 2 && strcmp(argv[1], "--ceiling") == 0)
        return ceiling();
    if (argc == 2 && strcmp(argv[1], "--session") == 0)
        return session_serve(run_job);
    if (argc != 2) {
        fprintf(stderr, "usage: skip2run WORKDIR (a directory holding job.json) | skip2run --session"
                        " | skip2run --about | skip2run --ceiling\n");
        return 1;
    }
    return run_job(argv[1]);
}
