/*
 * goman/fanout.h - the process-pool engine behind goman-fanout: one job (CMD, no shell) per
 * input line or batch of lines, the line(s) on its stdin, its stdout lines passed on whole.
 *
 * One thread, one poll(2) loop over the children's pipes. While goman_fanout_run() runs it
 * owns SIGCHLD, SIGINT and SIGTERM (handlers restored before it returns) and reaps every
 * child of the process (waitpid(-1)), so call it from a process with no other children.
 *
 * Durations (timeout, grace, retry delay) are milliseconds; a command reads them with
 * goman_parse_duration_ms (goman/clock.h), goman(7)'s one duration grammar.
 *
 * Ownership: goman_fanout_opts borrows everything it points to (argv, nothing is freed);
 * goman_fanout_stats is plain data. Errors: goman_fanout_run() returns 0 when the run ended
 * (whatever the jobs did: see stats) and -1 with err filled when it could not go on (stdin
 * read error, stdout write error, out of memory); running jobs are killed first.
 */
#ifndef GOMAN_FANOUT_H
#define GOMAN_FANOUT_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "goman/error.h"

enum goman_fanout_halt {
	GOMAN_FANOUT_HALT_NEVER = 0,
	GOMAN_FANOUT_HALT_SOON, /* start no new job, let running ones finish */
	GOMAN_FANOUT_HALT_NOW,  /* also kill running jobs (TERM, grace, KILL) */
};

/* What a progress hook is shown (plain data, valid during the call only). */
struct goman_fanout_progress {
	unsigned long done, failed; /* jobs finished, and how many of them failed */
	size_t running;
	long long bytes_in;    /* input bytes read so far */
	long long bytes_total; /* the input file's size when stdin is one, else 0 */
	int64_t elapsed_ms;
	bool last; /* the run is over: the final call */
};
typedef void (*goman_fanout_progress_fn)(const struct goman_fanout_progress *p, void *ctx);

struct goman_fanout_opts {
	char *const *argv; /* CMD and its arguments, run with execvp semantics */
	int jobs;          /* fixed concurrency; 0 = adaptive (-j auto) */
	int start_jobs;    /* -j auto: initial concurrency (the profile's) */
	int max_jobs;      /* -j auto: upper bound besides CPU count x 8, 0 = none */
	bool keep_order;   /* output in input order */
	bool pass;         /* a job that succeeds silently echoes its input with "ok":true */
	bool raw;          /* input lines need not be JSON (passed as they are) */
	/* called at most every progress_ms (0 = 200) while jobs run, and once with last at the
	 * end; NULL = none. goman_fanout_bar() is the progress bar of goman-fanout --bar. */
	goman_fanout_progress_fn progress;
	void *progress_ctx;
	int64_t progress_ms;
	size_t batch;           /* input lines per job (>= 1) */
	int64_t timeout_ms;     /* per attempt, 0 = none */
	int64_t grace_ms;       /* between TERM and KILL */
	int retries;            /* extra attempts for a job that timed out or exited 75 silently */
	int64_t retry_delay_ms; /* first retry delay, doubled per attempt (capped at 10 s) */
	enum goman_fanout_halt halt;
	unsigned long halt_fail; /* failed jobs that trigger the halt (count or percent) */
	bool halt_percent;
	int joblog_fd; /* -1: none; else GNU parallel style TSV, header first */
	int in_fd, out_fd;
	size_t max_line;  /* input line cap, 0 = GOMAN_JSONL_DEFAULT_MAX */
	size_t order_buf; /* --keep-order: bytes held per waiting job before its pipe is
				  left unread (backpressure), 0 = 1 MiB */
};

struct goman_fanout_stats {
	unsigned long jobs; /* jobs finished (after retries) */
	unsigned long ok, failed, timed_out, retried, not_run;
	unsigned long bad_lines; /* input lines that were not JSON objects */
	unsigned long lines_out;
	bool halted;
	int signal; /* SIGINT/SIGTERM that stopped the run, else 0 */
	int64_t wall_ms, busy_ms;
	double slot_ms;    /* integral of the concurrency limit over the wall time */
	double efficiency; /* busy / slot time, 0..1 */
	int final_jobs;    /* concurrency limit at the end (-j auto moves it) */
	int peak_running;
};

/* Defaults: jobs 0 (auto), start_jobs 3, batch 1, grace 2 s, retry delay 100 ms, fds 0/1,
 * joblog -1. */
void goman_fanout_opts_init(struct goman_fanout_opts *o);
int goman_fanout_run(const struct goman_fanout_opts *o, struct goman_fanout_stats *st,
		     struct goman_err *err);
/* Exit status of DESIGN.md for a finished run: 65 bad input lines, 75 halted, 1 some jobs
 * failed, 0 all ok (first match wins). */
int goman_fanout_exit_code(const struct goman_fanout_stats *st);

/* "now", "soon", "now,fail=N", "soon,fail=N%", "fail=N" (= soon). 0, or -1 if malformed. */
int goman_fanout_parse_halt(const char *s, enum goman_fanout_halt *halt, unsigned long *fail,
			    bool *percent);
/* A goman_fanout_progress_fn: one line on stderr redrawn in place ("\r...\033[K"): a bar
 * with percent and ETA when the input size is known, else jobs per second; ctx unused.
 * The caller installs it only when stderr is a terminal. */
void goman_fanout_bar(const struct goman_fanout_progress *p, void *ctx);

#endif
