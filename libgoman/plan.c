/*
 * plan.c - the changes between a cluster's node specs and its instances, and the cluster
 * file of a cluster that exists (see goman/plan.h for the rules both follow).
 *
 * Shape: specs and haves are first read into flat arrays (struct want, struct have) with
 * labels and taints in one canonical form (sorted "k=v" / "k=v:Effect" items joined by
 * ','), so every comparison is a strcmp; the changes are then built in one pass over the
 * wants and one over the haves left unmatched.
 *
 * Ownership: wants and haves borrow strings from the caller's cJSON, except the canonical
 * forms, which they own (want_free/have_free). Errors: BadInput for a spec, ENOMEM.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>
#include "jsonl_int.h"
#include "goman/cluster_file.h"
#include "goman/ec2.h"
#include "goman/plan.h"
#include "goman/provision.h"
#include "bytes_int.h"
#include "internal.h"

#define MAX_INDEX 99999 /* goman-provision's bound on an index */

struct want {
	const cJSON *spec;
	const char *role, *name, *group, *type, *ami, *subnet, *az;
	const cJSON *types;
	int spot; /* -1 not said, 0, 1 */
	long index;
	char *labels, *taints; /* canonical */
	int have;              /* index into haves, -1 none */
	bool adopted;
};

struct have {
	const cJSON *in;
	const char *id, *role, *name, *group, *type, *ami, *subnet, *az, *via, *state;
	const char *labels_raw, *taints_raw;
	char *labels, *taints; /* canonical; NULL when the tag does not read */
	int spot;              /* -1 unknown */
	long index;            /* -1 none or unreadable */
	bool used, live;
};

static const char *str(const cJSON *o, const char *k)
{
	return cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, k));
}

static const char *tag(const cJSON *in, const char *k)
{
	return str(cJSON_GetObjectItemCaseSensitive(in, "tags"), k);
}

/* ---- canonical labels and taints ------------------------------------------------------ */

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorts items and joins them with ','; takes the items. NULL when out of memory. */
static char *join_sorted(char **v, size_t n)
{
	size_t len = 1;
	for (size_t i = 0; i < n; i++)
		len += strlen(v[i]) + 1;
	char *s = malloc(len), *p = s;
	if (s) {
		qsort(v, n, sizeof(*v), cmp_str);
		*p = '\0';
		for (size_t i = 0; i < n; i++) {
			size_t l = strlen(v[i]);
			if (i)
				*p++ = ',';
			memcpy(p, v[i], l + 1);
			p += l;
		}
	}
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
	return s;
}

static char *pair_item(const char *k, const char *v)
{
	size_t l = strlen(k) + strlen(v) + 2;
	char *s = malloc(l);
	if (s)
		snprintf(s, l, "%s=%s", k, v);
	return s;
}

/* An object of strings (labels) or an array of strings (taints) → canonical. *bad is set
 * when an element is not a string or holds a ','; NULL then, or when out of memory. */
static char *canon_json(const cJSON *j, bool *bad)
{
	size_t n = (size_t)cJSON_GetArraySize(j), k = 0;
	char **v = calloc(n ? n : 1, sizeof(char *));
	const cJSON *e;
	if (!v)
		return NULL;
	cJSON_ArrayForEach (e, j) {
		if (!cJSON_IsString(e) || strchr(e->valuestring, ',') ||
		    (cJSON_IsObject(j) && strchr(e->string, ','))) {
			*bad = true;
			break;
		}
		if (!(v[k] = cJSON_IsObject(j) ? pair_item(e->string, e->valuestring)
					       : strdup(e->valuestring)))
			break;
		k++;
	}
	if (k < n) {
		for (size_t i = 0; i < k; i++)
			free(v[i]);
		free(v);
		return NULL;
	}
	return join_sorted(v, n);
}

/* A goman:labels / goman:taints tag → canonical: a JSON object/array, or items joined by
 * ','. *bad when it reads as neither; NULL then or when out of memory. */
static char *canon_tag(const char *t, bool labels, bool *bad)
{
	*bad = false;
	if (!t || !*t)
		return strdup("");
	if (*t == '{' || *t == '[') {
		cJSON *j = cJSON_Parse(t);
		char *s = NULL;
		if (j && (labels ? cJSON_IsObject(j) : cJSON_IsArray(j)))
			s = canon_json(j, bad);
		else
			*bad = true;
		cJSON_Delete(j);
		return s;
	}
	size_t n = 1;
	for (const char *p = t; *p; p++)
		n += *p == ',';
	char **v = calloc(n, sizeof(char *));
	if (!v)
		return NULL;
	const char *p = t;
	for (size_t i = 0; i < n; i++) {
		const char *c = strchr(p, ',');
		size_t l = c ? (size_t)(c - p) : strlen(p);
		if (!l || (labels && !memchr(p, '=', l)) || (!labels && !memchr(p, ':', l)))
			*bad = true;
		if (*bad || !(v[i] = strndup(p, l))) {
			for (size_t j = 0; j < i; j++)
				free(v[j]);
			free(v);
			return NULL;
		}
		p = c ? c + 1 : p + l;
	}
	return join_sorted(v, n);
}

