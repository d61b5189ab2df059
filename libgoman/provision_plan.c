/*
 * provision_plan.c - goman-provision's planning, pure functions over nodes and the listed
 * instances: the listing filter, matching specs to instances (reuse, adoption), placement
 * over subnets, the drift of a reused node, and when a failed launch falls back to the
 * next instance type. No calls are made here.
 *
 * Ownership: nodes are borrowed and filled in place (instance copies are the node's);
 * gm_prov_drift returns a new object the caller deletes. Errors: -1 with *e (gm_prov_plan).
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>
#include "goman/provision.h"
#include "bytes_int.h"
#include "provision_int.h"

int gm_prov_tag_index(const struct goman_ec2_instance *in)
{
	const char *s = goman_ec2_tag(in, "goman:index");
	if (!s || !isdigit((unsigned char)*s))
		return -1;
	char *end;
	long v = strtol(s, &end, 10);
	return *end || v > 99999 ? -1 : (int)v;
}

/* The states an instance can be reused from; the listing filter asks for exactly these. */
static const char *const reusable_states[] = {"pending", "running", "stopping", "stopped"};

bool gm_prov_reusable_state(const char *s)
{
	for (size_t i = 0; i < sizeof(reusable_states) / sizeof(*reusable_states); i++)
		if (!strcmp(s, reusable_states[i]))
			return true;
	return false;
}

/*
 * The listing filter of one cluster: its goman:cluster tag and the reusable states. Every
 * add is checked: a filter that lost its cluster tag lists every cluster's instances.
 * with_states false gives the poller's filter (every state must be seen there).
 */
int gm_prov_filter(struct goman_kvs *f, const char *cluster, bool with_states)
{
	int rc = goman_kvs_add(f, "tag:goman:cluster", cluster);
	for (size_t i = 0; with_states && i < sizeof(reusable_states) / sizeof(*reusable_states);
	     i++)
		rc |= goman_kvs_add(f, "instance-state-name", reusable_states[i]);
	return rc ? -1 : 0;
}

/* True when f is exactly what gm_prov_filter(f, cluster, true) builds. */
static bool filter_complete(const struct goman_kvs *f, const char *cluster)
{
	size_t nstates = sizeof(reusable_states) / sizeof(*reusable_states);
	if (!f || f->n != 1 + nstates || strcmp(f->v[0].name, "tag:goman:cluster") ||
	    strcmp(f->v[0].value, cluster))
		return false;
	for (size_t i = 0; i < nstates; i++)
		if (strcmp(f->v[1 + i].name, "instance-state-name") ||
		    strcmp(f->v[1 + i].value, reusable_states[i]))
			return false;
	return true;
}

/* An instance this cluster may take: tagged with the node's cluster, in a reusable state.
 * Checked again here, not trusted to the filter: a reply is outside input. */
static bool ours(const struct goman_ec2_instance *in, const struct node *n)
{
	const char *c = goman_ec2_tag(in, "goman:cluster");
	return c && n->cluster && !strcmp(c, n->cluster) && gm_prov_reusable_state(in->state);
}

/* Launch order: launch time (ISO 8601 as EC2 gives it: compares as text), then the
 * instance's place in its RunInstances call. */
static bool launched_before(const struct goman_ec2_instance *a, const struct goman_ec2_instance *b)
{
	int c = strcmp(a->launch_time, b->launch_time);
	return c < 0 || (c == 0 && a->launch_index < b->launch_index);
}

/*
 * Matches nodes to existing instances: by (role, goman:index); then adopts instances that
 * carry the role but no index for the missing nodes, lowest index first. Marks matched
 * nodes reused/adopted and copies the instance; *missing gets how many nodes are still
 * missing. Refuses (-1, nothing matched) a listing made with an incomplete filter.
 */
int gm_prov_plan(struct node **nodes, size_t nn, const struct goman_kvs *filter,
		 const struct goman_ec2_instances *ex, size_t *missing_out, struct goman_err *e)
{
	for (size_t i = 0; i < nn; i++)
		if (!filter_complete(filter, nodes[i]->cluster))
			return goman_err_set(
				e, GOMAN_EIO, GOMAN_CLASS_NONE, "Internal",
				"the listing filter of cluster %s is incomplete; not planning",
				nodes[i]->cluster ? nodes[i]->cluster : "");
	bool *used = calloc(ex->n ? ex->n : 1, sizeof(bool));
	if (!used)
		return gm_err_oom(e);
	size_t missing = 0;
	for (size_t i = 0; i < nn; i++) {
		struct node *n = nodes[i];
		for (size_t j = 0; j < ex->n; j++) {
			const char *role = goman_ec2_tag(&ex->v[j], "goman:role");
			if (used[j] || !role || strcmp(role, n->role) ||
			    gm_prov_tag_index(&ex->v[j]) != n->index || !ours(&ex->v[j], n))
				continue;
			if (goman_ec2_instance_copy(&n->inst, &ex->v[j]) != 0)
				goto nomem;
			used[j] = true;
			n->reused = true;
			break;
		}
	}
	/* nodes are in index order per role (sorted by the caller), so adoption fills the
	 * lowest missing indices first, with the unnamed instances in launch order: a run
	 * names its launches' instances in that order, so the instances a killed run left
	 * unnamed (their records may be out) get back the names it gave them */
	for (size_t i = 0; i < nn; i++) {
		struct node *n = nodes[i];
		if (n->reused)
			continue;
		size_t best = ex->n;
		for (size_t j = 0; j < ex->n; j++) {
			const char *role = goman_ec2_tag(&ex->v[j], "goman:role");
			if (used[j] || !role || strcmp(role, n->role) ||
			    gm_prov_tag_index(&ex->v[j]) >= 0 || !ours(&ex->v[j], n))
				continue;
			if (best == ex->n || launched_before(&ex->v[j], &ex->v[best]))
				best = j;
		}
		if (best < ex->n) {
			if (goman_ec2_instance_copy(&n->inst, &ex->v[best]) != 0)
				goto nomem;
			used[best] = true;
			n->reused = n->adopted = true;
			n->need_tags = true;
		}
		if (!n->reused)
			missing++;
	}
	free(used);
	*missing_out = missing;
	return 0;
nomem:
	/* a half plan would launch what exists: undo it */
	for (size_t i = 0; i < nn; i++)
		nodes[i]->reused = nodes[i]->adopted = nodes[i]->need_tags = false;
	free(used);
	return gm_err_oom(e);
}

