/* The core's products, each timed on its own by product_time (what the firmware's PRODUCT
 * runs): not part of the firmware, but linked with its objects (all but main.o) and run under
 * QEMU with -icount and semihosting by `skip2bench mcu-speed`, to compare two revisions' cores.
 * The shapes come on the command line (-semihosting-config arg=products,arg=KIND:X0:M:K:N,...,
 * product.h's codes); one line per product on the console: MACS TICKS CLOCK_HZ HASH, or
 * "nofit BYTES" for one whose operands do not fit the board's RAM. */
#include "bench.h"
#include "board.h"
#include "product.h"
#include "systick.h"

static char cmdline[4096];

/* The next number of the command line at *s, skipping one separator before it. */
static uint32_t next(const char **s)
{
    uint32_t v = 0;
    if (**s == ':' || **s == ' ')
        (*s)++;
    while (**s >= '0' && **s <= '9')
        v = v * 10u + (uint32_t)(*(*s)++ - '0');
    return v;
}

int main(void)
{
    systick_init(board.clock_hz);
    struct { char *text; int length; } block = { cmdline, (int)sizeof cmdline - 1 };
    semihost(0x15, &block); /* SYS_GET_CMDLINE: "products K:X:M:K:N ..." */
    const char *s = cmdline;
    while (*s && *s != ' ')
        s++;                  /* the program's name */
    ram_block room = ram_largest_left(0, -1);
    while (*s == ' ') {
        product_shape shape;
        uint8_t p[PRODUCT_REQUEST_BYTES];
        uint32_t v[5];
        for (int i = 0; i < 5; i++)
            v[i] = next(&s);
        p[0] = (uint8_t)v[0];
        p[1] = (uint8_t)v[1];
        for (int i = 0; i < 3; i++) {
            p[2 + 2 * i] = (uint8_t)v[2 + i];
            p[3 + 2 * i] = (uint8_t)(v[2 + i] >> 8);
        }
        char line[96], *end = line;
        if (!product_read(p, &shape)) {
            bench_print("invalid shape\n");
            break;
        }
        void *mem = product_place(&shape, room);
        if (!mem) {
            memcpy(line, "nofit", 5);
            end = bench_num(line + 5, product_bytes(&shape));
        } else {
            product_timing t = product_time(&shape, mem);
            end = bench_num(bench_num(bench_num(bench_num(line, t.macs), t.ticks), board.clock_hz), t.hash);
        }
        *end++ = '\n';
        *end = '\0';
        bench_print(line);
    }
    bench_exit();
    return 0;
}
