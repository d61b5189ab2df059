/*
 * goman-batch - batched EC2 operations on many instances, one result line per instance.
 * See goman-batch(1).
 *
 * Glue only: batching and bisection are libgoman/batch.c, the EC2 calls batch_ec2.c, the
 * waiting ec2.h's poller, all on one event loop. Input is read whole first (batches are cut
 * over all of it); records are written as each instance finishes (its batch, or its wait).
 * Every input record is kept until its result is written, then freed.
 */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>
#include "goman/aws.h"
#include "goman/batch.h"
#include "goman/clock.h"
#include "goman/config.h"
#include "goman/ec2.h"
#include "goman/http.h"
#include "goman/jsonl.h"
#include "goman/log.h"
#include "cli/cli.h"
#include "cli/cli_flags.h"

static const char usage_text[] =
	"usage: goman-batch VERB [options] < instances.jsonl\n"
	"       goman-batch VERB --cluster NAME [options]\n"
	"       goman-batch clusters [options]\n"
	"\n"
	"VERB: describe | start | stop | reboot | terminate | tag | wait STATE\n"
	"      (STATE: running, stopped, terminated, status-ok)\n"
	"clusters: one line per cluster that has instances "
	"{\"cluster\",\"instances\",\"running\",\n"
	"      \"states\"}; when the listing fails, no counts (an error record; never 0)\n"
	"Input lines carry \"instance_id\"; other fields pass through. Output: each input record\n"
	"with \"batch\":{\"action\",\"previous_state\",\"state\",\"batch\",\"ms\",\"ok\"} and "
	"\"ok\".\n"
	"\n"
	"  --cluster NAME        select the instances tagged goman:cluster=NAME (stdin not read)\n"
	"  --include-shutting-down  --cluster, clusters: count shutting-down instances too\n"
	"  --batch-size N        IDs per call, 1..1000 (default: profile 5/10/15/25, else 10)\n"
	"  --concurrency N       calls in flight (default: the profile's)\n"
	"  --batch-timeout DUR   per-call HTTP timeout (e.g. 30s)\n"
	"  --env PROFILE         development | staging | production | high-volume\n"
	"  --region REGION       --profile NAME (AWS profile)\n"
	"  --force               stop: force; terminate: lift termination protection first\n"
	"  --hibernate           stop: hibernate\n"
	"  --tag K=V             tag: a tag to set (repeatable)\n"
	"  --wait                start/stop/reboot/terminate: poll until the target state\n"
	"  --timeout DUR         how long --wait / wait STATE waits per instance (default 10m)\n"
	"  --poll-interval DUR   shortest interval between polls (default 2s)\n"
	"  --show-config         print the effective settings and exit\n"
	"  --help, --version\n"
	"\n"
	"Exit: 0 all ok, 1 some failed, 64 usage, 65 bad input lines, 69 unavailable, 75 retry "
	"later.\n";

struct rec {
	cJSON *in;
	char prev[24];
	int batch;
	int64_t ms, t0;
	bool waiting;
};

struct run {
	enum goman_batch_verb verb;
	const char *action;
	int wait; /* -1 none, else enum goman_ec2_wait */
	int64_t timeout_ms;
	struct rec *recs;
	size_t n, cap;
	struct goman_ec2_poller *poller;
	struct goman_outcome oc;
	int wfail;
};

static int usage(int rc)
{
	fputs(usage_text, rc ? stderr : stdout);
	return rc;
}

static void put(struct run *r, cJSON *out, const struct goman_err *e)
{
	goman_outcome_add(&r->oc, e);
	if (!out || goman_jsonl_write(1, out, NULL)) {
		if (!r->wfail)
			goman_log(GOMAN_LOG_ERROR, "BATCH", "writing stdout failed");
		r->wfail = 1;
	}
	cJSON_Delete(out);
}

/* Writes rec's result and lets go of its input. */
static void emit(struct run *r, struct rec *rc, const char *state, const struct goman_err *e)
{
	int64_t ms = goman_mono_ms() - rc->t0 + rc->ms;
	cJSON *out = goman_batch_record(rc->in, r->action, rc->prev, state, rc->batch, ms, e, 0);
	cJSON_Delete(rc->in);
	rc->in = NULL;
	put(r, out, e);
}