/* canonical → {"k":"v"} (labels) or ["..."] (taints), for drift output */
static cJSON *canon_out(const char *c, bool labels)
{
	cJSON *o = labels ? cJSON_CreateObject() : cJSON_CreateArray();
	const char *p = c;
	while (o && *p) {
		const char *e = strchr(p, ',');
		size_t l = e ? (size_t)(e - p) : strlen(p);
		char *item = strndup(p, l);
		char *eq = item && labels ? strchr(item, '=') : NULL;
		if (eq)
			*eq = '\0';
		bool ok =
			item && (labels ? cJSON_AddStringToObject(o, item, eq ? eq + 1 : "") != NULL
					: cJSON_AddItemToArray(o, cJSON_CreateString(item)));
		free(item);
		if (!ok) {
			cJSON_Delete(o);
			return NULL;
		}
		p = e ? e + 1 : p + l;
	}
	return o;
}

/* ---- reading specs and haves ---------------------------------------------------------- */

static int bad(struct goman_err *e, const char *fmt, const char *a)
{
	goman_err_set(e, GOMAN_EINVAL, GOMAN_CLASS_BAD_INPUT, "BadInput", fmt, a ? a : "");
	return -1;
}

static bool strings_only(const cJSON *j)
{
	const cJSON *e;
	cJSON_ArrayForEach (e, j)
		if (!cJSON_IsString(e))
			return false;
	return true;
}

static long spec_index(const cJSON *spec, const char *cluster, const char *role)
{
	const cJSON *ix = cJSON_GetObjectItemCaseSensitive(spec, "index");
	if (ix)
		return cJSON_IsNumber(ix) && ix->valuedouble >= 0 && ix->valuedouble <= MAX_INDEX &&
				       ix->valuedouble == (double)(long)ix->valuedouble
			       ? (long)ix->valuedouble
			       : -2;
	const char *nm = str(spec, "name");
	char prefix[96];
	snprintf(prefix, sizeof(prefix), "%s-%s-", cluster ? cluster : "", role);
	size_t pl = strlen(prefix);
	if (!nm || strncmp(nm, prefix, pl) || !isdigit((unsigned char)nm[pl]))
		return -1;
	char *end;
	long v = strtol(nm + pl, &end, 10);
	return *end || v > MAX_INDEX ? -2 : v;
}

int goman_plan_spec_check(const cJSON *spec, const char *cluster, struct goman_err *err)
{
	if (!cJSON_IsObject(spec))
		return bad(err, "a node spec is a JSON object%s", NULL);
	const cJSON *c = cJSON_GetObjectItemCaseSensitive(spec, "cluster");
	if (c && (!cJSON_IsString(c) || !goman_cluster_name_ok(c->valuestring)))
		return bad(err, "\"cluster\" must match ^[a-z][a-z0-9-]{0,39}$%s", NULL);
	const char *cl = c ? c->valuestring : cluster;
	if (!cl)
		return bad(err, "\"cluster\" is missing (and no --cluster)%s", NULL);
	if (cluster && strcmp(cl, cluster))
		return bad(err, "\"cluster\" is not %s", cluster);
	const char *role = str(spec, "role");
	if (!role || (strcmp(role, "server") && strcmp(role, "agent")))
		return bad(err, "\"role\" must be \"server\" or \"agent\"%s", NULL);
	long ix = spec_index(spec, cl, role);
	if (ix == -1)
		return bad(err,
			   "a node spec needs \"index\" or a \"name\" <cluster>-<role>-<index>%s",
			   NULL);
	if (ix < 0)
		return bad(err, "\"index\" must be an integer from 0 to 99999%s", NULL);
	const char *nm = str(spec, "name");
	char want[160];
	snprintf(want, sizeof(want), "%s-%s-%ld", cl, role, ix);
	if (cJSON_GetObjectItemCaseSensitive(spec, "name") && (!nm || strcmp(nm, want)))
		return bad(err, "\"name\" must be %s", want);
	static const char *const strs[] = {"group", "instance_type", "ami", "subnet_id", "az"};
	for (size_t i = 0; i < sizeof(strs) / sizeof(*strs); i++) {
		const cJSON *v = cJSON_GetObjectItemCaseSensitive(spec, strs[i]);
		if (v && (!cJSON_IsString(v) || !*v->valuestring))
			return bad(err, "\"%s\" must be a non-empty string", strs[i]);
	}
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(spec, "types");
	if (v && (!cJSON_IsArray(v) || !strings_only(v)))
		return bad(err, "\"types\" must be a list of strings%s", NULL);
	v = cJSON_GetObjectItemCaseSensitive(spec, "spot");
	if (v && !cJSON_IsBool(v))
		return bad(err, "\"spot\" must be true or false%s", NULL);
	v = cJSON_GetObjectItemCaseSensitive(spec, "labels");
	if (v && (!cJSON_IsObject(v) || !strings_only(v)))
		return bad(err, "\"labels\" must be an object of strings%s", NULL);
	v = cJSON_GetObjectItemCaseSensitive(spec, "taints");
	if (v && (!cJSON_IsArray(v) || !strings_only(v)))
		return bad(err, "\"taints\" must be a list of strings%s", NULL);
	return 0;
}

