/*
 * ec2_sg.c - the security-group ensure of goman/ec2.h: describe by group-name + vpc-id,
 * create when missing, authorize only the rules the group lacks (a duplicate is success:
 * another run may have added it in between). Which rules a cluster needs is the caller's
 * knowledge (provision_setup.c holds K3s's ports), not the EC2 layer's.
 *
 * Blocking calls (goman_aws_call): setup before async work, never from a callback.
 * Ownership: nothing kept; replies are cleared before return. Errors: -1 with *err.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>
#include "goman/aws.h"
#include "goman/clock.h"
#include "goman/ec2.h"
#include "goman/http.h"
#include "goman/log.h"
#include "bytes_int.h"
#include "ec2_int.h"

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
		return gm_err_oom(err);
	}
	int rc = gm_ec2_blocking(aws, "DescribeSecurityGroups", &params, res, calls, err);
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
		gm_ec2_copy(group_id, len, goman_json_path_str(g, "groupId"));
		perms = cJSON_Duplicate(goman_json_path_array(g, "ipPermissions"), 1);
	} else {
		goman_aws_result_clear(&res);
		if (goman_kvs_add(&params, "GroupName", name) ||
		    goman_kvs_add(&params, "GroupDescription", description ? description : name) ||
		    goman_kvs_add(&params, "VpcId", vpc)) {
			gm_err_oom(err);
			goto out;
		}
		if (gm_ec2_blocking(aws, "CreateSecurityGroup", &params, &res, calls, err) == 0) {
			gm_ec2_copy(group_id, len, goman_json_path_str(res.data, "groupId"));
			goman_log(GOMAN_LOG_INFO, "PROVISION",
				  "created security group %s (%s) in %s", name, group_id, vpc);
		} else if (!strcmp(res.err.code, "InvalidGroup.Duplicate")) {
			/* another run made it between our describe and create */
			goman_aws_result_clear(&res);
			if (describe_sg(aws, name, vpc, &res, calls, err) != 0)
				goto out;
			g = cJSON_GetArrayItem(goman_json_path_array(res.data, "securityGroupInfo"),
					       0);
			gm_ec2_copy(group_id, len, g ? goman_json_path_str(g, "groupId") : NULL);
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
		gm_err_oom(err);
		goto out;
	}
	int n = 0;
	for (size_t i = 0; i < nrules; i++) {
		if (perms && has_rule(perms, &rules[i], group_id))
			continue;
		if (add_rule(&params, ++n, &rules[i], group_id)) {
			gm_err_oom(err);
			goto out;
		}
	}
	if (!n) {
		rc = 0;
		goto out;
	}
	if (gm_ec2_blocking(aws, "AuthorizeSecurityGroupIngress", &params, &res, calls, err) == 0) {
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
				rc = gm_err_oom(err);
				break;
			}
			if (gm_ec2_blocking(aws, "AuthorizeSecurityGroupIngress", &one, &res, calls,
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