static void on_polled(const char *id, const struct goman_ec2_instance *inst,
		      const struct goman_err *err, double calls_share, void *ud)
{
	(void)calls_share;
	struct run *r = ud;
	for (size_t i = 0; i < r->n; i++) {
		struct rec *rc = &r->recs[i];
		const char *rid = cJSON_GetStringValue(cJSON_GetObjectItem(rc->in, "instance_id"));
		if (rc->waiting && rid && !strcmp(rid, id)) {
			rc->waiting = false;
			emit(r, rc, inst ? inst->state : NULL, err);
		}
	}
}

static void on_item(const struct goman_batch_item *it, void *ud)
{
	struct run *r = ud;
	struct rec *rc = &r->recs[(size_t)(intptr_t)it->ud];
	snprintf(rc->prev, sizeof(rc->prev), "%s", it->previous_state);
	rc->batch = it->batch;
	rc->ms = it->ms;
	rc->t0 = goman_mono_ms();
	struct goman_err e = GOMAN_ERR_INIT;
	bool reached = r->wait >= 0 && it->ok &&
		       !strcmp(it->state, goman_ec2_wait_name((enum goman_ec2_wait)r->wait));
	if (r->wait < 0 || !it->ok || reached) {
		emit(r, rc, it->state, &it->err);
		return;
	}
	rc->waiting = true;
	if (goman_ec2_poller_add(r->poller, it->id, goman_mono_ms() + r->timeout_ms, &e) != 0) {
		rc->waiting = false;
		emit(r, rc, it->state, &e);
	}
}

/* Keeps a record; the item index is its place in r->recs. */
static int keep(struct run *r, cJSON *in)
{
	if (r->n == r->cap) {
		size_t cap = r->cap ? r->cap * 2 : 256;
		struct rec *v = realloc(r->recs, cap * sizeof(*v));
		if (!v)
			return -1;
		r->recs = v;
		r->cap = cap;
	}
	memset(&r->recs[r->n], 0, sizeof(r->recs[0]));
	r->recs[r->n++].in = in;
	return 0;
}

static int read_stdin(struct run *r)
{
	struct goman_jsonl_reader *rd = goman_jsonl_reader_new(0, 0);
	struct goman_err err = GOMAN_ERR_INIT;
	int rc = rd ? 0 : -1;
	while (rd) {
		cJSON *in = NULL;
		goman_err_clear(&err);
		int k = goman_jsonl_next(rd, &in, &err);
		if (k == GOMAN_JSONL_EOF)
			break;
		if (k == GOMAN_JSONL_IOERR) {
			goman_log(GOMAN_LOG_ERROR, "BATCH", "reading stdin: %s", err.message);
			rc = -1;
			break;
		}
		const char *id = cJSON_GetStringValue(cJSON_GetObjectItem(in, "instance_id"));
		if (k == GOMAN_JSONL_RECORD && (!id || !*id))
			goman_err_set(&err, GOMAN_EINVAL, GOMAN_CLASS_BAD_INPUT, "BadInput",
				      "a record needs \"instance_id\" (a string)");
		if (k != GOMAN_JSONL_RECORD || !id || !*id) {
			put(r,
			    goman_batch_record(in, r->action, NULL, NULL, 0, 0, &err,
					       goman_jsonl_lineno(rd)),
			    &err);
			cJSON_Delete(in);
		} else if (keep(r, in) != 0) {
			cJSON_Delete(in);
			rc = -1;
			break;
		}
	}
	goman_jsonl_reader_free(rd);
	return rc;
}

static int read_cluster(struct run *r, struct goman_aws *aws, const char *cluster,
			bool shutting_down)
{
	struct goman_err err = GOMAN_ERR_INIT;
	cJSON *arr = goman_batch_cluster_records(aws, cluster, shutting_down, &err);
	if (!arr) {
		goman_log(GOMAN_LOG_ERROR, "BATCH", "listing cluster %s: %s %s", cluster, err.code,
			  err.message);
		goman_outcome_add(&r->oc, &err);
		return 1;
	}
	cJSON *o;
	while ((o = cJSON_DetachItemFromArray(arr, 0)))
		if (keep(r, o) != 0) {
			cJSON_Delete(o);
			cJSON_Delete(arr);
			return -1;
		}
	cJSON_Delete(arr);
	return 0;
}

/* ---- flags ----------------------------------------------------------------------------- */

