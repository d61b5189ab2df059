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

/* No eventual-consistency retries: a NotFound ID is bad, to be isolated now. Negative rather
 * than 0 so that a configured default for 0 (config.h eventual_deadline_ms) cannot apply. */
#define NO_EVENTUAL (-1)

struct goman_batch_ec2 {
	struct goman_aws *aws;
	struct goman_batch_ec2_opts o;
	struct goman_kvs tags;
	int lifted;
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
		goman_err_set(err, GOMAN_ENOMEM, GOMAN_CLASS_NONE, "", "out of memory");
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

int goman_batch_ec2_lifted(const struct goman_batch_ec2 *x)
{
	return x ? x->lifted : 0;
}

static int oom(struct goman_err *err)
{
	return goman_err_set(err, GOMAN_ENOMEM, GOMAN_CLASS_NONE, "", "out of memory");
}

static int add_ids(struct goman_kvs *p, const char *name, const char *const *ids, size_t n)
{
	char k[64];
	for (size_t i = 0; i < n; i++) {
		snprintf(k, sizeof(k), "%s.%zu", name, i + 1);
		if (goman_kvs_add(p, k, ids[i]) != 0)
			return -1;
	}
	return 0;
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
			oom(&e2);
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
	xc->x->lifted++;
	xc->phase = 2;
	if (add_ids(&p, "InstanceId", xc->c->ids, xc->c->n) != 0) {
		goman_kvs_clear(&p);
		oom(&err);
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
		return oom(err);
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
		rc = add_ids(&p, "ResourceId", c->ids, c->n);
		for (size_t i = 0; rc == 0 && i < x->tags.n; i++) {
			snprintf(k, sizeof(k), "Tag.%zu.Key", i + 1);
			rc = goman_kvs_add(&p, k, x->tags.v[i].name);
			snprintf(k, sizeof(k), "Tag.%zu.Value", i + 1);
			if (rc == 0)
				rc = goman_kvs_add(&p, k, x->tags.v[i].value);
		}
	} else {
		rc = add_ids(&p, "InstanceId", c->ids, c->n);
	}
	if (rc == 0 && x->o.verb == GOMAN_BATCH_STOP && x->o.force)
		rc = goman_kvs_add(&p, "Force", "true");
	if (rc == 0 && x->o.verb == GOMAN_BATCH_STOP && x->o.hibernate)
		rc = goman_kvs_add(&p, "Hibernate", "true");
	if (rc != 0) {
		goman_kvs_clear(&p);
		free(xc);
		return oom(err);
	}
	if (submit(xc, action, &p, mutation_done, err) != 0) {
		free(xc);
		return -1;
	}
	return 0;
}

struct cJSON *goman_batch_cluster_records(struct goman_aws *aws, const char *cluster,
					  struct goman_err *err)
{
	static const char *const live[] = {"pending", "running", "stopping", "stopped"};
	struct goman_kvs f = {0};
	struct goman_ec2_instances l = {0};
	cJSON *arr = NULL;
	int rc = goman_kvs_add(&f, "tag:goman:cluster", cluster);
	for (size_t i = 0; rc == 0 && i < sizeof(live) / sizeof(live[0]); i++)
		rc = goman_kvs_add(&f, "instance-state-name", live[i]);
	if (rc != 0) {
		oom(err);
		goto done;
	}
	if (goman_ec2_describe(aws, &f, NULL, 0, &l, NULL, err) != 0)
		goto done;
	if (!(arr = cJSON_CreateArray())) {
		oom(err);
		goto done;
	}
	for (size_t i = 0; i < l.n; i++) {
		cJSON *o = cJSON_CreateObject();
		const char *name = goman_ec2_tag(&l.v[i], "goman:name");
		const char *role = goman_ec2_tag(&l.v[i], "goman:role");
		if (!o || !cJSON_AddStringToObject(o, "cluster", cluster) ||
		    (name && !cJSON_AddStringToObject(o, "name", name)) ||
		    (role && !cJSON_AddStringToObject(o, "role", role)) ||
		    goman_ec2_instance_to_json(&l.v[i], o) != 0) {
			cJSON_Delete(o);
			cJSON_Delete(arr);
			arr = NULL;
			oom(err);
			goto done;
		}
		cJSON_AddItemToArray(arr, o);
	}
	goman_log(GOMAN_LOG_INFO, "BATCH", "cluster %s: %zu instances", cluster, l.n);
done:
	goman_ec2_instances_clear(&l);
	goman_kvs_clear(&f);
	return arr;
}
