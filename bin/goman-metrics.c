/*
 * goman-metrics - KPIs and health from node records and event lines.
 *
 * Reads JSON lines (records and events mixed) from stdin, from --follow FILE (a growing
 * file, read until interrupted), or from $GOMAN_EVENTS when stdin is a terminal; prints
 * the summary at the end of input as a table, JSON or Prometheus text. All computing is
 * libgoman/metrics.c; this file is flags and the read loop.
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
#include "goman/clock.h"
#include "goman/error.h"
#include "goman/jsonl.h"
#include "goman/log.h"
#include "goman/metrics.h"
#include "cli.h"

static const char usage[] =
	"usage: goman-metrics [--format table|json|prom] [--export] [--prom-file PATH]\n"
	"                     [--check] [--target-creation DUR] [--target-installation DUR]\n"
	"                     [--target-configuration DUR] [--target-success PCT]\n"
	"                     [--target-efficiency PCT] [--target-retry PCT] [--no-breaker-alert]\n"
	"                     [--follow FILE] [--live] [--interval DUR] [--concurrency N]\n"
	"  Reads node records and event lines (stdin; --follow FILE; $GOMAN_EVENTS when stdin\n"
	"  is a terminal) and prints cluster KPIs and health at the end of input.\n"
	"  --format        table (default), json (one object), prom (Prometheus text)\n"
	"  --export        the same as --format json (kept for the seed's CLI)\n"
	"  --prom-file P   also write the Prometheus text to P atomically (temp file + rename)\n"
	"  --check         print one line per target breached, exit 1 if any\n"
	"  --follow FILE   read FILE as it grows until SIGINT/SIGTERM, then summarise\n"
	"  --live          redraw the table every --interval on a terminal, [METRICS] lines\n"
	"                  on stderr otherwise\n"
	"  --concurrency N slots used for parallel efficiency (default 3)\n"
	"Exit: 0 ok, 1 targets breached (--check), 64 usage, 65 malformed input lines.\n";

enum {
	OPT_FORMAT = 256,
	OPT_EXPORT,
	OPT_PROM_FILE,
	OPT_CHECK,
	OPT_T_CREATE,
	OPT_T_INSTALL,
	OPT_T_CONFIG,
	OPT_T_SUCCESS,
	OPT_T_EFF,
	OPT_T_RETRY,
	OPT_NO_BREAKER,
	OPT_FOLLOW,
	OPT_LIVE,
	OPT_INTERVAL,
	OPT_CONCURRENCY,
	OPT_SUMMARY,
	OPT_HELP,
	OPT_VERSION
};

static const struct option options[] = {
	{"format", required_argument, NULL, OPT_FORMAT},
	{"export", no_argument, NULL, OPT_EXPORT},
	{"prom-file", required_argument, NULL, OPT_PROM_FILE},
	{"check", no_argument, NULL, OPT_CHECK},
	{"target-creation", required_argument, NULL, OPT_T_CREATE},
	{"target-installation", required_argument, NULL, OPT_T_INSTALL},
	{"target-configuration", required_argument, NULL, OPT_T_CONFIG},
	{"target-success", required_argument, NULL, OPT_T_SUCCESS},
	{"target-efficiency", required_argument, NULL, OPT_T_EFF},
	{"target-retry", required_argument, NULL, OPT_T_RETRY},
	{"no-breaker-alert", no_argument, NULL, OPT_NO_BREAKER},
	{"follow", required_argument, NULL, OPT_FOLLOW},
	{"live", no_argument, NULL, OPT_LIVE},
	{"interval", required_argument, NULL, OPT_INTERVAL},
	{"concurrency", required_argument, NULL, OPT_CONCURRENCY},
	{"summary", no_argument, NULL, OPT_SUMMARY},
	{"help", no_argument, NULL, OPT_HELP},
	{"version", no_argument, NULL, OPT_VERSION},
	{NULL, 0, NULL, 0},
};

static volatile sig_atomic_t stop_requested;
static void on_signal(int sig)
{
	(void)sig;
	stop_requested = 1;
}

struct run {
	const char *format, *prom_file, *follow;
	int check, live;
	int64_t interval_ms;
	struct goman_targets targets;
	struct goman_metrics *m;
	unsigned long bad_lines;
};

static int parse_pct(const char *s, double *out)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	/* !(in range) also refuses the NaN strtod reads from "nan" */
	if (end == s || errno || (*end && strcmp(end, "%")) || !(v >= 0 && v <= 100))
		return -1;
	*out = v;
	return 0;
}

