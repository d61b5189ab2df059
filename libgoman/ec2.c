/*
 * ec2.c - EC2 helpers shared by goman-provision and goman-batch (see goman/ec2.h):
 * instance summaries from converted XML replies, paginated DescribeInstances, the
 * pending-set poller, CreateTags/StartInstances, and the security-group ensure.
 *
 * Everything goes through goman_aws_submit() on the client's one loop; the blocking forms
 * are goman_aws_call() (which runs that loop) and are meant for setup before async work.
 *
 * Ownership: every op struct here is malloc'd at submit and freed after its done callback
 * ran; it owns copies of the filters, IDs and tags it was given. The poller owns its
 * pending array and its filter copy. Errors: -1 with struct goman_err; async errors reach
 * the callbacks.
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
#include "goman/log.h"
#include "ec2_int.h"

#define IDS_PER_CALL 1000

static int oom(struct goman_err *err)
{
	return goman_err_set(err, GOMAN_ENOMEM, GOMAN_CLASS_NONE, "", "out of memory");
}

static void copy_str(char *dst, size_t len, const char *src)
{
	snprintf(dst, len, "%s", src ? src : "");
}

/* ---- summaries ------------------------------------------------------------------------ */

void goman_ec2_instance_clear(struct goman_ec2_instance *in)
{
	if (!in)
		return;
	goman_kvs_clear(&in->tags);
	memset(in, 0, sizeof(*in));
	in->launch_index = -1;
}

int goman_ec2_instance_copy(struct goman_ec2_instance *dst, const struct goman_ec2_instance *src)
{
	if (dst == src)
		return 0;
	goman_kvs_clear(&dst->tags);
	*dst = *src;
	memset(&dst->tags, 0, sizeof(dst->tags));
	return goman_kvs_copy(&dst->tags, &src->tags);
}

void goman_ec2_instances_clear(struct goman_ec2_instances *l)
{
	if (!l)
		return;
	for (size_t i = 0; i < l->n; i++)
		goman_kvs_clear(&l->v[i].tags);
	free(l->v);
	memset(l, 0, sizeof(*l));
}

int goman_ec2_instances_add(struct goman_ec2_instances *l, const struct goman_ec2_instance *in)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 16;
		struct goman_ec2_instance *v = realloc(l->v, cap * sizeof(*v));
		if (!v)
			return -1;
		l->v = v;
		l->cap = cap;
	}
	struct goman_ec2_instance *d = &l->v[l->n];
	memset(d, 0, sizeof(*d));
	if (goman_ec2_instance_copy(d, in) != 0) {
		goman_kvs_clear(&d->tags);
		return -1;
	}
	l->n++;
	return 0;
}

const char *goman_ec2_tag(const struct goman_ec2_instance *in, const char *key)
{
	for (size_t i = 0; i < in->tags.n; i++)
		if (!strcmp(in->tags.v[i].name, key))
			return in->tags.v[i].value;
	return NULL;
}

int goman_ec2_instance_from_json(const struct cJSON *item, struct goman_ec2_instance *out)
{
	goman_ec2_instance_clear(out);
	const char *id = goman_json_path_str(item, "instanceId");
	if (!id)
		return -1;
	copy_str(out->instance_id, sizeof(out->instance_id), id);
	copy_str(out->state, sizeof(out->state), goman_json_path_str(item, "instanceState.name"));
	copy_str(out->state_reason, sizeof(out->state_reason),
		 goman_json_path_str(item, "stateReason.code"));
	/* the reply is outside input: an address that is not one never reaches a record */
	const char *pip = goman_json_path_str(item, "privateIpAddress");
	const char *pub = goman_json_path_str(item, "ipAddress");
	copy_str(out->private_ip, sizeof(out->private_ip), goman_addr_ok(pip) ? pip : NULL);
	copy_str(out->public_ip, sizeof(out->public_ip), goman_addr_ok(pub) ? pub : NULL);
	copy_str(out->az, sizeof(out->az), goman_json_path_str(item, "placement.availabilityZone"));
	copy_str(out->type, sizeof(out->type), goman_json_path_str(item, "instanceType"));
	copy_str(out->image_id, sizeof(out->image_id), goman_json_path_str(item, "imageId"));
	copy_str(out->subnet_id, sizeof(out->subnet_id), goman_json_path_str(item, "subnetId"));
	copy_str(out->vpc_id, sizeof(out->vpc_id), goman_json_path_str(item, "vpcId"));
	copy_str(out->launch_time, sizeof(out->launch_time),
		 goman_json_path_str(item, "launchTime"));
	copy_str(out->lifecycle, sizeof(out->lifecycle),
		 goman_json_path_str(item, "instanceLifecycle"));
	const char *li = goman_json_path_str(item, "amiLaunchIndex");
	if (li) {
		char *end;
		long v = strtol(li, &end, 10);
		if (end != li && v >= 0 && v < 1000000)
			out->launch_index = (int)v;
	}
	const cJSON *tags = goman_json_path_array(item, "tagSet");
	const cJSON *t;
	cJSON_ArrayForEach (t, tags) {
		const char *k = goman_json_path_str(t, "key");
		const char *v = goman_json_path_str(t, "value");
		if (k && goman_kvs_add(&out->tags, k, v ? v : "") != 0)
			return -1;
	}
	return 0;
}

static int add_instances_of(const cJSON *set, struct goman_ec2_instances *out, int *added)
{
	const cJSON *it;
	struct goman_ec2_instance in;
	memset(&in, 0, sizeof(in));
	cJSON_ArrayForEach (it, set) {
		if (goman_ec2_instance_from_json(it, &in) != 0) {
			goman_ec2_instance_clear(&in);
			continue;
		}
		if (goman_ec2_instances_add(out, &in) != 0) {
			goman_ec2_instance_clear(&in);
			return -1;
		}
		(*added)++;
	}
	goman_ec2_instance_clear(&in);
	return 0;
}

