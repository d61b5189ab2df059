/*
 * creds_sts.c - STS for the credential chain: AssumeRole signed with the source
 * credentials (role_arn profiles, with an MFA code when mfa_serial is set) and
 * AssumeRoleWithWebIdentity, which is unsigned (the web identity token is the proof).
 *
 * Both go through the chain's caller hook, i.e. the AWS client that owns the chain: its
 * loop, its guard and its endpoint settings (AWS_ENDPOINT_URL_STS, endpoint_url ...)
 * apply as to any other STS call. The web identity token file is read at every call:
 * Kubernetes and CI runners rotate it under us.
 *
 * Ownership: *out is filled for the caller; *reply (when asked) is the converted reply,
 * the caller's; the token read from the file is wiped before it is freed.
 * Errors: -1 with the STS error (code, status, request id) and a message naming the role.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <cjson/cJSON.h>
#include "goman/clock.h"
#include "goman/log.h"
#include "bytes_int.h"
#include "creds_int.h"

/* A web identity token (a JWT) is a few kilobytes; anything past this is not one. */
#define WEBID_TOKEN_MAX (64 * 1024)

/* Wipes the secret of a converted STS reply before it is freed. */
static void reply_free(cJSON *reply, const char *result)
{
	if (!reply)
		return;
	cJSON *r = cJSON_GetObjectItemCaseSensitive(reply, result);
	cJSON *c = cJSON_GetObjectItemCaseSensitive(r ? r : reply, "Credentials");
	cJSON *s = cJSON_GetObjectItemCaseSensitive(c, "SecretAccessKey");
	if (cJSON_IsString(s))
		explicit_bzero(s->valuestring, strlen(s->valuestring));
	cJSON_Delete(reply);
}

/* Runs one STS call through the caller and reads Credentials out of its result. */
static int sts_call(const struct gm_caller *c, struct gm_cc_call *call, const char *result,
		    const char *source, const char *role_arn, struct goman_creds *out,
		    cJSON **reply_out, struct goman_err *err)
{
	cJSON *reply = NULL;
	if (!c || !c->fn)
		return goman_err_set(err, GOMAN_ECREDS, GOMAN_CLASS_AUTH, "NoCaller",
				     "%s %s: this credential chain has no AWS client to call STS",
				     call->action, role_arn);
	goman_log(GOMAN_LOG_DEBUG, "CREDS", "%s %s", call->action, role_arn);
	if (c->fn(c->ctx, call, &reply, err) != 0) {
		if (err) {
			/* name the role in front, keep as much of STS's message as fits */
			char msg[sizeof(err->message)];
			int n = snprintf(msg, sizeof(msg), "%s %s: ", call->action, role_arn);
			if (n > 0 && (size_t)n < sizeof(msg))
				snprintf(msg + n, sizeof(msg) - (size_t)n, "%.*s",
					 (int)(sizeof(msg) - (size_t)n - 1), err->message);
			memcpy(err->message, msg, sizeof(msg));
		}
		return -1;
	}
	/* the reply converted from XML: <Action>Result.Credentials.{...} */
	cJSON *r = cJSON_GetObjectItemCaseSensitive(reply, result);
	if (r) {
		/* the CLI caches the result object itself: {"Credentials":..,"AssumedRoleUser":..} */
		cJSON_DetachItemViaPointer(reply, r);
		reply_free(reply, result);
		reply = r;
	}
	const cJSON *cr = cJSON_GetObjectItemCaseSensitive(reply, "Credentials");
	int rc;
	if (!cJSON_IsObject(cr))
		rc = goman_err_set(err, GOMAN_ECREDS, GOMAN_CLASS_AUTH, "AssumeRoleFailed",
				   "%s %s: reply without Credentials", call->action, role_arn);
	else
		rc = gm_creds_from_json(cr, "SessionToken", source, out, err);
	if (rc == 0 && reply_out) {
		*reply_out = reply;
		reply = NULL;
	}
	reply_free(reply, result);
	return rc;
}

/* RoleArn, RoleSessionName and the optional arguments both actions share */
static int common_params(const struct gm_assume *a, struct goman_kvs *p, char *session,
			 size_t session_len)
{
	char dur[24];
	const char *name = a->session_name;
	if (!name) {
		/* what botocore does: a name unique enough to tell sessions apart in CloudTrail */
		snprintf(session, session_len, "goman-%" PRId64, goman_now_ms());
		name = session;
	}
	if (goman_kvs_add(p, "RoleArn", a->role_arn) < 0 ||
	    goman_kvs_add(p, "RoleSessionName", name) < 0)
		return -1;
	if (a->duration_s > 0) {
		snprintf(dur, sizeof(dur), "%ld", a->duration_s);
		if (goman_kvs_add(p, "DurationSeconds", dur) < 0)
			return -1;
	}
	return 0;
}

int gm_creds_assume_role(const struct gm_caller *c, const struct gm_assume *a,
			 const struct goman_creds *src, struct goman_creds *out, cJSON **reply,
			 struct goman_err *err)
{
	char session[64];
	struct goman_kvs params = {0};
	int rc = -1;
	if (common_params(a, &params, session, sizeof(session)) < 0 ||
	    (a->external_id && goman_kvs_add(&params, "ExternalId", a->external_id) < 0) ||
	    (a->mfa_serial && (goman_kvs_add(&params, "SerialNumber", a->mfa_serial) < 0 ||
			       goman_kvs_add(&params, "TokenCode", a->token_code) < 0))) {
		gm_err_oom(err);
		goto out;
	}
	struct gm_cc_call call = {
		.kind = GM_CC_QUERY_SIGNED,
		.service = "sts",
		.action = "AssumeRole",
		.region = a->region ? a->region : "us-east-1",
		.params = &params,
		.creds = src,
	};
	rc = sts_call(c, &call, "AssumeRoleResult", "assume-role", a->role_arn, out, reply, err);
out:
	goman_kvs_clear(&params);
	return rc;
}

int gm_creds_web_identity(const struct gm_caller *c, const struct gm_assume *a,
			  const char *token_file, struct goman_creds *out, cJSON **reply,
			  struct goman_err *err)
{
	char session[64];
	char *token = NULL;
	struct goman_kvs params = {0};
	int rc = -1;
	if (gm_read_secret_file(token_file, WEBID_TOKEN_MAX, "web identity token file", &token,
				err) != 0)
		goto out;
	if (common_params(a, &params, session, sizeof(session)) < 0 ||
	    goman_kvs_add(&params, "WebIdentityToken", token) < 0) {
		gm_err_oom(err);
		goto out;
	}
	struct gm_cc_call call = {
		.kind = GM_CC_QUERY_UNSIGNED,
		.service = "sts",
		.action = "AssumeRoleWithWebIdentity",
		.region = a->region ? a->region : "us-east-1",
		.params = &params,
	};
	rc = sts_call(c, &call, "AssumeRoleWithWebIdentityResult", "web-identity", a->role_arn, out,
		      reply, err);
out:
	/* the token and every copy of it (the kvs value) */
	for (size_t i = 0; i < params.n; i++)
		if (params.v[i].value && !strcmp(params.v[i].name, "WebIdentityToken"))
			explicit_bzero(params.v[i].value, strlen(params.v[i].value));
	goman_kvs_clear(&params);
	gm_wipe_free(token);
	return rc;
}
