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
 * Ownership: struct prun owns its nodes (each owns its spec copy and instance summary),
 * its groups (each owns its idempotency ticket) and the poller; prun_free() releases all.
 * Errors: per node as records; -1 from goman_provision_run() only when nothing could run.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>
#include <openssl/evp.h>
#include "goman/aws.h"
#include "goman/clock.h"
#include "goman/ec2.h"
#include "goman/http.h"
#include "goman/idem.h"
#include "goman/jsonl.h"
#include "goman/log.h"
#include "goman/provision.h"
#include "goman/sigv4.h"
#include "buf_int.h"
#include "provision_int.h"

#define DEFAULT_TYPE "t3.medium"
#define DEFAULT_PROFILE "goman-node"
#define APP_RETRIES \
	6 /* re-sends of a group launch / CreateTags after the call gave up
				on a retryable error (same ClientToken) */
#define APP_RETRY_MS 1000
#define SETUP_RETRIES 3 /* the same for the blocking setup calls */

struct prun;
struct group;

GOMAN_TESTABLE cJSON *gm_prov_drift(const struct node *n);
GOMAN_TESTABLE char *gm_prov_compact(const cJSON *v);

struct group {
	char role[8], type[64], subnet[64], ami[256];
	char types[GM_PROV_MAX_TYPES][64]; /* fallback order; type == types[ti] */
	char amis[GM_PROV_MAX_TYPES][64];  /* resolved AMI per type */
	char roots[GM_PROV_MAX_TYPES][32]; /* its root device, when a volume size is set */
	int ntypes, ti;
	char tried[GM_PROV_MAX_TYPES][64]; /* types that had no capacity */
	int ntried;
	struct node **v;
	size_t n, cap;
	struct goman_idem_ticket t;
	bool have_ticket;
	int tries;
	struct prun *r;
};

struct prun {
	struct goman_aws *aws;
	struct goman_idem *idem;
	const struct goman_provision_opts *o;
	struct goman_outcome *out;
	char cluster[48];
	struct node **nodes;
	size_t nn;
	struct group **groups;
	size_t ng;
	struct goman_ec2_poller *poller;
	struct goman_ec2_poller *stop_poller; /* reused nodes that were stopping */
	char sg[64];
	int setup_calls;
	/* CreateTags pacing: a token bucket */
	struct node **tq;
	size_t tq_n, tq_cap;
	double tokens;
	int64_t tokens_at;
	long tag_timer;
	int tags_inflight;
	int stats_run, stats_tags, stats_start;
	char ami_spec[8][256], ami_val[8][64];
	int nami;
	char root_ami[8][64], root_dev[8][32];
	int nroot;
	char digest[17];
	char vpc[32];   /* of the subnets placed on; "" = not known */
	bool vpc_mixed; /* the subnets span VPCs: one security group cannot cover them */
};

static int oom(struct goman_err *err)
{
	return goman_err_set(err, GOMAN_ENOMEM, GOMAN_CLASS_NONE, "", "out of memory");
}

bool goman_cluster_name_ok(const char *s)
{
	if (!s || !(*s >= 'a' && *s <= 'z'))
		return false;
	size_t n = strlen(s);
	if (n > 40)
		return false;
	for (size_t i = 1; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-'))
			return false;
	return true;
}

int goman_provision_specs(cJSON *arr, const char *cluster, long servers, long agents)
{
	for (int r = 0; r < 2; r++) {
		long k = r ? agents : servers;
		for (long i = 0; i < k; i++) {
			cJSON *o = cJSON_CreateObject();
			if (!o || !cJSON_AddStringToObject(o, "cluster", cluster) ||
			    !cJSON_AddStringToObject(o, "role", r ? "agent" : "server") ||
			    !cJSON_AddNumberToObject(o, "index", (double)i)) {
				cJSON_Delete(o);
				return -1;
			}
			cJSON_AddItemToArray(arr, o);
		}
	}
	return 0;
}

/* Graviton families carry a 'g' in the letters after the generation digit (t4g, m7gd,
 * c6gn); GPU families start with g (g5) and are x86. */
const char *goman_default_ami_for(const char *type)
{
	const char *p = type ? type : "";
	while (*p && !isdigit((unsigned char)*p))
		p++;
	while (*p && isdigit((unsigned char)*p))
		p++;
	for (; *p && *p != '.'; p++)
		if (*p == 'g')
			return GOMAN_AL2023_ARM;
	return GOMAN_AL2023_X86;
}

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

GOMAN_TESTABLE cJSON *gm_prov_drift(const struct node *n)
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

GOMAN_TESTABLE bool gm_prov_fallback(const struct goman_err *e, int ti, int ntypes)
{
	if (!e || e->rc == GOMAN_OK || ti + 1 >= ntypes)
		return false;
	/* no capacity for the type (in that AZ), or the type is not offered there */
	return !strcmp(e->code, "InsufficientInstanceCapacity") || !strcmp(e->code, "Unsupported");
}

GOMAN_TESTABLE void gm_prov_place(struct node **nodes, size_t nn, const struct goman_ec2_subnet *sn,
				  size_t ns)
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

/* Emits the node when everything it waits for is done. */
static void try_emit(struct prun *r, struct node *n)
{
	if (n->emitted)
		return;
	if (n->need_tags && !n->tagged)
		return;
	if (!n->ready && !r->o->wait_none)
		return;
	if (!n->running_wall && n->ready)
		n->running_wall = goman_now_ms();
	emit(r, n, NULL);
}

/* ---- spec validation ---------------------------------------------------------------- */

static const char *str_field(const cJSON *o, const char *k)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
	return cJSON_IsString(v) ? v->valuestring : NULL;
}

static int bad(struct goman_err *e, const char *fmt, const char *a, const char *b)
{
	return goman_err_set(e, GOMAN_EINVAL, GOMAN_CLASS_BAD_INPUT, "BadInput", fmt, a ? a : "",
			     b ? b : "");
}

