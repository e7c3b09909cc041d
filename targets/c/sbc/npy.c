#include "npy.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAGIC "\x93NUMPY"
#define MAGIC_LEN 6
#define PREAMBLE 10 /* magic, version (2 bytes), header length (2 bytes) */

/* The header dictionary: {'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), } */
typedef struct {
    char descr[16];
    int fortran, ndim;
    uint64_t shape[2];
} header;

static void skip_space(const char **s)
{
    while (**s == ' ')
        (*s)++;
}

static int expect(const char **s, char c)
{
    skip_space(s);
    if (**s != c)
        return -1;
    (*s)++;
    return 0;
}

/* A Python string literal in single quotes without escapes (all that headers contain). */
static int quoted(const char **s, char *out, size_t cap)
{
    size_t n = 0;
    if (expect(s, '\'') != 0)
        return -1;
    while (**s && **s != '\'') {
        if (n + 1 >= cap)
            return -1;
        out[n++] = *(*s)++;
    }
    out[n] = '\0';
    return expect(s, '\'');
}

static int parse_shape(const char **s, header *h, char *err, size_t err_len)
{
    h->ndim = 0;
    if (expect(s, '(') != 0)
        goto bad;
    for (;;) {
        skip_space(s);
        if (**s == ')')
            break;
        if (**s < '0' || **s > '9')
            goto bad;
        char *end;
        unsigned long long v = strtoull(*s, &end, 10);
        if (h->ndim == 2) {
            snprintf(err, err_len, "arrays of more than 2 dimensions are not supported");
            return -1;
        }
        h->shape[h->ndim++] = v;
        *s = end;
        skip_space(s);
        if (**s == ',')
            (*s)++;
        else if (**s != ')')
            goto bad;
    }
    (*s)++;
    if (h->ndim == 0) {
        snprintf(err, err_len, "0-dimensional arrays are not supported");
        return -1;
    }
    return 0;
bad:
    snprintf(err, err_len, "malformed shape in the .npy header");
    return -1;
}

static int parse_header(const char *s, header *h, char *err, size_t err_len)
{
    int seen = 0;
    char key[32];
    if (expect(&s, '{') != 0)
        goto bad;
    for (;;) {
        skip_space(&s);
        if (*s == '}')
            break;
        if (quoted(&s, key, sizeof key) != 0 || expect(&s, ':') != 0)
            goto bad;
        skip_space(&s);
        if (strcmp(key, "descr") == 0) {
            if (quoted(&s, h->descr, sizeof h->descr) != 0)
                goto bad;
            seen |= 1;
        } else if (strcmp(key, "fortran_order") == 0) {
            if (strncmp(s, "False", 5) == 0)
                h->fortran = 0, s += 5;
            else if (strncmp(s, "True", 4) == 0)
                h->fortran = 1, s += 4;
            else
                goto bad;
            seen |= 2;
        } else if (strcmp(key, "shape") == 0) {
            if (parse_shape(&s, h, err, err_len) != 0)
                return -1;
            seen |= 4;
        } else {
            goto bad;
        }
        skip_space(&s);
        if (*s == ',')
            s++;
        else if (*s != '}')
            goto bad;
    }
    s++;
    while (*s == ' ')
        s++;
    if (seen != 7 || strcmp(s, "\n") != 0)
        goto bad;
    if (h->fortran) {
        snprintf(err, err_len, "Fortran-order arrays are not supported (need C order)");
        return -1;
    }
    return 0;
bad:
    snprintf(err, err_len, "malformed .npy header");
    return -1;
}

static int read_file(const char *path, unsigned char **data, size_t *size, char *err,
                     size_t err_len)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, err_len, "cannot open: %s", strerror(errno));
        return -1;
    }
    size_t cap = 1 << 16, n = 0;
    unsigned char *buf = malloc(cap);
    for (;;) {
        if (!buf) {
            fclose(f);
            snprintf(err, err_len, "out of memory");
            return -1;
        }
        n += fread(buf + n, 1, cap - n, f);
        if (n < cap)
            break;
        unsigned char *bigger = realloc(buf, cap * 2);
        if (!bigger)
            free(buf);
        buf = bigger;
        cap *= 2;
    }
    int failed = ferror(f);
    fclose(f);
    if (failed) {
        free(buf);
        snprintf(err, err_len, "read error");
        return -1;
    }
    *data = buf;
    *size = n;
    return 0;
}