void gm_prov_place(struct node **nodes, size_t nn, const struct goman_ec2_subnet *sn, size_t ns)
{
	if (!ns)
		return;
	size_t *count = calloc(ns, sizeof(size_t));
	if (!count)
		return; /* unplaced nodes go where EC2 puts them */
	for (int r = 0; r < 2; r++) {
		const char *role = r ? "agent" : "server";
		memset(count, 0, ns * sizeof(size_t));
		for (size_t i = 0; i < nn; i++) {
			const struct node *n = nodes[i];
			const char *az = n->reused ? n->inst.az : n->az;
			if (strcmp(n->role, role) || !az[0])
				continue;
			for (size_t k = 0; k < ns; k++)
				count[k] += !strcmp(sn[k].az, az);
		}
		for (size_t i = 0; i < nn; i++) {
			struct node *n = nodes[i];
			if (strcmp(n->role, role) || n->reused || n->subnet[0])
				continue;
			size_t best = 0;
			for (size_t k = 1; k < ns; k++)
				if (count[k] < count[best])
					best = k;
			snprintf(n->subnet, sizeof(n->subnet), "%s", sn[best].subnet_id);
			snprintf(n->az, sizeof(n->az), "%s", sn[best].az);
			/* every subnet of that AZ now holds one more */
			for (size_t k = 0; k < ns; k++)
				count[k] += !strcmp(sn[k].az, sn[best].az);
		}
	}
	free(count);
}

static void drift_put(cJSON *d, const char *k, cJSON *want, const char *have)
{
	cJSON *o = cJSON_CreateObject();
	if (!o || !want) {
		cJSON_Delete(o);
		cJSON_Delete(want);
		return;
	}
	cJSON_AddItemToObject(o, "want", want);
	cJSON_AddStringToObject(o, "have", have);
	cJSON_AddItemToObject(d, k, o);
}

cJSON *gm_prov_drift(const struct node *n)
{
	const struct goman_ec2_instance *in = &n->inst;
	cJSON *d = cJSON_CreateObject();
	if (!d)
		return NULL;
	if (n->explicit_type && in->type[0]) {
		bool listed = false;
		for (int i = 0; i < n->ntypes; i++)
			listed |= !strcmp(n->types[i], in->type);
		if (!listed) {
			cJSON *w = cJSON_CreateString(n->types[0]);
			if (n->ntypes > 1) {
				cJSON_Delete(w);
				w = cJSON_CreateArray();
				for (int i = 0; w && i < n->ntypes; i++)
					cJSON_AddItemToArray(w, cJSON_CreateString(n->types[i]));
			}
			drift_put(d, "instance_type", w, in->type);
		}
	}
	if (n->explicit_ami && n->ami_id[0] && in->image_id[0] && strcmp(n->ami_id, in->image_id))
		drift_put(d, "ami", cJSON_CreateString(n->ami_id), in->image_id);
	const char *g = goman_ec2_tag(in, "goman:group");
	/* a node without the tag is adopted into the spec's group, not drift */
	if (n->explicit_group && g && strcmp(g, n->group))
		drift_put(d, "group", cJSON_CreateString(n->group), g);
	const char *l = goman_ec2_tag(in, "goman:labels");
	if (n->labels_tag && strcmp(n->labels_tag, l ? l : ""))
		drift_put(d, "labels", cJSON_CreateString(n->labels_tag), l ? l : "");
	const char *t = goman_ec2_tag(in, "goman:taints");
	if (n->taints_tag && strcmp(n->taints_tag, t ? t : ""))
		drift_put(d, "taints", cJSON_CreateString(n->taints_tag), t ? t : "");
	bool spot = !strcmp(in->lifecycle, "spot");
	if (n->has_spot && in->state[0] && spot != n->spot) {
		cJSON *o = cJSON_CreateObject();
		if (o) {
			cJSON_AddBoolToObject(o, "want", n->spot);
			cJSON_AddBoolToObject(o, "have", spot);
			cJSON_AddItemToObject(d, "spot", o);
		}
	}
	if (!d->child) {
		cJSON_Delete(d);
		return NULL;
	}
	return d;
}

bool gm_prov_fallback(const struct goman_err *e, int ti, int ntypes)
{
	if (!e || e->rc == GOMAN_OK || ti + 1 >= ntypes)
		return false;
	/* no capacity for the type (in that AZ), or the type is not offered there */
	return !strcmp(e->code, "InsufficientInstanceCapacity") || !strcmp(e->code, "Unsupported");
}