/* Fills n from its spec (defaults from o). Index may stay -1 (assigned later). */
GOMAN_TESTABLE int gm_prov_spec(const struct goman_provision_opts *o, struct node *n,
				struct goman_err *e)
{
	const cJSON *in = n->in;
	if (!str_field(in, "cluster") && o->cluster)
		cJSON_AddStringToObject(n->in, "cluster", o->cluster);
	n->cluster = str_field(in, "cluster");
	n->role = str_field(in, "role");
	n->index = -1;
	if (!n->cluster)
		return bad(e, "missing \"cluster\"%s%s", NULL, NULL);
	if (!goman_cluster_name_ok(n->cluster))
		return bad(e, "cluster name '%s' must match ^[a-z][a-z0-9-]{0,39}$%s", n->cluster,
			   NULL);
	if (!n->role || (strcmp(n->role, "server") && strcmp(n->role, "agent")))
		return bad(e, "\"role\" must be \"server\" or \"agent\"%s%s", NULL, NULL);
	const cJSON *ix = cJSON_GetObjectItemCaseSensitive(in, "index");
	if (ix) {
		if (!cJSON_IsNumber(ix) || ix->valuedouble < 0 || ix->valuedouble > 99999 ||
		    ix->valuedouble != (double)(int)ix->valuedouble)
			return bad(e, "\"index\" must be an integer from 0%s%s", NULL, NULL);
		n->index = (int)ix->valuedouble;
	}
	const cJSON *nm = cJSON_GetObjectItemCaseSensitive(in, "name");
	if (nm) {
		char prefix[96];
		if (!cJSON_IsString(nm))
			return bad(e, "\"name\" must be a string%s%s", NULL, NULL);
		snprintf(prefix, sizeof(prefix), "%s-%s-", n->cluster, n->role);
		size_t pl = strlen(prefix);
		const char *s = nm->valuestring;
		char *end = NULL;
		long v = -1;
		if (!strncmp(s, prefix, pl) && isdigit((unsigned char)s[pl]))
			v = strtol(s + pl, &end, 10);
		if (v < 0 || !end || *end || v > 99999)
			return bad(e,
				   "\"name\" '%s' must be <cluster>-<role>-<index>, here %s<index>",
				   s, prefix);
		if (n->index >= 0 && v != n->index)
			return bad(e, "\"name\" '%s' disagrees with \"index\"%s", s, NULL);
		n->index = (int)v;
	}
	const cJSON *tl = cJSON_GetObjectItemCaseSensitive(in, "types");
	if (tl && (!cJSON_IsArray(tl) || cJSON_GetArraySize(tl) < 1 ||
		   cJSON_GetArraySize(tl) > GM_PROV_MAX_TYPES))
		return bad(e, "\"types\" must be a list of 1 to 8 instance types%s%s", NULL, NULL);
	const char *ty = str_field(in, "instance_type");
	if (!ty && tl)
		ty = cJSON_IsString(cJSON_GetArrayItem(tl, 0))
			     ? cJSON_GetArrayItem(tl, 0)->valuestring
			     : NULL;
	if (!ty)
		ty = !strcmp(n->role, "server") ? o->server_type : o->agent_type;
	n->explicit_type = ty && *ty;
	snprintf(n->type, sizeof(n->type), "%s", ty && *ty ? ty : DEFAULT_TYPE);
	/* the fallback order: the type, then the list's others */
	snprintf(n->types[0], sizeof(n->types[0]), "%s", n->type);
	n->ntypes = 1;
	const cJSON *t;
	cJSON_ArrayForEach (t, tl) {
		if (!cJSON_IsString(t) || !*t->valuestring || strlen(t->valuestring) >= 64)
			return bad(e, "\"types\" entries must be instance type names%s%s", NULL,
				   NULL);
		bool dup = false;
		for (int i = 0; i < n->ntypes; i++)
			dup |= !strcmp(n->types[i], t->valuestring);
		if (!dup && n->ntypes < GM_PROV_MAX_TYPES)
			snprintf(n->types[n->ntypes++], sizeof(n->types[0]), "%s", t->valuestring);
	}
	const char *ami = str_field(in, "ami");
	if (!ami)
		ami = o->ami;
	n->explicit_ami = ami && *ami;
	snprintf(n->ami, sizeof(n->ami), "%s", ami && *ami ? ami : goman_default_ami_for(n->type));
	const char *gr = str_field(in, "group");
	if (cJSON_GetObjectItemCaseSensitive(in, "group") && (!gr || !goman_cluster_name_ok(gr)))
		return bad(e, "\"group\" must match ^[a-z][a-z0-9-]{0,39}$%s%s", NULL, NULL);
	n->explicit_group = gr != NULL;
	snprintf(n->group, sizeof(n->group), "%s", gr ? gr : n->role);
	const char *via = str_field(in, "via");
	if (cJSON_GetObjectItemCaseSensitive(in, "via") &&
	    (!via || (strcmp(via, "ssm") && strcmp(via, "ssh") && strcmp(via, "local"))))
		return bad(e, "\"via\" must be ssm, ssh or local%s%s", NULL, NULL);
	if (!via)
		via = o->via;
	snprintf(n->via, sizeof(n->via), "%s", via ? via : "");
	const cJSON *sp = cJSON_GetObjectItemCaseSensitive(in, "spot");
	if (sp && !cJSON_IsBool(sp))
		return bad(e, "\"spot\" must be true or false%s%s", NULL, NULL);
	n->has_spot = sp != NULL;
	n->spot = cJSON_IsTrue(sp);
	const cJSON *vg = cJSON_GetObjectItemCaseSensitive(in, "volume_gb");
	if (vg && (!cJSON_IsNumber(vg) || vg->valuedouble < 8 || vg->valuedouble > 16384 ||
		   vg->valuedouble != (double)(int)vg->valuedouble))
		return bad(e, "\"volume_gb\" must be an integer from 8 to 16384%s%s", NULL, NULL);
	n->volume_gb = vg ? (int)vg->valuedouble : 0;
	const cJSON *lb = cJSON_GetObjectItemCaseSensitive(in, "labels");
	if (lb) {
		if (!cJSON_IsObject(lb))
			return bad(e, "\"labels\" must be an object of strings%s%s", NULL, NULL);
		cJSON_ArrayForEach (t, lb)
			if (!cJSON_IsString(t) || strpbrk(t->string, ",=") ||
			    strchr(t->valuestring, ','))
				return bad(e,
					   "label '%s' must be a string "
					   "without ',' (and '=' in "
					   "the key)%s",
					   t->string, NULL);
		if (!(n->labels_tag = gm_prov_compact(lb)))
			return oom(e);
	}
	const cJSON *tn = cJSON_GetObjectItemCaseSensitive(in, "taints");
	if (tn) {
		if (!cJSON_IsArray(tn))
			return bad(e, "\"taints\" must be a list of key=value:Effect%s%s", NULL,
				   NULL);
		cJSON_ArrayForEach (t, tn)
			if (!cJSON_IsString(t) || !strchr(t->valuestring, ':') ||
			    strchr(t->valuestring, ','))
				return bad(e,
					   "\"taints\" entries must be "
					   "key[=value]:Effect%s%s",
					   NULL, NULL);
		if (!(n->taints_tag = gm_prov_compact(tn)))
			return oom(e);
	}
	const cJSON *sl = cJSON_GetObjectItemCaseSensitive(in, "subnets");
	if (sl) {
		const cJSON *x;
		if (!cJSON_IsArray(sl) || cJSON_GetArraySize(sl) < 1 || cJSON_GetArraySize(sl) > 32)
			return bad(e, "\"subnets\" must be a list of 1 to 32 subnet IDs%s%s", NULL,
				   NULL);
		cJSON_ArrayForEach (x, sl)
			if (!cJSON_IsString(x) || strncmp(x->valuestring, "subnet-", 7) ||
			    strlen(x->valuestring) >= 32)
				return bad(e, "\"subnets\" entries must be subnet IDs%s%s", NULL,
					   NULL);
		n->subnets = sl;
	}
	const char *sn = str_field(in, "subnet_id");
	snprintf(n->subnet, sizeof(n->subnet), "%s", sn ? sn : o->subnet ? o->subnet : "");
	const cJSON *tags = cJSON_GetObjectItemCaseSensitive(in, "tags");
	if (tags) {
		if (!cJSON_IsObject(tags))
			return bad(e, "\"tags\" must be an object of strings%s%s", NULL, NULL);
		cJSON_ArrayForEach (t, tags) {
			if (!cJSON_IsString(t))
				return bad(e, "tag '%s' must be a string%s", t->string, NULL);
			if (!strncmp(t->string, "goman:", 6))
				return bad(e, "tag '%s': goman: tags are goman's own%s", t->string,
					   NULL);
		}
	}
	/* what else the nodes of one RunInstances must share */
	cJSON *sig = cJSON_CreateArray();
	if (!sig)
		return oom(e);
	cJSON_AddItemToArray(sig, cJSON_CreateString(n->group));
	cJSON_AddItemToArray(sig, cJSON_CreateString(n->via));
	cJSON_AddItemToArray(sig, cJSON_CreateBool(n->spot));
	cJSON_AddItemToArray(sig, cJSON_CreateNumber(n->volume_gb));
	for (int i = 0; i < n->ntypes; i++)
		cJSON_AddItemToArray(sig, cJSON_CreateString(n->types[i]));
	cJSON_AddItemToArray(sig, cJSON_CreateString(n->labels_tag ? n->labels_tag : ""));
	cJSON_AddItemToArray(sig, cJSON_CreateString(n->taints_tag ? n->taints_tag : ""));
	cJSON_AddItemToArray(sig, tags ? cJSON_Duplicate(tags, 1) : cJSON_CreateNull());
	n->sig = cJSON_PrintUnformatted(sig);
	cJSON_Delete(sig);
	return n->sig ? 0 : oom(e);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

GOMAN_TESTABLE char *gm_prov_compact(const cJSON *v)
{
	size_t k = (size_t)cJSON_GetArraySize(v);
	char **items = calloc(k ? k : 1, sizeof(char *));
	if (!items)
		return NULL;
	size_t i = 0;
	const cJSON *t;
	bool ok = true;
	cJSON_ArrayForEach (t, v) {
		const char *val = cJSON_IsString(t) ? t->valuestring : "";
		size_t l = (cJSON_IsObject(v) ? strlen(t->string) + 1 : 0) + strlen(val) + 1;
		if (i >= k || !(items[i] = malloc(l))) {
			ok = false;
			break;
		}
		if (cJSON_IsObject(v))
			snprintf(items[i], l, "%s=%s", t->string, val);
		else
			snprintf(items[i], l, "%s", val);
		i++;
	}
	char *out = NULL;
	if (ok) {
		qsort(items, i, sizeof(*items), cmp_str);
		struct gm_buf b = {0};
		gm_buf_adds(&b, "");
		for (size_t j = 0; j < i; j++) {
			if (j)
				gm_buf_adds(&b, ",");
			gm_buf_adds(&b, items[j]);
		}
		if (!b.oom && b.len > GM_PROV_TAG_MAX) {
			/* too long for one tag value: its digest still tells equal from different */
			char hex[65];
			goman_sha256_hex(b.p, b.len, hex);
			gm_buf_free(&b);
			gm_buf_printf(&b, "sha256:%s", hex);
		}
		out = gm_buf_take(&b);
	}
	for (size_t j = 0; j < i; j++)
		free(items[j]);
	free(items);
	return out;
}

static void node_set_index(struct node *n, int i)
{
	n->index = i;
	snprintf(n->name, sizeof(n->name), "%s-%s-%d", n->cluster, n->role, i);
	put(n->in, "name", cJSON_CreateString(n->name));
	put(n->in, "index", cJSON_CreateNumber(i));
}

static void node_free(struct node *n)
{
	if (!n)
		return;
	cJSON_Delete(n->in);
	goman_ec2_instance_clear(&n->inst);
	free(n->labels_tag);
	free(n->taints_tag);
	free(n->sig);
	free(n);
}

/* ---- setup calls -------------------------------------------------------------------- */

/* Setup calls are blocking and few; a retryable failure that outlived the call's own
 * retries is tried again a few times here (nothing else is waiting on the loop yet), so
 * one unlucky streak of throttles does not fail a whole cluster. */
static bool again(int *tries, int rc, const struct goman_err *e)
{
	if (rc == 0 || !e->retryable || ++*tries > SETUP_RETRIES)
		return false;
	goman_log(GOMAN_LOG_INFO, "RETRY", "setup call failed (%s), trying again (%d/%d)", e->code,
		  *tries, SETUP_RETRIES);
	goman_sleep_ms(APP_RETRY_MS / 2 * *tries);
	return true;
}

static int resolve_ami(struct prun *r, const char *spec, char *out, size_t len, struct goman_err *e)
{
	if (strncmp(spec, "ssm:", 4)) {
		snprintf(out, len, "%s", spec);
		return 0;
	}
	/* several groups usually share one parameter: ask once */
	for (int i = 0; i < r->nami; i++)
		if (!strcmp(r->ami_spec[i], spec)) {
			snprintf(out, len, "%s", r->ami_val[i]);
			return 0;
		}
	cJSON *req = cJSON_CreateObject();
	if (!req || !cJSON_AddStringToObject(req, "Name", spec + 4)) {
		cJSON_Delete(req);
		return oom(e);
	}
	struct goman_aws_call call = {.service = "ssm", .action = "GetParameter", .json = req};
	struct goman_aws_result res;
	int rc, tries = 0;
	do {
		rc = goman_aws_call(r->aws, &call, &res);
		r->setup_calls += res.attempts > 0 ? res.attempts : 1;
	} while (again(&tries, rc, &res.err) && (goman_aws_result_clear(&res), 1));
	cJSON_Delete(req);
	if (rc != 0) {
		*e = res.err;
		goman_aws_result_clear(&res);
		return -1;
	}
	const char *v = goman_json_path_str(res.data, "Parameter.Value");
	if (!v || !*v) {
		goman_aws_result_clear(&res);
		return goman_err_set(e, GOMAN_EPARSE, GOMAN_CLASS_CLIENT, "AmiParameter",
				     "SSM parameter %s holds no AMI id", spec + 4);
	}
	snprintf(out, len, "%s", v);
	if (r->nami < 8) {
		snprintf(r->ami_spec[r->nami], sizeof(r->ami_spec[0]), "%s", spec);
		snprintf(r->ami_val[r->nami++], sizeof(r->ami_val[0]), "%s", v);
	}
	goman_log(GOMAN_LOG_INFO, "PROVISION", "AMI %s from %s", out, spec + 4);
	goman_aws_result_clear(&res);
	return 0;
}

static int check_profile(struct prun *r, const char *profile, struct goman_err *e)
{
	struct goman_kvs params = {0};
	if (goman_kvs_add(&params, "InstanceProfileName", profile) != 0)
		return oom(e);
	struct goman_aws_call call = {
		.service = "iam", .action = "GetInstanceProfile", .params = &params};
	struct goman_aws_result res;
	int rc, tries = 0;
	do {
		rc = goman_aws_call(r->aws, &call, &res);
		r->setup_calls += res.attempts > 0 ? res.attempts : 1;
	} while (again(&tries, rc, &res.err) && (goman_aws_result_clear(&res), 1));
	goman_kvs_clear(&params);
	if (rc != 0) {
		*e = res.err;
		if (!strcmp(res.err.code, "NoSuchEntity"))
			goman_err_set(
				e, GOMAN_ENOTFOUND, GOMAN_CLASS_CLIENT, "NoSuchEntity",
				"instance profile '%s' does not exist: run `goman init` to create "
				"it, or pass --instance-profile",
				profile);
	}
	goman_aws_result_clear(&res);
	return rc;
}

static int ensure_sg(struct prun *r, struct goman_err *e)
{
	const struct goman_provision_opts *o = r->o;
	if (o->security_group && *o->security_group) {
		snprintf(r->sg, sizeof(r->sg), "%s", o->security_group);
		return 0;
	}
	char vpc[64];
	int rc = 0, tries = 0;
	if (r->vpc_mixed)
		return goman_err_set(
			e, GOMAN_EINVAL, GOMAN_CLASS_CLIENT, "SubnetsInSeveralVpcs",
			"the cluster's subnets are in more than one VPC; its security "
			"group is per VPC: give --security-group or subnets of one VPC");
	if (r->vpc[0])
		snprintf(vpc, sizeof(vpc), "%s", r->vpc);
	else
		do {
			rc = o->subnet && *o->subnet
				     ? goman_ec2_subnet_vpc(r->aws, o->subnet, vpc, sizeof(vpc),
							    &r->setup_calls, e)
				     : goman_ec2_default_vpc(r->aws, vpc, sizeof(vpc),
							     &r->setup_calls, e);
		} while (again(&tries, rc, e));
	if (!r->vpc[0] && rc != 0)
		return -1;
	struct goman_ec2_sg_rule rules[8];
	size_t n = 0;
	for (size_t i = 0; i < goman_ec2_k3s_nrules && n < 6; i++)
		rules[n++] = goman_ec2_k3s_rules[i];
	if (o->ssh_cidr && *o->ssh_cidr)
		rules[n++] = (struct goman_ec2_sg_rule){"tcp", 22, 22, o->ssh_cidr};
	if (o->api_cidr && *o->api_cidr)
		rules[n++] = (struct goman_ec2_sg_rule){"tcp", 6443, 6443, o->api_cidr};
	char name[64], desc[128];
	snprintf(name, sizeof(name), "goman-%s", r->cluster);
	/* no spaces: moto re-encodes a space as '+' when it checks the signature (real EC2
	 * takes any text) */
	snprintf(desc, sizeof(desc), "goman-%s:k3s-node-traffic", r->cluster);
	tries = 0;
	do {
		/* the ensure is idempotent as a whole: run it again */
		rc = goman_ec2_ensure_sg(r->aws, name, desc, vpc, rules, n, r->sg, sizeof(r->sg),
					 &r->setup_calls, e);
	} while (again(&tries, rc, e));
	return rc;
}

/* ---- CreateTags pacing ---------------------------------------------------------------- */

static void tags_pump(struct prun *r);

static void tags_timer(void *ud)
{
	struct prun *r = ud;
	r->tag_timer = 0;
	tags_pump(r);
}

static void tags_enqueue(struct prun *r, struct node *n)
{
	if (r->tq_n == r->tq_cap) {
		size_t cap = r->tq_cap ? r->tq_cap * 2 : 64;
		struct node **v = realloc(r->tq, cap * sizeof(*v));
		if (!v) {
			struct goman_err e = GOMAN_ERR_INIT;
			oom(&e);
			emit(r, n, &e);
			return;
		}
		r->tq = v;
		r->tq_cap = cap;
	}
	r->tq[r->tq_n++] = n;
}

static void tags_done(const struct goman_err *err, int calls, void *ud)
{
	struct node *n = ud;
	struct prun *r = n->r;
	n->calls += calls;
	r->stats_tags += calls;
	r->tags_inflight--;
	if (err && err->retryable && ++n->tag_tries <= APP_RETRIES) {
		tags_enqueue(r, n);
		tags_pump(r);
		return;
	}
	if (err) {
		goman_log(GOMAN_LOG_WARN, "PROVISION", "%s (%s): CreateTags failed: %s %s", n->name,
			  n->inst.instance_id, err->code, err->message);
		emit(r, n, err);
	} else {
		n->tagged = true;
		try_emit(r, n);
	}
	tags_pump(r);
}

static int tags_submit(struct prun *r, struct node *n, struct goman_err *e)
{
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
		return oom(e);
	}
	const char *id = n->inst.instance_id;
	rc = goman_ec2_create_tags_submit(r->aws, &id, 1, &tags, tags_done, n, e);
	goman_kvs_clear(&tags);
	return rc;
}

