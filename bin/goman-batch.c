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

static const char usage_text[] =
	"usage: goman-batch VERB [options] < instances.jsonl\n"
	"       goman-batch VERB --cluster NAME [options]\n"
	"\n"
	"VERB: describe | start | stop | reboot | terminate | tag | wait STATE\n"
	"      (STATE: running, stopped, terminated, status-ok)\n"
	"Input lines carry \"instance_id\"; other fields pass through. Output: each input record\n"
	"with \"batch\":{\"action\",\"previous_state\",\"state\",\"batch\",\"ms\",\"ok\"} and "
	"\"ok\".\n"
	"\n"
	"  --cluster NAME        select the instances tagged goman:cluster=NAME (stdin not read)\n"
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

static int read_cluster(struct run *r, struct goman_aws *aws, const char *cluster)
{
	struct goman_err err = GOMAN_ERR_INIT;
	cJSON *arr = goman_batch_cluster_records(aws, cluster, &err);
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

static int dur_flag(const char *name, const char *v, int64_t *ms)
{
	if (goman_parse_duration_ms(v, ms) == 0)
		return 0;
	fprintf(stderr, "goman-batch: bad duration for --%s: '%s'\n", name, v);
	return -1;
}

int main(int argc, char **argv)
{
	static const struct option flags[] = {{"cluster", required_argument, NULL, 'c'},
					      {"batch-size", required_argument, NULL, 'b'},
					      {"concurrency", required_argument, NULL, 'j'},
					      {"batch-timeout", required_argument, NULL, 'T'},
					      {"env", required_argument, NULL, 'e'},
					      {"region", required_argument, NULL, 'r'},
					      {"profile", required_argument, NULL, 'p'},
					      {"force", no_argument, NULL, 'f'},
					      {"hibernate", no_argument, NULL, 'H'},
					      {"tag", required_argument, NULL, 't'},
					      {"wait", no_argument, NULL, 'w'},
					      {"timeout", required_argument, NULL, 'o'},
					      {"poll-interval", required_argument, NULL, 'i'},
					      {"show-config", no_argument, NULL, 'S'},
					      {"help", no_argument, NULL, 'h'},
					      {"version", no_argument, NULL, 'V'},
					      {NULL, 0, NULL, 0}};
	struct run r = {.wait = -1, .timeout_ms = 600000};
	struct goman_config cfg;
	struct goman_kvs tags = {0};
	struct goman_batch_ec2_opts xo = {0};
	const char *cluster = NULL, *region = NULL, *profile = NULL;
	int64_t batch_timeout = 0, poll_ms = 2000;
	int c, wait_flag = 0, show = 0, bad = 0;
	struct goman_err err = GOMAN_ERR_INIT;
	goman_config_init(&cfg);
	while ((c = getopt_long(argc, argv, "", flags, NULL)) != -1) {
		const char *key = c == 'b' ? "batch_size" : c == 'j' ? "concurrency" : "profile";
		char *eq;
		switch (c) {
		case 'b':
		case 'j':
		case 'e':
			if (goman_config_set(&cfg, key, optarg, GOMAN_SRC_FLAG, &err) < 0) {
				fprintf(stderr, "goman-batch: %s\n", err.message);
				bad = 1;
			}
			break;
		case 'c': cluster = optarg; break;
		case 'T': bad |= dur_flag("batch-timeout", optarg, &batch_timeout); break;
		case 'r': region = optarg; break;
		case 'p': profile = optarg; break;
		case 'f': xo.force = true; break;
		case 'H': xo.hibernate = true; break;
		case 't':
			eq = strchr(optarg, '=');
			if (!eq || eq == optarg) {
				fprintf(stderr, "goman-batch: --tag wants K=V, not '%s'\n", optarg);
				bad = 1;
			} else if (goman_kvs_addn(&tags, optarg, (size_t)(eq - optarg), eq + 1,
						  strlen(eq + 1))) {
				bad = 1;
			}
			break;
		case 'w': wait_flag = 1; break;
		case 'o': bad |= dur_flag("timeout", optarg, &r.timeout_ms); break;
		case 'i': bad |= dur_flag("poll-interval", optarg, &poll_ms); break;
		case 'S': show = 1; break;
		case 'h': return usage(0);
		case 'V': printf("goman-batch %s\n", GOMAN_VERSION); return 0;
		default: bad = 1;
		}
	}
	if (!bad && goman_config_load(&cfg, &err) < 0) {
		fprintf(stderr, "goman-batch: %s\n", err.message);
		bad = 1;
	}
	if (!bad &&
	    (cfg.batch_size < 1 || cfg.batch_size > GOMAN_BATCH_MAX_IDS || cfg.concurrency < 1)) {
		fprintf(stderr,
			"goman-batch: batch size must be 1..%d and concurrency at least 1\n",
			GOMAN_BATCH_MAX_IDS);
		bad = 1;
	}
	if (show && !bad) {
		goman_config_print(&cfg, stdout);
		return 0;
	}
	if (!bad && (optind >= argc || goman_batch_verb_parse(argv[optind], &r.verb) != 0)) {
		fprintf(stderr, "goman-batch: %s\n",
			optind < argc ? "unknown verb" : "a verb is needed");
		bad = 1;
	}
	int need = r.verb == GOMAN_BATCH_WAIT ? 2 : 1;
	enum goman_ec2_wait w = GOMAN_EC2_WAIT_RUNNING;
	if (!bad && r.verb == GOMAN_BATCH_WAIT &&
	    (optind + 1 >= argc || goman_ec2_wait_parse(argv[optind + 1], &w) != 0)) {
		fprintf(stderr, "goman-batch: wait needs a STATE: running, stopped, terminated, "
				"status-ok\n");
		bad = 1;
	}
	if (!bad && optind + need < argc) {
		fprintf(stderr, "goman-batch: unexpected argument '%s'\n", argv[optind + need]);
		bad = 1;
	}
	if (!bad && (r.verb == GOMAN_BATCH_TAG) != (tags.n > 0)) {
		fprintf(stderr,
			"goman-batch: --tag goes with the tag verb, which needs at least one\n");
		bad = 1;
	}
	if (!bad && wait_flag) {
		if (r.verb == GOMAN_BATCH_START || r.verb == GOMAN_BATCH_REBOOT)
			r.wait = GOMAN_EC2_WAIT_RUNNING;
		else if (r.verb == GOMAN_BATCH_STOP)
			r.wait = GOMAN_EC2_WAIT_STOPPED;
		else if (r.verb == GOMAN_BATCH_TERMINATE)
			r.wait = GOMAN_EC2_WAIT_TERMINATED;
		else {
			fprintf(stderr,
				"goman-batch: --wait goes with start, stop, reboot, terminate\n");
			bad = 1;
		}
	}
	if (r.verb == GOMAN_BATCH_WAIT)
		r.wait = (int)w;
	if (bad) {
		goman_kvs_clear(&tags);
		return usage(GOMAN_EXIT_USAGE);
	}
	signal(SIGPIPE, SIG_IGN);
	goman_events_init("goman-batch");
	r.action = goman_batch_verb_name(r.verb);
	xo.verb = r.verb;
	xo.tags = &tags;
	struct goman_http_opts ho = {.timeout_ms = (long)batch_timeout};
	struct goman_http *http = goman_http_new(batch_timeout ? &ho : NULL, &err);
	struct goman_aws_opts ao = {
		.profile = profile, .region = region, .http = http, .config = &cfg};
	struct goman_aws *aws = http ? goman_aws_new(&ao, &err) : NULL;
	struct goman_batch_ec2 *x = aws ? goman_batch_ec2_new(aws, &xo, &err) : NULL;
	struct goman_ec2_poller_opts po = {.target = w,
					   .min_interval_ms = poll_ms,
					   .max_interval_ms = poll_ms > 15000 ? poll_ms : 15000,
					   .first_delay_ms = poll_ms,
					   .on_done = on_polled,
					   .ud = &r};
	if (x && r.wait >= 0) {
		po.target = (enum goman_ec2_wait)r.wait;
		r.poller = goman_ec2_poller_new(aws, &po, &err);
	}
	struct goman_batch_opts bo = {.batch_size = (size_t)cfg.batch_size,
				      .concurrency = (size_t)cfg.concurrency,
				      .action = r.action,
				      .exec = goman_batch_ec2_exec,
				      .exec_ud = x,
				      .on_item = on_item,
				      .item_ud = &r};
	struct goman_batch *b = x && (r.wait < 0 || r.poller) ? goman_batch_new(&bo, &err) : NULL;
	int in_rc = !b ? -1 : cluster ? read_cluster(&r, aws, cluster) : read_stdin(&r);
	if (!b)
		goman_log(GOMAN_LOG_ERROR, "BATCH", "%s", err.message);
	for (size_t i = 0; in_rc == 0 && i < r.n; i++) {
		const char *id =
			cJSON_GetStringValue(cJSON_GetObjectItem(r.recs[i].in, "instance_id"));
		in_rc = goman_batch_add(b, id, (void *)(intptr_t)i, &err);
	}
	int64_t t0 = goman_mono_ms();
	if (in_rc == 0 && goman_batch_start(b, &err) == 0)
		goman_http_run(http, -1, -1);
	else if (in_rc < 0)
		r.oc.failed++;
	struct goman_batch_stats st = {0};
	goman_batch_stats(b, &st);
	int rounds = 0, pcalls = 0;
	if (r.poller)
		goman_ec2_poller_stats(r.poller, &rounds, &pcalls);
	goman_log(GOMAN_LOG_INFO, "BATCH",
		  "%s: %lu ok, %lu failed, %d batches, %d calls (%d bisections), "
		  "%d poll rounds, %lld ms",
		  r.action, r.oc.ok,
		  r.oc.failed + r.oc.tempfail + r.oc.unavailable + r.oc.bad_lines, st.batches,
		  st.calls, st.bisections, rounds, (long long)(goman_mono_ms() - t0));
	for (size_t i = 0; i < r.n; i++)
		cJSON_Delete(r.recs[i].in);
	free(r.recs);
	goman_batch_free(b);
	goman_ec2_poller_free(r.poller);
	goman_batch_ec2_free(x);
	goman_aws_free(aws);
	goman_http_free(http);
	goman_kvs_clear(&tags);
	if (r.wfail)
		r.oc.output_errors++;
	return goman_exit_code(&r.oc);
}
