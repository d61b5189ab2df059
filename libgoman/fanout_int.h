/*
 * fanout_int.h - the seams of goman-fanout's engine (gm_ names; nothing here leaves the
 * library). The engine (fanout.c: input, spawning, the poll loop) and its output side
 * (fanout_order.c: whole lines, input order, the joblog) share struct gm_fo_job and struct
 * gm_fo; the -j auto, halt and throttling decisions (fanout_policy.c) are plain functions of
 * plain data, so their unit test needs no children. Neither lower file calls the engine.
 *
 * Ownership: a struct gm_fo_job belongs to the engine from its first input line until
 * gm_fo_settle() has written it (then freed). Errors: gm_fo_* return 0, or -1 after setting
 * f->fatal and f->err.
 */
#ifndef GOMAN_FANOUT_INT_H
#define GOMAN_FANOUT_INT_H
#include <spawn.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include "goman/error.h"
#include "goman/fanout.h"
#include "buf_int.h"

struct goman_jsonl_reader;

#define GM_FO_SCRATCH (64 * 1024)

/* ---- fanout_policy.c ---------------------------------------------------------------- */

/* -j auto: additive increase, multiplicative decrease of the concurrency. Plain data. */
struct gm_aimd {
	double c;            /* current concurrency (slots = floor(c)) */
	int max;             /* CPU count x factor, or --max-jobs */
	int64_t last_cut_ms; /* monotonic time of the last cut */
};

void gm_aimd_init(struct gm_aimd *a, int start, int max);
int gm_aimd_slots(const struct gm_aimd *a);
void gm_aimd_ok(struct gm_aimd *a);
bool gm_aimd_throttle(struct gm_aimd *a, int64_t started_ms, int64_t now_ms);
/* True when the line (without its '\n') is a JSON object holding an error record of class
 * "throttling", at its top level or under one stage ({"install":{"error":{...}}}). */
bool gm_line_reports_throttling(const char *line, size_t len);
bool gm_halt_due(unsigned long fail, bool percent, unsigned long failed, unsigned long done);

/* ---- the engine's state, shared with fanout_order.c ---------------------------------- */

enum gm_fo_jstate { GM_JOB_FILLING, GM_JOB_WAITING, GM_JOB_RUNNING, GM_JOB_DONE };

struct gm_fo_job {
	enum gm_fo_jstate state;
	unsigned long ord; /* output order (pseudo-jobs for bad lines take one too) */
	unsigned long seq; /* job number, 1-based, as in the joblog */
	long first_line;   /* input line number of its first line */
	size_t nlines;
	struct gm_buf in; /* its input lines, each ending in '\n' */
	size_t in_off;    /* bytes of `in` already down the pipe */
	pid_t pid;
	int fd_in, fd_out, fd_err;
	struct gm_buf out;  /* stdout bytes (and final records) not yet written */
	size_t out_watched; /* -j auto: bytes of `out` already looked at for throttling */
	struct gm_buf errb; /* -j auto: stderr bytes up to the next '\n' */
	unsigned long out_lines;
	size_t recv;
	int attempts;
	int64_t start_mono, start_wall, end_mono, deadline, kill_at, not_before;
	bool reaped, eof, timed_out, term_sent, throttled;
	const char *stop_code; /* "Halted" / "Interrupted" when we killed it for the run */
	int status;
	int spawn_errno;
	struct gm_fo_job *next; /* retry queue */
};

struct gm_fo {
	const struct goman_fanout_opts *o;
	struct goman_fanout_stats *st;
	struct goman_err *err;
	struct goman_jsonl_reader *rd;
	posix_spawnattr_t attr;
	char *cmdline; /* joblog Command column */
	struct gm_fo_job **run;
	size_t nrun, run_cap;
	struct gm_fo_job **ring; /* keep_order: jobs by ord % window */
	size_t window;
	unsigned long head_ord, next_ord, next_seq;
	struct gm_fo_job *retry_first, *retry_last;
	struct gm_fo_job *filling; /* job collecting its batch of lines */
	bool in_eof, stop_input, in_ready, fatal;
	const char *stop_code;
	int max_slots;
	struct gm_aimd aimd;
	int slots;
	int64_t t0, last_slot_change, last_progress;
	long long bytes_in, bytes_total;
	char scratch[GM_FO_SCRATCH];
};

/* ---- fanout_order.c: what leaves the engine ------------------------------------------ */

void gm_fo_job_free(struct gm_fo_job *j);
/* may j's output be written now? (always, unless --keep-order and j is not the oldest) */
static inline bool gm_fo_can_stream(const struct gm_fo *f, const struct gm_fo_job *j)
{
	return !f->o->keep_order || j->ord == f->head_ord;
}
/* all of p[0..n) to out_fd (waits out EAGAIN) */
int gm_fo_write_out(struct gm_fo *f, const char *p, size_t n);
/* writes the complete lines of j->out (all of it once the job is done) if j may speak now */
int gm_fo_flush_job(struct gm_fo *f, struct gm_fo_job *j);
/* j is done: writes it (or leaves it to the ring until it is the oldest) */
int gm_fo_settle(struct gm_fo *f, struct gm_fo_job *j);
/* the joblog: its header line once, then one TSV line per finished job */
void gm_fo_joblog_header(const struct gm_fo *f);
void gm_fo_joblog(const struct gm_fo *f, const struct gm_fo_job *j, int code, int sig);
/* argv joined by spaces, tabs and newlines blanked (the joblog's Command); malloc'd */
char *gm_fo_cmdline(char *const *argv);

#endif