static void tags_pump(struct prun *r)
{
	double rate = r->o->tags_rate > 0 ? r->o->tags_rate : 10.0;
	double burst = r->o->tags_burst > 0 ? r->o->tags_burst : 100.0;
	int64_t now = goman_mono_ms();
	r->tokens += (double)(now - r->tokens_at) * rate / 1000.0;
	if (r->tokens > burst)
		r->tokens = burst;
	r->tokens_at = now;
	int cap = r->o->tags_inflight > 0 ? r->o->tags_inflight : 10;
	size_t sent = 0;
	while (sent < r->tq_n && r->tokens >= 1.0 && r->tags_inflight < cap) {
		struct node *n = r->tq[sent++];
		struct goman_err e = GOMAN_ERR_INIT;
		goman_err_clear(&e);
		r->tokens -= 1.0;
		if (tags_submit(r, n, &e) != 0)
			emit(r, n, &e);
		else
			r->tags_inflight++;
	}
	if (sent) {
		memmove(r->tq, r->tq + sent, (r->tq_n - sent) * sizeof(*r->tq));
		r->tq_n -= sent;
	}
	if (r->tq_n && !r->tag_timer && r->tags_inflight < cap) {
		int64_t wait = (int64_t)((1.0 - r->tokens) * 1000.0 / rate) + 1;
		r->tag_timer = goman_http_timer(goman_aws_http(r->aws), wait, tags_timer, r);
	}
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
			oom(&e);
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
		oom(&e);
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
		oom(&e);
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
	tags_pump(r);
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
	const char *prof = o->instance_profile ? o->instance_profile : DEFAULT_PROFILE;
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
		return oom(e);
	}
	struct goman_aws_call call = {.service = "ec2", .action = "RunInstances", .params = &p};
	rc = goman_aws_submit(r->aws, &call, launched, g, e);
	goman_kvs_clear(&p);
	return rc;
}