static void wants_free(struct want *w, size_t n)
{
	for (size_t i = 0; w && i < n; i++) {
		free(w[i].labels);
		free(w[i].taints);
	}
	free(w);
}

static void haves_free(struct have *h, size_t n)
{
	for (size_t i = 0; h && i < n; i++) {
		free(h[i].labels);
		free(h[i].taints);
	}
	free(h);
}

static char *canon_field(const cJSON *spec, const char *k, bool *bad_out)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(spec, k);
	return v ? canon_json(v, bad_out) : strdup("");
}

static int read_wants(const cJSON *specs, const char *cluster, struct want **out, size_t *nout,
		      const char **cl_out, struct goman_err *err)
{
	size_t n = (size_t)cJSON_GetArraySize(specs);
	struct want *w = calloc(n ? n : 1, sizeof(*w));
	if (!w)
		return gm_err_oom(err);
	const char *cl = cluster;
	const cJSON *s;
	size_t k = 0;
	cJSON_ArrayForEach (s, specs) {
		if (goman_plan_spec_check(s, cl, err) != 0)
			goto fail;
		if (!cl)
			cl = str(s, "cluster");
		struct want *x = &w[k++];
		x->spec = s;
		x->role = str(s, "role");
		x->index = spec_index(s, cl, x->role);
		x->name = str(s, "name");
		x->group = str(s, "group") ? str(s, "group") : x->role;
		x->types = cJSON_GetObjectItemCaseSensitive(s, "types");
		x->type = str(s, "instance_type");
		if (!x->type && cJSON_GetArraySize(x->types) > 0)
			x->type = cJSON_GetArrayItem(x->types, 0)->valuestring;
		x->ami = str(s, "ami");
		x->subnet = str(s, "subnet_id");
		x->az = str(s, "az");
		const cJSON *sp = cJSON_GetObjectItemCaseSensitive(s, "spot");
		x->spot = sp ? cJSON_IsTrue(sp) : -1;
		x->have = -1;
		bool b = false;
		if (!(x->labels = canon_field(s, "labels", &b)) ||
		    !(x->taints = canon_field(s, "taints", &b))) {
			if (b)
				bad(err, "labels and taints must not hold ','%s", NULL);
			else
				gm_err_oom(err);
			goto fail;
		}
		for (size_t j = 0; j + 1 < k; j++)
			if (!strcmp(w[j].role, x->role) && w[j].index == x->index) {
				char m[64];
				snprintf(m, sizeof(m), "%s %ld", x->role, x->index);
				bad(err, "two node specs ask for %s", m);
				goto fail;
			}
	}
	*out = w;
	*nout = k;
	*cl_out = cl;
	return 0;
fail:
	wants_free(w, k);
	return -1;
}

static long tag_index(const char *s)
{
	if (!s || !isdigit((unsigned char)*s))
		return -1;
	char *end;
	long v = strtol(s, &end, 10);
	return *end || v > MAX_INDEX ? -1 : v;
}

static int read_haves(const cJSON *haves, struct have **out, size_t *nout, struct goman_err *err)
{
	size_t n = (size_t)cJSON_GetArraySize(haves);
	struct have *h = calloc(n ? n : 1, sizeof(*h));
	if (!h)
		return gm_err_oom(err);
	const cJSON *in;
	size_t k = 0;
	cJSON_ArrayForEach (in, haves) {
		struct have *x = &h[k++];
		const char *st = str(in, "state");
		x->in = in;
		x->state = st;
		x->live = cJSON_IsObject(in) && str(in, "instance_id") &&
			  !(st && (!strcmp(st, "shutting-down") || !strcmp(st, "terminated")));
		x->id = str(in, "instance_id");
		x->role = tag(in, "goman:role");
		x->index = tag_index(tag(in, "goman:index"));
		x->name = tag(in, "goman:name");
		x->group = tag(in, "goman:group");
		x->via = tag(in, "goman:via");
		x->type = str(in, "instance_type");
		x->ami = str(in, "image_id");
		x->subnet = str(in, "subnet_id");
		x->az = str(in, "az");
		const cJSON *sp = cJSON_GetObjectItemCaseSensitive(in, "spot");
		const char *ts = tag(in, "goman:spot");
		x->spot = cJSON_IsBool(sp)             ? cJSON_IsTrue(sp)
			  : ts && !strcmp(ts, "true")  ? 1
			  : ts && !strcmp(ts, "false") ? 0
						       : -1;
		x->labels_raw = tag(in, "goman:labels");
		x->taints_raw = tag(in, "goman:taints");
		bool b1 = false, b2 = false;
		x->labels = canon_tag(x->labels_raw, true, &b1);
		x->taints = canon_tag(x->taints_raw, false, &b2);
		if ((!x->labels && !b1) || (!x->taints && !b2)) {
			haves_free(h, k);
			return gm_err_oom(err);
		}
	}
	*out = h;
	*nout = k;
	return 0;
}

