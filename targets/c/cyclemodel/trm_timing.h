/* Cycle counts of Cortex-M4 instructions by the Technical Reference Manual (ARM DDI 0439B,
 * r0p1): Table 3-1 (processor instructions), section 3.3.2 (load/store pipelining) and
 * Table 7-1 (FPU instructions), from an instruction's disassembly. README.md lists every
 * count and assumption. */
#ifndef TRM_TIMING_H
#define TRM_TIMING_H

#include <stdbool.h>

/* Pipeline refill after a taken branch: the TRM gives 1 to 3 (target alignment and width,
 * early speculation); the model takes the middle. */
#define TRM_REFILL 2
/* SDIV/UDIV take 2 to 12 cycles, by the operands' values, which a plugin cannot read: the
 * model takes the middle. */
#define TRM_DIVIDE 7

typedef enum {
    CLASS_ALU, CLASS_MUL, CLASS_DIV, CLASS_LOAD, CLASS_STORE, CLASS_MULTIPLE, CLASS_BRANCH,
    CLASS_FP, CLASS_FP_MAC, CLASS_FP_DIV, CLASS_FP_MEM, CLASS_FLASH_CODE, CLASS_FLASH_DATA,
    N_CLASSES
} trm_class;

extern const char *const trm_class_names[N_CLASSES];

typedef struct {
    trm_class cls;
    unsigned cycles;     /* issue cycles, before pipelining with the previous instruction */
    bool branch;         /* may leave the sequential path: taken, it adds TRM_REFILL */
    bool single_load;    /* LDR/LDRB/LDRH/LDRSB/LDRSH (not LDRD, not to PC) */
    bool single_store;   /* STR/STRB/STRH (not STRD) */
    bool loads;          /* reads memory */
    int dest;            /* a single load's destination register, -1 otherwise */
    unsigned address;    /* registers inside [...] (bit n: rn) */
} trm_insn;

/* The instruction as the disassembler prints it, e.g. "vmla.f32 s0, s1, s2". */
void trm_decode(const char *disas, trm_insn *out);

/* Cycles `cur` saves by following `prev` (section 3.3.2): a single load or store after a single
 * load whose destination it does not use for its address issues in one cycle. */
unsigned trm_pipelined(const trm_insn *prev, const trm_insn *cur);

#endif