/* digest of the cluster's live instance IDs (sorted), so the launch key names this state */
static void existing_digest(const struct goman_ec2_instances *ex, char out[17])
{
	unsigned char md[32];
	unsigned int mdl = 0;
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	char **ids = calloc(ex->n ? ex->n : 1, sizeof(char *));
	out[0] = '\0';
	if (c && ids) {
		for (size_t i = 0; i < ex->n; i++)
			ids[i] = (char *)ex->v[i].instance_id;
		for (size_t i = 1; i < ex->n; i++) /* insertion sort: n is a cluster */
			for (size_t j = i; j > 0 && strcmp(ids[j - 1], ids[j]) > 0; j--) {
				char *x = ids[j];
				ids[j] = ids[j - 1];
				ids[j - 1] = x;
			}
		EVP_DigestInit_ex(c, EVP_sha256(), NULL);
		for (size_t i = 0; i < ex->n; i++)
			EVP_DigestUpdate(c, ids[i], strlen(ids[i]) + 1);
		EVP_DigestFinal_ex(c, md, &mdl);
		for (int i = 0; i < 8; i++)
			snprintf(out + 2 * i, 3, "%02x", md[i]);
	}
	free(ids);
	EVP_MD_CTX_free(c);
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
							    : DEFAULT_PROFILE);
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
		oom(e);
	cJSON_Delete(id);
	cJSON_Delete(params);
	return rc;
}

