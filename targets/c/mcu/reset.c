#include "reset.h"

#define MAGIC 0x52535421u             /* "RST!" */

typedef struct {
    uint32_t magic, reason, check, pc;
    char detail[RESET_DETAIL_BYTES];
} note;

extern note __reset_note;             /* cortexm.ld: the 64 bytes above the stack */

void reset_note(uint32_t reason, uint32_t pc, const char *detail)
{
    volatile note *n = &__reset_note;
    uint32_t i = 0;
    for (; detail && detail[i] && i + 1 < RESET_DETAIL_BYTES; i++)
        n->detail[i] = detail[i];
    for (; i < RESET_DETAIL_BYTES; i++)
        n->detail[i] = '\0';
    n->reason = reason;
    n->pc = pc;
    n->check = ~(MAGIC ^ reason ^ pc);
    n->magic = MAGIC;
}

uint32_t reset_take(uint32_t *pc, char detail[RESET_DETAIL_BYTES])
{
    volatile note *n = &__reset_note;
    uint32_t reason = RESET_POWER_ON;
    *pc = 0;
    detail[0] = '\0';
    if (n->magic == MAGIC && n->check == ~(MAGIC ^ n->reason ^ n->pc) && n->reason <= RESET_PANIC) {
        reason = n->reason;
        *pc = n->pc;
        for (uint32_t i = 0; i < RESET_DETAIL_BYTES; i++)
            detail[i] = n->detail[i];
        detail[RESET_DETAIL_BYTES - 1] = '\0';
    }
    reset_note(RESET_EXTERNAL, 0, "");
    return reason;
}