struct args {
	struct run *r;
	struct goman_config cfg;
	struct goman_kvs tags;
	struct goman_batch_ec2_opts xo;
	const char *cluster, *region, *profile;
	int64_t batch_timeout, poll_ms;
	bool wait_flag, show, shutting_down, list_clusters;
	enum goman_ec2_wait w;
};

static int cfg_flag(struct args *a, const char *key, const char *v)
{
	struct goman_err err = GOMAN_ERR_INIT;
	if (goman_config_set(&a->cfg, key, v, GOMAN_SRC_FLAG, &err) == 0)
		return 0;
	fprintf(stderr, "goman-batch: %s\n", err.message);
	return -1;
}

/* one setter per flag: p is the struct args */
#define A ((struct args *)p)
static int f_batch_size(void *p, const char *v)
{
	return cfg_flag(A, "batch_size", v);
}
static int f_concurrency(void *p, const char *v)
{
	return cfg_flag(A, "concurrency", v);
}
static int f_env(void *p, const char *v)
{
	return cfg_flag(A, "profile", v);
}
static int f_cluster(void *p, const char *v)
{
	A->cluster = v;
	return 0;
}
static int f_region(void *p, const char *v)
{
	A->region = v;
	return 0;
}
static int f_profile(void *p, const char *v)
{
	A->profile = v;
	return 0;
}
static int f_force(void *p, const char *v)
{
	(void)v;
	A->xo.force = true;
	return 0;
}
static int f_hibernate(void *p, const char *v)
{
	(void)v;
	A->xo.hibernate = true;
	return 0;
}
static int f_wait(void *p, const char *v)
{
	(void)v;
	A->wait_flag = true;
	return 0;
}
static int f_show(void *p, const char *v)
{
	(void)v;
	A->show = true;
	return 0;
}
static int f_shutting(void *p, const char *v)
{
	(void)v;
	A->shutting_down = true;
	return 0;
}
static int f_batch_timeout(void *p, const char *v)
{
	return cli_duration("batch-timeout", v, &A->batch_timeout);
}
static int f_timeout(void *p, const char *v)
{
	return cli_duration("timeout", v, &A->r->timeout_ms);
}
static int f_poll(void *p, const char *v)
{
	return cli_duration("poll-interval", v, &A->poll_ms);
}
static int f_tag(void *p, const char *v)
{
	const char *eq = strchr(v, '=');
	if (!eq || eq == v) {
		fprintf(stderr, "goman-batch: --tag wants K=V, not '%s'\n", cli_shown(v));
		return -1;
	}
	return goman_kvs_addn(&A->tags, v, (size_t)(eq - v), eq + 1, strlen(eq + 1)) ? -1 : 0;
}
#undef A

static const struct cli_flag flags[] = {
	{"cluster", required_argument, f_cluster},
	{"batch-size", required_argument, f_batch_size},
	{"concurrency", required_argument, f_concurrency},
	{"batch-timeout", required_argument, f_batch_timeout},
	{"env", required_argument, f_env},
	{"region", required_argument, f_region},
	{"profile", required_argument, f_profile},
	{"force", no_argument, f_force},
	{"hibernate", no_argument, f_hibernate},
	{"tag", required_argument, f_tag},
	{"wait", no_argument, f_wait},
	{"timeout", required_argument, f_timeout},
	{"poll-interval", required_argument, f_poll},
	{"show-config", no_argument, f_show},
	{"include-shutting-down", no_argument, f_shutting},
};

