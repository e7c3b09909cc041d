/* A strict parser for job.json: one flat JSON object whose values are numbers, booleans or
 * strings (docs/runner-contract.md). Errors name the key or the offending position. */
#ifndef JOB_JSON_H
#define JOB_JSON_H

#include <stddef.h>
#include <stdint.h>

#define JOB_JSON_MAX_KEYS 64

typedef enum { JOB_NUMBER, JOB_BOOL, JOB_STRING } job_type;

typedef struct {
    char *key;
    job_type type;
    char *text;   /* decoded string, or the number's literal text */
    int boolean;
} job_entry;

typedef struct {
    int n;
    job_entry entries[JOB_JSON_MAX_KEYS];
    char *storage; /* owns every key and text */
    char err[256];
} job_json;

/* Parses text; returns 0, or -1 with the reason in j->err. Free with job_json_free either way. */
int job_json_parse(job_json *j, const char *text);
void job_json_free(job_json *j);

/* Typed getters: 1 when found and stored in *out, 0 when the key is absent, -1 (reason in
 * j->err) when the value has another type or, for integers, is not an integer in [lo, hi]. */
int job_json_string(job_json *j, const char *key, const char **out);
int job_json_bool(job_json *j, const char *key, int *out);
int job_json_number(job_json *j, const char *key, double *out);
int job_json_int(job_json *j, const char *key, int64_t lo, int64_t hi, int64_t *out);

#endif
