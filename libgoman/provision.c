/*
 * provision.c - the convergence engine of goman-provision (see goman/provision.h for the
 * steps, the idempotency identity and what api_calls counts).
 *
 * Shape: specs are validated and indexed first (bad ones become BadInput records at
 * once); then each cluster runs: blocking list + setup calls, then everything else (group
 * launches, paced CreateTags, StartInstances, the poller) is queued on the one loop and
 * the loop runs until idle. Each node is emitted exactly once, the moment it is complete:
 * reused and running → at once; launched → tagged and at the wait state; failed → an
 * error record.
 * A group whose type has no capacity is launched again from its RunInstances callback with
 * the next type (a new idempotency key, begun there as the store's completion and failure
 * already are).
 *
 * Specs are validated in provision_spec.c, planned and placed in provision_plan.c, the
 * blocking setup calls are provision_setup.c, the CreateTags pacing provision_tags.c.
 *
 * Ownership: struct prun owns its nodes (each owns its spec copy and instance summary),
 * its groups (each owns its idempotency ticket) and the pollers; prun_clear() and the entry
 * point release all.
 * Errors: per node as records; -1 from goman_provision_run() only when nothing could run.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>
#include "goman/addr.h"
#include "goman/aws.h"
#include "goman/clock.h"
#include "goman/ec2.h"
#include "goman/http.h"
#include "goman/idem.h"
#include "goman/jsonl.h"
#include "goman/log.h"
#include "goman/provision.h"
#include "buf_int.h"
#include "bytes_int.h"
#include "provision_int.h"

/* re-sends of a group launch / CreateTags after the call gave up on a retryable error
 * (same ClientToken) */
#define APP_RETRIES 6
#define APP_RETRY_MS GM_PROV_RETRY_MS

/* ---- records ------------------------------------------------------------------------ */

static void put(cJSON *o, const char *k, cJSON *v)
{
	if (!v)
		return;
	if (cJSON_GetObjectItemCaseSensitive(o, k))
		cJSON_ReplaceItemInObjectCaseSensitive(o, k, v);
	else
		cJSON_AddItemToObject(o, k, v);
}

static cJSON *sub(cJSON *o, const char *k)
{
	cJSON *s = cJSON_GetObjectItemCaseSensitive(o, k);
	if (cJSON_IsObject(s))
		return s;
	s = cJSON_CreateObject();
	put(o, k, s);
	return s;
}

static void put_time(cJSON *o, const char *k, int64_t ms)
{
	char b[40];
	put(o, k, cJSON_CreateString(goman_rfc3339(ms, b, sizeof(b))));
}

static double round2(double v)
{
	return (double)(long long)(v * 100.0 + 0.5) / 100.0;
}

/* The server URL of the cluster from its first server (role server, index 0): nodes then
 * join it without waiting for that server's record. An address that fails the address rule
 * gives no URL rather than a bad one. */
static void note_first_server(struct prun *r, const struct goman_ec2_instance *in, const char *role,
			      int index)
{
	char url[sizeof(r->server_url)];
	if (r->server_url[0] || !role || strcmp(role, "server") || index != 0 || !in->private_ip[0])
		return;
	if (goman_server_url(url, sizeof(url), in->private_ip, GM_PROV_K3S_API_PORT) == 0 &&
	    goman_server_url_ok(url))
		snprintf(r->server_url, sizeof(r->server_url), "%s", url);
}

static void emit(struct prun *r, struct node *n, const struct goman_err *err)
{
	if (n->emitted)
		return;
	n->emitted = true;
	cJSON *rec;
	if (err && err->rc != GOMAN_OK) {
		rec = goman_jsonl_error_record(n->in, "provision", err, 0);
		if (rec) {
			if (n->inst.instance_id[0])
				put(rec, "instance_id", cJSON_CreateString(n->inst.instance_id));
			cJSON *pv = sub(rec, "provision");
			put(pv, "ms", cJSON_CreateNumber((double)(goman_mono_ms() - n->t0)));
			put(pv, "api_calls", cJSON_CreateNumber(round2(n->calls)));
			if (r->server_url[0])
				put(rec, "server_url", cJSON_CreateString(r->server_url));
		}
		goman_log(GOMAN_LOG_DEBUG, "PROVISION", "%s failed: %s %s", n->name, err->code,
			  err->message);
	} else {
		rec = cJSON_Duplicate(n->in, 1);
		if (rec) {
			put(rec, "group", cJSON_CreateString(n->group));
			if (n->subnet[0])
				put(rec, "subnet_id", cJSON_CreateString(n->subnet));
			if (n->az[0])
				put(rec, "az", cJSON_CreateString(n->az));
			if (n->inst.instance_id[0])
				goman_ec2_instance_to_json(&n->inst, rec);
			put(rec, "region", cJSON_CreateString(goman_aws_region(r->aws)));
			if (r->server_url[0])
				put(rec, "server_url", cJSON_CreateString(r->server_url));
			cJSON_DeleteItemFromObjectCaseSensitive(rec, "drift");
			if (n->reused)
				put(rec, "drift", gm_prov_drift(n));
			if (!cJSON_GetObjectItemCaseSensitive(rec, "instance_type"))
				put(rec, "instance_type", cJSON_CreateString(n->type));
			cJSON *t = sub(rec, "t");
			int64_t lt;
			if (n->inst.launch_time[0] &&
			    goman_parse_time(n->inst.launch_time, &lt) == 0)
				put_time(t, "launched", lt);
			if (n->running_wall)
				put_time(t, "running", n->running_wall);
			cJSON *pv = sub(rec, "provision");
			put(pv, "ok", cJSON_CreateTrue());
			put(pv, "ms", cJSON_CreateNumber((double)(goman_mono_ms() - n->t0)));
			put(pv, "reused", cJSON_CreateBool(n->reused));
			if (n->adopted)
				put(pv, "adopted", cJSON_CreateTrue());
			if (n->need_tags && !n->tagged)
				put(pv, "tagged", cJSON_CreateFalse());
			if (n->dry) {
				put(pv, "dry_run", cJSON_CreateTrue());
				put(pv, "would_launch", cJSON_CreateBool(!n->reused));
			}
			if (n->g && n->g->ntried) {
				cJSON *tr = cJSON_CreateArray();
				for (int i = 0; tr && i < n->g->ntried; i++)
					cJSON_AddItemToArray(tr,
							     cJSON_CreateString(n->g->tried[i]));
				put(pv, "types_tried", tr);
			}
			put(pv, "api_calls", cJSON_CreateNumber(round2(n->calls)));
			put(rec, "ok", cJSON_CreateTrue());
		}
	}
	if (r->out)
		goman_outcome_add(r->out, err);
	if (rec)
		r->o->emit(rec, err, r->o->ud);
	cJSON_Delete(rec);
}

