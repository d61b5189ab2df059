/*
 * batch_ec2.c - the EC2 executor of goman/batch.h: one engine call → one EC2 call.
 *
 * State-changing verbs (start/stop/terminate) read instancesSet's previousState and
 * currentState from the reply; describe goes through goman_ec2_describe_submit() (ec2.h's
 * DescribeInstances reader); reboot and tag replies carry no states. CreateTags is made
 * here rather than with goman_ec2_create_tags_submit() because that one retries
 * InvalidInstanceID.NotFound for 60 s (right for a just-launched instance); in a batch a
 * missing ID is a bad ID to isolate at once, so every call here has no eventual deadline.
 *
 * Terminate and protection: a protected instance makes TerminateInstances refuse the whole
 * call with OperationNotPermitted; the engine bisects until it stands alone. Then, with
 * force, ModifyInstanceAttribute DisableApiTermination=false and TerminateInstances again;
 * without force, its error says --force lifts it.
 *
 * Ownership: struct goman_batch_ec2 owns a copy of the tags; each call's context (struct
 * xcall) is freed when the engine call is finished. Errors arrive through
 * goman_batch_call_done().
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>
#include "goman/aws.h"
#include "goman/batch.h"
#include "goman/ec2.h"
#include "goman/log.h"
#include "bytes_int.h"
#include "ec2_int.h"

/* No eventual-consistency retries: a NotFound ID is bad, to be isolated now. Negative rather
 * than 0 so that a configured default for 0 (config.h eventual_deadline_ms) cannot apply. */
#define NO_EVENTUAL (-1)

struct goman_batch_ec2 {
	struct goman_aws *aws;
	struct goman_batch_ec2_opts o;
	struct goman_kvs tags;
};

struct xcall {
	struct goman_batch_ec2 *x;
	struct goman_batch_call *c;
	int phase; /* terminate: 0 first try, 1 lifting protection, 2 second try */
};

struct goman_batch_ec2 *goman_batch_ec2_new(struct goman_aws *aws,
					    const struct goman_batch_ec2_opts *o,
					    struct goman_err *err)
{
	struct goman_batch_ec2 *x = calloc(1, sizeof(*x));
	if (!x || (o->tags && goman_kvs_copy(&x->tags, o->tags) != 0)) {
		free(x);
		gm_err_oom(err);
		return NULL;
	}
	x->aws = aws;
	x->o = *o;
	x->o.tags = &x->tags;
	return x;
}

void goman_batch_ec2_free(struct goman_batch_ec2 *x)
{
	if (!x)
		return;
	goman_kvs_clear(&x->tags);
	free(x);
}

/* The engine call is over: free the context first (the engine may start more calls). */
static void finish(struct xcall *xc, const struct goman_err *err)
{
	struct goman_batch_call *c = xc->c;
	free(xc);
	goman_batch_call_done(c, err);
}

/* Reports a state to every index of the call whose ID is id (IDs may repeat in input). */
static void set_state(struct goman_batch_call *c, const char *id, const char *prev, const char *cur)
{
	for (size_t i = 0; id && i < c->n; i++)
		if (!strcmp(c->ids[i], id))
			goman_batch_call_state(c, i, prev, cur);
}

static int submit(struct xcall *xc, const char *action, struct goman_kvs *params,
		  goman_aws_done_fn done, struct goman_err *err);
static void lift_done(struct goman_aws_result *res, void *ud);

