/*
 * provision_spec.c - goman-provision's node specs: the cluster-name rule, specs from
 * --servers/--agents, the default AMI of a type, and the validation of one spec line into
 * a struct node (defaults from the options; a bad field is a BadInput error naming it).
 *
 * Ownership: gm_prov_spec fills a node the caller allocated; what it allocates (labels_tag,
 * taints_tag, sig) is freed by gm_prov_node_free with the node. Errors: -1 with BadInput, or
 * GOMAN_ENOMEM.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>
#include "goman/provision.h"
#include "buf_int.h"
#include "bytes_int.h"
#include "provision_int.h"

#define DEFAULT_TYPE "t3.medium"

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

/* ---- spec validation ---------------------------------------------------------------- */

static const char *str_field(const cJSON *o, const char *k)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
	return cJSON_IsString(v) ? v->valuestring : NULL;
}

int gm_prov_bad(struct goman_err *e, const char *fmt, const char *a, const char *b)
{
	return goman_err_set(e, GOMAN_EINVAL, GOMAN_CLASS_BAD_INPUT, "BadInput", fmt, a ? a : "",
			     b ? b : "");
}

/* cluster, role, index and name: who the node is */
static int spec_identity(const struct goman_provision_opts *o, struct node *n, struct goman_err *e)
{
	const cJSON *in = n->in;
	if (!str_field(in, "cluster") && o->cluster)
		cJSON_AddStringToObject(n->in, "cluster", o->cluster);
	n->cluster = str_field(in, "cluster");
	n->role = str_field(in, "role");
	n->index = -1;
	if (!n->cluster)
		return gm_prov_bad(e, "missing \"cluster\"%s%s", NULL, NULL);
	if (!goman_cluster_name_ok(n->cluster))
		return gm_prov_bad(e, "cluster name '%s' must match ^[a-z][a-z0-9-]{0,39}$%s",
				   n->cluster, NULL);
	if (!n->role || (strcmp(n->role, "server") && strcmp(n->role, "agent")))
		return gm_prov_bad(e, "\"role\" must be \"server\" or \"agent\"%s%s", NULL, NULL);
	const cJSON *ix = cJSON_GetObjectItemCaseSensitive(in, "index");
	if (ix) {
		if (!cJSON_IsNumber(ix) || ix->valuedouble < 0 || ix->valuedouble > 99999 ||
		    ix->valuedouble != (double)(int)ix->valuedouble)
			return gm_prov_bad(e, "\"index\" must be an integer from 0%s%s", NULL,
					   NULL);
		n->index = (int)ix->valuedouble;
	}
	const cJSON *nm = cJSON_GetObjectItemCaseSensitive(in, "name");
	if (nm) {
		char prefix[96];
		if (!cJSON_IsString(nm))
			return gm_prov_bad(e, "\"name\" must be a string%s%s", NULL, NULL);
		snprintf(prefix, sizeof(prefix), "%s-%s-", n->cluster, n->role);
		size_t pl = strlen(prefix);
		const char *s = nm->valuestring;
		char *end = NULL;
		long v = -1;
		if (!strncmp(s, prefix, pl) && isdigit((unsigned char)s[pl]))
			v = strtol(s + pl, &end, 10);
		if (v < 0 || !end || *end || v > 99999)
			return gm_prov_bad(
				e, "\"name\" '%s' must be <cluster>-<role>-<index>, here %s<index>",
				s, prefix);
		if (n->index >= 0 && v != n->index)
			return gm_prov_bad(e, "\"name\" '%s' disagrees with \"index\"%s", s, NULL);
		n->index = (int)v;
	}
	return 0;
}