static int die_usage(const char *fmt, const char *arg)
{
	fprintf(stderr, "goman-metrics: ");
	fprintf(stderr, fmt, arg);
	fprintf(stderr, "\n%s", usage);
	return GOMAN_EXIT_USAGE;
}

static int emit(struct run *r, FILE *out, int final)
{
	char *text = NULL;
	if (!strcmp(r->format, "json")) {
		cJSON *j = goman_metrics_json(r->m);
		text = cJSON_PrintUnformatted(j);
		cJSON_Delete(j);
		if (text)
			fprintf(out, "%s\n", text);
	} else if (!strcmp(r->format, "prom")) {
		text = goman_metrics_prom(r->m);
		if (text)
			fputs(text, out);
	} else {
		text = goman_metrics_table(r->m);
		if (text)
			fputs(text, out);
	}
	free(text);
	if (final && r->prom_file) {
		struct goman_err err = GOMAN_ERR_INIT;
		goman_err_clear(&err);
		char *prom = goman_metrics_prom(r->m);
		int rc = prom ? goman_write_file_atomic(r->prom_file, prom, &err) : -1;
		free(prom);
		if (rc < 0) {
			goman_log(GOMAN_LOG_ERROR, "METRICS", "%s", err.message);
			return -1;
		}
	}
	return 0;
}

static void live_tick(struct run *r)
{
	if (isatty(1)) {
		fputs("\033[H\033[2J", stdout);
		emit(r, stdout, 0);
		fflush(stdout);
		return;
	}
	cJSON *j = goman_metrics_json(r->m);
	const cJSON *c;
	cJSON_ArrayForEach (c, cJSON_GetObjectItemCaseSensitive(j, "clusters")) {
		char *s = cJSON_PrintUnformatted(c);
		if (s)
			goman_log(GOMAN_LOG_INFO, "METRICS", "%s", s);
		free(s);
	}
	cJSON_Delete(j);
}

/* Reads fd to its end (or, following, until a signal), feeding every line. */
static int read_stream(struct run *r, int fd, int following)
{
	struct goman_jsonl_reader *rd = goman_jsonl_reader_new(fd, GOMAN_JSONL_DEFAULT_MAX);
	if (!rd)
		return -1;
	if (following)
		goman_jsonl_reader_follow(rd, true);
	int64_t next_tick = goman_mono_ms() + r->interval_ms;
	int rc = 0;
	while (!stop_requested) {
		cJSON *line = NULL;
		struct goman_err err = GOMAN_ERR_INIT;
		goman_err_clear(&err);
		int got = goman_jsonl_next(rd, &line, &err);
		if (got == GOMAN_JSONL_RECORD) {
			goman_metrics_feed(r->m, line);
			cJSON_Delete(line);
		} else if (got == GOMAN_JSONL_BAD) {
			r->bad_lines++;
			goman_log(GOMAN_LOG_WARN, "METRICS", "skipped line %ld: %s",
				  goman_jsonl_lineno(rd), err.message);
		} else if (got == GOMAN_JSONL_AGAIN) {
			goman_sleep_ms(200); /* following: the writer has not written more yet */
		} else if (got == GOMAN_JSONL_EOF) {
			break;
		} else {
			goman_log(GOMAN_LOG_ERROR, "METRICS", "%s", err.message);
			rc = -1;
			break;
		}
		if (r->live && goman_mono_ms() >= next_tick) {
			live_tick(r);
			next_tick = goman_mono_ms() + r->interval_ms;
		}
	}
	goman_jsonl_reader_free(rd);
	return rc;
}

