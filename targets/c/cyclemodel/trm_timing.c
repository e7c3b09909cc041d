#include "trm_timing.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

const char *const trm_class_names[N_CLASSES] = {
    "alu", "multiply", "divide", "load", "store", "load_store_multiple", "branch",
    "fp", "fp_multiply_accumulate", "fp_divide_sqrt", "fp_load_store", "flash_wait_code",
    "flash_wait_data",
};

static bool starts(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

static bool is_any(const char *s, const char *const *names)
{
    for (; *names; names++)
        if (strcmp(s, *names) == 0)
            return true;
    return false;
}

static const char *const CONDITIONS[] = { "eq", "ne", "cs", "hs", "cc", "lo", "mi", "pl", "vs", "vc",
                                          "hi", "ls", "ge", "lt", "gt", "le", "al", NULL };

/* r0-r12, sp, lr, pc and their other names as register numbers; -1 for anything else. */
static int core_register(const char *s, size_t n)
{
    static const char *const names[] = { "sb", "sl", "fp", "ip", "sp", "lr", "pc" };
    static const int numbers[] = { 9, 10, 11, 12, 13, 14, 15 };
    if (n >= 2 && s[0] == 'r' && isdigit((unsigned char)s[1])) {
        int r = 0;
        for (size_t i = 1; i < n; i++) {
            if (!isdigit((unsigned char)s[i]))
                return -1;
            r = r * 10 + (s[i] - '0');
        }
        return r <= 15 ? r : -1;
    }
    for (int i = 0; i < 7; i++)
        if (n == 2 && strncmp(s, names[i], 2) == 0)
            return numbers[i];
    return -1;
}

/* Registers named in `list` ("{r4, r5, lr}", "{s0-s7}", "{d8-d15}"): core registers as a
 * bitmask in *core, and the count of 32-bit words the list moves. */
static unsigned list_words(const char *list, unsigned *core)
{
    unsigned words = 0;
    *core = 0;
    const char *p = strchr(list, '{');
    if (!p)
        return 0;
    for (p++; *p && *p != '}';) {
        while (*p == ' ' || *p == ',')
            p++;
        const char *name = p;
        while (*p && *p != ',' && *p != '}' && *p != '-')
            p++;
        size_t n = (size_t)(p - name);
        while (n && name[n - 1] == ' ')
            n--;
        int first = -1, last = -1, per = 1;
        if (n >= 2 && (name[0] == 's' || name[0] == 'd') && isdigit((unsigned char)name[1])) {
            per = name[0] == 'd' ? 2 : 1;
            sscanf(name + 1, "%d", &first);
        } else {
            first = core_register(name, n);
        }
        last = first;
        if (*p == '-') { /* a range: its last register */
            p++;
            const char *end = p;
            while (*p && *p != ',' && *p != '}')
                p++;
            if (per == 1 && core_register(end, (size_t)(p - end)) >= 0)
                last = core_register(end, (size_t)(p - end));
            else
                sscanf(end + 1, "%d", &last);
        }
        if (first < 0 || last < first)
            continue;
        words += (unsigned)(last - first + 1) * (unsigned)per;
        if (per == 1 && name[0] != 's')
            for (int r = first; r <= last && r < 16; r++)
                *core |= 1u << r;
    }
    return words;
}

/* Core registers inside the brackets of an address operand. */
static unsigned address_registers(const char *ops)
{
    unsigned regs = 0;
    const char *p = strchr(ops, '[');
    if (!p)
        return 0;
    for (p++; *p && *p != ']';) {
        const char *name = p;
        while (*p && *p != ',' && *p != ']')
            p++;
        while (*name == ' ')
            name++;
        size_t n = 0;
        while (n < (size_t)(p - name) && isalnum((unsigned char)name[n]))
            n++;
        int r = core_register(name, n);
        if (r >= 0)
            regs |= 1u << r;
        if (*p == ',')
            p++;
    }
    return regs;
}

static int first_register(const char *ops)
{
    while (*ops == ' ')
        ops++;
    size_t n = 0;
    while (isalnum((unsigned char)ops[n]))
        n++;
    return core_register(ops, n);
}

static void fp_timing(const char *m, const char *ops, trm_insn *t)
{
    static const char *const mac[] = { "vmla", "vmls", "vnmla", "vnmls", "vfma", "vfms", "vfnma", "vfnms", NULL };
    static const char *const slow[] = { "vdiv", "vsqrt", NULL };
    unsigned core;
    if (is_any(m, mac)) {
        t->cls = CLASS_FP_MAC, t->cycles = 3;
    } else if (is_any(m, slow)) {
        t->cls = CLASS_FP_DIV, t->cycles = 14;
    } else if (strcmp(m, "vldr") == 0 || strcmp(m, "vstr") == 0) {
        t->cls = CLASS_FP_MEM, t->cycles = first_register(ops) < 0 && ops[strspn(ops, " ")] == 'd' ? 3 : 2;
        t->loads = m[1] == 'l';
    } else if (starts(m, "vldm") || starts(m, "vstm") || strcmp(m, "vpush") == 0 || strcmp(m, "vpop") == 0) {
        t->cls = CLASS_FP_MEM, t->cycles = 1 + list_words(ops, &core);
        t->loads = starts(m, "vldm") || strcmp(m, "vpop") == 0;
    } else if (strcmp(m, "vmov") == 0) {
        int commas = 0;
        for (const char *p = ops; *p; p++)
            commas += *p == ',';
        /* two core registers to or from two singles or a double: 2; everything else 1 */
        t->cls = CLASS_FP, t->cycles = commas >= 2 ? 2 : 1;
    } else {
        t->cls = CLASS_FP, t->cycles = 1;
    }
}

void trm_decode(const char *disas, trm_insn *t)
{
    char m[16];
    size_t n = 0;
    while (disas[n] == ' ')
        disas++;
    while (disas[n] && disas[n] != ' ' && disas[n] != '.' && n < sizeof m - 1) {
        m[n] = (char)tolower((unsigned char)disas[n]);
        n++;
    }
    m[n] = 0;
    const char *ops = strchr(disas, ' ');
    ops = ops ? ops : "";
    *t = (trm_insn){ .cls = CLASS_ALU, .cycles = 1, .dest = -1 };
    unsigned core;
    int rd = first_register(ops);

    if (m[0] == 'v') {
        fp_timing(m, ops, t);
    } else if (strcmp(m, "b") == 0 || strcmp(m, "bl") == 0 || strcmp(m, "bx") == 0 || strcmp(m, "blx") == 0
               || (m[0] == 'b' && is_any(m + 1, CONDITIONS)) || strcmp(m, "cbz") == 0 || strcmp(m, "cbnz") == 0) {
        t->cls = CLASS_BRANCH, t->cycles = 1, t->branch = true;
    } else if (strcmp(m, "tbb") == 0 || strcmp(m, "tbh") == 0) {
        t->cls = CLASS_BRANCH, t->cycles = 2, t->branch = true;
    } else if (starts(m, "ldm") || strcmp(m, "pop") == 0 || starts(m, "stm") || strcmp(m, "push") == 0) {
        t->cls = CLASS_MULTIPLE, t->cycles = 1 + list_words(ops, &core);
        t->branch = (core >> 15) & 1;
        t->loads = starts(m, "ldm") || strcmp(m, "pop") == 0;
    } else if (strcmp(m, "ldrd") == 0 || strcmp(m, "strd") == 0) {
        t->cls = m[0] == 'l' ? CLASS_LOAD : CLASS_STORE, t->cycles = 3;
        t->loads = m[0] == 'l';
    } else if (starts(m, "ldr")) {
        t->cls = CLASS_LOAD, t->cycles = 2, t->loads = true;
        t->branch = rd == 15;
        t->single_load = rd != 15, t->dest = rd, t->address = address_registers(ops);
    } else if (starts(m, "str")) {
        t->cls = CLASS_STORE, t->cycles = 2;
        t->single_store = true, t->address = address_registers(ops);
    } else if (strcmp(m, "sdiv") == 0 || strcmp(m, "udiv") == 0) {
        t->cls = CLASS_DIV, t->cycles = TRM_DIVIDE;
    } else if (strstr(m, "mul") || strstr(m, "mla") || strstr(m, "mls") || strstr(m, "mlal") || strstr(m, "mlsl")) {
        t->cls = CLASS_MUL, t->cycles = 1;
    } else if (rd == 15 && !starts(m, "cmp") && !starts(m, "tst") && !starts(m, "cmn") && !starts(m, "teq")) {
        t->cls = CLASS_BRANCH, t->cycles = 1, t->branch = true; /* MOV PC, ADD PC, ...: 1 + P */
    }
}

unsigned trm_pipelined(const trm_insn *prev, const trm_insn *cur)
{
    if (!prev || !prev->single_load || !(cur->single_load || cur->single_store))
        return 0;
    return prev->dest >= 0 && ((cur->address >> prev->dest) & 1) ? 0 : 1;
}