int goman_ec2_instances_from_reply(const struct cJSON *reply, struct goman_ec2_instances *out)
{
	int added = 0;
	const cJSON *res = goman_json_path_array(reply, "reservationSet");
	const cJSON *r;
	cJSON_ArrayForEach (r, res) {
		if (add_instances_of(goman_json_path_array(r, "instancesSet"), out, &added) != 0)
			return -1;
	}
	if (add_instances_of(goman_json_path_array(reply, "instancesSet"), out, &added) != 0)
		return -1;
	return added;
}

int goman_ec2_instance_to_json(const struct goman_ec2_instance *in, struct cJSON *obj)
{
	cJSON_DeleteItemFromObjectCaseSensitive(obj, "instance_id");
	cJSON_DeleteItemFromObjectCaseSensitive(obj, "state");
	cJSON_DeleteItemFromObjectCaseSensitive(obj, "private_ip");
	cJSON_DeleteItemFromObjectCaseSensitive(obj, "public_ip");
	cJSON_DeleteItemFromObjectCaseSensitive(obj, "az");
	cJSON_DeleteItemFromObjectCaseSensitive(obj, "instance_type");
	if (in->subnet_id[0])
		cJSON_DeleteItemFromObjectCaseSensitive(obj, "subnet_id");
	if (!cJSON_AddStringToObject(obj, "instance_id", in->instance_id) ||
	    !cJSON_AddStringToObject(obj, "state", in->state))
		return -1;
	if (in->private_ip[0] && !cJSON_AddStringToObject(obj, "private_ip", in->private_ip))
		return -1;
	if (in->public_ip[0] && !cJSON_AddStringToObject(obj, "public_ip", in->public_ip))
		return -1;
	if (in->az[0] && !cJSON_AddStringToObject(obj, "az", in->az))
		return -1;
	if (in->subnet_id[0] && !cJSON_AddStringToObject(obj, "subnet_id", in->subnet_id))
		return -1;
	if (in->type[0] && !cJSON_AddStringToObject(obj, "instance_type", in->type))
		return -1;
	return 0;
}

/* ---- query parameters ----------------------------------------------------------------- */

/* Filter.N.Name / Filter.N.Value.M, grouping entries of the same name. */
GOMAN_TESTABLE int gm_ec2_add_filters(struct goman_kvs *params, const struct goman_kvs *filters)
{
	if (!filters)
		return 0;
	char k[64];
	int fn = 0;
	for (size_t i = 0; i < filters->n; i++) {
		bool seen = false;
		for (size_t j = 0; j < i; j++)
			if (!strcmp(filters->v[j].name, filters->v[i].name))
				seen = true;
		if (seen)
			continue;
		fn++;
		snprintf(k, sizeof(k), "Filter.%d.Name", fn);
		if (goman_kvs_add(params, k, filters->v[i].name) != 0)
			return -1;
		int vn = 0;
		for (size_t j = i; j < filters->n; j++) {
			if (strcmp(filters->v[j].name, filters->v[i].name))
				continue;
			snprintf(k, sizeof(k), "Filter.%d.Value.%d", fn, ++vn);
			if (goman_kvs_add(params, k, filters->v[j].value) != 0)
				return -1;
		}
	}
	return 0;
}

static int add_ids(struct goman_kvs *params, const char *prefix, const char *const *ids, size_t n)
{
	char k[64];
	for (size_t i = 0; i < n; i++) {
		snprintf(k, sizeof(k), "%s.%zu", prefix, i + 1);
		if (goman_kvs_add(params, k, ids[i]) != 0)
			return -1;
	}
	return 0;
}

struct idlist {
	char **v;
	size_t n;
};

static int idlist_copy(struct idlist *l, const char *const *ids, size_t n)
{
	l->v = n ? calloc(n, sizeof(char *)) : NULL;
	l->n = 0;
	if (n && !l->v)
		return -1;
	for (size_t i = 0; i < n; i++) {
		l->v[i] = strdup(ids[i]);
		if (!l->v[i])
			return -1;
		l->n++;
	}
	return 0;
}

