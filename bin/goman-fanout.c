/*
 * goman-fanout - run CMD once per JSON line (or per --batch of lines), in parallel, with the
 * line(s) on its stdin; its stdout lines come out whole. Flags and exit status here; the
 * process pool is libgoman/fanout.c. See goman-fanout(1).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stddef.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cjson/cJSON.h>
#include "goman/config.h"
#include "goman/error.h"
#include "goman/fanout.h"
#include "goman/log.h"
#include "cli/cli.h"

static const char usage_text[] =
	"usage: goman-fanout [-j N|auto] [--keep-order] [--batch N] [--timeout DUR] [--grace DUR]\n"
	"                    [--retries N] [--retry-delay DUR] [--halt now|soon[,fail=N|fail=N%]]\n"
	"                    [--joblog FILE] [--bar] [--pass] [--raw] [--max-jobs N] -- CMD "
	"[ARGS...]\n"
	"Runs CMD (no shell) for each JSON line of stdin, the line on CMD's stdin; CMD's stdout\n"
	"lines go to stdout whole. Failed jobs become error records. See goman-fanout(1).\n"
	"  -j, --jobs N|auto   concurrency (default auto: adaptive, starting at the profile's)\n"
	"  -k, --keep-order    output in input order\n"
	"  --batch N           N input lines per job\n"
	"  --timeout DUR       TERM a job after DUR (30, 1.5s, 500ms, 2m, 1h30m), KILL after "
	"--grace (2s)\n"
	"  --retries N         re-run a job that timed out or exited 75 and wrote nothing\n"
	"  --halt SPEC         stop after failures: soon (let running jobs end) or now (kill "
	"them)\n"
	"  --joblog FILE       GNU parallel style TSV job log\n"
	"  --bar               progress bar on stderr (when it is a terminal)\n"
	"  --pass              a job that succeeds silently echoes its input with \"ok\":true\n"
	"  --raw               input lines need not be JSON\n"
	"  --max-jobs N        upper bound for -j auto (never above CPU count x 8)\n";

/* a bad flag: its message, then the usage text, exit 64 */
static int usage_error(const char *fmt, const char *arg)
{
	cli_usage_error(fmt, cli_shown(arg));
	fputs(usage_text, stderr);
	return GOMAN_EXIT_USAGE;
}

/* stdin/stdout/stderr must be open, or our own pipes could land on 0-2 */
static void check_fds(void)
{
	for (int fd = 0; fd < 3; fd++)
		if (fcntl(fd, F_GETFD) < 0 && open("/dev/null", O_RDWR) < 0)
			_exit(GOMAN_EXIT_FAILED);
}

struct cmd {
	struct goman_fanout_opts o;
	const char *joblog;
	bool bar;
};

/* How a flag's value is read, and into which field of struct cmd. */
enum kind { K_JOBS, K_INT, K_SIZE, K_DUR, K_HALT, K_BOOL, K_JOBLOG, K_HELP, K_VERSION };

struct flag {
	struct option opt;
	enum kind kind;
	size_t off; /* offsetof(struct cmd, ...) */
	long min, max;
};

#define OFF(field) offsetof(struct cmd, field)
static const struct flag flags[] = {
	{{"jobs", required_argument, NULL, 'j'}, K_JOBS, OFF(o.jobs), 1, 100000},
	{{"keep-order", no_argument, NULL, 'k'}, K_BOOL, OFF(o.keep_order), 0, 0},
	{{"batch", required_argument, NULL, 256}, K_SIZE, OFF(o.batch), 1, 1000000},
	{{"timeout", required_argument, NULL, 257}, K_DUR, OFF(o.timeout_ms), 0, 0},
	{{"grace", required_argument, NULL, 258}, K_DUR, OFF(o.grace_ms), 0, 0},
	{{"retries", required_argument, NULL, 259}, K_INT, OFF(o.retries), 0, 1000},
	{{"retry-delay", required_argument, NULL, 260}, K_DUR, OFF(o.retry_delay_ms), 0, 0},
	{{"halt", required_argument, NULL, 261}, K_HALT, 0, 0, 0},
	{{"joblog", required_argument, NULL, 262}, K_JOBLOG, OFF(joblog), 0, 0},
	{{"bar", no_argument, NULL, 263}, K_BOOL, OFF(bar), 0, 0},
	{{"pass", no_argument, NULL, 264}, K_BOOL, OFF(o.pass), 0, 0},
	{{"raw", no_argument, NULL, 265}, K_BOOL, OFF(o.raw), 0, 0},
	{{"max-jobs", required_argument, NULL, 266}, K_INT, OFF(o.max_jobs), 1, 100000},
	{{"help", no_argument, NULL, 267}, K_HELP, 0, 0, 0},
	{{"version", no_argument, NULL, 268}, K_VERSION, 0, 0, 0},
};
#define NFLAGS (sizeof(flags) / sizeof(flags[0]))