static int parse_flags(struct run *r, int argc, char **argv)
{
	int c, conc = 0;
	while ((c = getopt_long(argc, argv, "", options, NULL)) != -1) {
		int64_t ms;
		switch (c) {
		case OPT_FORMAT:
			if (strcmp(optarg, "table") && strcmp(optarg, "json") &&
			    strcmp(optarg, "prom"))
				return die_usage("unknown format '%s'", optarg);
			r->format = optarg;
			break;
		case OPT_EXPORT: r->format = "json"; break;
		case OPT_PROM_FILE: r->prom_file = optarg; break;
		case OPT_CHECK: r->check = 1; break;
		case OPT_T_CREATE:
		case OPT_T_INSTALL:
		case OPT_T_CONFIG:
			if (goman_parse_duration_ms(optarg, &ms) < 0)
				return die_usage("bad duration '%s'", optarg);
			*(c == OPT_T_CREATE    ? &r->targets.creation_ms
			  : c == OPT_T_INSTALL ? &r->targets.installation_ms
					       : &r->targets.configuration_ms) = ms;
			break;
		case OPT_T_SUCCESS:
		case OPT_T_EFF:
		case OPT_T_RETRY:
			if (parse_pct(optarg, c == OPT_T_SUCCESS ? &r->targets.success_pct
					      : c == OPT_T_EFF   ? &r->targets.efficiency_pct
								 : &r->targets.retry_pct) < 0)
				return die_usage("bad percentage '%s'", optarg);
			break;
		case OPT_NO_BREAKER: r->targets.breaker_open_alert = 0; break;
		case OPT_FOLLOW: r->follow = optarg; break;
		case OPT_LIVE: r->live = 1; break;
		case OPT_INTERVAL:
			if (goman_parse_duration_ms(optarg, &r->interval_ms) < 0 ||
			    r->interval_ms <= 0)
				return die_usage("bad interval '%s'", optarg);
			break;
		case OPT_CONCURRENCY: {
			/* range-checked as a long: a cast first would turn 4294967297 into 1 */
			long v;
			if (cli_parse_long(optarg, 1, 10000, &v) < 0)
				return die_usage("bad concurrency '%s'", optarg);
			conc = (int)v;
			break;
		}
		case OPT_SUMMARY: break; /* the summary is what it prints anyway */
		case OPT_HELP: fputs(usage, stdout); exit(0);
		case OPT_VERSION: printf("goman-metrics %s\n", GOMAN_VERSION); exit(0);
		default: fputs(usage, stderr); return GOMAN_EXIT_USAGE;
		}
	}
	if (optind < argc)
		return die_usage("unexpected argument '%s'", argv[optind]);
	r->m = goman_metrics_new(&(struct goman_metrics_opts){.concurrency = conc});
	return r->m ? 0 : 1;
}

int main(int argc, char **argv)
{
	struct run r = {.format = "table", .interval_ms = 2000};
	goman_targets_default(&r.targets);
	signal(SIGPIPE, SIG_IGN);
	goman_events_init("goman-metrics");
	int rc = parse_flags(&r, argc, argv);
	if (rc)
		return rc;
	struct sigaction sa = {.sa_handler = on_signal};
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);

	int fd = 0, following = 0;
	const char *events = getenv("GOMAN_EVENTS");
	if (r.follow || (isatty(0) && events && *events)) {
		const char *path = r.follow ? r.follow : events;
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0) {
			fprintf(stderr, "goman-metrics: cannot open '%s': %s\n", path,
				strerror(errno));
			goman_metrics_free(r.m);
			return GOMAN_EXIT_USAGE;
		}
		following = r.follow != NULL;
	}
	int failed = read_stream(&r, fd, following) < 0;
	if (fd > 0)
		close(fd);
	failed |= emit(&r, stdout, 1) < 0;
	int breaches = 0;
	if (r.check) {
		char *lines = goman_metrics_check(r.m, &r.targets, &breaches);
		if (lines)
			fputs(lines, stdout);
		free(lines);
	}
	goman_metrics_free(r.m);
	if (fflush(stdout) != 0 || ferror(stdout)) {
		fprintf(stderr, "goman-metrics: write error on stdout\n");
		return GOMAN_EXIT_IOERR;
	}
	if (r.bad_lines)
		return GOMAN_EXIT_DATAERR;
	return failed || breaches ? GOMAN_EXIT_FAILED : GOMAN_EXIT_OK;
}