/* The verb, its STATE, and which flags go with it. 0 or -1 (a message was printed). */
static int check_verb(struct args *a, int argc, char **argv)
{
	struct run *r = a->r;
	static const enum goman_ec2_wait wait_of[] = {
		[GOMAN_BATCH_START] = GOMAN_EC2_WAIT_RUNNING,
		[GOMAN_BATCH_REBOOT] = GOMAN_EC2_WAIT_RUNNING,
		[GOMAN_BATCH_STOP] = GOMAN_EC2_WAIT_STOPPED,
		[GOMAN_BATCH_TERMINATE] = GOMAN_EC2_WAIT_TERMINATED,
	};
	if (optind < argc && !strcmp(argv[optind], "clusters")) {
		a->list_clusters = true;
		if (optind + 1 < argc)
			return cli_usage_error("unexpected argument '%s'",
					       cli_shown(argv[optind + 1])),
			       -1;
		return 0;
	}
	if (optind >= argc || goman_batch_verb_parse(argv[optind], &r->verb) != 0)
		return cli_usage_error("%s", optind < argc ? "unknown verb" : "a verb is needed"),
		       -1;
	int need = r->verb == GOMAN_BATCH_WAIT ? 2 : 1;
	if (r->verb == GOMAN_BATCH_WAIT &&
	    (optind + 1 >= argc || goman_ec2_wait_parse(argv[optind + 1], &a->w) != 0))
		return cli_usage_error("wait needs a STATE: running, stopped, terminated, "
				       "status-ok"),
		       -1;
	if (optind + need < argc)
		return cli_usage_error("unexpected argument '%s'", cli_shown(argv[optind + need])),
		       -1;
	if ((r->verb == GOMAN_BATCH_TAG) != (a->tags.n > 0))
		return cli_usage_error("--tag goes with the tag verb, which needs at least one"),
		       -1;
	if (a->shutting_down && !a->cluster)
		return cli_usage_error("--include-shutting-down goes with --cluster or clusters"),
		       -1;
	if (a->wait_flag) {
		bool ok = r->verb == GOMAN_BATCH_START || r->verb == GOMAN_BATCH_REBOOT ||
			  r->verb == GOMAN_BATCH_STOP || r->verb == GOMAN_BATCH_TERMINATE;
		if (!ok)
			return cli_usage_error("--wait goes with start, stop, reboot, terminate"),
			       -1;
		r->wait = (int)wait_of[r->verb];
	}
	if (r->verb == GOMAN_BATCH_WAIT)
		r->wait = (int)a->w;
	return 0;
}

/* ---- the run --------------------------------------------------------------------------- */

/* clusters: one record per cluster, or one error record (no count is known then). */
static int list_clusters(struct goman_aws *aws, bool shutting_down, struct goman_err *err)
{
	struct goman_outcome oc = {0};
	cJSON *arr = aws ? goman_batch_clusters(aws, shutting_down, err) : NULL;
	if (!arr) {
		goman_err_classify(err, "ec2", "DescribeInstances");
		goman_log(GOMAN_LOG_ERROR, "BATCH", "listing clusters: %s %s", err->code,
			  err->message);
		cJSON *er = goman_jsonl_error_record(NULL, "batch", err, 0);
		cJSON_AddStringToObject(cJSON_GetObjectItem(er, "batch"), "action", "clusters");
		goman_outcome_add(&oc, err);
		if (!er || goman_jsonl_write(1, er, NULL))
			oc.output_errors++;
		cJSON_Delete(er);
		return goman_exit_code(&oc);
	}
	cJSON *o;
	cJSON_ArrayForEach (o, arr) {
		cJSON_AddTrueToObject(o, "ok");
		goman_outcome_add(&oc, NULL);
		if (goman_jsonl_write(1, o, NULL))
			oc.output_errors++;
	}
	cJSON_Delete(arr);
	return goman_exit_code(&oc);
}