static bool role_ok(const char *r)
{
	return r && (!strcmp(r, "server") || !strcmp(r, "agent"));
}

/* ---- the changes ------------------------------------------------------------------------ */

static bool add_str(cJSON *o, const char *k, const char *v)
{
	return !v || gm_json_add(o, k, cJSON_CreateString(v));
}

static cJSON *change(cJSON *changes, const char *cluster, const char *kind)
{
	cJSON *o = cJSON_CreateObject();
	if (!o || !cJSON_AddItemToArray(changes, o)) {
		cJSON_Delete(o);
		return NULL;
	}
	if (!add_str(o, "cluster", cluster) || !add_str(o, "change", kind))
		return NULL;
	return o;
}

static bool want_fields(cJSON *o, const struct want *w, const char *cluster)
{
	char name[160];
	snprintf(name, sizeof(name), "%s-%s-%ld", cluster, w->role, w->index);
	return add_str(o, "name", name) && add_str(o, "group", w->group) &&
	       add_str(o, "role", w->role) &&
	       gm_json_add(o, "index", cJSON_CreateNumber((double)w->index));
}

static bool drift_item(cJSON **d, const char *field, cJSON *want, cJSON *have)
{
	cJSON *f = cJSON_CreateObject();
	bool ok = f && want && have && (*d || (*d = cJSON_CreateObject())) &&
		  cJSON_AddItemToObject(f, "want", want);
	if (ok)
		want = NULL;
	ok = ok && cJSON_AddItemToObject(f, "have", have);
	if (ok)
		have = NULL;
	ok = ok && cJSON_AddItemToObject(*d, field, f);
	if (!ok) {
		cJSON_Delete(f);
		cJSON_Delete(want);
		cJSON_Delete(have);
	}
	return ok;
}

static cJSON *str_or_null(const char *s)
{
	return s ? cJSON_CreateString(s) : cJSON_CreateNull();
}

static bool type_listed(const struct want *w, const char *type)
{
	if (!type)
		return false;
	if (!w->types || !cJSON_GetArraySize(w->types))
		return !w->type || !strcmp(w->type, type);
	const cJSON *t;
	cJSON_ArrayForEach (t, w->types)
		if (!strcmp(t->valuestring, type))
			return true;
	return false;
}

/* The drift of one met spec; *d stays NULL when none. false when out of memory. */
static bool drift_of(const struct want *w, const struct have *h, const char *cluster, cJSON **d)
{
	bool ok = true;
	*d = NULL;
	if (!type_listed(w, h->type)) {
		cJSON *want = w->types && cJSON_GetArraySize(w->types)
				      ? cJSON_Duplicate(w->types, 1)
				      : str_or_null(w->type);
		ok = drift_item(d, "instance_type", want, str_or_null(h->type));
	}
	if (ok && w->ami && !strncmp(w->ami, "ami-", 4) && (!h->ami || strcmp(w->ami, h->ami)))
		ok = drift_item(d, "ami", cJSON_CreateString(w->ami), str_or_null(h->ami));
	if (ok && w->spot >= 0 && h->spot >= 0 && w->spot != h->spot)
		ok = drift_item(d, "spot", cJSON_CreateBool(w->spot), cJSON_CreateBool(h->spot));
	if (ok && (!h->labels || strcmp(w->labels, h->labels)))
		ok = drift_item(d, "labels", canon_out(w->labels, true),
				h->labels ? canon_out(h->labels, true)
					  : cJSON_CreateString(h->labels_raw));
	if (ok && (!h->taints || strcmp(w->taints, h->taints)))
		ok = drift_item(d, "taints", canon_out(w->taints, false),
				h->taints ? canon_out(h->taints, false)
					  : cJSON_CreateString(h->taints_raw));
	if (ok && h->group && strcmp(h->group, w->group))
		ok = drift_item(d, "group", cJSON_CreateString(w->group),
				cJSON_CreateString(h->group));
	/* goman-provision starts what is stopped: that is a change the plan must show */
	if (ok && h->state && (!strcmp(h->state, "stopped") || !strcmp(h->state, "stopping")))
		ok = drift_item(d, "state", cJSON_CreateString("running"),
				cJSON_CreateString(h->state));
	char name[160];
	snprintf(name, sizeof(name), "%s-%s-%ld", cluster, w->role, w->index);
	if (ok && (w->adopted || !h->name || strcmp(h->name, name)))
		ok = drift_item(d, "name", cJSON_CreateString(name), str_or_null(h->name));
	if (!ok) {
		cJSON_Delete(*d);
		*d = NULL;
	}
	return ok;
}

