/*
 * creds_sso.c - IAM Identity Center (SSO) role credentials, the way the AWS CLI gets them.
 *
 * `aws sso login` leaves an access token in ~/.aws/sso/cache/<SHA-1 of the sso_session name,
 * or of the start URL for the legacy profile form>.json: {"startUrl","region","accessToken",
 * "expiresAt", and for sso_session logins "clientId","clientSecret","registrationExpiresAt",
 * "refreshToken"}. As botocore's SSOTokenProvider does, a session token within 15 minutes
 * of its expiry is refreshed with SSO-OIDC CreateToken (grant refresh_token, POST /token)
 * and written back in place (atomically, 0600); the legacy form is never refreshed. With
 * the token, the SSO portal's GetRoleCredentials (GET /federation/credentials, bearer in
 * x-amz-sso_bearer_token) gives the role's credentials. Both calls are unsigned REST-JSON
 * through the chain's caller; the hosts are oidc.<sso_region>.amazonaws.com and
 * portal.sso.<sso_region>.amazonaws.com (AWS_ENDPOINT_URL_SSO_OIDC / _SSO override).
 *
 * No login, an expired one that cannot be refreshed, or a token the portal refuses: one
 * error, ECREDS "SSOLoginRequired", that names `aws sso login --profile NAME` (exit 78).
 *
 * Ownership: *out and *reply (the CLI cache document) are the caller's; every buffer and
 * document that held a token or a secret key is wiped before it is freed.
 * Errors: -1 with err; messages name files and profiles, never tokens or keys.
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>
#include "goman/clock.h"
#include "goman/log.h"
#include "goman/sigv4.h"
#include "bytes_int.h"
#include "creds_int.h"

/* botocore's SSOTokenProvider._REFRESH_WINDOW */
#define SSO_REFRESH_WINDOW_MS (15 * 60 * 1000)

static int login_required(const struct gm_sso *s, const char *why, struct goman_err *err)
{
	return goman_err_set(err, GOMAN_ECREDS, GOMAN_CLASS_AUTH, "SSOLoginRequired",
			     "profile %s: %s; run `aws sso login --profile %s`", s->profile, why,
			     s->profile);
}

int gm_sso_token_parse(const cJSON *doc, const char **access, int64_t *expires_ms)
{
	const cJSON *t = cJSON_GetObjectItemCaseSensitive(doc, "accessToken");
	const cJSON *e = cJSON_GetObjectItemCaseSensitive(doc, "expiresAt");
	if (!cJSON_IsString(t) || !*t->valuestring || !cJSON_IsString(e) ||
	    goman_parse_time(e->valuestring, expires_ms) != 0)
		return -1;
	*access = t->valuestring;
	return 0;
}

static const char *jstr(const cJSON *o, const char *name)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
	return cJSON_IsString(v) && *v->valuestring ? v->valuestring : NULL;
}

/* CreateToken with the refresh token; on success tok is updated in place (botocore's new
 * token: accessToken, expiresAt, refreshToken when given). 0, or -1 (err says why). */
