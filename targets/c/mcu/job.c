#include "job.h"

#include <setjmp.h>
#include <stdint.h>
#include <string.h>

#include "board.h"
#include "bytes.h"
#include "dataset.h"
#include "port.h"
#include "protocol.h"
#include "ram.h"
#include "skip2_core.h"
#include "slot.h"
#include "stack.h"
#include "systick.h"

enum { RUN_STARTED = 0, RUN_NO_FIT = 1, RUN_INVALID = 2, RUN_NO_MODEL = 3, RUN_NO_DATA = 4 };
#define ROWS_HEADER 8u
#define MESSAGE_BYTES 192u
#define BEAT_RELOADS 10u     /* a BEAT after 10 SysTick periods (100 ms) without a frame */

/* Large, and alive for one job at a time: static rather than on the 8 KB stack. */
static skip2_ctx ctx;
static skip2_result result;
static jmp_buf abandon;               /* leaves skip2_run when the host stops answering, or a
                                       * HELLO opens a new session */
static ram_block placed_data, placed_arena, placed_store; /* where the job's data set, arena and
                                                           cache store sit (DONE) */

/* What a streamed split's fetch needs. */
typedef struct {
    uint8_t split;                    /* 0 fine-tune, 1 test (ROWS) */
    uint32_t D;
} rows_source;
static rows_source sources[2];
static uint32_t batches;              /* of the running job, for BEAT */

/* ---- the answer to RUN -------------------------------------------------------------------- */

typedef struct {
    uint32_t status, needed, available;
    char message[MESSAGE_BYTES];
    uint32_t length;
} run_answer;

static void say(run_answer *a, const char *text)
{
    while (*text && a->length + 1 < MESSAGE_BYTES)
        a->message[a->length++] = *text++;
    a->message[a->length] = '\0';
}

static void say_uint(run_answer *a, uint64_t v)
{
    char digits[21];
    int n = 0;
    do {
        digits[n++] = (char)('0' + v % 10u);
        v /= 10u;
    } while (v);
    char text[21];
    for (int i = 0; i < n; i++)
        text[i] = digits[n - 1 - i];
    text[n] = '\0';
    say(a, text);
}

static void refuse(run_answer *a, uint32_t status, const char *why)
{
    a->status = status;
    say(a, why);
}

/* ---- where the job's memory goes ---------------------------------------------------------- */

/* A part of the job's memory: the block it gets (region, start, bytes it needs) and the free
 * bytes of the space it goes to. */
typedef struct {
    ram_block block;
    uint32_t free;
} part;

static const char *const PART_NAMES[2] = { "arena", "cache store" };

/* Places the job's `bytes`, of which `store` are the core's cache store, which may sit apart
 * from the rest (the arena): parts[0] the arena, parts[1] the store. Everything goes to the
 * largest space left beside the data set, the store at the arena's end; unless that is too
 * small and the job has a store and the board another region: then the larger part goes there
 * and the other to the largest space left in another region (larger with larger: when any
 * placement of the two parts fits, this one does). Returns whether the parts are apart. */
static int place(const ram_block *taken, size_t bytes, size_t store, part parts[2])
{
    ram_block largest = ram_largest_left(taken, -1), other = ram_largest_left(taken, largest.region);
    size_t rest = bytes - store;
    parts[0] = (part){ { largest.region, largest.start, rest }, largest.bytes };
    parts[1] = (part){ { -1, NULL, 0 }, 0 };
    if (store)
        parts[1] = (part){ { largest.region, largest.start + rest, store }, largest.bytes };
    if (bytes <= largest.bytes || store == 0 || other.region < 0)
        return 0;
    int small = store > rest ? 0 : 1;  /* the part that goes to the other region */
    parts[small] = (part){ { other.region, other.start, parts[small].block.bytes }, other.bytes };
    parts[!small].block.start = largest.start;
    return 1;
}

/* "needs 120 KB in sram for its arena, the board's sram has 107 KB free (of 128 KB)"; apart:
 * "needs 69 KB in ccm for its arena and 72 KB in sram for its cache store, the board's ccm has
 * 64 KB free (of 64 KB) and its sram 107 KB (of 128 KB)". */