/* The AZ of a subnet, when some instance lives in it. */
static const char *az_of(const struct have *h, size_t nh, const char *subnet)
{
	for (size_t i = 0; subnet && i < nh; i++)
		if (h[i].live && h[i].subnet && h[i].az && !strcmp(h[i].subnet, subnet))
			return h[i].az;
	return NULL;
}

static bool group_in_specs(const struct want *w, size_t nw, const char *group)
{
	for (size_t i = 0; i < nw; i++)
		if (!strcmp(w[i].group, group))
			return true;
	return false;
}

/* wants in provision's order: servers first, then by index */
static int cmp_want(const void *a, const void *b)
{
	const struct want *x = a, *y = b;
	int c = strcmp(y->role, x->role);
	return c ? c : (x->index > y->index) - (x->index < y->index);
}

int goman_plan_compute(const cJSON *specs, const cJSON *haves, const char *cluster, cJSON *changes,
		       struct goman_plan_counts *counts, struct goman_err *err)
{
	struct want *w = NULL;
	struct have *h = NULL;
	size_t nw = 0, nh = 0;
	const char *cl = NULL;
	struct goman_plan_counts ct = {0};
	if (read_wants(specs, cluster, &w, &nw, &cl, err) != 0)
		return -1;
	if (read_haves(haves, &h, &nh, err) != 0) {
		wants_free(w, nw);
		return -1;
	}
	if (!cl)
		cl = "";
	qsort(w, nw, sizeof(*w), cmp_want);
	/* met by (role, index), then adoption of role-only instances, lowest index first */
	for (size_t i = 0; i < nw; i++)
		for (size_t j = 0; j < nh && w[i].have < 0; j++)
			if (h[j].live && !h[j].used && h[j].role && !strcmp(h[j].role, w[i].role) &&
			    h[j].index == w[i].index) {
				h[j].used = true;
				w[i].have = (int)j;
			}
	for (size_t i = 0; i < nw; i++)
		for (size_t j = 0; j < nh && w[i].have < 0; j++)
			if (h[j].live && !h[j].used && h[j].role && !strcmp(h[j].role, w[i].role) &&
			    h[j].index < 0) {
				h[j].used = true;
				w[i].have = (int)j;
				w[i].adopted = true;
			}
	bool ok = true;
	for (size_t i = 0; ok && i < nw; i++) {
		cJSON *o;
		if (w[i].have < 0) {
			const char *az = w[i].az ? w[i].az : az_of(h, nh, w[i].subnet);
			ok = (o = change(changes, cl, "launch")) && want_fields(o, &w[i], cl) &&
			     add_str(o, "instance_type", w[i].type) &&
			     (!w[i].types ||
			      gm_json_add(o, "types", cJSON_Duplicate(w[i].types, 1))) &&
			     add_str(o, "subnet_id", w[i].subnet) && add_str(o, "az", az) &&
			     (w[i].spot < 0 || gm_json_add(o, "spot", cJSON_CreateBool(w[i].spot)));
			ct.launch++;
			continue;
		}
		const struct have *x = &h[w[i].have];
		cJSON *d = NULL;
		if (!(ok = drift_of(&w[i], x, cl, &d)))
			break;
		if (!d) {
			ct.unchanged++;
			continue;
		}
		ok = (o = change(changes, cl, "drift")) && want_fields(o, &w[i], cl) &&
		     add_str(o, "instance_id", x->id);
		if (ok)
			ok = gm_json_add(o, "drift", d);
		else
			cJSON_Delete(d);
		ct.drift++;
	}
	for (size_t j = 0; ok && j < nh; j++) {
		const struct have *x = &h[j];
		if (!x->live || x->used)
			continue;
		char why[160], name[160];
		const char *kind = "orphan";
		bool dup = false;
		for (size_t k = 0; role_ok(x->role) && x->index >= 0 && k < nh; k++)
			dup |= k != j && h[k].live && h[k].role && !strcmp(h[k].role, x->role) &&
			       h[k].index == x->index && (h[k].used || k < j);
		if (!x->role)
			snprintf(why, sizeof(why), "no goman:role tag");
		else if (!role_ok(x->role))
			snprintf(why, sizeof(why), "goman:role is neither server nor agent");
		else if (x->index < 0)
			snprintf(why, sizeof(why),
				 "no goman:index tag, and no missing %s to adopt it for", x->role);
		else if (dup)
			snprintf(why, sizeof(why), "another instance is %s %ld", x->role, x->index);
		else {
			kind = "terminate";
			if (x->group && !group_in_specs(w, nw, x->group))
				snprintf(why, sizeof(why), "its group is not in the specs");
			else
				snprintf(why, sizeof(why), "no spec asks for %s %ld", x->role,
					 x->index);
		}
		const char *nm = x->name;
		if (!strcmp(kind, "terminate") && !nm) {
			snprintf(name, sizeof(name), "%s-%s-%ld", cl, x->role, x->index);
			nm = name;
		}
		cJSON *o = change(changes, cl, kind);
		ok = o && add_str(o, "name", nm) &&
		     add_str(o, "group",
			     x->group           ? x->group
			     : role_ok(x->role) ? x->role
						: NULL) &&
		     add_str(o, "role", x->role) &&
		     (x->index < 0 ||
		      gm_json_add(o, "index", cJSON_CreateNumber((double)x->index))) &&
		     add_str(o, "instance_id", x->id) && add_str(o, "instance_type", x->type) &&
		     add_str(o, "reason", why);
		if (*kind == 't')
			ct.terminate++;
		else
			ct.orphan++;
	}
	wants_free(w, nw);
	haves_free(h, nh);
	if (!ok)
		return gm_err_oom(err);
	if (counts)
		*counts = ct;
	return 0;
}

