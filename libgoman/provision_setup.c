/*
 * provision_setup.c - goman-provision's blocking setup calls, made before anything is
 * queued on the loop and only when something must be launched: placement over subnets
 * (DescribeSubnets), AMIs from SSM parameters and their root devices, the instance profile
 * check, and the cluster's security group with K3s's ports (this side knows K3s; the EC2
 * layer only ensures rules it is given).
 *
 * A retryable failure that outlived the call's own retries is tried again a few times here
 * (nothing else is waiting on the loop yet), so one unlucky streak of throttles does not fail
 * a whole cluster. Every attempt is counted in r->setup_calls.
 * Ownership: results go into the run (struct prun) and its groups; nothing else is kept.
 * Errors: -1 with *e.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>
#include "goman/aws.h"
#include "goman/clock.h"
#include "goman/ec2.h"
#include "goman/log.h"
#include "goman/provision.h"
#include "bytes_int.h"
#include "provision_int.h"

#define SETUP_RETRIES 3

/* What K3s needs between its nodes, all self-referencing: the API server, the kubelet,
 * embedded etcd (HA servers), flannel VXLAN and WireGuard. */
static const struct goman_ec2_sg_rule k3s_rules[] = {
	{"tcp", GM_PROV_K3S_API_PORT, GM_PROV_K3S_API_PORT, NULL},
	{"tcp", 10250, 10250, NULL},
	{"tcp", 2379, 2380, NULL},
	{"udp", 8472, 8472, NULL},
	{"udp", 51820, 51821, NULL},
};

/* Setup calls are blocking and few; a retryable failure that outlived the call's own
 * retries is tried again a few times here (nothing else is waiting on the loop yet), so
 * one unlucky streak of throttles does not fail a whole cluster. */
bool gm_prov_again(int *tries, int rc, const struct goman_err *e)
{
	if (rc == 0 || !e->retryable || ++*tries > SETUP_RETRIES)
		return false;
	goman_log(GOMAN_LOG_INFO, "RETRY", "setup call failed (%s), trying again (%d/%d)", e->code,
		  *tries, SETUP_RETRIES);
	goman_sleep_ms(GM_PROV_RETRY_MS / 2 * *tries);
	return true;
}

/* One setup call, made again while gm_prov_again says so; its attempts are counted. res is
 * the last attempt's (the caller clears it). 0 or -1. */
static int setup_call(struct prun *r, const struct goman_aws_call *call,
		      struct goman_aws_result *res)
{
	int rc, tries = 0;
	do {
		rc = goman_aws_call(r->aws, call, res);
		r->setup_calls += res->attempts > 0 ? res->attempts : 1;
	} while (gm_prov_again(&tries, rc, &res->err) && (goman_aws_result_clear(res), 1));
	return rc;
}

int gm_prov_resolve_ami(struct prun *r, const char *spec, char *out, size_t len,
			struct goman_err *e)
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
		return gm_err_oom(e);
	}
	struct goman_aws_call call = {.service = "ssm", .action = "GetParameter", .json = req};
	struct goman_aws_result res;
	int rc = setup_call(r, &call, &res);
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

int gm_prov_check_profile(struct prun *r, const char *profile, struct goman_err *e)
{
	struct goman_kvs params = {0};
	if (goman_kvs_add(&params, "InstanceProfileName", profile) != 0)
		return gm_err_oom(e);
	struct goman_aws_call call = {
		.service = "iam", .action = "GetInstanceProfile", .params = &params};
	struct goman_aws_result res;
	int rc = setup_call(r, &call, &res);
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

int gm_prov_ensure_sg(struct prun *r, struct goman_err *e)
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
		} while (gm_prov_again(&tries, rc, e));
	if (!r->vpc[0] && rc != 0)
		return -1;
	struct goman_ec2_sg_rule rules[8];
	size_t n = 0;
	for (size_t i = 0; i < sizeof(k3s_rules) / sizeof(k3s_rules[0]) && n < 6; i++)
		rules[n++] = k3s_rules[i];
	if (o->ssh_cidr && *o->ssh_cidr)
		rules[n++] = (struct goman_ec2_sg_rule){"tcp", 22, 22, o->ssh_cidr};
	if (o->api_cidr && *o->api_cidr)
		rules[n++] = (struct goman_ec2_sg_rule){"tcp", GM_PROV_K3S_API_PORT,
							GM_PROV_K3S_API_PORT, o->api_cidr};
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
	} while (gm_prov_again(&tries, rc, e));
	return rc;
}

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
int gm_prov_place_nodes(struct prun *r, struct goman_err *e)
{
	const char **ids = calloc(r->nn, sizeof(char *));
	size_t nids = 0;
	bool need_default = false;
	if (!ids)
		return gm_err_oom(e);
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
		} while (gm_prov_again(&tries, rc, e));
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
		return gm_err_oom(e);
	}
	tries = 0;
	do {
		free(sn);
		sn = NULL;
		rc = goman_ec2_subnets(r->aws, &f, NULL, 0, &sn, &ns, &r->setup_calls, e);
	} while (gm_prov_again(&tries, rc, e));
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
	} while (gm_prov_again(&tries, rc, e));
	if (rc == 0 && r->nroot < 8) {
		snprintf(r->root_ami[r->nroot], sizeof(r->root_ami[0]), "%s", ami);
		snprintf(r->root_dev[r->nroot++], sizeof(r->root_dev[0]), "%s", dev);
	}
	return rc;
}

/* The AMI of every type of the group's list (a fallback type may be of another
 * architecture), and its root device when the group sets a volume size. */
int gm_prov_group_amis(struct prun *r, struct group *g, struct goman_err *e)
{
	const struct node *n0 = g->v[0];
	for (int t = 0; t < g->ntypes; t++) {
		const char *spec = n0->explicit_ami ? n0->ami : goman_default_ami_for(g->types[t]);
		if (gm_prov_resolve_ami(r, spec, g->amis[t], sizeof(g->amis[0]), e) != 0)
			return -1;
		if (n0->volume_gb &&
		    root_device(r, g->amis[t], g->roots[t], sizeof(g->roots[0]), e) != 0)
			return -1;
	}
	snprintf(g->ami, sizeof(g->ami), "%s", g->amis[g->ti]);
	return 0;
}
