/* A QEMU TCG plugin that estimates the cycles a Cortex-M4 would take for what the emulated
 * board executes (README.md): every instruction's count by the TRM (trm_timing.c), a refill
 * after each taken branch, and flash wait states behind the STM32F4's ART accelerator.
 *
 * It measures windows, driven by the firmware's own functions (addresses as arguments):
 * entering `arm` starts one; within it, the first entry of `mark` is its start and every later
 * entry its end; `pause` to `resume` is left out; entering `emit` appends the window to `out` as
 * one JSON line. One vCPU: the boards have one core. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qemu_plugin_api.h"
#include "trm_timing.h"

PLUGIN_EXPORT int qemu_plugin_version = PLUGIN_API_VERSION;

enum hook { HOOK_ARM, HOOK_MARK, HOOK_PAUSE, HOOK_RESUME, HOOK_EMIT, N_HOOKS };
static const char *const hook_names[N_HOOKS] = { "arm", "mark", "pause", "resume", "emit" };
static uint64_t hook_at[N_HOOKS];
static bool hook_set[N_HOOKS];

/* Counters, only ever growing: cycles per class and instructions. Inline additions of the
 * generated code keep them, so only instructions that execute count. */
typedef struct {
    uint64_t cycles[N_CLASSES];
    uint64_t insns;
} counts;
static counts now;

/* ---- flash and the ART accelerator ------------------------------------------------------- */

#define MAX_RANGES 4
#define LINE_SHIFT 4 /* 128-bit lines */
#define MAX_FLASH (64u << 20) /* the largest range accepted */
static struct { uint64_t start, size; } flash[MAX_RANGES];
static int n_flash;
static unsigned wait_states;
static uint32_t n_lines; /* lines in the largest range */

/* A fully associative cache of `ways` lines, least recently used out. A line is named by its
 * offset in its flash range (the ranges are aliases of one flash), and `slot` finds it in O(1):
 * a hit costs a look-up and a time stamp, only a miss looks for the oldest line. */
typedef struct {
    uint32_t line[64];
    uint64_t used[64]; /* 0: empty */
    unsigned ways;
    uint64_t clock;
    int8_t *slot; /* per line: its way, or -1 */
} lru_cache;
static lru_cache code_cache = { .ways = 64 }, data_cache = { .ways = 8 };
static uint32_t prefetched = UINT32_MAX; /* the line after the last code line fetched */

/* The line of flash address `a`, or UINT32_MAX when `a` is not in flash. */
static uint32_t flash_line(uint64_t a)
{
    for (int i = 0; i < n_flash; i++)
        if (a - flash[i].start < flash[i].size)
            return (uint32_t)((a - flash[i].start) >> LINE_SHIFT);
    return UINT32_MAX;
}

/* Whether `line` was cached; it is afterwards. */
static bool cache_hit(lru_cache *c, uint32_t line)
{
    int s = c->slot[line];
    if (s >= 0) {
        c->used[s] = ++c->clock;
        return true;
    }
    unsigned victim = 0;
    for (unsigned i = 1; i < c->ways; i++)
        if (c->used[i] < c->used[victim])
            victim = i;
    if (c->used[victim])
        c->slot[c->line[victim]] = -1;
    c->line[victim] = line, c->used[victim] = ++c->clock;
    c->slot[line] = (int8_t)victim;
    return false;
}

static uint32_t last_fetched = UINT32_MAX;

static void fetch_code_line(uint32_t line)
{
    if (line == last_fetched) /* the most recent line again: a hit that changes nothing */
        return;
    last_fetched = line;
    bool hit = cache_hit(&code_cache, line) || line == prefetched;
    prefetched = line + 1;
    if (!hit)
        now.cycles[CLASS_FLASH_CODE] += wait_states;
}

static void on_load(unsigned int vcpu, qemu_plugin_meminfo_t info, uint64_t vaddr, void *udata)
{
    (void)vcpu, (void)info, (void)udata;
    uint32_t line = flash_line(vaddr);
    if (line != UINT32_MAX && !cache_hit(&data_cache, line))
        now.cycles[CLASS_FLASH_DATA] += wait_states;
}

/* ---- a translated block's dynamic part: taken branches, code fetched from flash ----------- */

typedef struct {
    uint64_t start;
    uint32_t first_line, last_line; /* code lines in flash it spans; first > last: none */
    uint64_t fallthrough;           /* the address after its last instruction, a branch */
} block;

static uint64_t pending_fallthrough; /* set by a branch that executed, until the next block */

