/*
 * creds_http.c - credentials over HTTP: ECS container credentials and EC2 IMDSv2.
 *
 * ECS: AWS_CONTAINER_CREDENTIALS_RELATIVE_URI is appended to http://169.254.170.2; else
 * AWS_CONTAINER_CREDENTIALS_FULL_URI, which (as in the SDKs) must be https, or http to a
 * loopback host or to the ECS/EKS agent addresses, so that a stray variable cannot send
 * the authorization token to an arbitrary host in clear. The token comes from the file
 * named by AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE (re-read each time: EKS rotates it) or
 * AWS_CONTAINER_AUTHORIZATION_TOKEN, and goes in the Authorization header.
 *
 * IMDSv2: PUT /latest/api/token (X-aws-ec2-metadata-token-ttl-seconds), then with the
 * X-aws-ec2-metadata-token header GET /latest/meta-data/iam/security-credentials/ (role
 * name) and .../<role> (JSON). Endpoint AWS_EC2_METADATA_SERVICE_ENDPOINT, default
 * http://169.254.169.254. Short timeouts (1 s connect, 2 s total) because off EC2 nothing
 * answers. AWS_EC2_METADATA_DISABLED=true turns it off before any packet is sent.
 *
 * Ownership: *out is filled for the caller; tokens and reply bodies are wiped and freed
 * here. Nothing secret is logged (URLs and role names are not secret).
 * Errors: see creds_int.h (0 got, 1 not configured / not reachable, -1 failed).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <curl/curl.h>
#include <cjson/cJSON.h>
#include "goman/log.h"
#include "creds_int.h"
#include "bytes_int.h"

#define MD_CONNECT_MS 1000
#define MD_TIMEOUT_MS 2000
#define ECS_HOST "http://169.254.170.2"
#define IMDS_HOST "http://169.254.169.254"
#define IMDS_TTL "21600"

/* a parsed credentials reply: its secret key overwritten before the tree is freed */
static void wipe_json(cJSON *j)
{
	if (!j)
		return;
	cJSON *s = cJSON_GetObjectItemCaseSensitive(j, "SecretAccessKey");
	if (cJSON_IsString(s))
		explicit_bzero(s->valuestring, strlen(s->valuestring));
	cJSON_Delete(j);
}

/* One request; returns the body (malloc'd) when status is 200, else NULL with *status
 * set (0 = no answer) and err filled for transport errors. */
static char *md_request(struct goman_http *h, const char *method, const char *url,
			const struct goman_kvs *hdrs, long *status, struct goman_err *err)
{
	struct goman_http_req req = {
		.method = method,
		.url = url,
		.headers = hdrs,
		.timeout_ms = MD_TIMEOUT_MS,
		.connect_timeout_ms = MD_CONNECT_MS,
	};
	struct goman_http_resp resp;
	*status = 0;
	if (goman_http_perform(h, &req, &resp, err) < 0) {
		goman_http_resp_clear(&resp);
		return NULL;
	}
	*status = resp.status;
	char *body = NULL;
	if (resp.status == 200) {
		size_t len;
		body = goman_http_resp_take_body(&resp, &len);
		if (!body)
			body = strdup("");
	} else if (resp.body) {
		explicit_bzero(resp.body, resp.body_len);
	}
	goman_http_resp_clear(&resp);
	return body;
}

/* http allowed only to loopback and the container agent addresses; https anywhere */
static bool ecs_url_allowed(const char *url)
{
	bool ok = false;
	CURLU *u = curl_url();
	char *scheme = NULL, *host = NULL;
	if (!u || curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK)
		goto out;
	if (curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK)
		goto out;
	if (strcasecmp(scheme, "https") == 0)
		ok = true;
	else if (strcasecmp(scheme, "http") == 0)
		ok = goman_url_is_loopback(url) || strcmp(host, "169.254.170.2") == 0 ||
		     strcmp(host, "169.254.170.23") == 0 || strcasecmp(host, "[fd00:ec2::23]") == 0;
out:
	curl_free(scheme);
	curl_free(host);
	curl_url_cleanup(u);
	return ok;
}