static void mutation_done(struct goman_aws_result *res, void *ud)
{
	struct xcall *xc = ud;
	struct goman_batch_call *c = xc->c;
	struct goman_batch_ec2 *x = xc->x;
	struct goman_err err = res->err;
	if (err.rc == GOMAN_OK) {
		cJSON *set = goman_json_path_array(res->data, "instancesSet");
		cJSON *it;
		cJSON_ArrayForEach (it, set)
			set_state(c, goman_json_path_str(it, "instanceId"),
				  goman_json_path_str(it, "previousState.name"),
				  goman_json_path_str(it, "currentState.name"));
		finish(xc, NULL);
		return;
	}
	bool protected_one = x->o.verb == GOMAN_BATCH_TERMINATE && c->n == 1 &&
			     !strcmp(err.code, "OperationNotPermitted");
	if (protected_one && x->o.force && xc->phase == 0) {
		struct goman_kvs p = {0};
		struct goman_err e2 = GOMAN_ERR_INIT;
		goman_err_clear(&e2);
		goman_log(GOMAN_LOG_INFO, "BATCH", "%s: lifting termination protection (--force)",
			  c->ids[0]);
		xc->phase = 1;
		if (goman_kvs_add(&p, "InstanceId", c->ids[0]) ||
		    goman_kvs_add(&p, "DisableApiTermination.Value", "false")) {
			goman_kvs_clear(&p);
			gm_err_oom(&e2);
			finish(xc, &e2);
			return;
		}
		if (submit(xc, "ModifyInstanceAttribute", &p, lift_done, &e2) != 0)
			finish(xc, &e2);
		return;
	}
	if (protected_one && !x->o.force)
		snprintf(err.message, sizeof(err.message),
			 "termination protection is on for %s (DisableApiTermination): --force "
			 "lifts it",
			 c->ids[0]);
	finish(xc, &err);
}

/* ModifyInstanceAttribute answered: on success terminate again. */
static void lift_done(struct goman_aws_result *res, void *ud)
{
	struct xcall *xc = ud;
	if (res->err.rc != GOMAN_OK) {
		finish(xc, &res->err);
		return;
	}
	struct goman_kvs p = {0};
	struct goman_err err = GOMAN_ERR_INIT;
	goman_err_clear(&err);
	xc->phase = 2;
	if (gm_ec2_add_ids(&p, "InstanceId", xc->c->ids, xc->c->n) != 0) {
		goman_kvs_clear(&p);
		gm_err_oom(&err);
		finish(xc, &err);
		return;
	}
	if (submit(xc, "TerminateInstances", &p, mutation_done, &err) != 0)
		finish(xc, &err);
}

/* Submits one EC2 call (no eventual deadline: a missing ID is a bad ID here); clears
 * params. */
static int submit(struct xcall *xc, const char *action, struct goman_kvs *params,
		  goman_aws_done_fn done, struct goman_err *err)
{
	struct goman_aws_call call = {.service = "ec2",
				      .action = action,
				      .params = params,
				      .eventual_deadline_ms = NO_EVENTUAL};
	int rc = goman_aws_submit(xc->x->aws, &call, done, xc, err);
	goman_kvs_clear(params);
	return rc;
}

static void describe_done(struct goman_ec2_instances *found, const struct goman_err *err,
			  const struct goman_ec2_describe_stats *st, void *ud)
{
	(void)st;
	struct xcall *xc = ud;
	if (!err || err->rc == GOMAN_OK)
		for (size_t i = 0; i < found->n; i++)
			set_state(xc->c, found->v[i].instance_id, NULL, found->v[i].state);
	finish(xc, err);
}