static void refuse_no_fit(run_answer *a, size_t bytes, const part parts[2], int apart)
{
    refuse(a, RUN_NO_FIT, "needs ");
    for (int i = 0; i <= apart; i++) {
        size_t need = apart ? parts[i].block.bytes : bytes;
        say(a, i ? " and " : "");
        if (need == SIZE_MAX)
            say(a, "more than 4 G");
        else
            say_uint(a, (need + 1023u) / 1024u);
        say(a, " KB in ");
        say(a, board.regions[parts[i].block.region].name);
        say(a, " for its ");
        say(a, PART_NAMES[i]);
    }
    for (int i = 0; i <= apart; i++) {
        say(a, i ? " and its " : ", the board's ");
        say(a, board.regions[parts[i].block.region].name);
        say(a, i ? " " : " has ");
        say_uint(a, parts[i].free / 1024u);
        say(a, i ? " KB (of " : " KB free (of ");
        say_uint(a, board.regions[parts[i].block.region].size / 1024u);
        say(a, " KB)");
    }
}


/* Reading and writing a RUN field by its type in skip2_job.def. A u32 beyond int32 becomes
 * INT32_MIN, below every u32 field's range: out of range stays out of range. */
static int32_t get_int(uint32_t v)
{
    return v > (uint32_t)INT32_MAX ? INT32_MIN : (int32_t)v;
}

#define RUN_GET_U8(p) (p)[0]
#define RUN_GET_U32(p) get_int(get_u32(p))
#define RUN_GET_I32(p) (int32_t)get_u32(p)
#define RUN_GET_F32(p) get_f32(p)
#define RUN_GET_NONE(p) 0

#define RUN_PUT_U8(w, v) put_u8(w, (uint32_t)(v))
#define RUN_PUT_U32(w, v) put_u32(w, (uint32_t)(v))
#define RUN_PUT_I32 RUN_PUT_U32
#define RUN_PUT_F32(w, v) put_f32(w, v)
#define RUN_PUT_NONE(w, v) (void)(w)