/* ---- instance summaries ----------------------------------------------------------------- */

cJSON *goman_plan_instance_json(const struct goman_ec2_instance *in)
{
	cJSON *o = cJSON_CreateObject(), *t = NULL;
	bool ok = o && goman_ec2_instance_to_json(in, o) == 0 &&
		  (!in->image_id[0] || add_str(o, "image_id", in->image_id)) &&
		  (!in->subnet_id[0] || add_str(o, "subnet_id", in->subnet_id)) &&
		  (!in->vpc_id[0] || add_str(o, "vpc_id", in->vpc_id)) &&
		  gm_json_add(o, "tags", t = cJSON_CreateObject());
	for (size_t i = 0; ok && i < in->tags.n; i++)
		ok = add_str(t, in->tags.v[i].name, in->tags.v[i].value);
	if (!ok) {
		cJSON_Delete(o);
		return NULL;
	}
	return o;
}

/* ---- export ----------------------------------------------------------------------------- */

struct egroup {
	const char *name;
	bool server;
	long min_index;
	struct have **m; /* members */
	size_t n;
};

/* the most common value of f over members (ties: the first seen); NULL when none has one */
static const char *most_common(struct have **m, size_t n, const char *(*f)(const struct have *))
{
	const char *best = NULL;
	size_t bestc = 0;
	for (size_t i = 0; i < n; i++) {
		const char *v = f(m[i]);
		size_t c = 0;
		for (size_t j = 0; v && j < n; j++)
			c += f(m[j]) && !strcmp(f(m[j]), v);
		if (c > bestc) {
			best = v;
			bestc = c;
		}
	}
	return best;
}

static const char *f_labels(const struct have *h)
{
	return h->labels;
}
static const char *f_taints(const struct have *h)
{
	return h->taints;
}
static const char *f_via(const struct have *h)
{
	return h->via;
}

static char *dup_or(const char *s, bool *ok)
{
	char *d = s ? strdup(s) : NULL;
	if (s && !d)
		*ok = false;
	return d;
}

/* canonical labels → pairs */
static bool labels_to(struct goman_cf_group *g, const char *c, bool *ok)
{
	cJSON *o = c && *c ? canon_out(c, true) : NULL;
	size_t n = (size_t)cJSON_GetArraySize(o);
	if (c && *c && !o)
		return *ok = false;
	if (n && !(g->labels = calloc(n, sizeof(*g->labels)))) {
		cJSON_Delete(o);
		return *ok = false;
	}
	const cJSON *e;
	cJSON_ArrayForEach (e, o) {
		struct goman_cf_pair *p = &g->labels[g->nlabels++];
		p->key = dup_or(e->string, ok);
		p->value = dup_or(e->valuestring, ok);
	}
	cJSON_Delete(o);
	return *ok;
}

/* canonical taints → taints ("k=v:E" / "k:E"); one that does not split that way is kept
 * whole as its key, so the parser names it */