static void on_block(unsigned int vcpu, void *udata)
{
    (void)vcpu;
    const block *b = udata;
    if (pending_fallthrough && b->start != pending_fallthrough)
        now.cycles[CLASS_BRANCH] += TRM_REFILL;
    pending_fallthrough = 0;
    for (uint32_t line = b->first_line; line <= b->last_line && line != UINT32_MAX; line++)
        fetch_code_line(line);
}

static void on_branch(unsigned int vcpu, void *udata)
{
    (void)vcpu;
    pending_fallthrough = ((const block *)udata)->fallthrough;
}

/* ---- windows ------------------------------------------------------------------------------ */

static FILE *out;
static bool armed, started;
static counts window_start, window_end, excluded, paused_at;
static uint64_t pauses, pauses_at_start, pauses_at_end, windows;

static uint64_t total(const counts *c)
{
    uint64_t sum = 0;
    for (int k = 0; k < N_CLASSES; k++)
        sum += c->cycles[k];
    return sum;
}

static void less(counts *a, const counts *b)
{
    for (int k = 0; k < N_CLASSES; k++)
        a->cycles[k] -= b->cycles[k];
    a->insns -= b->insns;
}

/* The counts so far with the paused stretches left out. */
static counts counted(void)
{
    counts c = now;
    less(&c, &excluded);
    return c;
}

static void emit_window(void)
{
    counts w = window_end;
    less(&w, &window_start);
    fprintf(out, "{\"window\": %" PRIu64 ", \"instructions\": %" PRIu64 ", \"cycles\": %" PRIu64
            ", \"pauses\": %" PRIu64 ", \"classes\": {", ++windows, w.insns, total(&w), pauses_at_end - pauses_at_start);
    for (int k = 0; k < N_CLASSES; k++)
        fprintf(out, "%s\"%s\": %" PRIu64, k ? ", " : "", trm_class_names[k], w.cycles[k]);
    fprintf(out, "}, \"flash_wait_cycles\": %" PRIu64 "}\n",
            w.cycles[CLASS_FLASH_CODE] + w.cycles[CLASS_FLASH_DATA]);
    fflush(out);
}

static void on_hook(unsigned int vcpu, void *udata)
{
    (void)vcpu;
    switch ((enum hook)(uintptr_t)udata) {
    case HOOK_ARM:
        armed = true, started = false;
        break;
    case HOOK_MARK:
        if (!armed)
            break;
        if (!started) {
            window_start = counted(), pauses_at_start = pauses, started = true;
            window_end = window_start, pauses_at_end = pauses;
        } else {
            window_end = counted(), pauses_at_end = pauses;
        }
        break;
    case HOOK_PAUSE:
        paused_at = now;
        pauses++;
        break;
    case HOOK_RESUME: {
        counts stretch = now;
        less(&stretch, &paused_at);
        for (int k = 0; k < N_CLASSES; k++)
            excluded.cycles[k] += stretch.cycles[k];
        excluded.insns += stretch.insns;
        break;
    }
    case HOOK_EMIT:
        if (armed && started)
            emit_window();
        armed = false;
        break;
    default:
        break;
    }
}

/* ---- translation ------------------------------------------------------------------------- */

static void on_translate(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
    (void)id;
    size_t n = qemu_plugin_tb_n_insns(tb);
    block *b = calloc(1, sizeof *b); /* lives as long as the translation may run */
    b->start = qemu_plugin_tb_vaddr(tb);
    b->first_line = 1, b->last_line = 0;
    trm_insn prev, cur;
    for (size_t i = 0; i < n; i++) {
        struct qemu_plugin_insn *insn = qemu_plugin_tb_get_insn(tb, i);
        uint64_t at = qemu_plugin_insn_vaddr(insn);
        char *text = qemu_plugin_insn_disas(insn);
        trm_decode(text, &cur);
        free(text);
        unsigned cycles = cur.cycles - trm_pipelined(i ? &prev : NULL, &cur);
        qemu_plugin_register_vcpu_insn_exec_inline(insn, QEMU_PLUGIN_INLINE_ADD_U64, &now.cycles[cur.cls], cycles);
        qemu_plugin_register_vcpu_insn_exec_inline(insn, QEMU_PLUGIN_INLINE_ADD_U64, &now.insns, 1);
        /* Loads only (loading instructions never store); QEMU 7.2 passes loads through a
         * MEM_RW filter but not through MEM_R, so the filter is RW. */
        if (n_flash && cur.loads)
            qemu_plugin_register_vcpu_mem_cb(insn, on_load, QEMU_PLUGIN_CB_NO_REGS, QEMU_PLUGIN_MEM_RW, NULL);
        uint32_t first = flash_line(at);
        if (first != UINT32_MAX) {
            uint32_t last = flash_line(at + qemu_plugin_insn_size(insn) - 1);
            last = last == UINT32_MAX ? first : last;
            if (b->first_line > b->last_line)
                b->first_line = first;
            b->last_line = last;
        }
        for (int h = 0; h < N_HOOKS; h++)
            if (hook_set[h] && at == hook_at[h])
                qemu_plugin_register_vcpu_insn_exec_cb(insn, on_hook, QEMU_PLUGIN_CB_NO_REGS, (void *)(uintptr_t)h);
        if (i == n - 1 && cur.branch) {
            b->fallthrough = at + qemu_plugin_insn_size(insn);
            qemu_plugin_register_vcpu_insn_exec_cb(insn, on_branch, QEMU_PLUGIN_CB_NO_REGS, b);
        }
        prev = cur;
    }
    qemu_plugin_register_vcpu_tb_exec_cb(tb, on_block, QEMU_PLUGIN_CB_NO_REGS, b);
}