/* Emits the node when everything it waits for is done. */
static void try_emit(struct prun *r, struct node *n)
{
	if (n->emitted)
		return;
	/* a node launched here and seen running does not wait for its name tags: at EC2's
	 * CreateTags rate (10 a second after a burst of 100) the last of 1000 would wait
	 * 90 s. Its identity is already in EC2 (the launch tags, its launch index), the
	 * record says "tagged":false, and the run ends only after the tags are on. */
	bool tags_can_follow = n->launched && n->ready && !r->o->wait_none;
	if (n->need_tags && !n->tagged && !tags_can_follow)
		return;
	if (!n->ready && !r->o->wait_none)
		return;
	if (!n->running_wall && n->ready)
		n->running_wall = goman_now_ms();
	emit(r, n, NULL);
}

static void node_set_index(struct node *n, int i)
{
	n->index = i;
	snprintf(n->name, sizeof(n->name), "%s-%s-%d", n->cluster, n->role, i);
	put(n->in, "name", cJSON_CreateString(n->name));
	put(n->in, "index", cJSON_CreateNumber(i));
}

/* ---- CreateTags pacing ---------------------------------------------------------------- */

/* Queues a node's CreateTags; no memory is the node's error. */
static void tags_enqueue(struct prun *r, struct node *n)
{
	if (gm_pace_push(&r->tags, n) != 0) {
		struct goman_err e = GOMAN_ERR_INIT;
		gm_err_oom(&e);
		emit(r, n, &e);
	}
}

static void tags_done(const struct goman_err *err, int calls, void *ud)
{
	struct node *n = ud;
	struct prun *r = n->r;
	n->calls += calls;
	r->stats_tags += calls;
	gm_pace_done(&r->tags, calls);
	if (err && err->retryable && ++n->tag_tries <= APP_RETRIES) {
		tags_enqueue(r, n);
		gm_pace_pump(&r->tags);
		return;
	}
	if (err) {
		goman_log(GOMAN_LOG_WARN, "PROVISION", "%s (%s): CreateTags failed: %s %s%s",
			  n->name, n->inst.instance_id, err->code, err->message,
			  n->emitted ? " (its record went out untagged; a re-run names it)" : "");
		/* after an untagged record the failure still counts in the exit status */
		if (n->emitted && r->out)
			goman_outcome_add(r->out, err);
		emit(r, n, err);
	} else {
		n->tagged = true;
		try_emit(r, n);
	}
	gm_pace_pump(&r->tags);
}

static int tags_send(void *item, void *ctx, struct goman_err *e)
{
	struct node *n = item;
	struct prun *r = ctx;
	struct goman_kvs tags = {0};
	char ix[16];
	int rc = 0;
	snprintf(ix, sizeof(ix), "%d", n->index);
	/* launched: the launch carried everything but the node's own name; adopted: named
	 * here; reused: only what an older goman did not set */
	if (n->launched || n->adopted)
		rc |= goman_kvs_add(&tags, "goman:name", n->name) |
		      goman_kvs_add(&tags, "goman:index", ix) |
		      goman_kvs_add(&tags, "Name", n->name);
	if (!n->launched && !goman_ec2_tag(&n->inst, "goman:group"))
		rc |= goman_kvs_add(&tags, "goman:group", n->group);
	if (!n->launched && n->via[0] && !goman_ec2_tag(&n->inst, "goman:via"))
		rc |= goman_kvs_add(&tags, "goman:via", n->via);
	const cJSON *t, *own = n->adopted ? cJSON_GetObjectItemCaseSensitive(n->in, "tags") : NULL;
	cJSON_ArrayForEach (t, own)
		rc |= goman_kvs_add(&tags, t->string, t->valuestring);
	if (rc) {
		goman_kvs_clear(&tags);
		return gm_err_oom(e);
	}
	const char *id = n->inst.instance_id;
	rc = goman_ec2_create_tags_submit(r->aws, &id, 1, &tags, tags_done, n, e);
	goman_kvs_clear(&tags);
	return rc;
}

static void tags_fail(void *item, void *ctx, const struct goman_err *e)
{
	emit(ctx, item, e);
}

/* ---- poller and start ------------------------------------------------------------------ */

static struct node *node_by_id(struct prun *r, const char *id)
{
	for (size_t i = 0; i < r->nn; i++)
		if (!strcmp(r->nodes[i]->inst.instance_id, id))
			return r->nodes[i];
	return NULL;
}

/* What every poll answer does first: find the node, charge it its share of the round,
 * keep the instance as last seen. NULL when the id is none of ours. */
static struct node *note_polled(struct prun *r, const char *id,
				const struct goman_ec2_instance *inst, double share)
{
	struct node *n = node_by_id(r, id);
	if (!n)
		return NULL;
	n->calls += share;
	if (inst && inst->instance_id[0])
		goman_ec2_instance_copy(&n->inst, inst);
	note_first_server(r, &n->inst, n->role, n->index);
	return n;
}

static void polled(const char *id, const struct goman_ec2_instance *inst,
		   const struct goman_err *err, double share, void *ud)
{
	struct prun *r = ud;
	struct node *n = note_polled(r, id, inst, share);
	if (!n)
		return;
	if (err) {
		goman_log(GOMAN_LOG_WARN, "PROVISION", "%s (%s): %s %s", n->name, id, err->code,
			  err->message);
		emit(r, n, err);
		return;
	}
	n->ready = true;
	n->running_wall = goman_now_ms();
	if (n->need_tags && !n->tagged) {
		gm_pace_promote(&r->tags, n);
		gm_pace_pump(&r->tags);
	}
	try_emit(r, n);
}

static void wait_for(struct prun *r, struct node *n)
{
	if (r->o->wait_none) {
		try_emit(r, n);
		return;
	}
	struct goman_err e = GOMAN_ERR_INIT;
	goman_err_clear(&e);
	int64_t to = r->o->timeout_ms > 0 ? r->o->timeout_ms : 600000;
	if (!r->poller ||
	    goman_ec2_poller_add(r->poller, n->inst.instance_id, goman_mono_ms() + to, &e) != 0) {
		if (!r->poller)
			gm_err_oom(&e);
		emit(r, n, &e);
	}
}

struct start_ctx {
	struct prun *r;
	struct node **v;
	size_t n;
	int tries;
};

static void start_send(struct start_ctx *c);

static void start_again(void *ud)
{
	start_send(ud);
}

static void started(const struct goman_err *err, int calls, void *ud)
{
	struct start_ctx *c = ud;
	struct prun *r = c->r;
	r->stats_start += calls;
	for (size_t i = 0; i < c->n; i++)
		c->v[i]->calls += (double)calls / (double)c->n;
	if (err && err->retryable && ++c->tries <= APP_RETRIES &&
	    goman_http_timer(goman_aws_http(r->aws), APP_RETRY_MS * c->tries, start_again, c) > 0)
		return;
	if (err)
		goman_log(GOMAN_LOG_WARN, "PROVISION",
			  "StartInstances of %zu node(s) failed: %s %s", c->n, err->code,
			  err->message);
	for (size_t i = 0; i < c->n; i++) {
		if (err)
			emit(r, c->v[i], err);
		else
			wait_for(r, c->v[i]);
	}
	free(c->v);
	free(c);
}