static void idlist_clear(struct idlist *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

/* Page size for filter describes: 1000 (the API maximum); GOMAN_EC2_MAX_RESULTS lowers it so
 * tests can see pagination on small sets. */
static const char *max_results(void)
{
	const char *e = getenv("GOMAN_EC2_MAX_RESULTS");
	if (e && *e) {
		char *end;
		long v = strtol(e, &end, 10);
		if (!*end && v >= 5 && v <= 1000)
			return e;
	}
	return "1000";
}

/* ---- paginated describe --------------------------------------------------------------- */

struct desc_op {
	struct goman_aws *aws;
	struct goman_kvs filters;
	struct idlist ids;
	size_t chunk; /* next ID chunk start */
	char *next_token;
	int64_t eventual_ms;
	struct goman_ec2_instances found;
	struct goman_ec2_describe_stats st;
	goman_ec2_describe_fn done;
	void *ud;
};

static void desc_free(struct desc_op *d)
{
	goman_kvs_clear(&d->filters);
	idlist_clear(&d->ids);
	free(d->next_token);
	goman_ec2_instances_clear(&d->found);
	free(d);
}

static void desc_page_done(struct goman_aws_result *res, void *ud);

static int desc_page(struct desc_op *d, struct goman_err *err)
{
	struct goman_kvs params = {0};
	int rc = gm_ec2_add_filters(&params, &d->filters);
	size_t n = 0;
	if (rc == 0 && d->ids.n) {
		n = d->ids.n - d->chunk;
		if (n > IDS_PER_CALL)
			n = IDS_PER_CALL;
		rc = add_ids(&params, "InstanceId", (const char *const *)d->ids.v + d->chunk, n);
	} else if (rc == 0) {
		/* MaxResults cannot be combined with InstanceId.N */
		rc = goman_kvs_add(&params, "MaxResults", max_results());
	}
	if (rc == 0 && d->next_token)
		rc = goman_kvs_add(&params, "NextToken", d->next_token);
	if (rc != 0) {
		goman_kvs_clear(&params);
		return oom(err);
	}
	struct goman_aws_call call = {
		.service = "ec2",
		.action = "DescribeInstances",
		.params = &params,
		.eventual_deadline_ms = d->eventual_ms,
	};
	rc = goman_aws_submit(d->aws, &call, desc_page_done, d, err);
	goman_kvs_clear(&params);
	return rc;
}

static void desc_finish(struct desc_op *d, const struct goman_err *err)
{
	d->done(&d->found, err, &d->st, d->ud);
	desc_free(d);
}

static void desc_page_done(struct goman_aws_result *res, void *ud)
{
	struct desc_op *d = ud;
	struct goman_err err = GOMAN_ERR_INIT;
	goman_err_clear(&err);
	d->st.calls += res->attempts > 0 ? res->attempts : 1;
	d->st.pages++;
	if (res->err.rc != GOMAN_OK) {
		desc_finish(d, &res->err);
		return;
	}
	if (goman_ec2_instances_from_reply(res->data, &d->found) < 0) {
		oom(&err);
		desc_finish(d, &err);
		return;
	}
	const char *tok = goman_json_path_str(res->data, "nextToken");
	free(d->next_token);
	d->next_token = NULL;
	if (tok && *tok) {
		d->next_token = strdup(tok);
		if (!d->next_token) {
			oom(&err);
			desc_finish(d, &err);
			return;
		}
	} else if (d->ids.n) {
		d->chunk += IDS_PER_CALL;
		if (d->chunk >= d->ids.n) {
			desc_finish(d, NULL);
			return;
		}
	} else {
		desc_finish(d, NULL);
		return;
	}
	if (desc_page(d, &err) != 0)
		desc_finish(d, &err);
}

int goman_ec2_describe_submit(struct goman_aws *aws, const struct goman_kvs *filters,
			      const char *const *ids, size_t nids, int64_t eventual_deadline_ms,
			      goman_ec2_describe_fn done, void *ud, struct goman_err *err)
{
	struct desc_op *d = calloc(1, sizeof(*d));
	if (!d)
		return oom(err);
	d->aws = aws;
	d->done = done;
	d->ud = ud;
	d->eventual_ms = eventual_deadline_ms;
	if ((filters && goman_kvs_copy(&d->filters, filters) != 0) ||
	    idlist_copy(&d->ids, ids, nids) != 0) {
		desc_free(d);
		return oom(err);
	}
	if (desc_page(d, err) != 0) {
		desc_free(d);
		return -1;
	}
	return 0;
}

struct desc_wait {
	struct goman_ec2_instances *out;
	struct goman_ec2_describe_stats *st;
	struct goman_err *err;
	int done, rc;
};

static void desc_wait_done(struct goman_ec2_instances *found, const struct goman_err *err,
			   const struct goman_ec2_describe_stats *st, void *ud)
{
	struct desc_wait *w = ud;
	w->done = 1;
	if (w->st)
		*w->st = *st;
	if (err && err->rc != GOMAN_OK) {
		if (w->err)
			*w->err = *err;
		w->rc = -1;
		return;
	}
	for (size_t i = 0; i < found->n; i++)
		if (goman_ec2_instances_add(w->out, &found->v[i]) != 0) {
			oom(w->err);
			w->rc = -1;
			return;
		}
}

int goman_ec2_describe(struct goman_aws *aws, const struct goman_kvs *filters,
		       const char *const *ids, size_t nids, struct goman_ec2_instances *out,
		       struct goman_ec2_describe_stats *st, struct goman_err *err)
{
	struct desc_wait w = {.out = out, .st = st, .err = err};
	if (goman_ec2_describe_submit(aws, filters, ids, nids, 0, desc_wait_done, &w, err) != 0)
		return -1;
	while (!w.done)
		if (goman_http_run(goman_aws_http(aws), 1000, -1) == 0 && !w.done)
			break;
	if (!w.done)
		return goman_err_set(err, GOMAN_EIO, GOMAN_CLASS_NONE, "",
				     "describe never finished");
	return w.rc;
}

/* ---- poller --------------------------------------------------------------------------- */

const char *goman_ec2_wait_name(enum goman_ec2_wait w)
{
	switch (w) {
	case GOMAN_EC2_WAIT_RUNNING: return "running";
	case GOMAN_EC2_WAIT_STATUS_OK: return "status-ok";
	case GOMAN_EC2_WAIT_STOPPED: return "stopped";
	case GOMAN_EC2_WAIT_TERMINATED: return "terminated";
	}
	return "?";
}

int goman_ec2_wait_parse(const char *s, enum goman_ec2_wait *out)
{
	for (int w = GOMAN_EC2_WAIT_RUNNING; w <= GOMAN_EC2_WAIT_TERMINATED; w++)
		if (s && !strcmp(s, goman_ec2_wait_name((enum goman_ec2_wait)w))) {
			*out = (enum goman_ec2_wait)w;
			return 0;
		}
	return -1;
}

struct pend {
	char id[32];
	int64_t deadline;
	double share;
	bool in_round; /* was pending when the current round started */
	bool running;  /* status-ok: reached running, waiting for the status checks */
	struct goman_ec2_instance last; /* the last summary seen */
};

struct goman_ec2_poller {
	struct goman_aws *aws;
	struct goman_ec2_poller_opts o;
	struct goman_kvs filters;
	struct pend *v;
	size_t n, cap;
	long timer;
	bool in_flight;
	bool started;
	bool dead; /* freed by its owner while a round was in flight: the round frees it */
	int rounds, calls, failed_rounds;
	int round_calls;
};

int64_t goman_ec2_poll_interval(const struct goman_ec2_poller_opts *o, size_t pending)
{
	int64_t lo = o->min_interval_ms, hi = o->max_interval_ms;
	int64_t v = lo + o->per_pending_ms * (int64_t)pending;
	if (v > hi)
		v = hi;
	if (v < lo)
		v = lo;
	return v;
}

struct goman_ec2_poller *goman_ec2_poller_new(struct goman_aws *aws,
					      const struct goman_ec2_poller_opts *opts,
					      struct goman_err *err)
{
	struct goman_ec2_poller *p = calloc(1, sizeof(*p));
	if (!p) {
		oom(err);
		return NULL;
	}
	p->aws = aws;
	p->o = *opts;
	if (p->o.min_interval_ms <= 0)
		p->o.min_interval_ms = 2000;
	if (p->o.max_interval_ms < p->o.min_interval_ms)
		p->o.max_interval_ms = p->o.min_interval_ms > 15000 ? p->o.min_interval_ms : 15000;
	if (p->o.per_pending_ms < 0)
		p->o.per_pending_ms = 0;
	else if (p->o.per_pending_ms == 0 && !opts->min_interval_ms)
		p->o.per_pending_ms = 100;
	if (p->o.first_delay_ms <= 0)
		p->o.first_delay_ms = p->o.min_interval_ms;
	if (p->o.eventual_deadline_ms <= 0)
		p->o.eventual_deadline_ms = 60000;
	if (p->o.give_up_rounds <= 0)
		p->o.give_up_rounds = 3;
	if (opts->filters && goman_kvs_copy(&p->filters, opts->filters) != 0) {
		goman_kvs_clear(&p->filters);
		free(p);
		oom(err);
		return NULL;
	}
	p->o.filters = opts->filters ? &p->filters : NULL;
	return p;
}

static void pend_remove(struct goman_ec2_poller *p, size_t i)
{
	goman_ec2_instance_clear(&p->v[i].last);
	p->v[i] = p->v[p->n - 1];
	p->n--;
}

void goman_ec2_poller_free(struct goman_ec2_poller *p)
{
	if (!p)
		return;
	if (p->timer && p->aws)
		goman_http_timer_cancel(goman_aws_http(p->aws), p->timer);
	p->timer = 0;
	if (p->in_flight && !p->dead) {
		/* the round's describe still points at p: it frees p when it ends (or the
		 * client drops it unrun when the client is freed first) */
		p->dead = true;
		return;
	}
	while (p->n)
		pend_remove(p, p->n - 1);
	free(p->v);
	goman_kvs_clear(&p->filters);
	free(p);
}

size_t goman_ec2_poller_pending(const struct goman_ec2_poller *p)
{
	return p->n;
}

void goman_ec2_poller_stats(const struct goman_ec2_poller *p, int *rounds, int *calls)
{
	if (rounds)
		*rounds = p->rounds;
	if (calls)
		*calls = p->calls;
}

static void round_fire(void *ud);

static void schedule(struct goman_ec2_poller *p)
{
	if (!p->aws || p->in_flight || p->timer || !p->n)
		return;
	int64_t d = p->started ? goman_ec2_poll_interval(&p->o, p->n) : p->o.first_delay_ms;
	p->started = true;
	p->timer = goman_http_timer(goman_aws_http(p->aws), d, round_fire, p);
}

int goman_ec2_poller_add(struct goman_ec2_poller *p, const char *instance_id,
			 int64_t deadline_mono_ms, struct goman_err *err)
{
	for (size_t i = 0; i < p->n; i++)
		if (!strcmp(p->v[i].id, instance_id))
			return 0;
	if (p->n == p->cap) {
		size_t cap = p->cap ? p->cap * 2 : 32;
		struct pend *v = realloc(p->v, cap * sizeof(*v));
		if (!v)
			return oom(err);
		p->v = v;
		p->cap = cap;
	}
	struct pend *e = &p->v[p->n++];
	memset(e, 0, sizeof(*e));
	copy_str(e->id, sizeof(e->id), instance_id);
	e->deadline = deadline_mono_ms;
	e->last.launch_index = -1;
	schedule(p);
	return 0;
}

/* A finished instance, held until the pending array is consistent again so callbacks may
 * add instances. */
struct fin {
	char id[32];
	struct goman_ec2_instance inst;
	struct goman_err err;
	bool failed;
	double share;
};

static bool state_is_final_bad(enum goman_ec2_wait t, const char *state)
{
	if (t == GOMAN_EC2_WAIT_TERMINATED)
		return false;
	return !strcmp(state, "terminated") || !strcmp(state, "shutting-down");
}

static bool state_reached(enum goman_ec2_wait t, const char *state)
{
	switch (t) {
	case GOMAN_EC2_WAIT_RUNNING:
	case GOMAN_EC2_WAIT_STATUS_OK: return !strcmp(state, "running");
	case GOMAN_EC2_WAIT_STOPPED: return !strcmp(state, "stopped");
	case GOMAN_EC2_WAIT_TERMINATED: return !strcmp(state, "terminated");
	}
	return false;
}

static void deliver(struct goman_ec2_poller *p, struct fin *f, size_t nf)
{
	for (size_t i = 0; i < nf; i++) {
		p->o.on_done(f[i].id, &f[i].inst, f[i].failed ? &f[i].err : NULL, f[i].share,
			     p->o.ud);
		goman_ec2_instance_clear(&f[i].inst);
	}
	free(f);
}

/*
 * One round's result: every pending instance that was in the round gets its share of the
 * round's calls; those that reached the target (or a state they cannot leave, or their
 * deadline) are taken out and reported. round_err (may be NULL) is the round's call error.
 */
GOMAN_TESTABLE void gm_ec2_poller_apply(struct goman_ec2_poller *p,
					const struct goman_ec2_instances *found, int calls,
					const struct goman_err *round_err)
{
	size_t in_round = 0;
	for (size_t i = 0; i < p->n; i++)
		if (p->v[i].in_round)
			in_round++;
	p->rounds++;
	p->calls += calls;
	struct fin *f = calloc(p->n ? p->n : 1, sizeof(*f));
	size_t nf = 0;
	if (!f)
		return;
	int64_t now = goman_mono_ms();
	bool give_up = false;
	if (round_err && round_err->rc != GOMAN_OK) {
		p->failed_rounds++;
		give_up = p->failed_rounds >= p->o.give_up_rounds;
		goman_log(give_up ? GOMAN_LOG_WARN : GOMAN_LOG_INFO, "PROVISION",
			  "describe round failed (%s)%s",
			  round_err->code[0] ? round_err->code : goman_strerror(round_err->rc),
			  give_up ? ", giving up" : ", will retry");
	} else {
		p->failed_rounds = 0;
	}
	for (size_t i = 0; i < p->n;) {
		struct pend *e = &p->v[i];
		if (e->in_round && in_round)
			e->share += (double)calls / (double)in_round;
		e->in_round = false;
		const struct goman_ec2_instance *in = NULL;
		for (size_t j = 0; found && j < found->n; j++)
			if (!strcmp(found->v[j].instance_id, e->id)) {
				in = &found->v[j];
				break;
			}
		if (in)
			goman_ec2_instance_copy(&e->last, in);
		struct fin *x = &f[nf];
		bool done = false;
		goman_err_clear(&x->err);
		if (give_up) {
			x->err = *round_err;
			x->failed = true;
			done = true;
		} else if (in && state_is_final_bad(p->o.target, in->state)) {
			goman_err_set(&x->err, GOMAN_ESERVICE, GOMAN_CLASS_CLIENT,
				      in->state_reason[0] ? in->state_reason : "InstanceTerminated",
				      "instance %s went %s while waiting for %s", e->id, in->state,
				      goman_ec2_wait_name(p->o.target));
			/* capacity shortfalls are worth another try later */
			if (strstr(x->err.code, "InsufficientInstanceCapacity"))
				x->err.retryable = true;
			x->failed = true;
			done = true;
		} else if (in && state_reached(p->o.target, in->state)) {
			if (p->o.target == GOMAN_EC2_WAIT_STATUS_OK) {
				e->running = true;
				done = !strcmp(e->last.status, "ok");
			} else {
				done = true;
			}
		}
		if (!done && e->deadline > 0 && now >= e->deadline) {
			goman_err_set(&x->err, GOMAN_ETIMEOUT, GOMAN_CLASS_TIMEOUT, "Timeout",
				      "instance %s still %s after the wait deadline", e->id,
				      e->last.state[0] ? e->last.state : "unseen");
			x->err.retryable = true;
			x->failed = true;
			done = true;
		}
		if (!done) {
			i++;
			continue;
		}
		copy_str(x->id, sizeof(x->id), e->id);
		x->share = e->share;
		memset(&x->inst, 0, sizeof(x->inst));
		x->inst.launch_index = -1;
		goman_ec2_instance_copy(&x->inst, &e->last);
		if (!x->inst.instance_id[0])
			copy_str(x->inst.instance_id, sizeof(x->inst.instance_id), e->id);
		nf++;
		pend_remove(p, i);
	}
	deliver(p, f, nf);
}

/* A round begins: every instance pending now is in it (its calls are shared by them). */
GOMAN_TESTABLE void gm_ec2_poller_mark(struct goman_ec2_poller *p)
{
	for (size_t i = 0; i < p->n; i++)
		p->v[i].in_round = true;
}

struct round_ctx {
	struct goman_ec2_poller *p;
	struct goman_ec2_instances found;
	int calls;
};

static void round_end(struct goman_ec2_poller *p, struct goman_ec2_instances *found, int calls,
		      const struct goman_err *err)
{
	p->in_flight = false;
	if (p->dead) {
		goman_ec2_poller_free(p);
		return;
	}
	gm_ec2_poller_apply(p, found, calls, err);
	schedule(p);
}

static void status_done(struct goman_aws_result *res, void *ud)
{
	struct round_ctx *c = ud;
	c->calls += res->attempts > 0 ? res->attempts : 1;
	if (res->err.rc == GOMAN_OK) {
		const cJSON *set = goman_json_path_array(res->data, "instanceStatusSet");
		const cJSON *it;
		cJSON_ArrayForEach (it, set) {
			const char *id = goman_json_path_str(it, "instanceId");
			const char *is = goman_json_path_str(it, "instanceStatus.status");
			const char *ss = goman_json_path_str(it, "systemStatus.status");
			for (size_t j = 0; id && j < c->found.n; j++)
				if (!strcmp(c->found.v[j].instance_id, id))
					copy_str(c->found.v[j].status, sizeof(c->found.v[j].status),
						 is && ss && !strcmp(is, "ok") && !strcmp(ss, "ok")
							 ? "ok"
							 : (is ? is : ""));
		}
	}
	/* a failed status call only delays these instances to the next round */
	round_end(c->p, &c->found, c->calls, NULL);
	goman_ec2_instances_clear(&c->found);
	free(c);
}

static void round_described(struct goman_ec2_instances *found, const struct goman_err *err,
			    const struct goman_ec2_describe_stats *st, void *ud)
{
	struct goman_ec2_poller *p = ud;
	if (p->dead || (err && err->rc != GOMAN_OK)) {
		round_end(p, found, st->calls, err);
		return;
	}
	if (p->o.target == GOMAN_EC2_WAIT_STATUS_OK) {
		/* one DescribeInstanceStatus for the running ones of this round */
		struct goman_kvs params = {0};
		size_t k = 0;
		struct round_ctx *c = calloc(1, sizeof(*c));
		if (c) {
			c->p = p;
			c->found = *found;
			memset(found, 0, sizeof(*found));
			c->calls = st->calls;
			for (size_t i = 0; i < c->found.n && k < IDS_PER_CALL; i++) {
				if (strcmp(c->found.v[i].state, "running"))
					continue;
				char key[48];
				snprintf(key, sizeof(key), "InstanceId.%zu", ++k);
				goman_kvs_add(&params, key, c->found.v[i].instance_id);
			}
			struct goman_aws_call call = {.service = "ec2",
						      .action = "DescribeInstanceStatus",
						      .params = &params};
			struct goman_err e2 = GOMAN_ERR_INIT;
			goman_err_clear(&e2);
			if (k && goman_aws_submit(p->aws, &call, status_done, c, &e2) == 0) {
				goman_kvs_clear(&params);
				return;
			}
			goman_kvs_clear(&params);
			round_end(p, &c->found, c->calls, NULL);
			goman_ec2_instances_clear(&c->found);
			free(c);
			return;
		}
	}
	round_end(p, found, st->calls, NULL);
}

static void round_fire(void *ud)
{
	struct goman_ec2_poller *p = ud;
	p->timer = 0;
	if (!p->n)
		return;
	struct goman_err err = GOMAN_ERR_INIT;
	goman_err_clear(&err);
	char **ids = NULL;
	size_t nids = 0;
	if (!p->o.filters) {
		ids = calloc(p->n, sizeof(char *));
		if (!ids) {
			oom(&err);
			gm_ec2_poller_apply(p, NULL, 0, &err);
			return;
		}
		for (size_t i = 0; i < p->n; i++)
			ids[nids++] = p->v[i].id;
	}
	gm_ec2_poller_mark(p);
	p->in_flight = true;
	int rc = goman_ec2_describe_submit(p->aws, p->o.filters, (const char *const *)ids, nids,
					   p->o.eventual_deadline_ms, round_described, p, &err);
	free(ids);
	if (rc != 0)
		round_end(p, NULL, 0, &err);
}

/* ---- mutations ------------------------------------------------------------------------ */

struct mut_op {
	goman_ec2_call_fn done;
	void *ud;
};

static void mut_done(struct goman_aws_result *res, void *ud)
{
	struct mut_op *m = ud;
	m->done(res->err.rc == GOMAN_OK ? NULL : &res->err, res->attempts > 0 ? res->attempts : 1,
		m->ud);
	free(m);
}

static int mut_submit(struct goman_aws *aws, const char *action, struct goman_kvs *params,
		      int64_t eventual_ms, goman_ec2_call_fn done, void *ud, struct goman_err *err)
{
	struct mut_op *m = calloc(1, sizeof(*m));
	if (!m) {
		goman_kvs_clear(params);
		return oom(err);
	}
	m->done = done;
	m->ud = ud;
	struct goman_aws_call call = {.service = "ec2",
				      .action = action,
				      .params = params,
				      .eventual_deadline_ms = eventual_ms};
	int rc = goman_aws_submit(aws, &call, mut_done, m, err);
	goman_kvs_clear(params);
	if (rc != 0)
		free(m);
	return rc;
}

int goman_ec2_create_tags_submit(struct goman_aws *aws, const char *const *ids, size_t nids,
				 const struct goman_kvs *tags, goman_ec2_call_fn done, void *ud,
				 struct goman_err *err)
{
	struct goman_kvs params = {0};
	char k[64];
	if (add_ids(&params, "ResourceId", ids, nids) != 0)
		goto nomem;
	for (size_t i = 0; i < tags->n; i++) {
		snprintf(k, sizeof(k), "Tag.%zu.Key", i + 1);
		if (goman_kvs_add(&params, k, tags->v[i].name) != 0)
			goto nomem;
		snprintf(k, sizeof(k), "Tag.%zu.Value", i + 1);
		if (goman_kvs_add(&params, k, tags->v[i].value) != 0)
			goto nomem;
	}
	/* a just-launched ID may not be visible to CreateTags yet */
	return mut_submit(aws, "CreateTags", &params, 60000, done, ud, err);
nomem:
	goman_kvs_clear(&params);
	return oom(err);
}

int goman_ec2_start_submit(struct goman_aws *aws, const char *const *ids, size_t nids,
			   goman_ec2_call_fn done, void *ud, struct goman_err *err)
{
	struct goman_kvs params = {0};
	if (add_ids(&params, "InstanceId", ids, nids) != 0) {
		goman_kvs_clear(&params);
		return oom(err);
	}
	return mut_submit(aws, "StartInstances", &params, 0, done, ud, err);
}

/* ---- security groups ------------------------------------------------------------------ */

const struct goman_ec2_sg_rule goman_ec2_k3s_rules[] = {
	{"tcp", 6443, 6443, NULL},   /* Kubernetes API */
	{"tcp", 10250, 10250, NULL}, /* kubelet */
	{"tcp", 2379, 2380, NULL},   /* embedded etcd (HA servers) */
	{"udp", 8472, 8472, NULL},   /* flannel VXLAN */
	{"udp", 51820, 51821, NULL}, /* flannel WireGuard v4/v6 */
};
const size_t goman_ec2_k3s_nrules = sizeof(goman_ec2_k3s_rules) / sizeof(goman_ec2_k3s_rules[0]);

static int blocking(struct goman_aws *aws, const char *action, const struct goman_kvs *params,
		    struct goman_aws_result *res, int *calls, struct goman_err *err)
{
	struct goman_aws_call call = {.service = "ec2", .action = action, .params = params};
	int rc = goman_aws_call(aws, &call, res);
	if (calls)
		*calls += res->attempts > 0 ? res->attempts : 1;
	if (rc != 0 && err)
		*err = res->err;
	return rc;
}

int goman_ec2_default_vpc(struct goman_aws *aws, char *vpc, size_t len, int *calls,
			  struct goman_err *err)
{
	struct goman_kvs params = {0};
	struct goman_aws_result res;
	if (goman_kvs_add(&params, "Filter.1.Name", "is-default") ||
	    goman_kvs_add(&params, "Filter.1.Value.1", "true")) {
		goman_kvs_clear(&params);
		return oom(err);
	}
	int rc = blocking(aws, "DescribeVpcs", &params, &res, calls, err);
	goman_kvs_clear(&params);
	if (rc == 0) {
		const cJSON *set = goman_json_path_array(res.data, "vpcSet");
		const char *id =
			set ? goman_json_path_str(cJSON_GetArrayItem(set, 0), "vpcId") : NULL;
		if (id)
			copy_str(vpc, len, id);
		else
			rc = goman_err_set(err, GOMAN_ENOTFOUND, GOMAN_CLASS_CLIENT, "NoDefaultVpc",
					   "this region has no default VPC: give --subnet");
	}
	goman_aws_result_clear(&res);
	return rc;
}

int goman_ec2_subnet_vpc(struct goman_aws *aws, const char *subnet, char *vpc, size_t len,
			 int *calls, struct goman_err *err)
{
	struct goman_kvs params = {0};
	struct goman_aws_result res;
	if (goman_kvs_add(&params, "SubnetId.1", subnet)) {
		goman_kvs_clear(&params);
		return oom(err);
	}
	int rc = blocking(aws, "DescribeSubnets", &params, &res, calls, err);
	goman_kvs_clear(&params);
	if (rc == 0) {
		const cJSON *set = goman_json_path_array(res.data, "subnetSet");
		const char *id =
			set ? goman_json_path_str(cJSON_GetArrayItem(set, 0), "vpcId") : NULL;
		if (id)
			copy_str(vpc, len, id);
		else
			rc = goman_err_set(err, GOMAN_ENOTFOUND, GOMAN_CLASS_CLIENT,
					   "InvalidSubnetID.NotFound", "subnet '%s' not found",
					   subnet);
	}
	goman_aws_result_clear(&res);
	return rc;
}

static int cmp_subnet(const void *a, const void *b)
{
	const struct goman_ec2_subnet *x = a, *y = b;
	int c = strcmp(x->az, y->az);
	return c ? c : strcmp(x->subnet_id, y->subnet_id);
}

int goman_ec2_subnets(struct goman_aws *aws, const struct goman_kvs *filters,
		      const char *const *ids, size_t nids, struct goman_ec2_subnet **out, size_t *n,
		      int *calls, struct goman_err *err)
{
	struct goman_ec2_subnet *v = NULL;
	size_t nv = 0, cap = 0;
	char token[1024] = "";
	*out = NULL;
	*n = 0;
	if (nids > 1000)
		return goman_err_set(err, GOMAN_EINVAL, GOMAN_CLASS_CLIENT, "Internal",
				     "at most 1000 subnet IDs a call");
	for (int page = 0; page < 100; page++) {
		struct goman_kvs params = {0};
		struct goman_aws_result res;
		int rc = gm_ec2_add_filters(&params, filters) |
			 add_ids(&params, "SubnetId", ids, nids);
		if (!rc && token[0])
			rc = goman_kvs_add(&params, "NextToken", token);
		if (rc) {
			goman_kvs_clear(&params);
			free(v);
			return oom(err);
		}
		rc = blocking(aws, "DescribeSubnets", &params, &res, calls, err);
		goman_kvs_clear(&params);
		if (rc != 0) {
			goman_aws_result_clear(&res);
			free(v);
			return -1;
		}
		const cJSON *s;
		cJSON_ArrayForEach (s, goman_json_path_array(res.data, "subnetSet")) {
			const char *id = goman_json_path_str(s, "subnetId");
			if (!id)
				continue;
			if (nv == cap) {
				size_t nc = cap ? cap * 2 : 16;
				struct goman_ec2_subnet *x = realloc(v, nc * sizeof(*x));
				if (!x) {
					goman_aws_result_clear(&res);
					free(v);
					return oom(err);
				}
				v = x;
				cap = nc;
			}
			struct goman_ec2_subnet *d = &v[nv++];
			memset(d, 0, sizeof(*d));
			copy_str(d->subnet_id, sizeof(d->subnet_id), id);
			copy_str(d->az, sizeof(d->az), goman_json_path_str(s, "availabilityZone"));
			copy_str(d->vpc_id, sizeof(d->vpc_id), goman_json_path_str(s, "vpcId"));
			const char *df = goman_json_path_str(s, "defaultForAz");
			d->default_for_az = df && !strcmp(df, "true");
		}
		const char *next = goman_json_path_str(res.data, "nextToken");
		copy_str(token, sizeof(token), nids ? NULL : next);
		goman_aws_result_clear(&res);
		if (!token[0])
			break;
	}
	if (nv)
		qsort(v, nv, sizeof(*v), cmp_subnet);
	*out = v;
	*n = nv;
	return 0;
}

int goman_ec2_root_device(struct goman_aws *aws, const char *ami, char *dev, size_t len, int *calls,
			  struct goman_err *err)
{
	struct goman_kvs params = {0};
	struct goman_aws_result res;
	if (goman_kvs_add(&params, "ImageId.1", ami)) {
		goman_kvs_clear(&params);
		return oom(err);
	}
	int rc = blocking(aws, "DescribeImages", &params, &res, calls, err);
	goman_kvs_clear(&params);
	if (rc == 0) {
		const cJSON *set = goman_json_path_array(res.data, "imagesSet");
		const char *d =
			set ? goman_json_path_str(cJSON_GetArrayItem(set, 0), "rootDeviceName")
			    : NULL;
		/* a device name goes into a launch parameter: only the /dev/ form EC2 uses */
		if (d && !strncmp(d, "/dev/", 5) && strlen(d) < len && !strpbrk(d, " \t\r\n"))
			copy_str(dev, len, d);
		else
			rc = goman_err_set(err, GOMAN_ENOTFOUND, GOMAN_CLASS_CLIENT,
					   "InvalidAMIID.NotFound",
					   "image '%s' not found or has no root device name", ami);
	}
	goman_aws_result_clear(&res);
	return rc;
}

/* Does the group's ipPermissions already hold this rule? */
static bool has_rule(const cJSON *perms, const struct goman_ec2_sg_rule *r, const char *gid)
{
	const cJSON *p;
	char from[16], to[16];
	snprintf(from, sizeof(from), "%d", r->from);
	snprintf(to, sizeof(to), "%d", r->to);
	cJSON_ArrayForEach (p, perms) {
		const char *pr = goman_json_path_str(p, "ipProtocol");
		const char *f = goman_json_path_str(p, "fromPort");
		const char *t = goman_json_path_str(p, "toPort");
		if (!pr || !f || !t || strcmp(pr, r->proto) || strcmp(f, from) || strcmp(t, to))
			continue;
		const cJSON *x;
		if (r->cidr) {
			cJSON_ArrayForEach (x, goman_json_path_array(p, "ipRanges")) {
				const char *c = goman_json_path_str(x, "cidrIp");
				if (c && !strcmp(c, r->cidr))
					return true;
			}
		} else {
			cJSON_ArrayForEach (x, goman_json_path_array(p, "groups")) {
				const char *g = goman_json_path_str(x, "groupId");
				if (g && !strcmp(g, gid))
					return true;
			}
		}
	}
	return false;
}

static int add_rule(struct goman_kvs *params, int n, const struct goman_ec2_sg_rule *r,
		    const char *gid)
{
	char k[64], v[16];
	snprintf(k, sizeof(k), "IpPermissions.%d.IpProtocol", n);
	if (goman_kvs_add(params, k, r->proto))
		return -1;
	snprintf(k, sizeof(k), "IpPermissions.%d.FromPort", n);
	snprintf(v, sizeof(v), "%d", r->from);
	if (goman_kvs_add(params, k, v))
		return -1;
	snprintf(k, sizeof(k), "IpPermissions.%d.ToPort", n);
	snprintf(v, sizeof(v), "%d", r->to);
	if (goman_kvs_add(params, k, v))
		return -1;
	if (r->cidr) {
		snprintf(k, sizeof(k), "IpPermissions.%d.IpRanges.1.CidrIp", n);
		return goman_kvs_add(params, k, r->cidr);
	}
	snprintf(k, sizeof(k), "IpPermissions.%d.Groups.1.GroupId", n);
	return goman_kvs_add(params, k, gid);
}

static int describe_sg(struct goman_aws *aws, const char *name, const char *vpc,
		       struct goman_aws_result *res, int *calls, struct goman_err *err)
{
	struct goman_kvs params = {0};
	if (goman_kvs_add(&params, "Filter.1.Name", "group-name") ||
	    goman_kvs_add(&params, "Filter.1.Value.1", name) ||
	    goman_kvs_add(&params, "Filter.2.Name", "vpc-id") ||
	    goman_kvs_add(&params, "Filter.2.Value.1", vpc)) {
		goman_kvs_clear(&params);
		return oom(err);
	}
	int rc = blocking(aws, "DescribeSecurityGroups", &params, res, calls, err);
	goman_kvs_clear(&params);
	return rc;
}

int goman_ec2_ensure_sg(struct goman_aws *aws, const char *name, const char *description,
			const char *vpc, const struct goman_ec2_sg_rule *rules, size_t nrules,
			char *group_id, size_t len, int *calls, struct goman_err *err)
{
	struct goman_aws_result res;
	struct goman_kvs params = {0};
	cJSON *perms = NULL;
	memset(&res, 0, sizeof(res));
	int rc = -1;
	group_id[0] = '\0';
	if (describe_sg(aws, name, vpc, &res, calls, err) != 0)
		goto out;
	const cJSON *g =
		cJSON_GetArrayItem(goman_json_path_array(res.data, "securityGroupInfo"), 0);
	if (g && goman_json_path_str(g, "groupId")) {
		copy_str(group_id, len, goman_json_path_str(g, "groupId"));
		perms = cJSON_Duplicate(goman_json_path_array(g, "ipPermissions"), 1);
	} else {
		goman_aws_result_clear(&res);
		if (goman_kvs_add(&params, "GroupName", name) ||
		    goman_kvs_add(&params, "GroupDescription", description ? description : name) ||
		    goman_kvs_add(&params, "VpcId", vpc)) {
			oom(err);
			goto out;
		}
		if (blocking(aws, "CreateSecurityGroup", &params, &res, calls, err) == 0) {
			copy_str(group_id, len, goman_json_path_str(res.data, "groupId"));
			goman_log(GOMAN_LOG_INFO, "PROVISION",
				  "created security group %s (%s) in %s", name, group_id, vpc);
		} else if (!strcmp(res.err.code, "InvalidGroup.Duplicate")) {
			/* another run made it between our describe and create */
			goman_aws_result_clear(&res);
			if (describe_sg(aws, name, vpc, &res, calls, err) != 0)
				goto out;
			g = cJSON_GetArrayItem(goman_json_path_array(res.data, "securityGroupInfo"),
					       0);
			copy_str(group_id, len, g ? goman_json_path_str(g, "groupId") : NULL);
		} else {
			goto out;
		}
		goman_kvs_clear(&params);
	}
	goman_aws_result_clear(&res);
	if (!group_id[0]) {
		rc = goman_err_set(err, GOMAN_EPARSE, GOMAN_CLASS_NONE, "", "no groupId for '%s'",
				   name);
		goto out;
	}
	if (goman_kvs_add(&params, "GroupId", group_id)) {
		oom(err);
		goto out;
	}
	int n = 0;
	for (size_t i = 0; i < nrules; i++) {
		if (perms && has_rule(perms, &rules[i], group_id))
			continue;
		if (add_rule(&params, ++n, &rules[i], group_id)) {
			oom(err);
			goto out;
		}
	}
	if (!n) {
		rc = 0;
		goto out;
	}
	if (blocking(aws, "AuthorizeSecurityGroupIngress", &params, &res, calls, err) == 0) {
		rc = 0;
	} else if (!strcmp(res.err.code, "InvalidPermission.Duplicate")) {
		/* one duplicate refuses the whole call: go rule by rule, duplicates are fine */
		rc = 0;
		for (size_t i = 0; i < nrules && rc == 0; i++) {
			struct goman_kvs one = {0};
			goman_aws_result_clear(&res);
			if (goman_kvs_add(&one, "GroupId", group_id) ||
			    add_rule(&one, 1, &rules[i], group_id)) {
				goman_kvs_clear(&one);
				rc = oom(err);
				break;
			}
			if (blocking(aws, "AuthorizeSecurityGroupIngress", &one, &res, calls,
				     err) != 0 &&
			    strcmp(res.err.code, "InvalidPermission.Duplicate"))
				rc = -1;
			goman_kvs_clear(&one);
		}
		if (rc == 0 && err)
			goman_err_clear(err);
	}
out:
	cJSON_Delete(perms);
	goman_kvs_clear(&params);
	goman_aws_result_clear(&res);
	return rc;
}
