/* RUN: a job checked against the model slot, the data set and the RAM left, answered, then run
 * with the core while the firmware asks the host for rows (streamed jobs), reports each epoch
 * (PROGRESS) and the result (DONE). */
#ifndef JOB_H
#define JOB_H

#include <stdint.h>

#include "link.h"

/* Bytes of a RUN field by its type in skip2_job.def (NONE: not sent). */
#define RUN_SIZE_U8 1
#define RUN_SIZE_U32 4
#define RUN_SIZE_I32 4
#define RUN_SIZE_F32 4
#define RUN_SIZE_NONE 0
#define RUN_STREAM_AT 2        /* RUN's own bytes: stream the inputs, */
#define RUN_MODEL_HASH_AT 32   /* the model's hash */
#define RUN_DATA_HASH_AT 64    /* and the data set's, 32 bytes each */

/* One member a field, one byte longer than the field's extent in RUN: the union's size is one
 * more than RUN's length (the furthest field's end). */
union run_extent {
    uint8_t hashes[RUN_DATA_HASH_AT + 32 + 1];
#define SKIP2_METHOD(ENUM, name, cache)
#define SKIP2_JOB_FIELD(name, type, lo, hi, def, methods, source, run_type, run_at) \
    uint8_t name[run_at + RUN_SIZE_##run_type + 1];
#include "skip2_job.def"
#undef SKIP2_METHOD
#undef SKIP2_JOB_FIELD
};
#define JOB_RUN_BYTES ((uint32_t)sizeof(union run_extent) - 1u)

/* Answers the RUN request; when it started the job, returns only once the job has ended (DONE
 * answered, or abandoned because the host stopped answering). */
void job_on_run(const link_frame *f);

#endif