static int refresh_token(const struct gm_caller *c, const struct gm_sso *s, cJSON *tok,
			 struct goman_err *err)
{
	const char *rt = jstr(tok, "refreshToken"), *id = jstr(tok, "clientId"),
		   *secret = jstr(tok, "clientSecret"), *reg = jstr(tok, "registrationExpiresAt");
	int64_t reg_ms = 0;
	if (!rt || !id || !secret || !reg || goman_parse_time(reg, &reg_ms) != 0 ||
	    reg_ms <= goman_now_ms())
		return goman_err_set(err, GOMAN_ECREDS, GOMAN_CLASS_AUTH, "SSOLoginRequired",
				     "the cached login cannot be refreshed");
	cJSON *body = cJSON_CreateObject(), *reply = NULL;
	char *text = NULL;
	int rc = -1;
	if (!body || !cJSON_AddStringToObject(body, "clientId", id) ||
	    !cJSON_AddStringToObject(body, "clientSecret", secret) ||
	    !cJSON_AddStringToObject(body, "grantType", "refresh_token") ||
	    !cJSON_AddStringToObject(body, "refreshToken", rt) ||
	    !(text = cJSON_PrintUnformatted(body))) {
		gm_err_oom(err);
		goto out;
	}
	struct gm_cc_call call = {.kind = GM_CC_REST_JSON,
				  .service = "sso-oidc",
				  .action = "CreateToken",
				  .region = s->region,
				  .method = "POST",
				  .path = "/token",
				  .body = text};
	if (!c || !c->fn || c->fn(c->ctx, &call, &reply, err) != 0)
		goto out;
	const char *access = jstr(reply, "accessToken");
	const cJSON *in = cJSON_GetObjectItemCaseSensitive(reply, "expiresIn");
	if (!access || !cJSON_IsNumber(in) || !isfinite(in->valuedouble) || in->valuedouble <= 0 ||
	    in->valuedouble > 1e9) {
		goman_err_set(err, GOMAN_ECREDS, GOMAN_CLASS_AUTH, "SSOLoginRequired",
			      "CreateToken answered without a token");
		goto out;
	}
	char iso[21];
	gm_iso_utc(goman_now_ms() + (int64_t)in->valuedouble * 1000, iso);
	const char *nrt = jstr(reply, "refreshToken");
	if (!cJSON_ReplaceItemInObjectCaseSensitive(tok, "accessToken",
						    cJSON_CreateString(access)) ||
	    !cJSON_ReplaceItemInObjectCaseSensitive(tok, "expiresAt", cJSON_CreateString(iso)) ||
	    (nrt && !cJSON_ReplaceItemInObjectCaseSensitive(tok, "refreshToken",
							    cJSON_CreateString(nrt)))) {
		gm_err_oom(err);
		goto out;
	}
	rc = 0;
out:
	gm_json_wipe_delete(body);
	gm_json_wipe_delete(reply);
	if (text) {
		explicit_bzero(text, strlen(text));
		free(text);
	}
	return rc;
}

/* The cached token (refreshed and saved when due), as a document the caller wipes. */
static cJSON *load_token(const struct gm_caller *c, const struct gm_sso *s, struct goman_err *err)
{
	char key[41], rel[80];
	if (gm_sha1_hex(s->session ? s->session : s->start_url, key) != 0) {
		gm_err_oom(err);
		return NULL;
	}
	snprintf(rel, sizeof(rel), ".aws/sso/cache/%s.json", key);
	char *path = gm_home_path(rel), *dir = gm_home_path(".aws/sso/cache");
	size_t len = 0;
	int rc = 1;
	char *text = path ? gm_read_private_file(path, &len, &rc, err) : NULL;
	cJSON *tok = text ? cJSON_ParseWithLength(text, len) : NULL;
	bool found = text != NULL;
	if (text) {
		explicit_bzero(text, len);
		free(text);
	}
	const char *access;
	int64_t exp;
	if (rc < 0) {
		/* err names the file and its owner */
	} else if (!tok || gm_sso_token_parse(tok, &access, &exp) != 0) {
		login_required(s,
			       found ? "the cached SSO login is not valid JSON with accessToken "
				       "and expiresAt"
				     : "there is no cached SSO login",
			       err);
		rc = -1;
	} else if (s->session && exp - goman_now_ms() < SSO_REFRESH_WINDOW_MS) {
		struct goman_err e = GOMAN_ERR_INIT;
		if (refresh_token(c, s, tok, &e) == 0) {
			char *out = cJSON_PrintUnformatted(tok);
			if (out)
				gm_write_private_file(dir, path, out, NULL);
			gm_wipe_free(out);
			gm_sso_token_parse(tok, &access, &exp);
		} else {
			goman_log(GOMAN_LOG_INFO, "CREDS", "SSO token refresh for %s failed: %s",
				  s->profile, e.code[0] ? e.code : e.message);
		}
	}
	if (rc >= 0 && tok && gm_sso_token_parse(tok, &access, &exp) == 0 &&
	    exp <= goman_now_ms()) {
		login_required(s, "the cached SSO login has expired", err);
		rc = -1;
	}
	free(path);
	free(dir);
	if (rc < 0) {
		gm_json_wipe_delete(tok);
		return NULL;
	}
	return tok;
}