static void start_send(struct start_ctx *c)
{
	struct goman_err e = GOMAN_ERR_INIT;
	goman_err_clear(&e);
	const char **ids = calloc(c->n, sizeof(char *));
	for (size_t i = 0; ids && i < c->n; i++)
		ids[i] = c->v[i]->inst.instance_id;
	if (!ids)
		gm_err_oom(&e);
	if (!ids || goman_ec2_start_submit(c->r->aws, ids, c->n, started, c, &e) != 0) {
		for (size_t i = 0; i < c->n; i++)
			emit(c->r, c->v[i], &e);
		free(c->v);
		free(c);
	}
	free(ids);
}

/* One StartInstances for these stopped nodes (k <= 1000); they are waited for after. */
static void start_nodes(struct prun *r, struct node **v, size_t k)
{
	struct start_ctx *c = calloc(1, sizeof(*c));
	if (!c || !(c->v = calloc(k, sizeof(*c->v)))) {
		struct goman_err e = GOMAN_ERR_INIT;
		gm_err_oom(&e);
		for (size_t i = 0; i < k; i++)
			emit(r, v[i], &e);
		free(c);
		return;
	}
	c->r = r;
	c->n = k;
	memcpy(c->v, v, k * sizeof(*v));
	goman_log(GOMAN_LOG_INFO, "PROVISION", "starting %zu stopped node(s)", k);
	start_send(c);
}

/* A node that was stopping is now stopped: start it. */
static void stopped(const char *id, const struct goman_ec2_instance *inst,
		    const struct goman_err *err, double share, void *ud)
{
	struct prun *r = ud;
	struct node *n = note_polled(r, id, inst, share);
	if (!n)
		return;
	if (err)
		emit(r, n, err);
	else
		start_nodes(r, &n, 1);
}

/* ---- launching ---------------------------------------------------------------------- */

static int launch_submit(struct group *g, struct goman_err *e);
static int group_begin(struct prun *r, struct group *g, const char *digest, struct goman_err *e);

static void relaunch(void *ud)
{
	struct group *g = ud;
	struct goman_err e = GOMAN_ERR_INIT;
	goman_err_clear(&e);
	if (launch_submit(g, &e) != 0)
		for (size_t i = 0; i < g->n; i++)
			emit(g->r, g->v[i], &e);
}

static int cmp_launch_index(const void *a, const void *b)
{
	const struct goman_ec2_instance *x = a, *y = b;
	return (x->launch_index > y->launch_index) - (x->launch_index < y->launch_index);
}

static void launched(struct goman_aws_result *res, void *ud)
{
	struct group *g = ud;
	struct prun *r = g->r;
	int calls = res->attempts > 0 ? res->attempts : 1;
	r->stats_run += calls;
	for (size_t i = 0; i < g->n; i++)
		g->v[i]->calls += (double)calls / (double)g->n;
	if (r->o->dry_run) {
		/* DryRunOperation: it would have succeeded */
		bool ok = res->err.rc != GOMAN_OK && !strcmp(res->err.code, "DryRunOperation");
		for (size_t i = 0; i < g->n; i++) {
			g->v[i]->dry = true;
			if (ok)
				emit(r, g->v[i], NULL);
			else
				emit(r, g->v[i], res->err.rc != GOMAN_OK ? &res->err : NULL);
		}
		return;
	}
	if (res->err.rc != GOMAN_OK && gm_prov_fallback(&res->err, g->ti, g->ntypes)) {
		struct goman_err fe = GOMAN_ERR_INIT;
		goman_log(GOMAN_LOG_WARN, "PROVISION",
			  "RunInstances %s x%zu: %s for %s in %s, "
			  "trying %s",
			  g->role, g->n, res->err.code, g->type,
			  g->subnet[0] ? g->subnet : "the default subnet", g->types[g->ti + 1]);
		goman_idem_fail(r->idem, &g->t, &res->err, &fe);
		goman_idem_ticket_clear(&g->t);
		snprintf(g->tried[g->ntried++], sizeof(g->tried[0]), "%s", g->type);
		g->ti++;
		g->tries = 0;
		snprintf(g->type, sizeof(g->type), "%s", g->types[g->ti]);
		snprintf(g->ami, sizeof(g->ami), "%s", g->amis[g->ti]);
		for (size_t i = 0; i < g->n; i++)
			snprintf(g->v[i]->type, sizeof(g->v[i]->type), "%s", g->type);
		/* another type is another launch: its own idempotency identity and token */
		struct goman_err e = GOMAN_ERR_INIT;
		goman_err_clear(&e);
		if (group_begin(r, g, r->digest, &e) != 0 || launch_submit(g, &e) != 0)
			for (size_t i = 0; i < g->n; i++)
				emit(r, g->v[i], &e);
		return;
	}
	if (res->err.rc != GOMAN_OK) {
		if (res->err.retryable && ++g->tries <= APP_RETRIES) {
			goman_log(GOMAN_LOG_INFO, "PROVISION",
				  "RunInstances %s x%zu: %s, sending again "
				  "with the same ClientToken",
				  g->role, g->n, res->err.code);
			goman_http_timer(goman_aws_http(r->aws), APP_RETRY_MS * g->tries, relaunch,
					 g);
			return;
		}
		struct goman_err fe = GOMAN_ERR_INIT;
		goman_log(GOMAN_LOG_WARN, "PROVISION", "RunInstances %s x%zu failed: %s %s",
			  g->role, g->n, res->err.code, res->err.message);
		goman_idem_fail(r->idem, &g->t, &res->err, &fe);
		for (size_t i = 0; i < g->n; i++)
			emit(r, g->v[i], &res->err);
		return;
	}
	struct goman_ec2_instances got = {0};
	goman_ec2_instances_from_reply(res->data, &got);
	qsort(got.v, got.n, sizeof(*got.v), cmp_launch_index);
	cJSON *result = cJSON_CreateObject();
	cJSON *ids = cJSON_AddArrayToObject(result, "instance_ids");
	goman_log(GOMAN_LOG_INFO, "PROVISION", "launched %zu %s node(s) (%s) in %lld ms", got.n,
		  g->role, g->type, (long long)res->ms);
	for (size_t i = 0; i < g->n; i++) {
		struct node *n = g->v[i];
		if (i >= got.n) {
			struct goman_err e = GOMAN_ERR_INIT;
			goman_err_set(&e, GOMAN_ESERVICE, GOMAN_CLASS_TRANSIENT, "ShortLaunch",
				      "RunInstances returned %zu of %zu instances", got.n, g->n);
			e.retryable = true;
			emit(r, n, &e);
			continue;
		}
		goman_ec2_instance_copy(&n->inst, &got.v[i]);
		note_first_server(r, &n->inst, n->role, n->index);
		cJSON_AddItemToArray(ids, cJSON_CreateString(n->inst.instance_id));
		n->launched = true;
		n->need_tags = true;
		tags_enqueue(r, n);
		wait_for(r, n);
	}
	struct goman_err ce = GOMAN_ERR_INIT;
	if (goman_idem_complete(r->idem, &g->t, result, &ce) != 0)
		goman_log(GOMAN_LOG_WARN, "IDEMPOTENCY", "cannot record the launch: %s",
			  ce.message);
	cJSON_Delete(result);
	goman_ec2_instances_clear(&got);
	gm_pace_pump(&r->tags);
}