static bool taints_to(struct goman_cf_group *g, const char *c, bool *ok)
{
	cJSON *a = c && *c ? canon_out(c, false) : NULL;
	size_t n = (size_t)cJSON_GetArraySize(a);
	if (c && *c && !a)
		return *ok = false;
	if (n && !(g->taints = calloc(n, sizeof(*g->taints)))) {
		cJSON_Delete(a);
		return *ok = false;
	}
	const cJSON *e;
	cJSON_ArrayForEach (e, a) {
		struct goman_cf_taint *t = &g->taints[g->ntaints++];
		const char *s = e->valuestring, *colon = strrchr(s, ':'), *eq = strchr(s, '=');
		if (!colon) {
			t->key = dup_or(s, ok);
			t->value = dup_or("", ok);
			t->effect = dup_or("", ok);
			continue;
		}
		if (eq && eq > colon)
			eq = NULL;
		t->key = eq ? strndup(s, (size_t)(eq - s)) : strndup(s, (size_t)(colon - s));
		t->value = eq ? strndup(eq + 1, (size_t)(colon - eq - 1)) : strdup("");
		t->effect = strdup(colon + 1);
		if (!t->key || !t->value || !t->effect)
			*ok = false;
	}
	cJSON_Delete(a);
	return *ok;
}

static bool user_tag(const char *k)
{
	return strncmp(k, "goman:", 6) && strncmp(k, "aws:", 4) && strcmp(k, "Name");
}

/* tags every member carries with one value */
static bool tags_to(struct goman_cf_group *g, const struct egroup *eg, bool *ok)
{
	const cJSON *t0 = cJSON_GetObjectItemCaseSensitive(eg->m[0]->in, "tags"), *t;
	size_t n = (size_t)cJSON_GetArraySize(t0);
	if (n && !(g->tags = calloc(n, sizeof(*g->tags))))
		return *ok = false;
	cJSON_ArrayForEach (t, t0) {
		if (!cJSON_IsString(t) || !user_tag(t->string))
			continue;
		bool all = true;
		for (size_t i = 1; all && i < eg->n; i++) {
			const char *v = tag(eg->m[i]->in, t->string);
			all = v && !strcmp(v, t->valuestring);
		}
		if (!all || g->ntags >= GOMAN_CF_MAX_TAGS)
			continue;
		struct goman_cf_pair *p = &g->tags[g->ntags++];
		p->key = dup_or(t->string, ok);
		p->value = dup_or(t->valuestring, ok);
	}
	return *ok;
}

/* distinct types, most common first (ties by name), at most GOMAN_CF_MAX_TYPES */
static bool types_to(struct goman_cf_group *g, const struct egroup *eg, bool *ok)
{
	if (!(g->types = calloc(GOMAN_CF_MAX_TYPES, sizeof(char *))))
		return *ok = false;
	for (;;) {
		const char *best = NULL;
		size_t bestc = 0;
		for (size_t i = 0; i < eg->n; i++) {
			const char *v = eg->m[i]->type;
			bool taken = !v;
			for (size_t k = 0; !taken && k < g->ntypes; k++)
				taken = !strcmp(g->types[k], v);
			if (taken)
				continue;
			size_t c = 0;
			for (size_t j = 0; j < eg->n; j++)
				c += eg->m[j]->type && !strcmp(eg->m[j]->type, v);
			if (c > bestc || (c == bestc && best && strcmp(v, best) < 0)) {
				best = v;
				bestc = c;
			}
		}
		if (!best || g->ntypes == GOMAN_CF_MAX_TYPES)
			break;
		if (!(g->types[g->ntypes++] = strdup(best)))
			return *ok = false;
	}
	if (!g->ntypes && !(g->types[g->ntypes++] = strdup("t3.medium")))
		*ok = false;
	return *ok;
}

static int cmp_member(const void *a, const void *b)
{
	const struct have *x = *(struct have *const *)a, *y = *(struct have *const *)b;
	int c = strcmp(y->role, x->role);
	return c ? c : (x->index > y->index) - (x->index < y->index);
}

static int cmp_egroup(const void *a, const void *b)
{
	const struct egroup *x = a, *y = b;
	if (x->server != y->server)
		return x->server ? -1 : 1;
	return (x->min_index > y->min_index) - (x->min_index < y->min_index);
}

static bool group_name_ok(const char *s)
{
	return goman_cluster_name_ok(s);
}