int goman_batch_ec2_exec(struct goman_batch_call *c, void *ud, struct goman_err *err)
{
	struct goman_batch_ec2 *x = ud;
	struct xcall *xc = calloc(1, sizeof(*xc));
	if (!xc)
		return gm_err_oom(err);
	xc->x = x;
	xc->c = c;
	struct goman_kvs p = {0};
	const char *action = NULL;
	int rc = 0;
	switch (x->o.verb) {
	case GOMAN_BATCH_DESCRIBE:
	case GOMAN_BATCH_WAIT:
		rc = goman_ec2_describe_submit(x->aws, NULL, c->ids, c->n, NO_EVENTUAL,
					       describe_done, xc, err);
		if (rc != 0)
			free(xc);
		return rc;
	case GOMAN_BATCH_START: action = "StartInstances"; break;
	case GOMAN_BATCH_STOP: action = "StopInstances"; break;
	case GOMAN_BATCH_REBOOT: action = "RebootInstances"; break;
	case GOMAN_BATCH_TERMINATE: action = "TerminateInstances"; break;
	case GOMAN_BATCH_TAG: action = "CreateTags"; break;
	}
	if (!action) {
		free(xc);
		return goman_err_set(err, GOMAN_EINVAL, GOMAN_CLASS_BAD_INPUT, "BadInput",
				     "unknown batch verb");
	}
	if (x->o.verb == GOMAN_BATCH_TAG) {
		char k[64];
		rc = gm_ec2_add_ids(&p, "ResourceId", c->ids, c->n);
		for (size_t i = 0; rc == 0 && i < x->tags.n; i++) {
			snprintf(k, sizeof(k), "Tag.%zu.Key", i + 1);
			rc = goman_kvs_add(&p, k, x->tags.v[i].name);
			snprintf(k, sizeof(k), "Tag.%zu.Value", i + 1);
			if (rc == 0)
				rc = goman_kvs_add(&p, k, x->tags.v[i].value);
		}
	} else {
		rc = gm_ec2_add_ids(&p, "InstanceId", c->ids, c->n);
	}
	if (rc == 0 && x->o.verb == GOMAN_BATCH_STOP && x->o.force)
		rc = goman_kvs_add(&p, "Force", "true");
	if (rc == 0 && x->o.verb == GOMAN_BATCH_STOP && x->o.hibernate)
		rc = goman_kvs_add(&p, "Hibernate", "true");
	if (rc != 0) {
		goman_kvs_clear(&p);
		free(xc);
		return gm_err_oom(err);
	}
	if (submit(xc, action, &p, mutation_done, err) != 0) {
		free(xc);
		return -1;
	}
	return 0;
}

/* The record of one listed instance: {"cluster","name","role","index","group","via",
 * ...summary}; each only when tagged (index when goman:index is a whole number). via is the
 * transport the node was installed with, so a drain finds it without the local state file.
 * NULL on no memory. */
static cJSON *cluster_record(const char *cluster, const struct goman_ec2_instance *in)
{
	cJSON *o = cJSON_CreateObject();
	const char *name = goman_ec2_tag(in, "goman:name");
	const char *role = goman_ec2_tag(in, "goman:role");
	const char *ix = goman_ec2_tag(in, "goman:index");
	const char *group = goman_ec2_tag(in, "goman:group");
	const char *via = goman_ec2_tag(in, "goman:via");
	char *end = NULL;
	long index = ix && *ix >= '0' && *ix <= '9' ? strtol(ix, &end, 10) : -1;
	if (!o || !cJSON_AddStringToObject(o, "cluster", cluster) ||
	    (name && !cJSON_AddStringToObject(o, "name", name)) ||
	    (role && !cJSON_AddStringToObject(o, "role", role)) ||
	    (group && !cJSON_AddStringToObject(o, "group", group)) ||
	    (via && !cJSON_AddStringToObject(o, "via", via)) ||
	    (end && !*end && index <= 99999 &&
	     !cJSON_AddNumberToObject(o, "index", (double)index)) ||
	    goman_ec2_instance_to_json(in, o) != 0) {
		cJSON_Delete(o);
		return NULL;
	}
	return o;
}

struct cJSON *goman_batch_cluster_records(struct goman_aws *aws, const char *cluster,
					  bool shutting_down, struct goman_err *err)
{
	struct goman_ec2_instances l = {0};
	cJSON *arr = NULL;
	if (goman_ec2_cluster_instances(aws, cluster, shutting_down, &l, err) != 0)
		goto done;
	if (!(arr = cJSON_CreateArray())) {
		gm_err_oom(err);
		goto done;
	}
	for (size_t i = 0; i < l.n; i++) {
		cJSON *o = cluster_record(cluster, &l.v[i]);
		if (!o) {
			cJSON_Delete(arr);
			arr = NULL;
			gm_err_oom(err);
			goto done;
		}
		cJSON_AddItemToArray(arr, o);
	}
	goman_log(GOMAN_LOG_INFO, "BATCH", "cluster %s: %zu instances", cluster, l.n);
done:
	goman_ec2_instances_clear(&l);
	return arr;
}