static int launch_submit(struct group *g, struct goman_err *e)
{
	struct prun *r = g->r;
	const struct goman_provision_opts *o = r->o;
	struct goman_kvs p = {0};
	char k[64], v[32];
	int rc = 0;
	const struct node *n0 = g->v[0];
	snprintf(v, sizeof(v), "%zu", g->n);
	rc |= goman_kvs_add(&p, "ImageId", g->ami);
	rc |= goman_kvs_add(&p, "InstanceType", g->type);
	rc |= goman_kvs_add(&p, "MinCount", v);
	rc |= goman_kvs_add(&p, "MaxCount", v);
	if (g->t.client_token[0])
		rc |= goman_kvs_add(&p, "ClientToken", g->t.client_token);
	if (g->subnet[0])
		rc |= goman_kvs_add(&p, "SubnetId", g->subnet);
	if (r->sg[0])
		rc |= goman_kvs_add(&p, "SecurityGroupId.1", r->sg);
	const char *prof = o->instance_profile ? o->instance_profile : GM_PROV_DEFAULT_PROFILE;
	if (*prof)
		rc |= goman_kvs_add(&p, "IamInstanceProfile.Name", prof);
	if (o->key_name && *o->key_name)
		rc |= goman_kvs_add(&p, "KeyName", o->key_name);
	rc |= goman_kvs_add(&p, "MetadataOptions.HttpTokens", "required");
	rc |= goman_kvs_add(&p, "MetadataOptions.HttpEndpoint", "enabled");
	if (n0->spot) {
		rc |= goman_kvs_add(&p, "InstanceMarketOptions.MarketType", "spot");
		rc |= goman_kvs_add(&p, "InstanceMarketOptions.SpotOptions.SpotInstanceType",
				    "one-time");
	}
	if (n0->volume_gb) {
		char gb[16];
		snprintf(gb, sizeof(gb), "%d", n0->volume_gb);
		rc |= goman_kvs_add(&p, "BlockDeviceMapping.1.DeviceName", g->roots[g->ti]);
		rc |= goman_kvs_add(&p, "BlockDeviceMapping.1.Ebs.VolumeSize", gb);
		rc |= goman_kvs_add(&p, "BlockDeviceMapping.1.Ebs.VolumeType", "gp3");
		rc |= goman_kvs_add(&p, "BlockDeviceMapping.1.Ebs.DeleteOnTermination", "true");
	}
	if (o->dry_run)
		rc |= goman_kvs_add(&p, "DryRun", "true");
	rc |= goman_kvs_add(&p, "TagSpecification.1.ResourceType", "instance");
	int t = 0;
#define TAG(K, V)                                                             \
	do {                                                                  \
		t++;                                                          \
		snprintf(k, sizeof(k), "TagSpecification.1.Tag.%d.Key", t);   \
		rc |= goman_kvs_add(&p, k, K);                                \
		snprintf(k, sizeof(k), "TagSpecification.1.Tag.%d.Value", t); \
		rc |= goman_kvs_add(&p, k, V);                                \
	} while (0)
	TAG("goman:cluster", r->cluster);
	TAG("goman:role", g->role);
	if (g->t.client_token[0])
		TAG("goman:launch", g->t.client_token);
	TAG("goman:group", n0->group);
	if (n0->via[0])
		TAG("goman:via", n0->via);
	if (n0->labels_tag && *n0->labels_tag)
		TAG("goman:labels", n0->labels_tag);
	if (n0->taints_tag && *n0->taints_tag)
		TAG("goman:taints", n0->taints_tag);
	const cJSON *st = cJSON_GetObjectItemCaseSensitive(n0->in, "tags"), *x;
	cJSON_ArrayForEach (x, st)
		TAG(x->string, x->valuestring);
	/* the line's tags win over --tag of the same key (EC2 refuses a key twice) */
	for (size_t i = 0; o->tags && i < o->tags->n; i++)
		if (!cJSON_GetObjectItemCaseSensitive(st, o->tags->v[i].name))
			TAG(o->tags->v[i].name, o->tags->v[i].value);
#undef TAG
	if (rc) {
		goman_kvs_clear(&p);
		return gm_err_oom(e);
	}
	struct goman_aws_call call = {.service = "ec2", .action = "RunInstances", .params = &p};
	rc = goman_aws_submit(r->aws, &call, launched, g, e);
	goman_kvs_clear(&p);
	return rc;
}

/* digest of the cluster's live instance IDs (sorted, each with its NUL), so the launch key
 * names this state: the first 16 hex digits of their SHA-256 */
static void existing_digest(const struct goman_ec2_instances *ex, char out[17])
{
	char **ids = calloc(ex->n ? ex->n : 1, sizeof(char *));
	struct gm_buf b = {0};
	char hex[65];
	out[0] = '\0';
	if (!ids)
		return;
	for (size_t i = 0; i < ex->n; i++)
		ids[i] = (char *)ex->v[i].instance_id;
	for (size_t i = 1; i < ex->n; i++) /* insertion sort: n is a cluster */
		for (size_t j = i; j > 0 && strcmp(ids[j - 1], ids[j]) > 0; j--) {
			char *x = ids[j];
			ids[j] = ids[j - 1];
			ids[j - 1] = x;
		}
	gm_buf_adds(&b, "");
	for (size_t i = 0; i < ex->n; i++)
		gm_buf_add(&b, ids[i], strlen(ids[i]) + 1);
	if (!b.oom && gm_sha256_hex(b.p, b.len, hex) == 0)
		snprintf(out, 17, "%.16s", hex);
	gm_buf_free(&b);
	free(ids);
}

/* idem begin for a group: NEW → launch; COMPLETED whose instances are gone (they would have
 * been found) → chain to the next key; IN_PROGRESS / MISMATCH → the nodes' error. */