static uint64_t le(const unsigned char *p, int bytes)
{
    uint64_t v = 0;
    for (int i = bytes - 1; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

/* Reads the file and checks the header, the dtype (labels: '<i4' / '<i8', else '<f4') and
 * the data size; *payload points at the data inside *file, *wide says 8-byte integers. */
static int load(const char *path, npy_array *out, int labels, unsigned char **file,
                const unsigned char **payload, int *wide, char *err, size_t err_len)
{
    size_t size;
    header h = { "", 0, 0, { 1, 1 } };
    memset(out, 0, sizeof *out);
    if (read_file(path, file, &size, err, err_len) != 0)
        return -1;
    const unsigned char *b = *file;
    if (size < PREAMBLE || memcmp(b, MAGIC, MAGIC_LEN) != 0) {
        snprintf(err, err_len, "not a .npy file (bad magic)");
        goto fail;
    }
    if (b[6] != 1 || b[7] != 0) {
        snprintf(err, err_len, "unsupported .npy format version %d.%d (need 1.0)", b[6], b[7]);
        goto fail;
    }
    size_t hlen = (size_t)le(b + 8, 2);
    char text[1024];
    if (PREAMBLE + hlen > size) {
        snprintf(err, err_len, "truncated .npy header");
        goto fail;
    }
    if (hlen >= sizeof text || memchr(b + PREAMBLE, '\0', hlen)) {
        snprintf(err, err_len, "malformed .npy header");
        goto fail;
    }
    memcpy(text, b + PREAMBLE, hlen);
    text[hlen] = '\0';
    if (parse_header(text, &h, err, err_len) != 0)
        goto fail;
    *wide = labels && strcmp(h.descr, "<i8") == 0;
    if (labels ? !*wide && strcmp(h.descr, "<i4") != 0 : strcmp(h.descr, "<f4") != 0) {
        snprintf(err, err_len, "dtype '%s' is not supported here (need %s)", h.descr,
                 labels ? "'<i4' or '<i8'" : "'<f4', float32");
        goto fail;
    }
    if (h.shape[0] > UINT32_MAX || h.shape[1] > UINT32_MAX) {
        snprintf(err, err_len, "array too large");
        goto fail;
    }
    uint64_t item = *wide ? 8 : 4, have = size - PREAMBLE - hlen;
    uint64_t need = h.shape[0] * h.shape[1] * item; /* below 2^64 for shapes checked above */
    if (have != need || have / item != h.shape[0] * h.shape[1]) {
        snprintf(err, err_len, "%llu data bytes where shape and dtype need %llu%s",
                 (unsigned long long)have, (unsigned long long)need,
                 have < need ? " (truncated file)" : "");
        goto fail;
    }
    out->ndim = h.ndim;
    out->shape[0] = (uint32_t)h.shape[0];
    out->shape[1] = (uint32_t)h.shape[1];
    out->count = (size_t)out->shape[0] * out->shape[1];
    *payload = b + PREAMBLE + hlen;
    return 0;
fail:
    free(*file);
    return -1;
}

int npy_load_f32(const char *path, npy_array *out, char *err, size_t err_len)
{
    unsigned char *file;
    const unsigned char *p;
    int wide;
    if (load(path, out, 0, &file, &p, &wide, err, err_len) != 0)
        return -1;
    out->f32 = malloc(out->count ? out->count * sizeof(float) : 1);
    if (out->f32)
        for (size_t i = 0; i < out->count; i++) {
            uint32_t bits = (uint32_t)le(p + 4 * i, 4);
            memcpy(&out->f32[i], &bits, sizeof bits);
        }
    free(file);
    if (!out->f32) {
        snprintf(err, err_len, "out of memory");
        return -1;
    }
    return 0;
}

int npy_load_labels(const char *path, npy_array *out, char *err, size_t err_len)
{
    unsigned char *file;
    const unsigned char *p;
    int wide;
    if (load(path, out, 1, &file, &p, &wide, err, err_len) != 0)
        return -1;
    out->i32 = malloc(out->count ? out->count * sizeof(int32_t) : 1);
    if (!out->i32) {
        free(file);
        snprintf(err, err_len, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < out->count; i++) {
        int64_t v = wide ? (int64_t)le(p + 8 * i, 8) : (int32_t)(uint32_t)le(p + 4 * i, 4);
        if (v < INT32_MIN || v > INT32_MAX) {
            snprintf(err, err_len, "label %lld at index %zu does not fit int32", (long long)v, i);
            free(file);
            npy_free(out);
            return -1;
        }
        out->i32[i] = (int32_t)v;
    }
    free(file);
    return 0;
}

void npy_free(npy_array *a)
{
    free(a->f32);
    free(a->i32);
    a->f32 = NULL;
    a->i32 = NULL;
}

int npy_save_f32(const char *path, const float *data, int ndim, const uint32_t shape[2], char *err,
                 size_t err_len)
{
    char text[128];
    char dims[48];
    if (ndim == 1)
        snprintf(dims, sizeof dims, "%lu,", (unsigned long)shape[0]);
    else
        snprintf(dims, sizeof dims, "%lu, %lu", (unsigned long)shape[0], (unsigned long)shape[1]);
    int n = snprintf(text, sizeof text, "{'descr': '<f4', 'fortran_order': False, 'shape': (%s), }",
                     dims);
    /* Pad with spaces and a newline so the data starts 64-byte aligned, as NumPy writes it. */
    size_t hlen = (size_t)n + 1;
    hlen += (64 - (PREAMBLE + hlen) % 64) % 64;
    unsigned char pre[PREAMBLE] = { 0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0,
                                    (unsigned char)(hlen & 0xff), (unsigned char)(hlen >> 8) };
    size_t count = ndim == 1 ? shape[0] : (size_t)shape[0] * shape[1];
    FILE *f = fopen(path, "wb");
    if (!f) {
        snprintf(err, err_len, "cannot create: %s", strerror(errno));
        return -1;
    }
    fwrite(pre, 1, sizeof pre, f);
    fwrite(text, 1, (size_t)n, f);
    for (size_t i = (size_t)n; i + 1 < hlen; i++)
        fputc(' ', f);
    fputc('\n', f);
    for (size_t i = 0; i < count; i++) {
        uint32_t bits;
        memcpy(&bits, &data[i], sizeof bits);
        unsigned char le_bytes[4] = { (unsigned char)bits, (unsigned char)(bits >> 8),
                                      (unsigned char)(bits >> 16), (unsigned char)(bits >> 24) };
        fwrite(le_bytes, 1, 4, f);
    }
    int failed = ferror(f);
    if (fclose(f) != 0 || failed) {
        snprintf(err, err_len, "write error");
        return -1;
    }
    return 0;
}