/* The ECS authorization token, malloc'd; NULL and *failed=false when none is set. */
static char *ecs_token(bool *failed, struct goman_err *err)
{
	*failed = false;
	const char *file = gm_env("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE");
	char *tok = NULL;
	if (file) {
		FILE *f = fopen(file, "r");
		char buf[8192];
		size_t n = f ? fread(buf, 1, sizeof(buf) - 1, f) : 0;
		if (!f || ferror(f)) {
			if (f)
				fclose(f);
			*failed = true;
			goman_err_set(
				err, GOMAN_ECREDS, GOMAN_CLASS_AUTH, "ContainerCredentialsFailed",
				"cannot read AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE '%s'", file);
			return NULL;
		}
		fclose(f);
		buf[n] = '\0';
		tok = strdup(buf);
		explicit_bzero(buf, sizeof(buf));
	} else if (gm_env("AWS_CONTAINER_AUTHORIZATION_TOKEN")) {
		tok = strdup(gm_env("AWS_CONTAINER_AUTHORIZATION_TOKEN"));
	} else {
		return NULL;
	}
	if (!tok) {
		*failed = true;
		gm_err_oom(err);
		return NULL;
	}
	size_t l = strlen(tok);
	while (l && (tok[l - 1] == '\n' || tok[l - 1] == '\r' || tok[l - 1] == ' '))
		tok[--l] = '\0';
	if (strpbrk(tok, "\r\n")) { /* would split the header */
		gm_wipe_free(tok);
		*failed = true;
		goman_err_set(err, GOMAN_ECREDS, GOMAN_CLASS_AUTH, "ContainerCredentialsFailed",
			      "container authorization token holds a line break");
		return NULL;
	}
	return tok;
}

int gm_creds_ecs(struct goman_http *h, struct goman_creds *out, struct goman_err *err)
{
	const char *rel = gm_env("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI");
	const char *full = gm_env("AWS_CONTAINER_CREDENTIALS_FULL_URI");
	if (!rel && !full)
		return 1;
	char *url = NULL;
	if (rel) {
		size_t n = strlen(ECS_HOST) + strlen(rel) + 2;
		if (!(url = malloc(n)))
			return gm_err_oom(err);
		snprintf(url, n, "%s%s%s", ECS_HOST, rel[0] == '/' ? "" : "/", rel);
	} else {
		if (!ecs_url_allowed(full))
			return goman_err_set(
				err, GOMAN_ECREDS, GOMAN_CLASS_AUTH, "ContainerCredentialsFailed",
				"AWS_CONTAINER_CREDENTIALS_FULL_URI '%s' must be https or "
				"a loopback/container-agent http address",
				full);
		if (!(url = strdup(full)))
			return gm_err_oom(err);
	}
	bool failed;
	char *tok = ecs_token(&failed, err);
	int rc = -1;
	struct goman_kvs hdrs = {0};
	char *body = NULL;
	cJSON *j = NULL;
	if (failed)
		goto out;
	if (goman_kvs_add(&hdrs, "Accept", "application/json") < 0 ||
	    (tok && goman_kvs_add(&hdrs, "Authorization", tok) < 0)) {
		gm_err_oom(err);
		goto out;
	}
	long status;
	struct goman_err herr = GOMAN_ERR_INIT;
	goman_err_clear(&herr);
	goman_log(GOMAN_LOG_DEBUG, "CREDS", "container credentials from %s", url);
	if (!(body = md_request(h, "GET", url, &hdrs, &status, &herr))) {
		goman_err_set(err, GOMAN_ECREDS, GOMAN_CLASS_AUTH, "ContainerCredentialsFailed",
			      "container credentials from %s: %s", url,
			      status ? "HTTP error" : herr.message);
		if (status)
			err->http_status = (int)status;
		goto out;
	}
	j = cJSON_Parse(body);
	if (!cJSON_IsObject(j)) {
		goman_err_set(err, GOMAN_ECREDS, GOMAN_CLASS_AUTH, "ContainerCredentialsFailed",
			      "container credentials from %s: reply is not a JSON object", url);
		goto out;
	}
	rc = gm_creds_from_json(j, "Token", "ecs", out, err);
out:
	wipe_json(j);
	gm_wipe_free(body);
	if (hdrs.n > 1 && hdrs.v[1].value)
		explicit_bzero(hdrs.v[1].value, strlen(hdrs.v[1].value));
	goman_kvs_clear(&hdrs);
	gm_wipe_free(tok);
	free(url);
	return rc;
}

/* base URL of IMDS without trailing slash, malloc'd */
static char *imds_base(void)
{
	const char *e = gm_env("AWS_EC2_METADATA_SERVICE_ENDPOINT");
	char *b = strdup(e ? e : IMDS_HOST);
	if (b) {
		size_t l = strlen(b);
		while (l && b[l - 1] == '/')
			b[--l] = '\0';
	}
	return b;
}

