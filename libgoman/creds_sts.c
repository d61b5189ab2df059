/*
 * creds_sts.c - role_arn profiles: STS AssumeRole signed with the source credentials.
 *
 * Goes through the one generic call path (goman/aws.h) with explicit credentials, so the
 * endpoint settings of the profile (AWS_ENDPOINT_URL_STS, endpoint_url ...) apply as to
 * any other STS call. The chain caches the result until its Expiration (minus a margin).
 *
 * Ownership: *out is filled for the caller; the reply tree is wiped and freed here.
 * Errors: -1 with the STS error (code, status, request id) and a message naming the role.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <cjson/cJSON.h>
#include "goman/aws.h"
#include "goman/clock.h"
#include "goman/log.h"
#include "creds_int.h"

int gm_creds_assume_role(const struct gm_assume *a, const struct goman_creds *src,
			 struct goman_creds *out, struct goman_err *err)
{
	char session[64], dur[24];
	const char *name = a->session_name;
	if (!name) {
		/* what botocore does: a name unique enough to tell sessions apart in CloudTrail */
		snprintf(session, sizeof(session), "goman-%" PRId64, goman_now_ms());
		name = session;
	}
	struct goman_kvs params = {0};
	int rc = -1;
	struct goman_aws *aws = NULL;
	struct goman_aws_result res;
	memset(&res, 0, sizeof(res));
	if (goman_kvs_add(&params, "RoleArn", a->role_arn) < 0 ||
	    goman_kvs_add(&params, "RoleSessionName", name) < 0)
		goto nomem;
	if (a->duration_s > 0) {
		snprintf(dur, sizeof(dur), "%ld", a->duration_s);
		if (goman_kvs_add(&params, "DurationSeconds", dur) < 0)
			goto nomem;
	}
	if (a->external_id && goman_kvs_add(&params, "ExternalId", a->external_id) < 0)
		goto nomem;
	struct goman_aws_opts opts = {
		.profile = a->profile,
		.region = a->region ? a->region : "us-east-1",
		.creds = src,
	};
	if (!(aws = goman_aws_new(&opts, err)))
		goto out;
	struct goman_aws_call call = {
		.service = "sts",
		.action = "AssumeRole",
		.params = &params,
	};
	goman_log(GOMAN_LOG_DEBUG, "CREDS", "assuming role %s as session %s", a->role_arn, name);
	if (goman_aws_call(aws, &call, &res) < 0) {
		if (err) {
			*err = res.err;
			/* name the role in front, keep as much of STS's message as fits */
			char msg[sizeof(err->message)];
			int n = snprintf(msg, sizeof(msg), "assume role %s: ", a->role_arn);
			if (n > 0 && (size_t)n < sizeof(msg))
				snprintf(msg + n, sizeof(msg) - (size_t)n, "%.*s",
					 (int)(sizeof(msg) - (size_t)n - 1), res.err.message);
			memcpy(err->message, msg, sizeof(msg));
		}
		goto out;
	}
	const cJSON *c = NULL;
	if (res.data) {
		/* the reply converted from XML: AssumeRoleResult.Credentials.{...} */
		const cJSON *r = cJSON_GetObjectItemCaseSensitive(res.data, "AssumeRoleResult");
		c = cJSON_GetObjectItemCaseSensitive(r ? r : res.data, "Credentials");
	}
	if (!cJSON_IsObject(c)) {
		goman_err_set(err, GOMAN_ECREDS, GOMAN_CLASS_AUTH, "AssumeRoleFailed",
			      "assume role %s: reply without Credentials", a->role_arn);
		goto out;
	}
	rc = gm_creds_from_json(c, "SessionToken", "assume-role", out, err);
	goto out;
nomem:
	goman_err_set(err, GOMAN_ENOMEM, GOMAN_CLASS_NONE, "", "out of memory");
out:
	if (res.data) {
		cJSON *r = cJSON_GetObjectItemCaseSensitive(res.data, "AssumeRoleResult");
		cJSON *c2 = cJSON_GetObjectItemCaseSensitive(r ? r : res.data, "Credentials");
		cJSON *s = cJSON_GetObjectItemCaseSensitive(c2, "SecretAccessKey");
		if (cJSON_IsString(s))
			explicit_bzero(s->valuestring, strlen(s->valuestring));
	}
	goman_aws_result_clear(&res);
	goman_aws_free(aws);
	goman_kvs_clear(&params);
	return rc;
}
