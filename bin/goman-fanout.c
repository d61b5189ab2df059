/*
 * goman-fanout - run CMD once per JSON line (or per --batch of lines), in parallel, with the
 * line(s) on its stdin; its stdout lines come out whole. Flags and exit status here; the
 * process pool is libgoman/fanout.c. See goman-fanout(1).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
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
	"  --timeout DUR       TERM a job after DUR (30, 1.5s, 500ms, 2m), KILL after --grace "
	"(2s)\n"
	"  --retries N         re-run a job that timed out or exited 75 and wrote nothing\n"
	"  --halt SPEC         stop after failures: soon (let running jobs end) or now (kill "
	"them)\n"
	"  --joblog FILE       GNU parallel style TSV job log\n"
	"  --bar               progress bar on stderr (when it is a terminal)\n"
	"  --pass              a job that succeeds silently echoes its input with \"ok\":true\n"
	"  --raw               input lines need not be JSON\n"
	"  --max-jobs N        upper bound for -j auto (never above CPU count x 8)\n";

static int usage_error(const char *fmt, const char *arg)
{
	fprintf(stderr, "goman-fanout: ");
	fprintf(stderr, fmt, arg);
	fprintf(stderr, "\n%s", usage_text);
	return GOMAN_EXIT_USAGE;
}

static int parse_int(const char *s, long min, long max, long *out)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

/* stdin/stdout/stderr must be open, or our own pipes could land on 0-2 */
static void check_fds(void)
{
	for (int fd = 0; fd < 3; fd++)
		if (fcntl(fd, F_GETFD) < 0 && open("/dev/null", O_RDWR) < 0)
			_exit(GOMAN_EXIT_FAILED);
}