static int group_begin(struct prun *r, struct group *g, const char *digest, struct goman_err *e)
{
	const struct goman_provision_opts *o = r->o;
	cJSON *id = cJSON_CreateObject(), *params = NULL;
	cJSON *ix = cJSON_AddArrayToObject(id, "indices");
	cJSON_AddStringToObject(id, "cluster", r->cluster);
	cJSON_AddStringToObject(id, "role", g->role);
	cJSON_AddStringToObject(id, "group", g->v[0]->group);
	cJSON_AddStringToObject(id, "type", g->type);
	cJSON_AddStringToObject(id, "subnet", g->subnet);
	cJSON_AddStringToObject(id, "existing", digest);
	for (size_t i = 0; i < g->n; i++)
		cJSON_AddItemToArray(ix, cJSON_CreateNumber(g->v[i]->index));
	params = cJSON_Duplicate(id, 1);
	if (params) {
		cJSON_AddStringToObject(params, "ami", g->ami);
		cJSON_AddStringToObject(params, "security_group", r->sg);
		cJSON_AddStringToObject(params, "instance_profile",
					o->instance_profile ? o->instance_profile
							    : GM_PROV_DEFAULT_PROFILE);
		cJSON_AddStringToObject(params, "key_name", o->key_name ? o->key_name : "");
		cJSON *tg = cJSON_AddObjectToObject(params, "tags");
		for (size_t i = 0; o->tags && i < o->tags->n; i++)
			cJSON_AddStringToObject(tg, o->tags->v[i].name, o->tags->v[i].value);
		cJSON_AddStringToObject(params, "launch", g->v[0]->sig ? g->v[0]->sig : "");
	}
	int rc = -1;
	for (int hop = 0; hop < 8 && params && id; hop++) {
		int st = goman_idem_begin(r->idem, "RunInstances", id, params, &g->t, e);
		if (st < 0)
			break;
		if (st == GOMAN_IDEM_NEW) {
			g->have_ticket = true;
			if (g->t.taken_over)
				goman_log(GOMAN_LOG_INFO, "IDEMPOTENCY",
					  "RunInstances %s x%zu: taking over "
					  "a dead run's launch, same ClientToken",
					  g->role, g->n);
			rc = 0;
			break;
		}
		if (st != GOMAN_IDEM_COMPLETED)
			break; /* *e says IdempotencyInProgress / IdempotencyMismatch */
		/* completed earlier, yet its instances are not alive now: a new launch */
		cJSON_DeleteItemFromObjectCaseSensitive(id, "after");
		cJSON_AddStringToObject(id, "after", g->t.key);
		cJSON_DeleteItemFromObjectCaseSensitive(params, "after");
		cJSON_AddStringToObject(params, "after", g->t.key);
		goman_idem_ticket_clear(&g->t);
	}
	if (rc != 0 && !e->code[0])
		gm_err_oom(e);
	cJSON_Delete(id);
	cJSON_Delete(params);
	return rc;
}

/* Servers first: every agent's install waits for the first server, so its launch group
 * goes out first. Roles are validated to "server" or "agent", so reversed strcmp does it. */
static int cmp_nodes(const void *a, const void *b)
{
	const struct node *x = *(struct node *const *)a, *y = *(struct node *const *)b;
	int c = strcmp(y->role, x->role);
	return c ? c : (x->index > y->index) - (x->index < y->index);
}

static struct group *group_for(struct prun *r, struct node *n)
{
	for (size_t i = 0; i < r->ng; i++) {
		struct group *g = r->groups[i];
		if (!strcmp(g->role, n->role) && !strcmp(g->type, n->type) &&
		    !strcmp(g->subnet, n->subnet) && !strcmp(g->ami, n->ami) &&
		    !strcmp(g->v[0]->sig ? g->v[0]->sig : "", n->sig ? n->sig : ""))
			return g;
	}
	struct group **v = realloc(r->groups, (r->ng + 1) * sizeof(*v));
	if (!v)
		return NULL;
	r->groups = v;
	struct group *g = calloc(1, sizeof(*g));
	if (!g)
		return NULL;
	snprintf(g->role, sizeof(g->role), "%s", n->role);
	snprintf(g->type, sizeof(g->type), "%s", n->type);
	snprintf(g->subnet, sizeof(g->subnet), "%s", n->subnet);
	snprintf(g->ami, sizeof(g->ami), "%s", n->ami);
	for (int i = 0; i < n->ntypes; i++)
		snprintf(g->types[i], sizeof(g->types[0]), "%s", n->types[i]);
	g->ntypes = n->ntypes > 0 ? n->ntypes : 1;
	if (n->ntypes <= 0)
		snprintf(g->types[0], sizeof(g->types[0]), "%s", n->type);
	g->r = r;
	r->groups[r->ng++] = g;
	return g;
}

static int group_add(struct group *g, struct node *n)
{
	if (g->n == g->cap) {
		size_t cap = g->cap ? g->cap * 2 : 16;
		struct node **v = realloc(g->v, cap * sizeof(*v));
		if (!v)
			return -1;
		g->v = v;
		g->cap = cap;
	}
	g->v[g->n++] = n;
	n->g = g;
	return 0;
}

static void prun_clear(struct prun *r)
{
	goman_ec2_poller_free(r->poller);
	goman_ec2_poller_free(r->stop_poller);
	gm_pace_clear(&r->tags);
	for (size_t i = 0; i < r->ng; i++) {
		goman_idem_ticket_clear(&r->groups[i]->t);
		free(r->groups[i]->v);
		free(r->groups[i]);
	}
	free(r->groups);
}

/* ---- surplus -------------------------------------------------------------------------- */

static int cmp_inst_name(const void *a, const void *b)
{
	const struct goman_ec2_instance *x = *(const struct goman_ec2_instance *const *)a;
	const struct goman_ec2_instance *y = *(const struct goman_ec2_instance *const *)b;
	const char *nx = goman_ec2_tag(x, "goman:name"), *ny = goman_ec2_tag(y, "goman:name");
	int c = strcmp(nx ? nx : x->instance_id, ny ? ny : y->instance_id);
	return c ? c : strcmp(x->instance_id, y->instance_id);
}

/* Instances of the cluster no spec asked for: named on stderr and in the summary event
 * always, and as records in a dry run (what a plan shows; never terminated here). */