/* ---- planning ------------------------------------------------------------------------- */

static int tag_index(const struct goman_ec2_instance *in)
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

static bool reusable_state(const char *s)
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
GOMAN_TESTABLE int gm_prov_filter(struct goman_kvs *f, const char *cluster, bool with_states)
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
	return c && n->cluster && !strcmp(c, n->cluster) && reusable_state(in->state);
}

/*
 * Matches nodes to existing instances: by (role, goman:index); then adopts instances that
 * carry the role but no index for the missing nodes, lowest index first. Marks matched
 * nodes reused/adopted and copies the instance; *missing gets how many nodes are still
 * missing. Refuses (-1, nothing matched) a listing made with an incomplete filter.
 */
GOMAN_TESTABLE int gm_prov_plan(struct node **nodes, size_t nn, const struct goman_kvs *filter,
				const struct goman_ec2_instances *ex, size_t *missing_out,
				struct goman_err *e)
{
	for (size_t i = 0; i < nn; i++)
		if (!filter_complete(filter, nodes[i]->cluster))
			return goman_err_set(
				e, GOMAN_EIO, GOMAN_CLASS_NONE, "Internal",
				"the listing filter of cluster %s is incomplete; not planning",
				nodes[i]->cluster ? nodes[i]->cluster : "");
	bool *used = calloc(ex->n ? ex->n : 1, sizeof(bool));
	if (!used)
		return oom(e);
	size_t missing = 0;
	for (size_t i = 0; i < nn; i++) {
		struct node *n = nodes[i];
		for (size_t j = 0; j < ex->n; j++) {
			const char *role = goman_ec2_tag(&ex->v[j], "goman:role");
			if (used[j] || !role || strcmp(role, n->role) ||
			    tag_index(&ex->v[j]) != n->index || !ours(&ex->v[j], n))
				continue;
			if (goman_ec2_instance_copy(&n->inst, &ex->v[j]) != 0)
				goto nomem;
			used[j] = true;
			n->reused = true;
			break;
		}
	}
	/* nodes are in index order per role (sorted by the caller), so adoption fills the
	 * lowest missing indices first */
	for (size_t i = 0; i < nn; i++) {
		struct node *n = nodes[i];
		if (n->reused)
			continue;
		for (size_t j = 0; j < ex->n; j++) {
			const char *role = goman_ec2_tag(&ex->v[j], "goman:role");
			if (used[j] || !role || strcmp(role, n->role) ||
			    tag_index(&ex->v[j]) >= 0 || !ours(&ex->v[j], n))
				continue;
			if (goman_ec2_instance_copy(&n->inst, &ex->v[j]) != 0)
				goto nomem;
			used[j] = true;
			n->reused = n->adopted = true;
			n->need_tags = true;
			break;
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
	return oom(e);
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
	if (r->tag_timer)
		goman_http_timer_cancel(goman_aws_http(r->aws), r->tag_timer);
	for (size_t i = 0; i < r->ng; i++) {
		goman_idem_ticket_clear(&r->groups[i]->t);
		free(r->groups[i]->v);
		free(r->groups[i]);
	}
	free(r->groups);
	free(r->tq);
}

/* ---- placement, AMIs, surplus ----------------------------------------------------------- */

/* Nodes with a "subnets" list are placed over it (described in sn, sorted by AZ), one
 * list at a time: nodes of other lists that are still unplaced stay out of that round. */
static void place_lists(struct prun *r, const struct goman_ec2_subnet *sn, size_t ns)
{
	struct node **sel = calloc(r->nn ? r->nn : 1, sizeof(*sel));
	struct goman_ec2_subnet *sub = calloc(ns ? ns : 1, sizeof(*sub));
	for (size_t i = 0; sel && sub && i < r->nn; i++) {
		const cJSON *list = r->nodes[i]->subnets;
		if (!list || r->nodes[i]->reused || r->nodes[i]->subnet[0])
			continue;
		size_t nsub = 0, nsel = 0;
		for (size_t k = 0; k < ns; k++) {
			const cJSON *x;
			cJSON_ArrayForEach (x, list)
				if (!strcmp(x->valuestring, sn[k].subnet_id)) {
					sub[nsub++] = sn[k];
					break;
				}
		}
		for (size_t j = 0; j < r->nn; j++) {
			struct node *m = r->nodes[j];
			bool same = m->subnets && cJSON_Compare(m->subnets, list, true);
			if (m->reused || m->subnet[0] || same)
				sel[nsel++] = m;
		}
		gm_prov_place(sel, nsel, sub, nsub);
	}
	free(sel);
	free(sub);
}

/* Subnets for the nodes to launch: those the specs name are described (they must exist;
 * their AZ goes into the records), and nodes naming none are placed over the default
 * VPC's default-for-az subnets. One DescribeSubnets each, only when needed. */
static int place(struct prun *r, struct goman_err *e)
{
	const char **ids = calloc(r->nn, sizeof(char *));
	size_t nids = 0;
	bool need_default = false;
	if (!ids)
		return oom(e);
	for (size_t i = 0; i < r->nn; i++) {
		struct node *n = r->nodes[i];
		if (n->reused)
			continue;
		if (!n->subnet[0] && !n->subnets) {
			need_default = true;
			continue;
		}
		const cJSON *x = n->subnets ? n->subnets->child : NULL;
		for (const char *id = n->subnet[0] ? n->subnet
				      : x          ? x->valuestring
						   : NULL;
		     id; x = x ? x->next : NULL, id = x ? x->valuestring : NULL) {
			bool seen = false;
			for (size_t j = 0; j < nids && !seen; j++)
				seen = !strcmp(ids[j], id);
			if (!seen && nids < 1000)
				ids[nids++] = id;
			if (n->subnet[0])
				break;
		}
	}
	struct goman_ec2_subnet *sn = NULL;
	size_t ns = 0;
	int rc = 0, tries = 0;
	if (nids) {
		do {
			free(sn);
			sn = NULL;
			rc = goman_ec2_subnets(r->aws, NULL, ids, nids, &sn, &ns, &r->setup_calls,
					       e);
		} while (again(&tries, rc, e));
		for (size_t i = 0; rc == 0 && i < r->nn; i++) {
			struct node *n = r->nodes[i];
			for (size_t k = 0; !n->reused && k < ns; k++)
				if (!strcmp(sn[k].subnet_id, n->subnet))
					snprintf(n->az, sizeof(n->az), "%s", sn[k].az);
		}
		for (size_t k = 0; rc == 0 && k < ns; k++) {
			if (!r->vpc[0])
				snprintf(r->vpc, sizeof(r->vpc), "%s", sn[k].vpc_id);
			else if (strcmp(r->vpc, sn[k].vpc_id))
				r->vpc_mixed = true;
		}
		if (rc == 0)
			place_lists(r, sn, ns);
		free(sn);
		sn = NULL;
		ns = 0;
	}
	free(ids);
	if (rc != 0 || !need_default)
		return rc;
	struct goman_kvs f = {0};
	if (goman_kvs_add(&f, "default-for-az", "true") != 0) {
		goman_kvs_clear(&f);
		return oom(e);
	}
	tries = 0;
	do {
		free(sn);
		sn = NULL;
		rc = goman_ec2_subnets(r->aws, &f, NULL, 0, &sn, &ns, &r->setup_calls, e);
	} while (again(&tries, rc, e));
	goman_kvs_clear(&f);
	if (rc == 0) {
		/* no default subnets (a custom default VPC): EC2 chooses, as before */
		gm_prov_place(r->nodes, r->nn, sn, ns);
		for (size_t k = 0; k < ns; k++) {
			if (!r->vpc[0])
				snprintf(r->vpc, sizeof(r->vpc), "%s", sn[k].vpc_id);
			else if (strcmp(r->vpc, sn[k].vpc_id))
				r->vpc_mixed = true;
		}
		goman_log(GOMAN_LOG_INFO, "PROVISION",
			  "cluster %s: placing over %zu default "
			  "subnet(s)",
			  r->cluster, ns);
	}
	free(sn);
	return rc;
}

static int root_device(struct prun *r, const char *ami, char *dev, size_t len, struct goman_err *e)
{
	for (int i = 0; i < r->nroot; i++)
		if (!strcmp(r->root_ami[i], ami)) {
			snprintf(dev, len, "%s", r->root_dev[i]);
			return 0;
		}
	int rc, tries = 0;
	do {
		rc = goman_ec2_root_device(r->aws, ami, dev, len, &r->setup_calls, e);
	} while (again(&tries, rc, e));
	if (rc == 0 && r->nroot < 8) {
		snprintf(r->root_ami[r->nroot], sizeof(r->root_ami[0]), "%s", ami);
		snprintf(r->root_dev[r->nroot++], sizeof(r->root_dev[0]), "%s", dev);
	}
	return rc;
}

/* The AMI of every type of the group's list (a fallback type may be of another
 * architecture), and its root device when the group sets a volume size. */
static int group_amis(struct prun *r, struct group *g, struct goman_err *e)
{
	const struct node *n0 = g->v[0];
	for (int t = 0; t < g->ntypes; t++) {
		const char *spec = n0->explicit_ami ? n0->ami : goman_default_ami_for(g->types[t]);
		if (resolve_ami(r, spec, g->amis[t], sizeof(g->amis[0]), e) != 0)
			return -1;
		if (n0->volume_gb &&
		    root_device(r, g->amis[t], g->roots[t], sizeof(g->roots[0]), e) != 0)
			return -1;
	}
	snprintf(g->ami, sizeof(g->ami), "%s", g->amis[g->ti]);
	return 0;
}

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
		if (!c || strcmp(c, r->cluster) || !reusable_state(in->state))
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
			cJSON_AddNumberToObject(rec, "index", tag_index(in));
			cJSON_AddStringToObject(rec, "name", nm);
		}
		const char *g = goman_ec2_tag(in, "goman:group");
		if (g || role)
			cJSON_AddStringToObject(rec, "group", g ? g : role);
		goman_ec2_instance_to_json(in, rec);
		cJSON_AddStringToObject(rec, "region", goman_aws_region(r->aws));
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

static void run_cluster(struct prun *r)
{
	const struct goman_provision_opts *o = r->o;
	struct goman_err e = GOMAN_ERR_INIT;
	goman_err_clear(&e);
	int64_t t0 = goman_mono_ms();
	for (size_t i = 0; i < r->nn; i++)
		r->nodes[i]->t0 = t0;
	qsort(r->nodes, r->nn, sizeof(*r->nodes), cmp_nodes);

	/* 1. what exists */
	struct goman_kvs f = {0};
	struct goman_ec2_instances ex = {0};
	struct goman_ec2_describe_stats st = {0};
	int rc, tries = 0;
	if (gm_prov_filter(&f, r->cluster, true) != 0) {
		oom(&e);
		fail_all(r, false, &e);
		goto out;
	}
	do {
		goman_ec2_instances_clear(&ex);
		memset(&st, 0, sizeof(st));
		rc = goman_ec2_describe(r->aws, &f, NULL, 0, &ex, &st, &e);
		r->setup_calls += st.calls;
	} while (again(&tries, rc, &e));
	if (rc != 0) {
		fail_all(r, false, &e);
		goto out;
	}

	/* 2. plan */
	size_t missing = 0;
	if (gm_prov_plan(r->nodes, r->nn, &f, &ex, &missing, &e) != 0) {
		fail_all(r, false, &e);
		goto out;
	}
	size_t adopted = 0;
	for (size_t i = 0; i < r->nn; i++)
		adopted += r->nodes[i]->adopted;
	bool setup_ok = true;
	if (missing && place(r, &e) != 0)
		setup_ok = false;
	for (size_t i = 0; i < r->nn; i++) {
		struct node *n = r->nodes[i];
		if (n->reused)
			continue;
		struct group *g = group_for(r, n);
		if (!g || group_add(g, n) != 0) {
			oom(&e);
			fail_all(r, false, &e);
			goto out;
		}
	}
	goman_log(GOMAN_LOG_INFO, "PROVISION",
		  "cluster %s: %zu node(s) wanted, %zu exist (%zu "
		  "adopted), %zu to launch in %zu group(s)%s",
		  r->cluster, r->nn, r->nn - missing, adopted, missing, r->ng,
		  o->dry_run ? " (dry run)" : "");
	surplus(r, &ex, missing, adopted);

	/* 3. setup, only for launches (and an explicit AMI to compare reused nodes with) */
	for (size_t i = 0; i < r->nn; i++) {
		struct node *n = r->nodes[i];
		struct goman_err ae = GOMAN_ERR_INIT;
		if (n->reused && n->explicit_ami &&
		    resolve_ami(r, n->ami, n->ami_id, sizeof(n->ami_id), &ae) != 0)
			goman_log(GOMAN_LOG_WARN, "PROVISION",
				  "%s: cannot resolve %s to compare the "
				  "node's AMI: %s",
				  n->name, n->ami, ae.message);
	}
	if (missing && setup_ok) {
		const char *prof = o->instance_profile ? o->instance_profile : DEFAULT_PROFILE;
		for (size_t i = 0; i < r->ng && setup_ok; i++)
			if (group_amis(r, r->groups[i], &e) != 0)
				setup_ok = false;
		if (setup_ok && *prof && check_profile(r, prof, &e) != 0)
			setup_ok = false;
		if (setup_ok && !o->dry_run && ensure_sg(r, &e) != 0)
			setup_ok = false;
		if (setup_ok && o->dry_run && o->security_group)
			snprintf(r->sg, sizeof(r->sg), "%s", o->security_group);
	}
	/* setup calls are shared by every node of the cluster */
	for (size_t i = 0; i < r->nn; i++)
		r->nodes[i]->calls += (double)r->setup_calls / (double)r->nn;
	if (!setup_ok)
		fail_all(r, true, &e);

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

	/* 4. wait machinery, then everything on the loop */
	if (!o->wait_none && !o->dry_run) {
		struct goman_ec2_poller_opts po = {
			.target = o->wait,
			.min_interval_ms = o->poll_min_ms,
			.max_interval_ms = o->poll_max_ms,
			.per_pending_ms = o->poll_per_pending_ms,
			.give_up_rounds = 6,
			.on_done = polled,
			.ud = r,
		};
		/* the listing filter without the states: every state must be seen, so a node that
		 * dies while pending is reported, not waited for until the deadline */
		struct goman_kvs pf = {0};
		po.filters = &pf;
		if (gm_prov_filter(&pf, r->cluster, false) == 0)
			r->poller = goman_ec2_poller_new(r->aws, &po, &e);
		goman_kvs_clear(&pf);
	}
	r->tokens = o->tags_burst > 0 ? o->tags_burst : 100.0;
	r->tokens_at = goman_mono_ms();
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
			/* cannot be started until it is stopped: wait for that, then start it */
			struct goman_err se = GOMAN_ERR_INIT;
			goman_err_clear(&se);
			if (!r->stop_poller) {
				struct goman_kvs pf = {0};
				struct goman_ec2_poller_opts so = {
					.target = GOMAN_EC2_WAIT_STOPPED,
					.min_interval_ms = o->poll_min_ms,
					.max_interval_ms = o->poll_max_ms,
					.per_pending_ms = o->poll_per_pending_ms,
					.give_up_rounds = 6,
					.on_done = stopped,
					.ud = r,
				};
				so.filters = &pf;
				if (gm_prov_filter(&pf, r->cluster, false) == 0)
					r->stop_poller = goman_ec2_poller_new(r->aws, &so, &se);
				goman_kvs_clear(&pf);
			}
			int64_t to = o->timeout_ms > 0 ? o->timeout_ms : 600000;
			if (!r->stop_poller ||
			    goman_ec2_poller_add(r->stop_poller, n->inst.instance_id,
						 goman_mono_ms() + to, &se) != 0) {
				if (!se.code[0] && se.rc == GOMAN_OK)
					oom(&se);
				emit(r, n, &se);
			}
			continue;
		}
		if (!strcmp(n->inst.state, "stopped")) {
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
	if (any_start) {
		struct node **sv = calloc(r->nn, sizeof(*sv));
		size_t k = 0;
		for (size_t i = 0; sv && i < r->nn; i++)
			if (r->nodes[i]->starting && !r->nodes[i]->emitted && k < 1000)
				sv[k++] = r->nodes[i];
		if (sv && k)
			start_nodes(r, sv, k);
		free(sv);
	}
	if (setup_ok) {
		existing_digest(&ex, r->digest);
		for (size_t i = 0; i < r->ng; i++) {
			struct group *g = r->groups[i];
			goman_err_clear(&e);
			if (!o->dry_run && group_begin(r, g, r->digest, &e) != 0) {
				for (size_t j = 0; j < g->n; j++)
					emit(r, g->v[j], &e);
				continue;
			}
			if (launch_submit(g, &e) != 0)
				for (size_t j = 0; j < g->n; j++)
					emit(r, g->v[j], &e);
		}
	}
	tags_pump(r);
	goman_http_run(goman_aws_http(r->aws), -1, -1);
	goman_err_set(&e, GOMAN_EIO, GOMAN_CLASS_NONE, "Internal",
		      "the node was left without a result");
	fail_all(r, false, &e); /* no-op for every emitted node */
	{
		int rounds = 0, pcalls = 0;
		if (r->poller)
			goman_ec2_poller_stats(r->poller, &rounds, &pcalls);
		goman_log(GOMAN_LOG_INFO, "PROVISION",
			  "cluster %s done in %lld ms: api calls setup %d, "
			  "RunInstances %d, CreateTags %d, StartInstances %d, describe rounds %d "
			  "(%d calls)",
			  r->cluster, (long long)(goman_mono_ms() - t0), r->setup_calls,
			  r->stats_run, r->stats_tags, r->stats_start, rounds, pcalls);
	}
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
		return oom(err);
	/* validate, in input order */
	const cJSON *s;
	cJSON_ArrayForEach (s, specs) {
		struct node *n = calloc(1, sizeof(*n));
		if (!n) {
			for (size_t i = 0; i < na; i++)
				node_free(all[i]);
			free(all);
			return oom(err);
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
			node_free(n);
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
			bad(&e, "duplicate node %s%s", nm, NULL);
			cJSON *rec = goman_jsonl_error_record(n->in, NULL, &e, n->line);
			if (out)
				goman_outcome_add(out, &e);
			if (rec)
				o->emit(rec, &e, o->ud);
			cJSON_Delete(rec);
			node_free(n);
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
		snprintf(r.cluster, sizeof(r.cluster), "%s", all[i]->cluster);
		r.nodes = calloc(na, sizeof(*r.nodes));
		if (!r.nodes) {
			struct goman_err e = GOMAN_ERR_INIT;
			oom(&e);
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
			node_free(r.nodes[j]);
		free(r.nodes);
	}
	free(all);
	return 0;
}