int main(int argc, char **argv)
{
	enum {
		O_BATCH = 256,
		O_TIMEOUT,
		O_GRACE,
		O_RETRIES,
		O_RDELAY,
		O_HALT,
		O_JOBLOG,
		O_BAR,
		O_PASS,
		O_RAW,
		O_MAXJOBS,
		O_HELP,
		O_VERSION
	};
	static const struct option opts[] = {
		{"jobs", required_argument, NULL, 'j'},
		{"keep-order", no_argument, NULL, 'k'},
		{"batch", required_argument, NULL, O_BATCH},
		{"timeout", required_argument, NULL, O_TIMEOUT},
		{"grace", required_argument, NULL, O_GRACE},
		{"retries", required_argument, NULL, O_RETRIES},
		{"retry-delay", required_argument, NULL, O_RDELAY},
		{"halt", required_argument, NULL, O_HALT},
		{"joblog", required_argument, NULL, O_JOBLOG},
		{"bar", no_argument, NULL, O_BAR},
		{"pass", no_argument, NULL, O_PASS},
		{"raw", no_argument, NULL, O_RAW},
		{"max-jobs", required_argument, NULL, O_MAXJOBS},
		{"help", no_argument, NULL, O_HELP},
		{"version", no_argument, NULL, O_VERSION},
		{NULL, 0, NULL, 0},
	};
	struct goman_fanout_opts o;
	const char *joblog = NULL;
	long v;
	int c;

	check_fds();
	signal(SIGPIPE, SIG_IGN);
	goman_events_init("goman-fanout");
	goman_fanout_opts_init(&o);
	opterr = 0;
	while ((c = getopt_long(argc, argv, "+j:k", opts, NULL)) != -1) {
		switch (c) {
		case 'j':
			if (!strcmp(optarg, "auto"))
				o.jobs = 0;
			else if (parse_int(optarg, 1, 100000, &v))
				return usage_error("bad -j '%s' (a number >= 1, or auto)", optarg);
			else
				o.jobs = (int)v;
			break;
		case 'k': o.keep_order = true; break;
		case O_BATCH:
			if (parse_int(optarg, 1, 1000000, &v))
				return usage_error("bad --batch '%s'", optarg);
			o.batch = (size_t)v;
			break;
		case O_TIMEOUT:
			if (goman_fanout_parse_duration(optarg, &o.timeout_ms))
				return usage_error("bad --timeout '%s'", optarg);
			break;
		case O_GRACE:
			if (goman_fanout_parse_duration(optarg, &o.grace_ms))
				return usage_error("bad --grace '%s'", optarg);
			break;
		case O_RDELAY:
			if (goman_fanout_parse_duration(optarg, &o.retry_delay_ms))
				return usage_error("bad --retry-delay '%s'", optarg);
			break;
		case O_RETRIES:
			if (parse_int(optarg, 0, 1000, &v))
				return usage_error("bad --retries '%s'", optarg);
			o.retries = (int)v;
			break;
		case O_HALT:
			if (goman_fanout_parse_halt(optarg, &o.halt, &o.halt_fail, &o.halt_percent))
				return usage_error("bad --halt '%s'", optarg);
			break;
		case O_JOBLOG: joblog = optarg; break;
		case O_BAR: o.bar = true; break;
		case O_PASS: o.pass = true; break;
		case O_RAW: o.raw = true; break;
		case O_MAXJOBS:
			if (parse_int(optarg, 1, 100000, &v))
				return usage_error("bad --max-jobs '%s'", optarg);
			o.max_jobs = (int)v;
			break;
		case O_HELP: fputs(usage_text, stdout); return fflush(stdout) ? 1 : 0;
		case O_VERSION: printf("goman-fanout %s\n", GOMAN_VERSION); return 0;
		default: return usage_error("unknown or incomplete option '%s'", argv[optind - 1]);
		}
	}
	if (optind >= argc)
		return usage_error("%s",
				   "no command given (goman-fanout [options] -- CMD [ARGS...])");
	o.argv = argv + optind;
	if (o.jobs == 0) {
		/* -j auto starts at the profile's concurrency (GOMAN_ENV, config file, env) */
		struct goman_config cfg;
		struct goman_err cerr = GOMAN_ERR_INIT;
		goman_config_init(&cfg);
		if (goman_config_load(&cfg, &cerr) == 0 && cfg.concurrency > 0)
			o.start_jobs = cfg.concurrency > 100000 ? 100000 : (int)cfg.concurrency;
		else
			goman_log(GOMAN_LOG_WARN, "PARALLEL", "config: %s; starting at %d jobs",
				  cerr.message, o.start_jobs);
	}
	if (joblog) {
		o.joblog_fd = open(joblog, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (o.joblog_fd < 0) {
			fprintf(stderr, "goman-fanout: cannot open joblog '%s': %s\n", joblog,
				strerror(errno));
			return GOMAN_EXIT_USAGE;
		}
	}

	struct goman_fanout_stats st;
	struct goman_err err = GOMAN_ERR_INIT;
	int rc = goman_fanout_run(&o, &st, &err);
	if (o.joblog_fd >= 0 && close(o.joblog_fd))
		goman_log(GOMAN_LOG_WARN, "PARALLEL", "joblog '%s': %s", joblog, strerror(errno));
	goman_log(GOMAN_LOG_INFO, "PARALLEL",
		  "%lu jobs: %lu ok, %lu failed (%lu timed out), %lu retries; %lld ms wall, "
		  "%d slots, efficiency %.0f%%",
		  st.jobs, st.ok, st.failed, st.timed_out, st.retried, (long long)st.wall_ms,
		  st.final_jobs, st.efficiency * 100);
	/* one summary event for goman-metrics (parallel efficiency) */
	cJSON *ev = cJSON_CreateObject();
	if (ev) {
		cJSON_AddNumberToObject(ev, "jobs", (double)st.jobs);
		cJSON_AddNumberToObject(ev, "ok_jobs", (double)st.ok);
		cJSON_AddNumberToObject(ev, "failed", (double)st.failed);
		cJSON_AddNumberToObject(ev, "retries", (double)st.retried);
		cJSON_AddNumberToObject(ev, "slots", st.final_jobs);
		cJSON_AddNumberToObject(ev, "busy_ms", (double)st.busy_ms);
		cJSON_AddNumberToObject(ev, "ms", (double)st.wall_ms);
		cJSON_AddNumberToObject(ev, "efficiency", st.efficiency);
		cJSON_AddBoolToObject(ev, "halted", st.halted);
		goman_event("fanout", ev);
	}
	if (rc) {
		fprintf(stderr, "goman-fanout: %s\n", err.message);
		return err.rc == GOMAN_EIO ? GOMAN_EXIT_IOERR : GOMAN_EXIT_FAILED;
	}
	if (st.signal) {
		signal(st.signal, SIG_DFL);
		raise(st.signal);
		return 128 + st.signal;
	}
	int code = goman_fanout_exit_code(&st);
	if (st.bad_lines)
		fprintf(stderr, "goman-fanout: %lu input lines were not JSON objects\n",
			st.bad_lines);
	if (st.halted)
		fprintf(stderr, "goman-fanout: halted: %lu of %lu jobs failed\n", st.failed,
			st.jobs);
	else if (st.failed || st.not_run)
		fprintf(stderr, "goman-fanout: %lu of %lu jobs failed\n", st.failed, st.jobs);
	return code;
}
