#include "job_json.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const char *s, *start;
    char *out; /* next free byte of storage */
    job_json *j;
} parser;

static int fail(parser *p, const char *what)
{
    snprintf(p->j->err, sizeof p->j->err, "%s at byte %ld", what, (long)(p->s - p->start));
    return -1;
}

static void skip_ws(parser *p)
{
    while (*p->s == ' ' || *p->s == '\t' || *p->s == '\n' || *p->s == '\r')
        p->s++;
}

static int hex4(const char *s, unsigned *v)
{
    *v = 0;
    for (int i = 0; i < 4; i++) {
        char c = s[i];
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
              : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
        if (d < 0)
            return -1;
        *v = *v << 4 | (unsigned)d;
    }
    return 0;
}

static void put_utf8(parser *p, unsigned cp)
{
    if (cp < 0x80) {
        *p->out++ = (char)cp;
    } else if (cp < 0x800) {
        *p->out++ = (char)(0xC0 | cp >> 6);
        *p->out++ = (char)(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        *p->out++ = (char)(0xE0 | cp >> 12);
        *p->out++ = (char)(0x80 | (cp >> 6 & 0x3F));
        *p->out++ = (char)(0x80 | (cp & 0x3F));
    } else {
        *p->out++ = (char)(0xF0 | cp >> 18);
        *p->out++ = (char)(0x80 | (cp >> 12 & 0x3F));
        *p->out++ = (char)(0x80 | (cp >> 6 & 0x3F));
        *p->out++ = (char)(0x80 | (cp & 0x3F));
    }
}

/* A JSON string, decoded into storage (never longer than its source, so storage suffices). */
static int string(parser *p, char **out)
{
    if (*p->s != '"')
        return fail(p, "expected a string");
    p->s++;
    *out = p->out;
    for (;;) {
        unsigned char c = (unsigned char)*p->s;
        if (c == '"')
            break;
        if (c == '\0')
            return fail(p, "unterminated string");
        if (c < 0x20)
            return fail(p, "control character in string");
        p->s++;
        if (c != '\\') {
            *p->out++ = (char)c;
            continue;
        }
        char e = *p->s++;
        const char *plain = strchr("\"\\/bfnrt", e);
        if (e && plain) {
            *p->out++ = "\"\\/\b\f\n\r\t"[plain - "\"\\/bfnrt"];
            continue;
        }
        unsigned cp, lo;
        if (e != 'u' || hex4(p->s, &cp) != 0)
            return fail(p, "bad escape in string");
        p->s += 4;
        if (cp >= 0xD800 && cp < 0xDC00) {
            if (p->s[0] != '\\' || p->s[1] != 'u' || hex4(p->s + 2, &lo) != 0 || lo < 0xDC00
                || lo > 0xDFFF)
                return fail(p, "unpaired surrogate in string");
            p->s += 6;
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
        } else if ((cp >= 0xDC00 && cp <= 0xDFFF) || cp == 0) {
            return fail(p, "invalid \\u escape in string");
        }
        put_utf8(p, cp);
    }
    p->s++;
    *p->out++ = '\0';
    return 0;
}

static int digits(parser *p)
{
    const char *from = p->s;
    while (*p->s >= '0' && *p->s <= '9')
        p->s++;
    return p->s > from ? 0 : -1;
}

/* A JSON number by the grammar of RFC 8259; its literal text is kept for exact integers. */
static int number(parser *p, char **out)
{
    const char *from = p->s;
    if (*p->s == '-')
        p->s++;
    if (*p->s == '0')
        p->s++;
    else if (digits(p) != 0)
        return fail(p, "malformed number");
    if (*p->s == '.') {
        p->s++;
        if (digits(p) != 0)
            return fail(p, "malformed number");
    }
    if (*p->s == 'e' || *p->s == 'E') {
        p->s++;
        if (*p->s == '+' || *p->s == '-')
            p->s++;
        if (digits(p) != 0)
            return fail(p, "malformed number");
    }
    size_t n = (size_t)(p->s - from);
    *out = p->out;
    memcpy(p->out, from, n);
    p->out += n;
    *p->out++ = '\0';
    return 0;
}

static int value(parser *p, job_entry *e)
{
    const char *s = p->s;
    if (*s == '"') {
        e->type = JOB_STRING;
        return string(p, &e->text);
    }
    if (strncmp(s, "true", 4) == 0 || strncmp(s, "false", 5) == 0) {
        e->type = JOB_BOOL;
        e->boolean = *s == 't';
        p->s += e->boolean ? 4 : 5;
        e->text = p->out;
        *p->out++ = '\0';
        return 0;
    }
    if (*s == '-' || (*s >= '0' && *s <= '9')) {
        e->type = JOB_NUMBER;
        return number(p, &e->text);
    }
    if (strncmp(s, "null", 4) == 0 || *s == '{' || *s == '[')
        return fail(p, "values must be numbers, booleans or strings");
    return fail(p, "expected a value");
}

int job_json_parse(job_json *j, const char *text)
{
    memset(j, 0, sizeof *j);
    /* Decoded keys and values never outgrow the text, plus one terminator per string. */
    j->storage = malloc(strlen(text) + 2 * JOB_JSON_MAX_KEYS + 1);
    if (!j->storage) {
        snprintf(j->err, sizeof j->err, "out of memory");
        return -1;
    }
    parser p = { text, text, j->storage, j };
    skip_ws(&p);
    if (*p.s != '{')
        return fail(&p, "expected '{' (job.json must be one JSON object)");
    p.s++;
    skip_ws(&p);
    if (*p.s == '}')
        p.s++;
    else
        for (;;) {
            if (j->n == JOB_JSON_MAX_KEYS)
                return fail(&p, "too many keys");
            job_entry *e = &j->entries[j->n];
            if (string(&p, &e->key) != 0)
                return -1;
            for (int i = 0; i < j->n; i++)
                if (strcmp(j->entries[i].key, e->key) == 0) {
                    snprintf(j->err, sizeof j->err, "duplicate key '%s'", e->key);
                    return -1;
                }
            skip_ws(&p);
            if (*p.s != ':')
                return fail(&p, "expected ':'");
            p.s++;
            skip_ws(&p);
            if (value(&p, e) != 0)
                return -1;
            j->n++;
            skip_ws(&p);
            if (*p.s == '}') {
                p.s++;
                break;
            }
            if (*p.s != ',')
                return fail(&p, "expected ',' or '}'");
            p.s++;
            skip_ws(&p);
        }
    skip_ws(&p);
    if (*p.s != '\0')
        return fail(&p, "unexpected text after the object");
    return 0;
}

void job_json_free(job_json *j)
{
    free(j->storage);
    j->storage = NULL;
}

static job_entry *find(job_json *j, const char *key, job_type type, const char *type_name,
                       int *status)
{
    for (int i = 0; i < j->n; i++)
        if (strcmp(j->entries[i].key, key) == 0) {
            if (j->entries[i].type == type) {
                *status = 1;
                return &j->entries[i];
            }
            snprintf(j->err, sizeof j->err, "'%s' must be %s", key, type_name);
            *status = -1;
            return NULL;
        }
    *status = 0;
    return NULL;
}

int job_json_string(job_json *j, const char *key, const char **out)
{
    int status;
    job_entry *e = find(j, key, JOB_STRING, "a string", &status);
    if (e)
        *out = e->text;
    return status;
}

int job_json_bool(job_json *j, const char *key, int *out)
{
    int status;
    job_entry *e = find(j, key, JOB_BOOL, "true or false", &status);
    if (e)
        *out = e->boolean;
    return status;
}

int job_json_number(job_json *j, const char *key, double *out)
{
    int status;
    job_entry *e = find(j, key, JOB_NUMBER, "a number", &status);
    if (e)
        *out = strtod(e->text, NULL);
    return status;
}

int job_json_int(job_json *j, const char *key, int64_t lo, int64_t hi, int64_t *out)
{
    int status;
    job_entry *e = find(j, key, JOB_NUMBER, "an integer", &status);
    if (!e)
        return status;
    char *end;
    errno = 0;
    long long v = strtoll(e->text, &end, 10);
    if (*end != '\0' || errno == ERANGE || v < lo || v > hi) {
        snprintf(j->err, sizeof j->err, "'%s' must be an integer in [%lld, %lld], got %s", key,
                 (long long)lo, (long long)hi, e->text);
        return -1;
    }
    *out = v;
    return 1;
}
