/* Builds the one-line JSON result in memory after the run, so nothing is printed until the
 * whole result is known. */
#ifndef JSON_OUT_H
#define JSON_OUT_H

#include <stddef.h>
#include <stdint.h>

#define JSON_OUT_MAX_DEPTH 8

typedef struct {
    char *buf;
    size_t len, cap;
    int depth;
    int count[JSON_OUT_MAX_DEPTH]; /* items written at each nesting level, for the commas */
    int failed;                    /* out of memory or nesting too deep */
} json_out;

/* Containers: open with '{' or '[' (key NULL at the top level and inside arrays). */
void jo_open(json_out *o, const char *key, char bracket);
void jo_close(json_out *o, char bracket);

/* Values; key is NULL inside arrays. Non-finite doubles become null. */
void jo_str(json_out *o, const char *key, const char *value);
void jo_double(json_out *o, const char *key, double value);
void jo_uint(json_out *o, const char *key, uint64_t value);
void jo_int(json_out *o, const char *key, int64_t value);
void jo_bool(json_out *o, const char *key, int value);
void jo_null(json_out *o, const char *key);

#endif