static int build_export(const char *cluster, const char *region, struct have *h, size_t nh,
			struct goman_cluster_file *cf, struct goman_err *err)
{
	struct have **mem = calloc(nh ? nh : 1, sizeof(*mem));
	struct egroup *eg = calloc(nh ? nh : 1, sizeof(*eg));
	size_t nm = 0, ng = 0;
	bool ok = mem && eg;
	for (size_t i = 0; ok && i < nh; i++)
		if (h[i].live && role_ok(h[i].role))
			mem[nm++] = &h[i];
	if (ok)
		qsort(mem, nm, sizeof(*mem), cmp_member);
	int rc = 0;
	for (size_t i = 0; ok && i < nm; i++) {
		struct have *x = mem[i];
		bool server = !strcmp(x->role, "server");
		const char *gn = x->group && group_name_ok(x->group) ? x->group : x->role;
		struct egroup *g = NULL;
		for (size_t k = 0; !g && k < ng; k++)
			if (!strcmp(eg[k].name, gn))
				g = &eg[k];
		if (g && g->server != server) {
			rc = goman_err_set(
				err, GOMAN_EINVAL, GOMAN_CLASS_BAD_INPUT, "BadInput",
				"group %s holds servers and agents: a cluster file cannot", gn);
			break;
		}
		if (!g) {
			g = &eg[ng++];
			g->name = gn;
			g->server = server;
			g->min_index = x->index < 0 ? MAX_INDEX + 1 : x->index;
			if (!(g->m = calloc(nm, sizeof(*g->m))))
				ok = false;
		}
		if (ok)
			g->m[g->n++] = x;
	}
	if (ok && rc == 0 && !ng)
		rc = goman_err_set(err, GOMAN_ENOTFOUND, GOMAN_CLASS_NONE, "NotFound",
				   "cluster %s has no instance with a goman:role tag", cluster);
	if (ok && rc == 0) {
		qsort(eg, ng, sizeof(*eg), cmp_egroup);
		cf->name = dup_or(cluster, &ok);
		cf->region = dup_or(region, &ok);
		const char *via = most_common(mem, nm, f_via);
		cf->via = via && !strcmp(via, "ssh")     ? GOMAN_CF_VIA_SSH
			  : via && !strcmp(via, "local") ? GOMAN_CF_VIA_LOCAL
							 : GOMAN_CF_VIA_SSM;
		if (ok && !(cf->subnets = calloc(GOMAN_CF_MAX_SUBNETS, sizeof(char *))))
			ok = false;
		for (size_t i = 0; ok && i < nm && cf->nsubnets < GOMAN_CF_MAX_SUBNETS; i++) {
			bool seen = !mem[i]->subnet;
			for (size_t k = 0; !seen && k < cf->nsubnets; k++)
				seen = !strcmp(cf->subnets[k], mem[i]->subnet);
			if (!seen && !(cf->subnets[cf->nsubnets++] = strdup(mem[i]->subnet)))
				ok = false;
		}
		if (ok && !(cf->groups = calloc(ng, sizeof(*cf->groups))))
			ok = false;
		for (size_t i = 0; ok && i < ng; i++) {
			struct goman_cf_group *g = &cf->groups[cf->ngroups++];
			g->name = dup_or(eg[i].name, &ok);
			g->server = eg[i].server;
			g->count = (long)eg[i].n;
			size_t known = 0, spot = 0;
			for (size_t k = 0; k < eg[i].n; k++) {
				known += eg[i].m[k]->spot >= 0;
				spot += eg[i].m[k]->spot == 1;
			}
			g->spot = known && spot * 2 > known;
			ok = ok && types_to(g, &eg[i], &ok) &&
			     labels_to(g, most_common(eg[i].m, eg[i].n, f_labels), &ok) &&
			     taints_to(g, most_common(eg[i].m, eg[i].n, f_taints), &ok) &&
			     tags_to(g, &eg[i], &ok);
		}
	}
	for (size_t i = 0; eg && i < ng; i++)
		free(eg[i].m);
	free(eg);
	free(mem);
	if (!ok)
		return gm_err_oom(err);
	return rc;
}

int goman_plan_export(const char *cluster, const char *region, const cJSON *haves,
		      struct goman_cluster_file **out, struct goman_err *err)
{
	struct have *h = NULL;
	size_t nh = 0;
	*out = NULL;
	if (!cluster || !goman_cluster_name_ok(cluster))
		return bad(err, "a cluster name must match ^[a-z][a-z0-9-]{0,39}$%s", NULL);
	if (read_haves(haves, &h, &nh, err) != 0)
		return -1;
	struct goman_cluster_file *cf = calloc(1, sizeof(*cf));
	int rc = cf ? build_export(cluster, region, h, nh, cf, err) : gm_err_oom(err);
	haves_free(h, nh);
	if (rc != 0) {
		goman_cluster_file_free(cf);
		return -1;
	}
	/* what the tags gave must be a file the parser takes: read it back through it */
	cJSON *j = goman_cluster_file_to_json(cf);
	char *s = j ? cJSON_PrintUnformatted(j) : NULL;
	cJSON_Delete(j);
	goman_cluster_file_free(cf);
	if (!s)
		return gm_err_oom(err);
	struct goman_cf_opts o = {.format = GOMAN_CF_JSON, .max_groups = nh + 1};
	char src[64];
	snprintf(src, sizeof(src), "export of %s", cluster);
	rc = goman_cluster_file_parse(s, strlen(s), src, &o, out, err);
	free(s);
	return rc;
}
