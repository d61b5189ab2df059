/*
 * ec2.c - EC2 helpers shared by goman-provision and goman-batch (see goman/ec2.h):
 * instance summaries from converted XML replies, paginated DescribeInstances,
 * CreateTags/StartInstances, and the blocking VPC/subnet/image lookups. The poller is
 * ec2_poll.c, the security-group ensure ec2_sg.c.
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
#include "bytes_int.h"
#include "ec2_int.h"

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
	gm_ec2_copy(out->instance_id, sizeof(out->instance_id), id);
	gm_ec2_copy(out->state, sizeof(out->state),
		    goman_json_path_str(item, "instanceState.name"));
	gm_ec2_copy(out->state_reason, sizeof(out->state_reason),
		    goman_json_path_str(item, "stateReason.code"));
	/* the reply is outside input: an address that is not one never reaches a record */
	const char *pip = goman_json_path_str(item, "privateIpAddress");
	const char *pub = goman_json_path_str(item, "ipAddress");
	gm_ec2_copy(out->private_ip, sizeof(out->private_ip), goman_addr_ok(pip) ? pip : NULL);
	gm_ec2_copy(out->public_ip, sizeof(out->public_ip), goman_addr_ok(pub) ? pub : NULL);
	gm_ec2_copy(out->az, sizeof(out->az),
		    goman_json_path_str(item, "placement.availabilityZone"));
	gm_ec2_copy(out->type, sizeof(out->type), goman_json_path_str(item, "instanceType"));
	gm_ec2_copy(out->image_id, sizeof(out->image_id), goman_json_path_str(item, "imageId"));
	gm_ec2_copy(out->subnet_id, sizeof(out->subnet_id), goman_json_path_str(item, "subnetId"));
	gm_ec2_copy(out->vpc_id, sizeof(out->vpc_id), goman_json_path_str(item, "vpcId"));
	gm_ec2_copy(out->launch_time, sizeof(out->launch_time),
		    goman_json_path_str(item, "launchTime"));
	gm_ec2_copy(out->lifecycle, sizeof(out->lifecycle),
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
int gm_ec2_add_filters(struct goman_kvs *params, const struct goman_kvs *filters)
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

int gm_ec2_add_ids(struct goman_kvs *params, const char *prefix, const char *const *ids, size_t n)
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

/* Page size for filter describes: 200, not the API's 1000. A page is one reply held whole
 * (reply buffer, then its cJSON tree): 1000 instances are ~3.2 MB of XML from moto and more
 * from EC2 with many tags, against ~0.7 MB for 200, while a 500-node poll round costs 3
 * calls instead of 1. GOMAN_EC2_MAX_RESULTS (5..1000) sets it; max_reply_bytes (64 MiB)
 * stays far above one page at any of them. */
#define DEFAULT_MAX_RESULTS "200"
static const char *max_results(void)
{
	const char *e = getenv("GOMAN_EC2_MAX_RESULTS");
	if (e && *e) {
		char *end;
		long v = strtol(e, &end, 10);
		if (!*end && v >= 5 && v <= 1000)
			return e;
	}
	return DEFAULT_MAX_RESULTS;
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
		if (n > GM_EC2_IDS_PER_CALL)
			n = GM_EC2_IDS_PER_CALL;
		rc = gm_ec2_add_ids(&params, "InstanceId", (const char *const *)d->ids.v + d->chunk,
				    n);
	} else if (rc == 0) {
		/* MaxResults cannot be combined with InstanceId.N */
		rc = goman_kvs_add(&params, "MaxResults", max_results());
	}
	if (rc == 0 && d->next_token)
		rc = goman_kvs_add(&params, "NextToken", d->next_token);
	if (rc != 0) {
		goman_kvs_clear(&params);
		return gm_err_oom(err);
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
		gm_err_oom(&err);
		desc_finish(d, &err);
		return;
	}
	const char *tok = goman_json_path_str(res->data, "nextToken");
	free(d->next_token);
	d->next_token = NULL;
	if (tok && *tok) {
		d->next_token = strdup(tok);
		if (!d->next_token) {
			gm_err_oom(&err);
			desc_finish(d, &err);
			return;
		}
	} else if (d->ids.n) {
		d->chunk += GM_EC2_IDS_PER_CALL;
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
		return gm_err_oom(err);
	d->aws = aws;
	d->done = done;
	d->ud = ud;
	d->eventual_ms = eventual_deadline_ms;
	if ((filters && goman_kvs_copy(&d->filters, filters) != 0) ||
	    idlist_copy(&d->ids, ids, nids) != 0) {
		desc_free(d);
		return gm_err_oom(err);
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
			gm_err_oom(w->err);
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

int goman_ec2_cluster_instances(struct goman_aws *aws, const char *cluster, bool shutting_down,
				struct goman_ec2_instances *out, struct goman_err *err)
{
	static const char *const live[] = {"pending", "running", "stopping", "stopped",
					   "shutting-down"};
	size_t nstates = shutting_down ? 5 : 4;
	struct goman_kvs f = {0};
	struct goman_ec2_instances l = {0};
	int rc = cluster ? goman_kvs_add(&f, "tag:goman:cluster", cluster)
			 : goman_kvs_add(&f, "tag-key", "goman:cluster");
	for (size_t i = 0; i < nstates; i++)
		rc |= goman_kvs_add(&f, "instance-state-name", live[i]);
	if (rc != 0)
		rc = gm_err_oom(err);
	else
		rc = goman_ec2_describe(aws, &f, NULL, 0, &l, NULL, err);
	for (size_t i = 0; rc == 0 && i < l.n; i++) {
		/* a reply is outside input: the filter is checked again */
		const char *c = goman_ec2_tag(&l.v[i], "goman:cluster");
		if (!c || (cluster && strcmp(c, cluster)))
			continue;
		if (goman_ec2_instances_add(out, &l.v[i]) != 0)
			rc = gm_err_oom(err);
	}
	goman_ec2_instances_clear(&l);
	goman_kvs_clear(&f);
	return rc;
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
		return gm_err_oom(err);
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
	if (gm_ec2_add_ids(&params, "ResourceId", ids, nids) != 0)
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
	return gm_err_oom(err);
}

int goman_ec2_start_submit(struct goman_aws *aws, const char *const *ids, size_t nids,
			   goman_ec2_call_fn done, void *ud, struct goman_err *err)
{
	struct goman_kvs params = {0};
	if (gm_ec2_add_ids(&params, "InstanceId", ids, nids) != 0) {
		goman_kvs_clear(&params);
		return gm_err_oom(err);
	}
	return mut_submit(aws, "StartInstances", &params, 0, done, ud, err);
}

/* ---- VPCs, subnets, images ------------------------------------------------------------ */

int gm_ec2_blocking(struct goman_aws *aws, const char *action, const struct goman_kvs *params,
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
		return gm_err_oom(err);
	}
	int rc = gm_ec2_blocking(aws, "DescribeVpcs", &params, &res, calls, err);
	goman_kvs_clear(&params);
	if (rc == 0) {
		const cJSON *set = goman_json_path_array(res.data, "vpcSet");
		const char *id =
			set ? goman_json_path_str(cJSON_GetArrayItem(set, 0), "vpcId") : NULL;
		if (id)
			gm_ec2_copy(vpc, len, id);
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
		return gm_err_oom(err);
	}
	int rc = gm_ec2_blocking(aws, "DescribeSubnets", &params, &res, calls, err);
	goman_kvs_clear(&params);
	if (rc == 0) {
		const cJSON *set = goman_json_path_array(res.data, "subnetSet");
		const char *id =
			set ? goman_json_path_str(cJSON_GetArrayItem(set, 0), "vpcId") : NULL;
		if (id)
			gm_ec2_copy(vpc, len, id);
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
			 gm_ec2_add_ids(&params, "SubnetId", ids, nids);
		if (!rc && token[0])
			rc = goman_kvs_add(&params, "NextToken", token);
		if (rc) {
			goman_kvs_clear(&params);
			free(v);
			return gm_err_oom(err);
		}
		rc = gm_ec2_blocking(aws, "DescribeSubnets", &params, &res, calls, err);
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
					return gm_err_oom(err);
				}
				v = x;
				cap = nc;
			}
			struct goman_ec2_subnet *d = &v[nv++];
			memset(d, 0, sizeof(*d));
			gm_ec2_copy(d->subnet_id, sizeof(d->subnet_id), id);
			gm_ec2_copy(d->az, sizeof(d->az),
				    goman_json_path_str(s, "availabilityZone"));
			gm_ec2_copy(d->vpc_id, sizeof(d->vpc_id), goman_json_path_str(s, "vpcId"));
			const char *df = goman_json_path_str(s, "defaultForAz");
			d->default_for_az = df && !strcmp(df, "true");
		}
		const char *next = goman_json_path_str(res.data, "nextToken");
		gm_ec2_copy(token, sizeof(token), nids ? NULL : next);
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
		return gm_err_oom(err);
	}
	int rc = gm_ec2_blocking(aws, "DescribeImages", &params, &res, calls, err);
	goman_kvs_clear(&params);
	if (rc == 0) {
		const cJSON *set = goman_json_path_array(res.data, "imagesSet");
		const char *d =
			set ? goman_json_path_str(cJSON_GetArrayItem(set, 0), "rootDeviceName")
			    : NULL;
		/* a device name goes into a launch parameter: only the /dev/ form EC2 uses */
		if (d && !strncmp(d, "/dev/", 5) && strlen(d) < len && !strpbrk(d, " \t\r\n"))
			gm_ec2_copy(dev, len, d);
		else
			rc = goman_err_set(err, GOMAN_ENOTFOUND, GOMAN_CLASS_CLIENT,
					   "InvalidAMIID.NotFound",
					   "image '%s' not found or has no root device name", ami);
	}
	goman_aws_result_clear(&res);
	return rc;
}
