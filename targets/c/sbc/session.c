/* One line in per job: {"dir": JOBDIR, "job": {...job.json...}} (the host writes the keys in this
 * order); out, a progress line {"dir": JOBDIR, "epoch": n, "of": N} as each epoch ends (written by
 * the child), then one reply line: {"dir": JOBDIR, "returncode": N, "stdout": "...",
 * "stderr": "...", "wall_s": S}. The session writes JOBDIR/job.json, then forks a child that runs
 * the job in a process group of its own, and writes its "PID STARTTIME" to JOBDIR/runner.pid (so
 * the host can kill it, and only it); a child killed by a signal reports -SIGNAL. Its peak RSS
 * starts, as a fresh runner's would, from this small process's. wall_s is the child's time on the
 * board's clock: what the record books as the runner's. */
#define _POSIX_C_SOURCE 200809L

#include "session.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "job_json.h"
#include "json_out.h"
#include "port_posix.h"

/* A reply field holds at most this much of what a job printed: a result is a few kB, and a
 * runaway job's output must not grow the session (whose size every later child inherits). */
#define OUTPUT_MAX (1u << 20)

static const char JOB_KEY[] = ", \"job\": ";

/* In a job's child: the session's stdout (the job's own goes to a file) and the job's folder as a
 * JSON string, for its progress lines; -1 and NULL elsewhere. */
static int progress_fd = -1;
static char *progress_dir;

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static char *path_in(const char *dir, const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *path = malloc(n);
    if (path)
        snprintf(path, n, "%s/%s", dir, name);
    return path;
}

/* mkdir -p: 0, or -1 with errno. */
static int make_dirs(char *dir)
{
    for (char *p = dir + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        int failed = mkdir(dir, 0777) != 0 && errno != EEXIST;
        *p = '/';
        if (failed)
            return -1;
    }
    return mkdir(dir, 0777) != 0 && errno != EEXIST ? -1 : 0;
}

/* The request's job folder (decoded by the strict job.json parser: `{"dir": "..."}` is a flat
 * object) and its job object's text, in place; NULL dir when the line is not a request. A `"`
 * inside the folder's string is escaped, so the first `, "job": ` is the envelope's. */
static char *parse_request(char *line, job_json *envelope, char **job)
{
    size_t n = strlen(line);
    while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        line[--n] = '\0';
    char *at = strstr(line, JOB_KEY);
    if (!at || n < 2 || line[n - 1] != '}')
        return NULL;
    *job = at + strlen(JOB_KEY);
    line[n - 1] = '\0';               /* the envelope's closing brace */
    at[0] = '}';                      /* `{"dir": "..."}` */
    at[1] = '\0';
    const char *dir;
    if (job_json_parse(envelope, line) != 0 || job_json_string(envelope, "dir", &dir) != 1)
        return NULL;
    return (char *)dir;
}

static int write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    int failed = fputs(text, f) < 0;
    return fclose(f) != 0 || failed ? -1 : 0;
}

/* The last OUTPUT_MAX bytes of a file at most, NUL-terminated, in a buffer of their size; NULL
 * if it cannot be read. */
static char *read_tail(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    long size = fseek(f, 0, SEEK_END) == 0 ? ftell(f) : -1;
    long keep = size > (long)OUTPUT_MAX ? (long)OUTPUT_MAX : size;
    char *text = keep >= 0 && fseek(f, size - keep, SEEK_SET) == 0 ? malloc((size_t)keep + 1) : NULL;
    if (text)
        text[fread(text, 1, (size_t)keep, f)] = '\0';
    fclose(f);
    return text;
}

/* The child's pid file, "PID STARTTIME", written by the session: under qemu-user a process's view
 * of its own /proc entry is the emulator's, not the kernel's, while its child's is the kernel's
 * (the one the host's kill compares). Read before the child is waited for, while it exists. */