/* a value the flag does not take: its message, then the usage text, exit 64 */
static int bad_value(const struct flag *fl, const char *arg)
{
	if (fl->kind == K_JOBS)
		cli_usage_error("bad -j '%s' (a number >= 1, or auto)", cli_shown(arg));
	else
		cli_usage_error("bad --%s '%s'", fl->opt.name, cli_shown(arg));
	fputs(usage_text, stderr);
	return GOMAN_EXIT_USAGE;
}

/* Stores one flag's value. -1 to go on, else the exit status to return now. */
static int apply(const struct flag *fl, const char *arg, struct cmd *c)
{
	char *field = (char *)c + fl->off;
	long v = 0;
	switch (fl->kind) {
	case K_JOBS:
		if (!strcmp(arg, "auto")) {
			c->o.jobs = 0;
			return -1;
		}
		/* fall through */
	case K_INT:
	case K_SIZE:
		if (cli_parse_long(arg, fl->min, fl->max, &v))
			return bad_value(fl, arg);
		if (fl->kind == K_SIZE)
			*(size_t *)(void *)field = (size_t)v;
		else
			*(int *)(void *)field = (int)v;
		return -1;
	case K_DUR:
		if (cli_duration(fl->opt.name, arg, (int64_t *)(void *)field)) {
			fputs(usage_text, stderr);
			return GOMAN_EXIT_USAGE;
		}
		return -1;
	case K_HALT:
		if (goman_fanout_parse_halt(arg, &c->o.halt, &c->o.halt_fail, &c->o.halt_percent))
			return bad_value(fl, arg);
		return -1;
	case K_BOOL: *(bool *)(void *)field = true; return -1;
	case K_JOBLOG: c->joblog = arg; return -1;
	case K_HELP: fputs(usage_text, stdout); return fflush(stdout) ? 1 : 0;
	case K_VERSION: printf("goman-fanout %s\n", GOMAN_VERSION); return 0;
	}
	return -1;
}

/* Reads the flags into c; -1 when the command follows at argv[optind], else an exit status. */
static int parse_flags(int argc, char **argv, struct cmd *c)
{
	struct option longopts[NFLAGS + 1];
	for (size_t i = 0; i < NFLAGS; i++)
		longopts[i] = flags[i].opt;
	memset(&longopts[NFLAGS], 0, sizeof(longopts[NFLAGS]));
	opterr = 0;
	int ch;
	while ((ch = getopt_long(argc, argv, "+j:k", longopts, NULL)) != -1) {
		const struct flag *fl = NULL;
		for (size_t i = 0; i < NFLAGS && !fl; i++)
			if (flags[i].opt.val == ch)
				fl = &flags[i];
		if (!fl)
			return usage_error("unknown or incomplete option '%s'", argv[optind - 1]);
		int rc = apply(fl, optarg, c);
		if (rc >= 0)
			return rc;
	}
	if (optind >= argc)
		return usage_error("%s",
				   "no command given (goman-fanout [options] -- CMD [ARGS...])");
	return -1;
}