static void surplus(struct prun *r, const struct goman_ec2_instances *ex, size_t missing,
		    size_t adopted)
{
	cJSON *names = cJSON_CreateArray(), *drift = cJSON_CreateArray();
	char list[512] = "";
	size_t k = 0;
	/* by name, so every run lists them alike */
	const struct goman_ec2_instance **by = calloc(ex->n ? ex->n : 1, sizeof(*by));
	for (size_t j = 0; by && j < ex->n; j++)
		by[j] = &ex->v[j];
	if (by)
		qsort(by, ex->n, sizeof(*by), cmp_inst_name);
	for (size_t j = 0; by && j < ex->n; j++) {
		const struct goman_ec2_instance *in = by[j];
		const char *c = goman_ec2_tag(in, "goman:cluster");
		if (!c || strcmp(c, r->cluster) || !gm_prov_reusable_state(in->state))
			continue;
		bool taken = false;
		for (size_t i = 0; i < r->nn && !taken; i++)
			taken = !strcmp(r->nodes[i]->inst.instance_id, in->instance_id);
		if (taken)
			continue;
		const char *nm = goman_ec2_tag(in, "goman:name");
		nm = nm ? nm : in->instance_id;
		cJSON_AddItemToArray(names, cJSON_CreateString(nm));
		size_t l = strlen(list);
		if (l < sizeof(list) - 1)
			snprintf(list + l, sizeof(list) - l, "%s%s", k ? ", " : "", nm);
		k++;
		if (!r->o->dry_run)
			continue;
		cJSON *rec = cJSON_CreateObject();
		if (!rec)
			continue;
		cJSON_AddStringToObject(rec, "cluster", r->cluster);
		const char *role = goman_ec2_tag(in, "goman:role");
		if (role)
			cJSON_AddStringToObject(rec, "role", role);
		if (goman_ec2_tag(in, "goman:name")) {
			cJSON_AddNumberToObject(rec, "index", gm_prov_tag_index(in));
			cJSON_AddStringToObject(rec, "name", nm);
		}
		const char *g = goman_ec2_tag(in, "goman:group");
		if (g || role)
			cJSON_AddStringToObject(rec, "group", g ? g : role);
		goman_ec2_instance_to_json(in, rec);
		cJSON_AddStringToObject(rec, "region", goman_aws_region(r->aws));
		if (r->server_url[0])
			cJSON_AddStringToObject(rec, "server_url", r->server_url);
		cJSON *pv = cJSON_AddObjectToObject(rec, "provision");
		cJSON_AddTrueToObject(pv, "ok");
		cJSON_AddTrueToObject(pv, "dry_run");
		cJSON_AddTrueToObject(pv, "surplus");
		cJSON_AddFalseToObject(pv, "would_launch");
		cJSON_AddTrueToObject(rec, "ok");
		if (r->out)
			goman_outcome_add(r->out, NULL);
		r->o->emit(rec, NULL, r->o->ud);
		cJSON_Delete(rec);
	}
	free(by);
	if (k)
		goman_log(GOMAN_LOG_WARN, "PROVISION",
			  "cluster %s: %zu node(s) exist that no spec "
			  "asks for (not terminated here): %s",
			  r->cluster, k, list);
	size_t nd = 0;
	for (size_t i = 0; i < r->nn; i++) {
		const struct node *n = r->nodes[i];
		cJSON *d = n->reused ? gm_prov_drift(n) : NULL;
		if (d) {
			char *txt = cJSON_PrintUnformatted(d);
			goman_log(GOMAN_LOG_WARN, "PROVISION", "%s drifted from its spec: %s",
				  n->name, txt ? txt : "?");
			free(txt);
			cJSON_AddItemToArray(drift, cJSON_CreateString(n->name));
			nd++;
		}
		cJSON_Delete(d);
	}
	cJSON *ev = cJSON_CreateObject();
	if (ev) {
		cJSON_AddStringToObject(ev, "cluster", r->cluster);
		cJSON_AddNumberToObject(ev, "wanted", (double)r->nn);
		cJSON_AddNumberToObject(ev, "exist", (double)(r->nn - missing));
		cJSON_AddNumberToObject(ev, "adopted", (double)adopted);
		cJSON_AddNumberToObject(ev, "launch", (double)missing);
		cJSON_AddItemToObject(ev, "surplus", names);
		cJSON_AddItemToObject(ev, "drift", drift);
		cJSON_AddBoolToObject(ev, "dry_run", r->o->dry_run);
		names = drift = NULL;
		goman_event("provision_plan", ev);
	}
	cJSON_Delete(names);
	cJSON_Delete(drift);
	(void)nd;
}

/* ---- one cluster ---------------------------------------------------------------------- */

static void fail_all(struct prun *r, bool only_missing, const struct goman_err *e)
{
	size_t k = 0;
	for (size_t i = 0; i < r->nn; i++)
		k += !r->nodes[i]->emitted && (!only_missing || !r->nodes[i]->reused);
	if (k)
		goman_log(GOMAN_LOG_WARN, "PROVISION", "cluster %s: %zu node(s) failed: %s %s",
			  r->cluster, k, e->code[0] ? e->code : goman_strerror(e->rc), e->message);
	for (size_t i = 0; i < r->nn; i++)
		if (!only_missing || !r->nodes[i]->reused)
			emit(r, r->nodes[i], e);
}

/* 1. what exists: the cluster's instances in a reusable state, into ex (f is the filter
 * the plan checks). 0, or -1 after every node got the error. */
static int list_existing(struct prun *r, struct goman_kvs *f, struct goman_ec2_instances *ex)
{
	struct goman_err e = GOMAN_ERR_INIT;
	struct goman_ec2_describe_stats st = {0};
	int rc, tries = 0;
	goman_err_clear(&e);
	if (gm_prov_filter(f, r->cluster, true) != 0) {
		gm_err_oom(&e);
		fail_all(r, false, &e);
		return -1;
	}
	do {
		goman_ec2_instances_clear(ex);
		memset(&st, 0, sizeof(st));
		rc = goman_ec2_describe(r->aws, f, NULL, 0, ex, &st, &e);
		r->setup_calls += st.calls;
	} while (gm_prov_again(&tries, rc, &e));
	if (rc != 0) {
		fail_all(r, false, &e);
		return -1;
	}
	for (size_t i = 0; i < ex->n; i++) {
		const char *c = goman_ec2_tag(&ex->v[i], "goman:cluster");
		if (c && !strcmp(c, r->cluster) && gm_prov_reusable_state(ex->v[i].state))
			note_first_server(r, &ex->v[i], goman_ec2_tag(&ex->v[i], "goman:role"),
					  gm_prov_tag_index(&ex->v[i]));
	}
	return 0;
}

/* 2. plan: match, place the missing nodes, form launch groups. *setup_ok false when the
 * placement failed (e says why). -1 when nothing can go on (every node got the error). */
static int plan(struct prun *r, const struct goman_kvs *f, const struct goman_ec2_instances *ex,
		size_t *missing, bool *setup_ok, struct goman_err *e)
{
	if (gm_prov_plan(r->nodes, r->nn, f, ex, missing, e) != 0) {
		fail_all(r, false, e);
		return -1;
	}
	size_t adopted = 0;
	for (size_t i = 0; i < r->nn; i++) {
		adopted += r->nodes[i]->adopted;
		/* an adopted first server has no goman:index yet: the listing missed it */
		if (r->nodes[i]->reused)
			note_first_server(r, &r->nodes[i]->inst, r->nodes[i]->role,
					  r->nodes[i]->index);
	}
	*setup_ok = !(*missing && gm_prov_place_nodes(r, e) != 0);
	for (size_t i = 0; i < r->nn; i++) {
		struct node *n = r->nodes[i];
		if (n->reused)
			continue;
		struct group *g = group_for(r, n);
		if (!g || group_add(g, n) != 0) {
			gm_err_oom(e);
			fail_all(r, false, e);
			return -1;
		}
	}
	goman_log(GOMAN_LOG_INFO, "PROVISION",
		  "cluster %s: %zu node(s) wanted, %zu exist (%zu "
		  "adopted), %zu to launch in %zu group(s)%s",
		  r->cluster, r->nn, r->nn - *missing, adopted, *missing, r->ng,
		  r->o->dry_run ? " (dry run)" : "");
	surplus(r, ex, *missing, adopted);
	return 0;
}