/* The job of a RUN request, every field at its place (skip2_job.def). */
static void read_run(const uint8_t *p, skip2_job *job)
{
#define SKIP2_METHOD(ENUM, name, cache)
#define SKIP2_JOB_FIELD(name, type, lo, hi, def, methods, source, run_type, run_at) \
    job->name = (SKIP2_CTYPE_##type)RUN_GET_##run_type(p + run_at);
#include "skip2_job.def"
#undef SKIP2_METHOD
#undef SKIP2_JOB_FIELD
}

/* The job as read, in RUN's layout: the fields its method holds at their places, every other
 * byte zero. The host checks it is the job it sent. */
static void echo_run(writer *w, const skip2_job *job)
{
    uint8_t *run = w->buf + w->len;
    for (uint32_t i = 0; i < JOB_RUN_BYTES; i++)
        put_u8(w, 0);
    if (w->overflow)
        return;
#define SKIP2_METHOD(ENUM, name, cache)
#define SKIP2_JOB_FIELD(name, type, lo, hi, def, methods, source, run_type, run_at) \
    if (skip2_job_holds(job->method, SKIP2_FIELD_##name)) { \
        writer at = { run + run_at, 0, RUN_SIZE_##run_type, 0 }; \
        RUN_PUT_##run_type(&at, job->name); \
    }
#include "skip2_job.def"
#undef SKIP2_METHOD
#undef SKIP2_JOB_FIELD
}

static void send_answer(const link_frame *f, const run_answer *a)
{
    writer w = { link_response_payload(), 0, LINK_RESPONSE_MAX, 0 };
    put_u8(&w, a->status);
    put_u32(&w, a->needed);
    put_u32(&w, a->available);
    put_text(&w, a->message, MESSAGE_BYTES);
    link_respond(f, w.len);
}

/* ---- the job's requests to the host -------------------------------------------------------- */

/* skip2_data.fetch: rows idx[0..m) (or first..first+m-1) asked for in ROWS requests of at most
 * 4096 bytes each way, copied into out. The host not answering abandons the job. */
static void fetch_rows(const skip2_data *data, const uint32_t *idx, uint32_t first, uint32_t m,
                       float *out)
{
    const rows_source *src = data->user;
    port_transfer_begin();
    uint32_t row_bytes = 4u * src->D;
    uint32_t per = LINK_MAX_PAYLOAD / row_bytes;
    if (idx && per > (LINK_MAX_PAYLOAD - ROWS_HEADER) / 4u)
        per = (LINK_MAX_PAYLOAD - ROWS_HEADER) / 4u;   /* the indices must fit the request */
    while (m > 0) {
        uint32_t count = m < per ? m : per;
        writer w = { link_request_payload(), 0, LINK_MAX_PAYLOAD, 0 };
        put_u8(&w, src->split);
        put_u8(&w, 0);
        put_u16(&w, count);
        put_u32(&w, idx ? 0u : first);
        for (uint32_t i = 0; idx && i < count; i++)
            put_u32(&w, idx[i]);
        link_frame resp;
        if (!link_request(MSG_ROWS, w.len, &resp, protocol_while_running)
            || resp.len != count * row_bytes)
            longjmp(abandon, 1);
        memcpy(out, resp.payload, resp.len);
        out += (size_t)count * src->D;
        m -= count;
        if (idx)
            idx += count;
        else
            first += count;
    }
    port_transfer_end();
}

/* skip2_job.on_epoch: PROGRESS (u32 epoch, u64 epoch_ticks, f64 mean_loss) as each epoch ends,
 * a transfer kept out of the core's clock. The host not answering abandons the job. */
static void send_progress(int epoch, uint64_t ticks, double loss, void *user)
{
    (void)user;
    port_transfer_begin();
    writer w = { link_request_payload(), 0, LINK_MAX_PAYLOAD, 0 };
    put_u32(&w, (uint32_t)epoch);
    put_u64(&w, ticks);
    put_f64(&w, loss);
    link_frame resp;
    if (!link_request(MSG_PROGRESS, w.len, &resp, protocol_while_running))
        longjmp(abandon, 1);
    systick_alarm_arm(BEAT_RELOADS);
    port_transfer_end();
}

/* skip2_job.on_batch: a BEAT notice (u32 batches so far) once 100 ms passed without a frame of
 * the job, so the host sees the board alive, and a look at what the host sent meanwhile (a
 * HELLO of a new session ends the job at once): at the BEAT, or as soon as bytes arrive while
 * the job computes. Both kept out of the core's clock; only the check of the SysTick alarm and
 * the receive count is counted work. */
static void on_batch(void *user)
{
    (void)user;
    batches++;
    if (!systick_alarm && !port_received_since_transfer())
        return;
    port_transfer_begin();
    writer w = { link_request_payload(), 0, LINK_MAX_PAYLOAD, 0 };
    put_u32(&w, batches);
    link_notice(MSG_BEAT, w.len);
    link_frame f;
    while (link_receive(&f, 0)) {
        if (!link_answer_repeat(&f) && protocol_while_running(&f)) {
            port_transfer_end();
            longjmp(abandon, 1);
        }
    }
    systick_alarm_arm(BEAT_RELOADS);
    port_transfer_end();
}

/* Request: the core's skip2_result, field by field, then the job as read (docs/serial-protocol.md,
 * DONE). */
static int send_done(const skip2_job *job)
{
    const skip2_result *r = &result;
    writer w = { link_request_payload(), 0, LINK_MAX_PAYLOAD, 0 };
    put_u8(&w, (uint32_t)r->status);
    put_u8(&w, (uint32_t)r->diverged);
    put_u16(&w, (uint32_t)r->epochs_run);
    put_u32(&w, r->n_ft);
    put_u32(&w, r->n_test);
    put_u32(&w, r->correct_before);
    put_u32(&w, r->correct_after);
    put_u64(&w, r->ft_macs);
    put_u64(&w, r->trainable_params);
    put_u64(&w, r->arena_bytes);
    put_u64(&w, r->ft_ticks);
    for (int ph = 0; ph < SKIP2_N_PHASES; ph++)
        put_u64(&w, r->phase_ticks[ph]);
    put_u32(&w, r->cache_capacity);
    put_u64(&w, r->cache_hits);
    put_u64(&w, r->cache_misses);
    put_u64(&w, r->mem.weights);
    put_u64(&w, r->mem.grads);
    put_u64(&w, r->mem.optimizer);
    put_u64(&w, r->mem.activations);
    put_u64(&w, r->mem.cache);
    put_u64(&w, port_transfer_ticks());
    put_u32(&w, stack_used());
    put_u8(&w, (uint32_t)placed_data.region);
    put_u32(&w, placed_data.bytes);
    put_u8(&w, (uint32_t)placed_arena.region);
    put_u32(&w, placed_arena.bytes);
    put_u8(&w, (uint32_t)placed_store.region);
    put_u32(&w, placed_store.bytes);
    put_u32(&w, port_bytes_during_compute());
    echo_run(&w, job);
    link_frame resp;
    return link_request(MSG_DONE, w.len, &resp, protocol_while_running);
}

/* ---- the job ---------------------------------------------------------------------------------- */

/* The whole job inside skip2_run; 0 when a fetch was abandoned. Nothing of this frame is used
 * after a longjmp, so no local needs to be volatile. */
static int run_core(const skip2_model *model, const skip2_job *job, const skip2_data data[2])
{
    if (setjmp(abandon))
        return 0;
    port_transfer_reset();
    systick_alarm_arm(BEAT_RELOADS);
    batches = 0;
    skip2_run(&ctx, model, job, &data[0], &data[1], placed_arena.start, placed_arena.bytes,
              placed_store.start, placed_store.bytes, &result);
    return 1;
}

/* The data set named by hash: the one in RAM, or the one in the model slot; NULL if neither. */
static const dataset *find_data(const uint8_t *hash)
{
    const dataset *sets[2] = { dataset_current(), slot_data() };
    for (int i = 0; i < 2; i++)
        if (sets[i] && memcmp(sets[i]->hash, hash, 32) == 0)
            return sets[i];
    return NULL;
}

/* Request: the job's fields, each at its place (skip2_job.def), and RUN's own: u8 stream at
 * byte 2, u8[32] model_hash at 32, u8[32] data_hash at 64.
 * Answer: u8 status, u32 needed, u32 available, char[192] message. */
void job_on_run(const link_frame *f)
{
    const uint8_t *p = f->payload;
    run_answer a = { 0 };
    link_token = f->token;            /* every frame of this job carries it, the answer first */
    const skip2_model *model = slot_model();
    const dataset *set = find_data(p + RUN_DATA_HASH_AT);
    int stream = p[RUN_STREAM_AT] != 0;
    skip2_job job = { 0 };
    read_run(p, &job);
    job.on_epoch = send_progress;
    job.on_batch = on_batch;
    skip2_data data[2];
    part parts[2];
    size_t bytes = 0, store = 0;
    int status;

    if (!model || memcmp(slot_hash(), p + RUN_MODEL_HASH_AT, 32) != 0) {
        refuse(&a, RUN_NO_MODEL, "the model slot does not hold this model: flash it");
    } else if (!set) {
        refuse(&a, RUN_NO_DATA, "neither RAM nor the model slot holds this data set: load it");
    } else if (set->D != (uint32_t)model->dims[0]) {
        refuse(&a, RUN_INVALID, "the data set's row width D differs from the model's input width");
    } else if (!stream && !set->with_inputs) {
        refuse(&a, RUN_INVALID, "the data set in RAM has labels only: stream the inputs");
    } else if (stream && 4u * set->D > LINK_MAX_PAYLOAD) {
        refuse(&a, RUN_INVALID, "one input row is larger than a ROWS answer (4096 bytes)");
    } else {
        sources[0] = (rows_source){ 0, set->D };
        sources[1] = (rows_source){ 1, set->D };
        data[0] = (skip2_data){ .x = stream ? NULL : set->x_ft, .x8 = stream ? NULL : set->x8_ft,
                                .x8_scale = set->scale_ft, .y = set->y_ft, .n = set->n_ft,
                                .fetch = fetch_rows, .user = &sources[0] };
        data[1] = (skip2_data){ .x = stream ? NULL : set->x_test,
                                .x8 = stream ? NULL : set->x8_test, .x8_scale = set->scale_test,
                                .y = set->y_test, .n = set->n_test, .fetch = fetch_rows,
                                .user = &sources[1] };
        status = skip2_arena_bytes(model, &job, &data[0], &bytes, &store);
        if (status == SKIP2_ERR_TOO_BIG) {  /* beyond 4 GB: does not fit, rather than invalid */
            status = SKIP2_OK;
            bytes = SIZE_MAX;
            store = 0;
        }
        /* skip2_run's own checks beyond skip2_arena_bytes: the labels of both splits. */
        if (status == SKIP2_OK)
            status = skip2_check_labels(model, &data[0]);
        if (status == SKIP2_OK)
            status = skip2_check_labels(model, &data[1]);
        int apart = place(&set->block, bytes, store, parts);
        int fits = apart ? parts[0].block.bytes <= parts[0].free
                               && parts[1].block.bytes <= parts[1].free
                         : bytes <= parts[0].free;
        a.needed = bytes > UINT32_MAX ? UINT32_MAX : (uint32_t)bytes;
        a.available = ram_largest_left(&set->block, -1).bytes;
        if (status != SKIP2_OK)
            refuse(&a, RUN_INVALID, skip2_strerror(status));
        else if (!fits)
            refuse_no_fit(&a, bytes, parts, apart);
    }
    send_answer(f, &a);
    if (a.status != RUN_STARTED) {
        link_token = 0;
        return;
    }

    if (set->block.region < 0)  /* the arena may take the RAM a set there holds */
        dataset_discard();
    ram_note_use((uint64_t)set->block.bytes + bytes);
    placed_data = set->block;
    placed_arena = parts[0].block;
    placed_store = parts[1].block;
    stack_repaint();                  /* the record's stack high-water is this job's alone */
    if (run_core(model, &job, data))
        send_done(&job);
    systick_alarm_arm(0);
    link_token = 0;
}