/* -j auto starts at the profile's concurrency (GOMAN_ENV, config file, env) */
static void start_at_profile(struct goman_fanout_opts *o)
{
	struct goman_config cfg;
	struct goman_err cerr = GOMAN_ERR_INIT;
	goman_config_init(&cfg);
	if (goman_config_load(&cfg, &cerr) == 0 && cfg.concurrency > 0)
		o->start_jobs = cfg.concurrency > 100000 ? 100000 : (int)cfg.concurrency;
	else
		goman_log(GOMAN_LOG_WARN, "PARALLEL", "config: %s; starting at %d jobs",
			  cerr.message, o->start_jobs);
}

/* one summary line, and one summary event for goman-metrics (parallel efficiency) */
static void report(const struct goman_fanout_stats *st)
{
	goman_log(GOMAN_LOG_INFO, "PARALLEL",
		  "%lu jobs: %lu ok, %lu failed (%lu timed out), %lu retries; %lld ms wall, "
		  "%d slots, efficiency %.0f%%",
		  st->jobs, st->ok, st->failed, st->timed_out, st->retried, (long long)st->wall_ms,
		  st->final_jobs, st->efficiency * 100);
	cJSON *ev = cJSON_CreateObject();
	if (!ev)
		return;
	cJSON_AddNumberToObject(ev, "jobs", (double)st->jobs);
	cJSON_AddNumberToObject(ev, "ok_jobs", (double)st->ok);
	cJSON_AddNumberToObject(ev, "failed", (double)st->failed);
	cJSON_AddNumberToObject(ev, "retries", (double)st->retried);
	cJSON_AddNumberToObject(ev, "slots", st->final_jobs);
	cJSON_AddNumberToObject(ev, "busy_ms", (double)st->busy_ms);
	cJSON_AddNumberToObject(ev, "ms", (double)st->wall_ms);
	cJSON_AddNumberToObject(ev, "efficiency", st->efficiency);
	cJSON_AddBoolToObject(ev, "halted", st->halted);
	goman_event("fanout", ev);
}

/* The exit status of a run that ended (a signal that stopped it is raised again). */
static int exit_status(const struct goman_fanout_stats *st)
{
	if (st->signal) {
		signal(st->signal, SIG_DFL);
		raise(st->signal);
		return 128 + st->signal;
	}
	if (st->bad_lines)
		fprintf(stderr, "goman-fanout: %lu input lines were not JSON objects\n",
			st->bad_lines);
	if (st->halted)
		fprintf(stderr, "goman-fanout: halted: %lu of %lu jobs failed\n", st->failed,
			st->jobs);
	else if (st->failed || st->not_run)
		fprintf(stderr, "goman-fanout: %lu of %lu jobs failed\n", st->failed, st->jobs);
	return goman_fanout_exit_code(st);
}

int main(int argc, char **argv)
{
	struct cmd c = {.joblog = NULL};
	check_fds();
	signal(SIGPIPE, SIG_IGN);
	cli_init("goman-fanout");
	goman_events_init("goman-fanout");
	goman_fanout_opts_init(&c.o);
	int rc = parse_flags(argc, argv, &c);
	if (rc >= 0)
		return rc;
	c.o.argv = argv + optind;
	if (c.o.jobs == 0)
		start_at_profile(&c.o);
	if (c.bar && isatty(2))
		c.o.progress = goman_fanout_bar;
	if (c.joblog) {
		c.o.joblog_fd = open(c.joblog, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (c.o.joblog_fd < 0) {
			fprintf(stderr, "goman-fanout: cannot open joblog '%s': %s\n", c.joblog,
				strerror(errno));
			return GOMAN_EXIT_USAGE;
		}
	}
	struct goman_fanout_stats st;
	struct goman_err err = GOMAN_ERR_INIT;
	rc = goman_fanout_run(&c.o, &st, &err);
	if (c.o.joblog_fd >= 0 && close(c.o.joblog_fd))
		goman_log(GOMAN_LOG_WARN, "PARALLEL", "joblog '%s': %s", c.joblog, strerror(errno));
	report(&st);
	if (rc) {
		fprintf(stderr, "goman-fanout: %s\n", err.message);
		return err.rc == GOMAN_EIO ? GOMAN_EXIT_IOERR : GOMAN_EXIT_FAILED;
	}
	return exit_status(&st);
}