/* 3. setup, only for launches (and an explicit AMI to compare reused nodes with). Its
 * calls are shared by every node of the cluster. */
static void setup(struct prun *r, size_t missing, bool *setup_ok, struct goman_err *e)
{
	const struct goman_provision_opts *o = r->o;
	for (size_t i = 0; i < r->nn; i++) {
		struct node *n = r->nodes[i];
		struct goman_err ae = GOMAN_ERR_INIT;
		if (n->reused && n->explicit_ami &&
		    gm_prov_resolve_ami(r, n->ami, n->ami_id, sizeof(n->ami_id), &ae) != 0)
			goman_log(GOMAN_LOG_WARN, "PROVISION",
				  "%s: cannot resolve %s to compare the "
				  "node's AMI: %s",
				  n->name, n->ami, ae.message);
	}
	if (missing && *setup_ok) {
		const char *prof =
			o->instance_profile ? o->instance_profile : GM_PROV_DEFAULT_PROFILE;
		for (size_t i = 0; i < r->ng && *setup_ok; i++)
			if (gm_prov_group_amis(r, r->groups[i], e) != 0)
				*setup_ok = false;
		if (*setup_ok && *prof && gm_prov_check_profile(r, prof, e) != 0)
			*setup_ok = false;
		if (*setup_ok && !o->dry_run && gm_prov_ensure_sg(r, e) != 0)
			*setup_ok = false;
		if (*setup_ok && o->dry_run && o->security_group)
			snprintf(r->sg, sizeof(r->sg), "%s", o->security_group);
	}
	for (size_t i = 0; i < r->nn; i++)
		r->nodes[i]->calls += (double)r->setup_calls / (double)r->nn;
	if (!*setup_ok)
		fail_all(r, true, e);
	/* nodes an older goman launched: adopted into the spec's group (tag added) */
	for (size_t i = 0; i < r->nn && !o->dry_run; i++) {
		struct node *n = r->nodes[i];
		if (n->reused && !n->adopted && !n->emitted &&
		    (!goman_ec2_tag(&n->inst, "goman:group") ||
		     (n->via[0] && !goman_ec2_tag(&n->inst, "goman:via")))) {
			n->need_tags = true;
			tags_enqueue(r, n);
		}
	}
}

/* A poller of the cluster for target; the listing filter without the states: every state
 * must be seen, so a node that dies while pending is reported, not waited for until the
 * deadline. NULL with e set on failure. */
static struct goman_ec2_poller *cluster_poller(struct prun *r, enum goman_ec2_wait target,
					       goman_ec2_poll_fn on_done, struct goman_err *e)
{
	const struct goman_provision_opts *o = r->o;
	struct goman_kvs pf = {0};
	struct goman_ec2_poller_opts po = {
		.target = target,
		.min_interval_ms = o->poll_min_ms,
		.max_interval_ms = o->poll_max_ms,
		.per_pending_ms = o->poll_per_pending_ms,
		.give_up_rounds = 6,
		.filters = &pf,
		.on_done = on_done,
		.ud = r,
	};
	struct goman_ec2_poller *p = NULL;
	if (gm_prov_filter(&pf, r->cluster, false) == 0)
		p = goman_ec2_poller_new(r->aws, &po, e);
	goman_kvs_clear(&pf);
	return p;
}

/* A reused node that is stopping cannot be started until it is stopped: wait for that
 * (stopped() then starts it). */
static void wait_stopped(struct prun *r, struct node *n)
{
	struct goman_err se = GOMAN_ERR_INIT;
	goman_err_clear(&se);
	if (!r->stop_poller)
		r->stop_poller = cluster_poller(r, GOMAN_EC2_WAIT_STOPPED, stopped, &se);
	int64_t to = r->o->timeout_ms > 0 ? r->o->timeout_ms : 600000;
	if (!r->stop_poller || goman_ec2_poller_add(r->stop_poller, n->inst.instance_id,
						    goman_mono_ms() + to, &se) != 0) {
		if (!se.code[0] && se.rc == GOMAN_OK)
			gm_err_oom(&se);
		emit(r, n, &se);
	}
}

/* 4a. the reused nodes: emitted at once when running, waited for, started, or (dry run)
 * reported as they are. */
static void queue_reused(struct prun *r)
{
	const struct goman_provision_opts *o = r->o;
	bool any_start = false;
	for (size_t i = 0; i < r->nn; i++) {
		struct node *n = r->nodes[i];
		if (!n->reused || n->emitted)
			continue;
		if (o->dry_run) {
			n->dry = true;
			emit(r, n, NULL);
			continue;
		}
		if (n->adopted)
			tags_enqueue(r, n);
		if (!strcmp(n->inst.state, "stopping")) {
			wait_stopped(r, n);
		} else if (!strcmp(n->inst.state, "stopped")) {
			n->starting = true;
			any_start = true;
		} else if (!strcmp(n->inst.state, "running") &&
			   o->wait != GOMAN_EC2_WAIT_STATUS_OK) {
			n->ready = true;
			try_emit(r, n);
		} else {
			wait_for(r, n);
		}
	}
	if (!any_start)
		return;
	struct node **sv = calloc(r->nn, sizeof(*sv));
	size_t k = 0;
	for (size_t i = 0; sv && i < r->nn; i++)
		if (r->nodes[i]->starting && !r->nodes[i]->emitted && k < 1000)
			sv[k++] = r->nodes[i];
	if (sv && k)
		start_nodes(r, sv, k);
	free(sv);
}

/* 4b. one launch per group, each under its idempotency key. */
static void launch_groups(struct prun *r, const struct goman_ec2_instances *ex)
{
	struct goman_err e = GOMAN_ERR_INIT;
	existing_digest(ex, r->digest);
	for (size_t i = 0; i < r->ng; i++) {
		struct group *g = r->groups[i];
		goman_err_clear(&e);
		if (!r->o->dry_run && group_begin(r, g, r->digest, &e) != 0) {
			for (size_t j = 0; j < g->n; j++)
				emit(r, g->v[j], &e);
			continue;
		}
		if (launch_submit(g, &e) != 0)
			for (size_t j = 0; j < g->n; j++)
				emit(r, g->v[j], &e);
	}
}