/* ---- arguments --------------------------------------------------------------------------- */

/* QEMU says only that the plugin refused to load: the reason goes to its standard error. */
static int bad(const char *arg, const char *why)
{
    fprintf(stderr, "cyclemodel: argument '%s': %s\n", arg, why);
    return -1;
}

static int parse(const char *arg)
{
    const char *value = strchr(arg, '=');
    if (!value)
        return bad(arg, "write key=value");
    size_t key = (size_t)(value - arg);
    value++;
    char *end;
    if (key == 3 && strncmp(arg, "out", 3) == 0) {
        out = fopen(value, "a");
        return out ? 0 : bad(arg, "cannot open it for appending");
    }
    if (key == 2 && strncmp(arg, "ws", 2) == 0) {
        wait_states = (unsigned)strtoul(value, &end, 0);
        return *end ? bad(arg, "not a number") : 0;
    }
    if (key == 5 && strncmp(arg, "flash", 5) == 0) {
        if (n_flash == MAX_RANGES)
            return bad(arg, "too many flash ranges");
        flash[n_flash].start = strtoull(value, &end, 0);
        if (*end != ':')
            return bad(arg, "write flash=START:SIZE");
        flash[n_flash].size = strtoull(end + 1, &end, 0);
        if (*end)
            return bad(arg, "write flash=START:SIZE");
        if (flash[n_flash].size == 0 || flash[n_flash].size > MAX_FLASH)
            return bad(arg, "SIZE must be 1 to 64 MB");
        if ((flash[n_flash].size + (1u << LINE_SHIFT) - 1) >> LINE_SHIFT > n_lines)
            n_lines = (uint32_t)((flash[n_flash].size + (1u << LINE_SHIFT) - 1) >> LINE_SHIFT);
        n_flash++;
        return 0;
    }
    for (int h = 0; h < N_HOOKS; h++)
        if (key == strlen(hook_names[h]) && strncmp(arg, hook_names[h], key) == 0) {
            hook_at[h] = strtoull(value, &end, 0) & ~1ull; /* a Thumb symbol's bit 0 */
            hook_set[h] = true;
            return *end ? bad(arg, "not an address") : 0;
        }
    return bad(arg, "unknown key (out, ws, flash, arm, mark, pause, resume, emit)");
}

static void at_exit(qemu_plugin_id_t id, void *udata)
{
    (void)id, (void)udata;
    if (out)
        fclose(out);
}

PLUGIN_EXPORT int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info, int argc, char **argv)
{
    if (strcmp(info->target_name, "arm") != 0 || !info->system_emulation)
        return bad(info->target_name, "this model is of a Cortex-M4 under qemu-system-arm");
    for (int i = 0; i < argc; i++)
        if (parse(argv[i]))
            return -1;
    if (!out && hook_set[HOOK_EMIT])
        return bad("emit", "needs out=FILE");
    if (n_flash) {
        code_cache.slot = malloc(n_lines), data_cache.slot = malloc(n_lines);
        if (!code_cache.slot || !data_cache.slot)
            return bad("flash", "out of memory");
        memset(code_cache.slot, -1, n_lines), memset(data_cache.slot, -1, n_lines);
    }
    qemu_plugin_register_vcpu_tb_trans_cb(id, on_translate);
    qemu_plugin_register_atexit_cb(id, at_exit, NULL);
    return 0;
}