/* The batches (and the waits) of the verb over the input records. */
static void run_batches(struct args *a, struct goman_aws *aws, struct goman_http *http)
{
	struct run *r = a->r;
	struct goman_err err = GOMAN_ERR_INIT;
	struct goman_batch_ec2 *x = goman_batch_ec2_new(aws, &a->xo, &err);
	struct goman_ec2_poller_opts po = {.target = (enum goman_ec2_wait)r->wait,
					   .min_interval_ms = a->poll_ms,
					   .max_interval_ms =
						   a->poll_ms > 15000 ? a->poll_ms : 15000,
					   .first_delay_ms = a->poll_ms,
					   .on_done = on_polled,
					   .ud = r};
	if (x && r->wait >= 0)
		r->poller = goman_ec2_poller_new(aws, &po, &err);
	struct goman_batch_opts bo = {.batch_size = (size_t)a->cfg.batch_size,
				      .concurrency = (size_t)a->cfg.concurrency,
				      .action = r->action,
				      .exec = goman_batch_ec2_exec,
				      .exec_ud = x,
				      .on_item = on_item,
				      .item_ud = r};
	struct goman_batch *b = x && (r->wait < 0 || r->poller) ? goman_batch_new(&bo, &err) : NULL;
	int in_rc = !b           ? -1
		    : a->cluster ? read_cluster(r, aws, a->cluster, a->shutting_down)
				 : read_stdin(r);
	if (!b)
		goman_log(GOMAN_LOG_ERROR, "BATCH", "%s", err.message);
	for (size_t i = 0; in_rc == 0 && i < r->n; i++) {
		const char *id =
			cJSON_GetStringValue(cJSON_GetObjectItem(r->recs[i].in, "instance_id"));
		in_rc = goman_batch_add(b, id, (void *)(intptr_t)i, &err);
	}
	int64_t t0 = goman_mono_ms();
	if (in_rc == 0 && goman_batch_start(b, &err) == 0)
		goman_http_run(http, -1, -1);
	else if (in_rc < 0)
		r->oc.failed++;
	struct goman_batch_stats st = {0};
	goman_batch_stats(b, &st);
	int rounds = 0, pcalls = 0;
	if (r->poller)
		goman_ec2_poller_stats(r->poller, &rounds, &pcalls);
	goman_log(GOMAN_LOG_INFO, "BATCH",
		  "%s: %lu ok, %lu failed, %d batches, %d calls (%d bisections), "
		  "%d poll rounds, %lld ms",
		  r->action, r->oc.ok,
		  r->oc.failed + r->oc.tempfail + r->oc.unavailable + r->oc.bad_lines, st.batches,
		  st.calls, st.bisections, rounds, (long long)(goman_mono_ms() - t0));
	goman_batch_free(b);
	goman_ec2_poller_free(r->poller);
	r->poller = NULL;
	goman_batch_ec2_free(x);
}

static int done(struct args *a, int rc)
{
	goman_kvs_clear(&a->tags);
	return rc;
}

int main(int argc, char **argv)
{
	struct run r = {.wait = -1, .timeout_ms = 600000};
	struct args a = {.r = &r, .poll_ms = 2000};
	struct goman_err err = GOMAN_ERR_INIT;
	cli_init("goman-batch");
	goman_config_init(&a.cfg);
	int pf = cli_flags_parse(flags, sizeof(flags) / sizeof(flags[0]), NULL, true, &a, argc,
				 argv);
	if (pf == CLI_FLAGS_HELP)
		return done(&a, usage(0));
	if (pf == CLI_FLAGS_VERSION) {
		printf("goman-batch %s\n", GOMAN_VERSION);
		return done(&a, 0);
	}
	int bad = pf != CLI_FLAGS_OK;
	if (!bad && goman_config_load(&a.cfg, &err) < 0)
		bad = cli_usage_error("%s", err.message);
	if (!bad && (a.cfg.batch_size < 1 || a.cfg.batch_size > GOMAN_BATCH_MAX_IDS ||
		     a.cfg.concurrency < 1))
		bad = cli_usage_error("batch size must be 1..%d and concurrency at least 1",
				      GOMAN_BATCH_MAX_IDS);
	if (a.show && !bad) {
		goman_config_print(&a.cfg, stdout);
		return done(&a, 0);
	}
	if (bad || check_verb(&a, argc, argv) != 0)
		return done(&a, usage(GOMAN_EXIT_USAGE));
	signal(SIGPIPE, SIG_IGN);
	goman_events_init("goman-batch");
	r.action = goman_batch_verb_name(r.verb);
	a.xo.verb = r.verb;
	a.xo.tags = &a.tags;
	struct goman_http_opts ho = {.timeout_ms = (long)a.batch_timeout};
	struct goman_http *http = goman_http_new(a.batch_timeout ? &ho : NULL, &err);
	struct goman_aws_opts ao = {
		.profile = a.profile, .region = a.region, .http = http, .config = &a.cfg};
	struct goman_aws *aws = http ? goman_aws_new(&ao, &err) : NULL;
	int rc;
	if (a.list_clusters) {
		rc = list_clusters(aws, a.shutting_down, &err);
	} else {
		if (aws) {
			run_batches(&a, aws, http);
		} else {
			goman_log(GOMAN_LOG_ERROR, "BATCH", "%s", err.message);
			r.oc.failed++;
		}
		for (size_t i = 0; i < r.n; i++)
			cJSON_Delete(r.recs[i].in);
		free(r.recs);
		if (r.wfail)
			r.oc.output_errors++;
		rc = goman_exit_code(&r.oc);
	}
	goman_aws_free(aws);
	goman_http_free(http);
	return done(&a, rc);
}