/* GET base+path with the session token; 200 body or NULL. */
static char *imds_get(struct goman_http *h, const char *base, const char *path, const char *token,
		      long *status, struct goman_err *err)
{
	struct goman_kvs hdrs = {0};
	size_t n = strlen(base) + strlen(path) + 1;
	char *url = malloc(n);
	char *body = NULL;
	if (url && goman_kvs_add(&hdrs, "X-aws-ec2-metadata-token", token) == 0) {
		snprintf(url, n, "%s%s", base, path);
		body = md_request(h, "GET", url, &hdrs, status, err);
	}
	if (hdrs.n)
		explicit_bzero(hdrs.v[0].value, strlen(hdrs.v[0].value));
	goman_kvs_clear(&hdrs);
	free(url);
	return body;
}

/* The IMDSv2 session token, or NULL (not reachable, or refused). */
static char *imds_token(struct goman_http *h, const char *base)
{
	struct goman_kvs hdrs = {0};
	size_t n = strlen(base) + 32;
	char *url = malloc(n);
	char *tok = NULL;
	long status;
	struct goman_err err = GOMAN_ERR_INIT;
	goman_err_clear(&err);
	if (url && goman_kvs_add(&hdrs, "X-aws-ec2-metadata-token-ttl-seconds", IMDS_TTL) == 0) {
		snprintf(url, n, "%s/latest/api/token", base);
		tok = md_request(h, "PUT", url, &hdrs, &status, &err);
		if (!tok)
			goman_log(GOMAN_LOG_DEBUG, "CREDS", "no IMDSv2 token from %s: %s", url,
				  status ? "HTTP error" : err.message);
	}
	goman_kvs_clear(&hdrs);
	free(url);
	if (tok && (!*tok || strpbrk(tok, "\r\n"))) {
		gm_wipe_free(tok);
		tok = NULL;
	}
	return tok;
}

int gm_creds_imds(struct goman_http *h, struct goman_creds *out, struct goman_err *err)
{
	if (gm_env_true("AWS_EC2_METADATA_DISABLED"))
		return 1;
	char *base = imds_base();
	if (!base)
		return gm_err_oom(err);
	char *tok = imds_token(h, base);
	char *roles = NULL, *body = NULL, *path = NULL;
	cJSON *j = NULL;
	int rc = 1; /* unreachable or no role attached: not configured */
	long status;
	struct goman_err herr = GOMAN_ERR_INIT;
	goman_err_clear(&herr);
	if (!tok)
		goto out;
	roles = imds_get(h, base, "/latest/meta-data/iam/security-credentials/", tok, &status,
			 &herr);
	if (!roles)
		goto out;
	/* the first line is the role (an instance profile holds one role) */
	roles[strcspn(roles, "\r\n")] = '\0';
	if (!*roles || strchr(roles, '/'))
		goto out;
	size_t n = strlen(roles) + 64;
	if (!(path = malloc(n))) {
		rc = gm_err_oom(err);
		goto out;
	}
	snprintf(path, n, "/latest/meta-data/iam/security-credentials/%s", roles);
	if (!(body = imds_get(h, base, path, tok, &status, &herr))) {
		rc = goman_err_set(err, GOMAN_ECREDS, GOMAN_CLASS_AUTH, "InstanceMetadataFailed",
				   "instance metadata credentials for role '%s': %s", roles,
				   status ? "HTTP error" : herr.message);
		goto out;
	}
	j = cJSON_Parse(body);
	const cJSON *code = cJSON_GetObjectItemCaseSensitive(j, "Code");
	if (!cJSON_IsObject(j) ||
	    (code && (!cJSON_IsString(code) || strcmp(code->valuestring, "Success") != 0))) {
		rc = goman_err_set(err, GOMAN_ECREDS, GOMAN_CLASS_AUTH, "InstanceMetadataFailed",
				   "instance metadata credentials for role '%s': bad reply", roles);
		goto out;
	}
	rc = gm_creds_from_json(j, "Token", "imds", out, err);
	if (rc == 0)
		goman_log(GOMAN_LOG_DEBUG, "CREDS", "instance metadata credentials of role %s",
			  roles);
out:
	wipe_json(j);
	gm_wipe_free(body);
	free(path);
	free(roles);
	gm_wipe_free(tok);
	free(base);
	return rc;
}

char *gm_imds_region(struct goman_http *h)
{
	if (gm_env_true("AWS_EC2_METADATA_DISABLED"))
		return NULL;
	char *base = imds_base();
	char *tok = base ? imds_token(h, base) : NULL;
	char *region = NULL;
	long status;
	if (tok) {
		region =
			imds_get(h, base, "/latest/meta-data/placement/region", tok, &status, NULL);
		if (region) {
			region[strcspn(region, " \r\n")] = '\0';
			if (!*region) {
				free(region);
				region = NULL;
			}
		}
	}
	gm_wipe_free(tok);
	free(base);
	return region;
}
