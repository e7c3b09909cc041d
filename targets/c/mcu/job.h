/* RUN: a job checked against the model slot, the data set and the RAM left, answered, then run
 * with the core while the firmware asks the host for rows (streamed jobs), reports each epoch
 * (PROGRESS) and the result (DONE). */
#ifndef JOB_H
#define JOB_H

#include "link.h"

#define JOB_RUN_BYTES 120u

/* Answers the RUN request; when it started the job, returns only once the job has ended (DONE
 * answered, or abandoned because the host stopped answering). */
void job_on_run(const link_frame *f);

#endif