static void run_cluster(struct prun *r)
{
	const struct goman_provision_opts *o = r->o;
	struct goman_err e = GOMAN_ERR_INIT;
	goman_err_clear(&e);
	int64_t t0 = goman_mono_ms();
	for (size_t i = 0; i < r->nn; i++)
		r->nodes[i]->t0 = t0;
	qsort(r->nodes, r->nn, sizeof(*r->nodes), cmp_nodes);
	struct goman_kvs f = {0};
	struct goman_ec2_instances ex = {0};
	size_t missing = 0;
	bool setup_ok = true;
	if (list_existing(r, &f, &ex) != 0 || plan(r, &f, &ex, &missing, &setup_ok, &e) != 0)
		goto out;
	setup(r, missing, &setup_ok, &e);
	/* 4. wait machinery, then everything on the loop */
	if (!o->wait_none && !o->dry_run)
		r->poller = cluster_poller(r, o->wait, polled, &e);
	queue_reused(r);
	if (setup_ok)
		launch_groups(r, &ex);
	gm_pace_pump(&r->tags);
	goman_http_run(goman_aws_http(r->aws), -1, -1);
	goman_err_set(&e, GOMAN_EIO, GOMAN_CLASS_NONE, "Internal",
		      "the node was left without a result");
	fail_all(r, false, &e); /* no-op for every emitted node */
	int rounds = 0, pcalls = 0;
	if (r->poller)
		goman_ec2_poller_stats(r->poller, &rounds, &pcalls);
	goman_log(GOMAN_LOG_INFO, "PROVISION",
		  "cluster %s done in %lld ms: api calls setup %d, "
		  "RunInstances %d, CreateTags %d, StartInstances %d, describe rounds %d "
		  "(%d calls)",
		  r->cluster, (long long)(goman_mono_ms() - t0), r->setup_calls, r->stats_run,
		  r->stats_tags, r->stats_start, rounds, pcalls);
out:
	goman_kvs_clear(&f);
	goman_ec2_instances_clear(&ex);
}

/* ---- entry ---------------------------------------------------------------------------- */

int goman_provision_run(struct goman_aws *aws, struct goman_idem *idem,
			const struct goman_provision_opts *o, const cJSON *specs,
			struct goman_outcome *out, struct goman_err *err)
{
	size_t total = (size_t)cJSON_GetArraySize(specs);
	struct node **all = calloc(total ? total : 1, sizeof(*all));
	struct prun tmp = {.aws = aws, .idem = idem, .o = o, .out = out};
	size_t na = 0;
	if (!all)
		return gm_err_oom(err);
	/* validate, in input order */
	const cJSON *s;
	cJSON_ArrayForEach (s, specs) {
		struct node *n = calloc(1, sizeof(*n));
		if (!n) {
			for (size_t i = 0; i < na; i++)
				gm_prov_node_free(all[i]);
			free(all);
			return gm_err_oom(err);
		}
		n->inst.launch_index = -1;
		n->in = cJSON_IsObject(s) ? cJSON_Duplicate(s, 1) : cJSON_CreateObject();
		const cJSON *ln = cJSON_GetObjectItemCaseSensitive(n->in, "_line");
		/* the reader's line number; range-checked anyway, a double has no safe cast */
		n->line = cJSON_IsNumber(ln) && ln->valuedouble >= 0 && ln->valuedouble <= 1e15
				  ? (long)ln->valuedouble
				  : 0;
		cJSON_DeleteItemFromObjectCaseSensitive(n->in, "_line");
		n->t0 = goman_mono_ms();
		struct goman_err e = GOMAN_ERR_INIT;
		goman_err_clear(&e);
		if (gm_prov_spec(o, n, &e) != 0) {
			cJSON *rec = goman_jsonl_error_record(n->in, NULL, &e, n->line);
			if (out)
				goman_outcome_add(out, &e);
			if (rec)
				o->emit(rec, &e, o->ud);
			cJSON_Delete(rec);
			gm_prov_node_free(n);
			continue;
		}
		n->r = &tmp;
		all[na++] = n;
	}
	/* indices: explicit ones claimed first, then the next free per (cluster, role) */
	for (size_t i = 0; i < na; i++) {
		struct node *n = all[i];
		if (n->index < 0)
			continue;
		bool dup = false;
		for (size_t j = 0; j < i; j++)
			if (all[j] && all[j]->index == n->index &&
			    !strcmp(all[j]->cluster, n->cluster) && !strcmp(all[j]->role, n->role))
				dup = true;
		if (dup) {
			struct goman_err e = GOMAN_ERR_INIT;
			char nm[128];
			snprintf(nm, sizeof(nm), "%s-%s-%d", n->cluster, n->role, n->index);
			gm_prov_bad(&e, "duplicate node %s%s", nm, NULL);
			cJSON *rec = goman_jsonl_error_record(n->in, NULL, &e, n->line);
			if (out)
				goman_outcome_add(out, &e);
			if (rec)
				o->emit(rec, &e, o->ud);
			cJSON_Delete(rec);
			gm_prov_node_free(n);
			all[i] = NULL;
			continue;
		}
		node_set_index(n, n->index);
	}
	for (size_t i = 0; i < na; i++) {
		struct node *n = all[i];
		if (!n || n->index >= 0)
			continue;
		for (int cand = 0;; cand++) {
			bool taken = false;
			for (size_t j = 0; j < na && !taken; j++)
				taken = all[j] && all[j] != n && all[j]->index == cand &&
					!strcmp(all[j]->cluster, n->cluster) &&
					!strcmp(all[j]->role, n->role);
			if (!taken) {
				node_set_index(n, cand);
				break;
			}
		}
	}
	/* one engine run per cluster, in order of first appearance */
	for (size_t i = 0; i < na; i++) {
		if (!all[i])
			continue;
		struct prun r = {.aws = aws, .idem = idem, .o = o, .out = out};
		gm_pace_init(&r.tags, goman_aws_http(aws), o->tags_rate, o->tags_burst,
			     o->tags_inflight, tags_send, tags_fail, &r);
		snprintf(r.cluster, sizeof(r.cluster), "%s", all[i]->cluster);
		r.nodes = calloc(na, sizeof(*r.nodes));
		if (!r.nodes) {
			struct goman_err e = GOMAN_ERR_INIT;
			gm_err_oom(&e);
			for (size_t j = i; j < na; j++)
				if (all[j]) {
					all[j]->r = &r;
					emit(&r, all[j], &e);
				}
			break;
		}
		for (size_t j = i; j < na; j++)
			if (all[j] && !strcmp(all[j]->cluster, r.cluster)) {
				all[j]->r = &r;
				r.nodes[r.nn++] = all[j];
				if (j != i)
					all[j] = NULL;
			}
		all[i] = NULL;
		run_cluster(&r);
		prun_clear(&r);
		for (size_t j = 0; j < r.nn; j++)
			gm_prov_node_free(r.nodes[j]);
		free(r.nodes);
	}
	free(all);
	return 0;
}