static void write_pid_file(const char *dir, pid_t pid)
{
    char stat_name[64], line[1024];
    snprintf(stat_name, sizeof stat_name, "/proc/%ld/stat", (long)pid);
    FILE *stat = fopen(stat_name, "r");
    const char *start = "";
    if (stat && fgets(line, sizeof line, stat)) {
        /* Field 22, the start time, counted after the command name's closing parenthesis. */
        char *p = strrchr(line, ')');
        for (int field = 2; p && field < 22; field++)
            p = strchr(p + 1, ' ');
        if (p) {
            start = p + 1;
            p[1 + strcspn(p + 1, " \n")] = '\0';
        }
    }
    if (stat)
        fclose(stat);
    char *path = path_in(dir, "runner.pid");
    FILE *pid_file = path ? fopen(path, "w") : NULL;
    if (pid_file) {
        fprintf(pid_file, "%ld %s\n", (long)pid, start);
        fclose(pid_file);
    }
    free(path);
}

/* In the child: its own process group, its output in files, the session's stdout kept for its
 * progress lines (a host gone is no reason to stop: SIGPIPE is ignored); then the job. */
static void child(const char *dir, int (*job)(const char *workdir))
{
    setpgid(0, 0);
    signal(SIGPIPE, SIG_IGN);
    json_out quoted = { 0 };
    jo_str(&quoted, NULL, dir);
    progress_dir = quoted.buf;
    progress_fd = quoted.failed ? -1 : dup(STDOUT_FILENO);
    char *out = path_in(dir, "runner.stdout"), *err = path_in(dir, "runner.stderr");
    if (!out || !err || !freopen(out, "w", stdout) || !freopen(err, "w", stderr))
        _exit(125);
    free(out);
    free(err);
    exit(job(dir));
}

void session_progress(int epoch, int of)
{
    if (progress_fd < 0)
        return;
    port_transfer_begin();
    if (dprintf(progress_fd, "{\"dir\": %s, \"epoch\": %d, \"of\": %d}\n", progress_dir, epoch, of) < 0)
        progress_fd = -1;  /* the host has gone: the job goes on, as it would without progress */
    port_transfer_end();
}

static void reply(const char *dir, int code, double wall)
{
    char *out_path = path_in(dir, "runner.stdout"), *err_path = path_in(dir, "runner.stderr");
    char *out = out_path ? read_tail(out_path) : NULL, *err = err_path ? read_tail(err_path) : NULL;
    json_out o = { 0 };
    jo_open(&o, NULL, '{');
    jo_str(&o, "dir", dir);
    jo_int(&o, "returncode", code);
    jo_str(&o, "stdout", out ? out : "");
    jo_str(&o, "stderr", err && *err ? err : code < 0 ? "the runner was stopped by a signal" : "");
    jo_double(&o, "wall_s", wall);
    jo_close(&o, '}');
    if (o.failed)
        fputs("{\"dir\": \"\", \"returncode\": 1, \"stdout\": \"\", \"stderr\": \"skip2run --session: out of memory\"}",
              stdout);
    else
        fputs(o.buf, stdout);
    fputc('\n', stdout);
    fflush(stdout);
    free(o.buf);
    free(out);
    free(err);
    free(out_path);
    free(err_path);
}

int session_serve(int (*job)(const char *workdir))
{
    char *line = NULL;
    size_t cap = 0;
    while (getline(&line, &cap, stdin) > 0) {
        job_json envelope = { 0 };
        char *job_text = NULL;
        char *dir = parse_request(line, &envelope, &job_text);
        char *job_path = dir ? path_in(dir, "job.json") : NULL;
        if (!dir || !job_path || make_dirs(dir) != 0 || write_file(job_path, job_text) != 0) {
            fprintf(stderr, "skip2run --session: %s\n",
                    dir ? "cannot write the job's folder" : "a request that is not {\"dir\": ..., \"job\": {...}}");
            reply(dir ? dir : "", 1, 0.0);
            free(job_path);
            job_json_free(&envelope);
            continue;
        }
        fflush(stdout);
        double started = now();
        pid_t pid = fork();
        if (pid == 0)
            child(dir, job);
        if (pid > 0) {
            setpgid(pid, pid);        /* as the child does: the group exists before the pid file names it */
            write_pid_file(dir, pid);
        }
        int status = 0, code = 1;
        if (pid > 0 && waitpid(pid, &status, 0) == pid)
            code = WIFEXITED(status) ? WEXITSTATUS(status) : WIFSIGNALED(status) ? -WTERMSIG(status) : 1;
        reply(dir, code, now() - started);
        free(job_path);
        job_json_free(&envelope);
    }
    free(line);
    return 0;
}
