#include "json_out.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

static void put(json_out *o, const char *s, size_t n)
{
    if (o->failed)
        return;
    if (o->len + n + 1 > o->cap) {
        size_t cap = o->cap ? o->cap : 1024;
        while (o->len + n + 1 > cap)
            cap *= 2;
        char *grown = realloc(o->buf, cap);
        if (!grown) {
            o->failed = 1;
            return;
        }
        o->buf = grown;
        o->cap = cap;
    }
    for (size_t i = 0; i < n; i++)
        o->buf[o->len++] = s[i];
    o->buf[o->len] = '\0';
}

static void put_cstr(json_out *o, const char *s)
{
    size_t n = 0;
    while (s[n])
        n++;
    put(o, s, n);
}

static void put_quoted(json_out *o, const char *s)
{
    put(o, "\"", 1);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        char esc[8];
        if (c == '"' || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)c;
            put(o, esc, 2);
        } else if (c < 0x20) {
            snprintf(esc, sizeof esc, "\\u%04x", c);
            put(o, esc, 6);
        } else {
            put(o, (const char *)&c, 1);
        }
    }
    put(o, "\"", 1);
}

/* The comma before an item and its key, if any. */
static void item(json_out *o, const char *key)
{
    if (o->count[o->depth]++ > 0)
        put(o, ", ", 2);
    if (key) {
        put_quoted(o, key);
        put(o, ": ", 2);
    }
}

void jo_open(json_out *o, const char *key, char bracket)
{
    item(o, key);
    put(o, &bracket, 1);
    if (o->depth + 1 >= JSON_OUT_MAX_DEPTH) {
        o->failed = 1;
        return;
    }
    o->count[++o->depth] = 0;
}

void jo_close(json_out *o, char bracket)
{
    put(o, &bracket, 1);
    if (o->depth > 0)
        o->depth--;
}

void jo_str(json_out *o, const char *key, const char *value)
{
    item(o, key);
    put_quoted(o, value);
}

void jo_double(json_out *o, const char *key, double value)
{
    item(o, key);
    if (!isfinite(value)) {
        put_cstr(o, "null");
        return;
    }
    /* The shortest %g form that reads back as the same double, as Python's repr does. */
    char text[32];
    for (int digits = 1; digits <= 17; digits++) {
        snprintf(text, sizeof text, "%.*g", digits, value);
        if (strtod(text, NULL) == value)
            break;
    }
    put_cstr(o, text);
}

void jo_uint(json_out *o, const char *key, uint64_t value)
{
    char text[24];
    item(o, key);
    snprintf(text, sizeof text, "%llu", (unsigned long long)value);
    put_cstr(o, text);
}

void jo_int(json_out *o, const char *key, int64_t value)
{
    char text[24];
    item(o, key);
    snprintf(text, sizeof text, "%lld", (long long)value);
    put_cstr(o, text);
}

void jo_bool(json_out *o, const char *key, int value)
{
    item(o, key);
    put_cstr(o, value ? "true" : "false");
}

void jo_null(json_out *o, const char *key)
{
    item(o, key);
    put_cstr(o, "null");
}