/* The count of state in a cluster's record (created at 0 when missing). */
static int count_state(cJSON *rec, const char *state)
{
	cJSON *st = cJSON_GetObjectItemCaseSensitive(rec, "states");
	cJSON *n = cJSON_GetObjectItemCaseSensitive(st, state);
	if (!n)
		n = cJSON_AddNumberToObject(st, state, 0);
	if (!n)
		return -1;
	cJSON_SetNumberValue(n, n->valuedouble + 1);
	return 0;
}

static int cmp_cluster(const void *a, const void *b)
{
	const char *x =
		goman_ec2_tag(*(const struct goman_ec2_instance *const *)a, "goman:cluster");
	const char *y =
		goman_ec2_tag(*(const struct goman_ec2_instance *const *)b, "goman:cluster");
	return strcmp(x, y);
}

/* Closes a cluster's record: its totals, then into arr. 0 or -1. */
static int close_count(cJSON *arr, cJSON *rec, long total, long running)
{
	/* the totals before the per-state counts: the order a reader scans */
	cJSON *st = cJSON_DetachItemFromObjectCaseSensitive(rec, "states");
	if (!cJSON_AddNumberToObject(rec, "instances", (double)total) ||
	    !cJSON_AddNumberToObject(rec, "running", (double)running) ||
	    !cJSON_AddItemToObject(rec, "states", st)) {
		cJSON_Delete(st);
		cJSON_Delete(rec);
		return -1;
	}
	cJSON_AddItemToArray(arr, rec);
	return 0;
}

/* One record per cluster of the instances sorted by cluster: instances, running, states.
 * NULL on no memory. */
static cJSON *cluster_counts(const struct goman_ec2_instance **by, size_t n)
{
	cJSON *arr = cJSON_CreateArray(), *rec = NULL;
	const char *cur = "";
	long total = 0, running = 0;
	bool bad = !arr;
	for (size_t i = 0; !bad && i < n; i++) {
		const char *c = goman_ec2_tag(by[i], "goman:cluster");
		if (rec && strcmp(c, cur)) {
			bad = close_count(arr, rec, total, running) != 0;
			rec = NULL;
		}
		if (!bad && !rec) {
			cur = c;
			total = running = 0;
			rec = cJSON_CreateObject();
			bad = !rec || !cJSON_AddStringToObject(rec, "cluster", c) ||
			      !cJSON_AddObjectToObject(rec, "states");
		}
		total++;
		running += !strcmp(by[i]->state, "running");
		bad = bad || count_state(rec, by[i]->state) != 0;
	}
	if (!bad && rec)
		bad = close_count(arr, rec, total, running) != 0;
	else if (bad)
		cJSON_Delete(rec);
	if (bad) {
		cJSON_Delete(arr);
		return NULL;
	}
	return arr;
}

struct cJSON *goman_batch_clusters(struct goman_aws *aws, bool shutting_down, struct goman_err *err)
{
	struct goman_ec2_instances l = {0};
	const struct goman_ec2_instance **by = NULL;
	cJSON *arr = NULL;
	if (goman_ec2_cluster_instances(aws, NULL, shutting_down, &l, err) != 0)
		goto done;
	by = calloc(l.n ? l.n : 1, sizeof(*by));
	for (size_t i = 0; by && i < l.n; i++)
		by[i] = &l.v[i];
	if (by)
		qsort(by, l.n, sizeof(*by), cmp_cluster);
	if (!by || !(arr = cluster_counts(by, l.n)))
		gm_err_oom(err);
	else
		goman_log(GOMAN_LOG_INFO, "BATCH", "%d cluster(s), %zu instances",
			  cJSON_GetArraySize(arr), l.n);
done:
	free(by);
	goman_ec2_instances_clear(&l);
	return arr;
}