/* instance type, its fallback list, and the AMI */
static int spec_types(const struct goman_provision_opts *o, struct node *n, struct goman_err *e)
{
	const cJSON *in = n->in;
	const cJSON *t;
	const cJSON *tl = cJSON_GetObjectItemCaseSensitive(in, "types");
	if (tl && (!cJSON_IsArray(tl) || cJSON_GetArraySize(tl) < 1 ||
		   cJSON_GetArraySize(tl) > GM_PROV_MAX_TYPES))
		return gm_prov_bad(e, "\"types\" must be a list of 1 to 8 instance types%s%s", NULL,
				   NULL);
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
	cJSON_ArrayForEach (t, tl) {
		if (!cJSON_IsString(t) || !*t->valuestring || strlen(t->valuestring) >= 64)
			return gm_prov_bad(e, "\"types\" entries must be instance type names%s%s",
					   NULL, NULL);
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
	return 0;
}

/* group, via, spot and volume: what a launch group shares */
static int spec_launch(const struct goman_provision_opts *o, struct node *n, struct goman_err *e)
{
	const cJSON *in = n->in;
	const char *gr = str_field(in, "group");
	if (cJSON_GetObjectItemCaseSensitive(in, "group") && (!gr || !goman_cluster_name_ok(gr)))
		return gm_prov_bad(e, "\"group\" must match ^[a-z][a-z0-9-]{0,39}$%s%s", NULL,
				   NULL);
	n->explicit_group = gr != NULL;
	snprintf(n->group, sizeof(n->group), "%s", gr ? gr : n->role);
	const char *via = str_field(in, "via");
	if (cJSON_GetObjectItemCaseSensitive(in, "via") &&
	    (!via || (strcmp(via, "ssm") && strcmp(via, "ssh") && strcmp(via, "local"))))
		return gm_prov_bad(e, "\"via\" must be ssm, ssh or local%s%s", NULL, NULL);
	if (!via)
		via = o->via;
	snprintf(n->via, sizeof(n->via), "%s", via ? via : "");
	const cJSON *sp = cJSON_GetObjectItemCaseSensitive(in, "spot");
	if (sp && !cJSON_IsBool(sp))
		return gm_prov_bad(e, "\"spot\" must be true or false%s%s", NULL, NULL);
	n->has_spot = sp != NULL;
	n->spot = cJSON_IsTrue(sp);
	const cJSON *vg = cJSON_GetObjectItemCaseSensitive(in, "volume_gb");
	if (vg && (!cJSON_IsNumber(vg) || vg->valuedouble < 8 || vg->valuedouble > 16384 ||
		   vg->valuedouble != (double)(int)vg->valuedouble))
		return gm_prov_bad(e, "\"volume_gb\" must be an integer from 8 to 16384%s%s", NULL,
				   NULL);
	n->volume_gb = vg ? (int)vg->valuedouble : 0;
	return 0;
}

/* labels and taints, compacted into their tag values */
static int spec_labels(struct node *n, struct goman_err *e)
{
	const cJSON *in = n->in;
	const cJSON *t;
	const cJSON *lb = cJSON_GetObjectItemCaseSensitive(in, "labels");
	if (lb) {
		if (!cJSON_IsObject(lb))
			return gm_prov_bad(e, "\"labels\" must be an object of strings%s%s", NULL,
					   NULL);
		cJSON_ArrayForEach (t, lb)
			if (!cJSON_IsString(t) || strpbrk(t->string, ",=") ||
			    strchr(t->valuestring, ','))
				return gm_prov_bad(e,
						   "label '%s' must be a string "
						   "without ',' (and '=' in "
						   "the key)%s",
						   t->string, NULL);
		if (!(n->labels_tag = gm_prov_compact(lb)))
			return gm_err_oom(e);
	}
	const cJSON *tn = cJSON_GetObjectItemCaseSensitive(in, "taints");
	if (tn) {
		if (!cJSON_IsArray(tn))
			return gm_prov_bad(e, "\"taints\" must be a list of key=value:Effect%s%s",
					   NULL, NULL);
		cJSON_ArrayForEach (t, tn)
			if (!cJSON_IsString(t) || !strchr(t->valuestring, ':') ||
			    strchr(t->valuestring, ','))
				return gm_prov_bad(e,
						   "\"taints\" entries must be "
						   "key[=value]:Effect%s%s",
						   NULL, NULL);
		if (!(n->taints_tag = gm_prov_compact(tn)))
			return gm_err_oom(e);
	}
	return 0;
}

/* subnets, subnet and the user's tags */
static int spec_place(const struct goman_provision_opts *o, struct node *n, struct goman_err *e)
{
	const cJSON *in = n->in;
	const cJSON *t;
	const cJSON *sl = cJSON_GetObjectItemCaseSensitive(in, "subnets");
	if (sl) {
		const cJSON *x;
		if (!cJSON_IsArray(sl) || cJSON_GetArraySize(sl) < 1 || cJSON_GetArraySize(sl) > 32)
			return gm_prov_bad(e,
					   "\"subnets\" must be a list of 1 to 32 subnet IDs%s%s",
					   NULL, NULL);
		cJSON_ArrayForEach (x, sl)
			if (!cJSON_IsString(x) || strncmp(x->valuestring, "subnet-", 7) ||
			    strlen(x->valuestring) >= 32)
				return gm_prov_bad(e, "\"subnets\" entries must be subnet IDs%s%s",
						   NULL, NULL);
		n->subnets = sl;
	}
	const char *sn = str_field(in, "subnet_id");
	snprintf(n->subnet, sizeof(n->subnet), "%s", sn ? sn : o->subnet ? o->subnet : "");
	const cJSON *tags = cJSON_GetObjectItemCaseSensitive(in, "tags");
	if (tags) {
		if (!cJSON_IsObject(tags))
			return gm_prov_bad(e, "\"tags\" must be an object of strings%s%s", NULL,
					   NULL);
		cJSON_ArrayForEach (t, tags) {
			if (!cJSON_IsString(t))
				return gm_prov_bad(e, "tag '%s' must be a string%s", t->string,
						   NULL);
			if (!strncmp(t->string, "goman:", 6))
				return gm_prov_bad(e, "tag '%s': goman: tags are goman's own%s",
						   t->string, NULL);
		}
	}
	return 0;
}

/* what else the nodes of one RunInstances must share, as one comparable string */
static int spec_sig(struct node *n, struct goman_err *e)
{
	const cJSON *tags = cJSON_GetObjectItemCaseSensitive(n->in, "tags");
	cJSON *sig = cJSON_CreateArray();
	if (!sig)
		return gm_err_oom(e);
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
	return n->sig ? 0 : gm_err_oom(e);
}

/* Fills n from its spec (defaults from o). Index may stay -1 (assigned later). */
int gm_prov_spec(const struct goman_provision_opts *o, struct node *n, struct goman_err *e)
{
	if (spec_identity(o, n, e) || spec_types(o, n, e) || spec_launch(o, n, e) ||
	    spec_labels(n, e) || spec_place(o, n, e))
		return -1;
	return spec_sig(n, e);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

char *gm_prov_compact(const cJSON *v)
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
			if (gm_sha256_hex(b.p, b.len, hex) == 0) {
				gm_buf_free(&b);
				gm_buf_printf(&b, "sha256:%s", hex);
			}
		}
		out = gm_buf_take(&b);
	}
	for (size_t j = 0; j < i; j++)
		free(items[j]);
	free(items);
	return out;
}

void gm_prov_node_free(struct node *n)
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