/* GetRoleCredentials' reply into creds and the CLI's cache document. */
static int role_creds(const struct gm_sso *s, const cJSON *reply, struct goman_creds *out,
		      cJSON **doc, struct goman_err *err)
{
	const cJSON *rc = cJSON_GetObjectItemCaseSensitive(reply, "roleCredentials");
	const char *ak = jstr(rc, "accessKeyId"), *sk = jstr(rc, "secretAccessKey"),
		   *st = jstr(rc, "sessionToken");
	const cJSON *ex = cJSON_GetObjectItemCaseSensitive(rc, "expiration");
	if (!ak || !sk || !cJSON_IsNumber(ex) || !isfinite(ex->valuedouble) ||
	    ex->valuedouble <= (double)goman_now_ms() || ex->valuedouble > 1e15)
		return goman_err_set(err, GOMAN_ECREDS, GOMAN_CLASS_AUTH, "InvalidCredentials",
				     "profile %s: GetRoleCredentials answered without usable "
				     "credentials",
				     s->profile);
	int64_t exp = (int64_t)ex->valuedouble;
	if (gm_creds_set(out, ak, sk, st, exp, "sso", err) != 0)
		return -1;
	char iso[21];
	gm_iso_utc(exp, iso);
	cJSON *d = cJSON_CreateObject(), *c = cJSON_CreateObject();
	if (!d || !c || !cJSON_AddStringToObject(d, "ProviderType", "sso") ||
	    !cJSON_AddItemToObject(d, "Credentials", c)) {
		cJSON_Delete(d);
		cJSON_Delete(c);
		*doc = NULL; /* the credentials are good; they are only not cached */
		return 0;
	}
	cJSON_AddStringToObject(c, "AccessKeyId", ak);
	cJSON_AddStringToObject(c, "SecretAccessKey", sk);
	cJSON_AddStringToObject(c, "SessionToken", st ? st : "");
	cJSON_AddStringToObject(c, "Expiration", iso);
	cJSON_AddStringToObject(c, "AccountId", s->account_id);
	*doc = d;
	return 0;
}

int gm_creds_sso(const struct gm_caller *c, const struct gm_sso *s, struct goman_creds *out,
		 cJSON **doc, struct goman_err *err)
{
	cJSON *tok = load_token(c, s, err), *reply = NULL;
	char *acct = goman_uri_encode(s->account_id, strlen(s->account_id), false);
	char *role = goman_uri_encode(s->role_name, strlen(s->role_name), false);
	char *path = NULL;
	int rc = -1;
	if (!tok)
		goto out;
	size_t n = (acct ? strlen(acct) : 0) + (role ? strlen(role) : 0) + 64;
	if (!acct || !role || !(path = malloc(n))) {
		gm_err_oom(err);
		goto out;
	}
	snprintf(path, n, "/federation/credentials?account_id=%s&role_name=%s", acct, role);
	const char *access = NULL;
	int64_t exp;
	gm_sso_token_parse(tok, &access, &exp);
	struct gm_cc_call call = {.kind = GM_CC_REST_JSON,
				  .service = "sso",
				  .action = "GetRoleCredentials",
				  .region = s->region,
				  .method = "GET",
				  .path = path,
				  .bearer_header = "x-amz-sso_bearer_token",
				  .bearer = access};
	goman_log(GOMAN_LOG_DEBUG, "CREDS", "SSO GetRoleCredentials %s for profile %s",
		  s->role_name, s->profile);
	if (!c || !c->fn) {
		goman_err_set(err, GOMAN_ECREDS, GOMAN_CLASS_AUTH, "NoCaller",
			      "profile %s: this credential chain has no AWS client to call SSO",
			      s->profile);
	} else if (c->fn(c->ctx, &call, &reply, err) != 0) {
		if (err && (!strcmp(err->code, "UnauthorizedException") || err->http_status == 401))
			login_required(s, "the SSO portal refused the cached login", err);
	} else {
		rc = role_creds(s, reply, out, doc, err);
	}
out:
	gm_json_wipe_delete(tok);
	gm_json_wipe_delete(reply);
	free(acct);
	free(role);
	free(path);
	return rc;
}
