/*
 * aws_s3.c - S3 REST: URLs in path style (custom or loopback endpoints, bucket names that
 * are not DNS labels) or virtual-host style (AWS), object keys of any characters encoded
 * once with '/' kept, the method an action implies, and CreateBucket's location body.
 * Signing (x-amz-content-sha256, no double encoding) is aws.c's job with s3 = true.
 *
 * Presigned GET URLs (goman_s3_presign: goman-install's air-gap downloads) are built here
 * too, with the same URL rules, and signed by sigv4.c in presign mode.
 *
 * Ownership: gm_s3_url returns a malloc'd URL; gm_s3_prepare fills a caller-owned
 * struct gm_aws_req (gm_aws_req_clear); goman_s3_presign's URL is the caller's (wipe it).
 * Errors: -1/NULL with struct goman_err filled.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "goman/clock.h"
#include "goman/http.h"
#include "goman/s3.h"
#include "goman/sigv4.h"
#include "aws_int.h"
#include "bytes_int.h"

bool gm_s3_bucket_dns_ok(const char *b)
{
	size_t n = b ? strlen(b) : 0;
	if (n < 3 || n > 63)
		return false;
	if (!islower((unsigned char)b[0]) && !isdigit((unsigned char)b[0]))
		return false;
	if (!islower((unsigned char)b[n - 1]) && !isdigit((unsigned char)b[n - 1]))
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)b[i];
		/* dots are legal in names but break the TLS wildcard of virtual hosts */
		if (!(islower(c) || isdigit(c) || c == '-'))
			return false;
	}
	return true;
}

char *gm_s3_url(const char *endpoint, const char *bucket, const char *key, const char *query,
		bool path_style)
{
	const char *hoststart = strstr(endpoint, "://");
	hoststart = hoststart ? hoststart + 3 : endpoint;
	size_t schemelen = (size_t)(hoststart - endpoint);
	char *ekey = NULL, *ebucket = NULL;
	if (key && !(ekey = goman_uri_encode(key, strlen(key), true)))
		return NULL;
	if (bucket && !(ebucket = goman_uri_encode(bucket, strlen(bucket), false))) {
		free(ekey);
		return NULL;
	}
	size_t need = strlen(endpoint) + (ebucket ? strlen(ebucket) : 0) +
		      (ekey ? strlen(ekey) : 0) + (query ? strlen(query) : 0) + 8;
	char *u = malloc(need);
	if (u) {
		const char *q = query && *query ? "?" : "";
		const char *qs = query ? query : "";
		if (!ebucket)
			snprintf(u, need, "%s/%s%s", endpoint, q, qs);
		else if (path_style || !gm_s3_bucket_dns_ok(bucket))
			snprintf(u, need, "%s/%s%s%s%s%s", endpoint, ebucket, ekey ? "/" : "",
				 ekey ? ekey : "", q, qs);
		else
			snprintf(u, need, "%.*s%s.%s/%s%s%s", (int)schemelen, endpoint, ebucket,
				 hoststart, ekey ? ekey : "", q, qs);
	}
	free(ekey);
	free(ebucket);
	return u;
}

struct s3_action {
	const char *action, *method, *query;
	bool needs_key, raw;
};

static const struct s3_action s3_actions[] = {
	{"ListBuckets", "GET", NULL, false, false},
	{"CreateBucket", "PUT", NULL, false, false},
	{"DeleteBucket", "DELETE", NULL, false, false},
	{"HeadBucket", "HEAD", NULL, false, false},
	{"ListObjectsV2", "GET", "list-type=2", false, false},
	{"PutObject", "PUT", NULL, true, false},
	{"GetObject", "GET", NULL, true, true},
	{"HeadObject", "HEAD", NULL, true, false},
	{"DeleteObject", "DELETE", NULL, true, false},
};

int gm_s3_prepare(const struct goman_aws_call *call, const char *endpoint, const char *region,
		  bool path_style, struct gm_aws_req *out, struct goman_err *err)
{
	const struct s3_action *act = NULL;
	for (size_t i = 0; call->action && i < sizeof(s3_actions) / sizeof(s3_actions[0]); i++)
		if (strcmp(s3_actions[i].action, call->action) == 0)
			act = &s3_actions[i];
	const char *method = call->method ? call->method : act ? act->method : NULL;
	if (!method)
		return goman_err_set(err, GOMAN_EINVAL, GOMAN_CLASS_BAD_INPUT, "BadInput",
				     "s3 action '%s' needs an explicit method",
				     call->action ? call->action : "");
	if (strlen(method) >= sizeof(out->method))
		return goman_err_set(err, GOMAN_EINVAL, GOMAN_CLASS_BAD_INPUT, "BadInput",
				     "bad method '%s'", method);
	if (call->bucket && !*call->bucket)
		return goman_err_set(err, GOMAN_EINVAL, GOMAN_CLASS_BAD_INPUT, "BadInput",
				     "empty bucket name");
	if (act && act->needs_key && (!call->bucket || !call->key || !*call->key))
		return goman_err_set(err, GOMAN_EINVAL, GOMAN_CLASS_BAD_INPUT, "BadInput",
				     "%s needs a bucket and a key", act->action);
	if (call->key && !call->bucket)
		return goman_err_set(err, GOMAN_EINVAL, GOMAN_CLASS_BAD_INPUT, "BadInput",
				     "a key needs a bucket");
	snprintf(out->method, sizeof(out->method), "%s", method);
	const char *query = call->query ? call->query : act ? act->query : NULL;
	out->url = gm_s3_url(endpoint, call->bucket, call->key, query, path_style);
	if (!out->url || (call->headers && goman_kvs_copy(&out->headers, call->headers) != 0))
		return gm_err_oom(err);
	if (call->body_len) {
		out->body = malloc(call->body_len);
		if (!out->body)
			return gm_err_oom(err);
		memcpy(out->body, call->body, call->body_len);
		out->body_len = call->body_len;
	} else if (act && strcmp(act->action, "CreateBucket") == 0 && region &&
		   strcmp(region, "us-east-1") != 0) {
		/* outside us-east-1 the bucket's region must be stated in the body */
		static const char fmt[] =
			"<CreateBucketConfiguration xmlns=\"http://s3.amazonaws.com/doc/"
			"2006-03-01/\"><LocationConstraint>%s</LocationConstraint>"
			"</CreateBucketConfiguration>";
		size_t n = sizeof(fmt) + strlen(region);
		out->body = malloc(n);
		if (!out->body)
			return gm_err_oom(err);
		snprintf(out->body, n, fmt, region);
		out->body_len = strlen(out->body);
	}
	out->s3 = true;
	out->raw_reply = (act && act->raw) || (!act && call->key && strcmp(method, "GET") == 0);
	out->reply = GM_REPLY_S3;
	return 0;
}

/* ---- presigned URLs ------------------------------------------------------------------ */

bool goman_s3_endpoint_is_aws(const char *url)
{
	static const char suffix[] = ".amazonaws.com";
	if (!url || goman_url_is_loopback(url))
		return false;
	const char *sep = strstr(url, "://");
	const char *host = sep ? sep + 3 : url;
	size_t len = strcspn(host, ":/?#");
	size_t sl = sizeof(suffix) - 1;
	if (len <= sl)
		return false;
	for (size_t i = 0; i < sl; i++)
		if (tolower((unsigned char)host[len - sl + i]) != suffix[i])
			return false;
	return true;
}

long goman_presign_lifetime(long want_s, int64_t expires_ms, int64_t now_ms)
{
	long life = want_s < 1 ? 1 : want_s > 604800 ? 604800 : want_s;
	if (expires_ms <= 0)
		return life;
	if (expires_ms <= now_ms)
		return -1;
	int64_t left = (expires_ms - now_ms) / 1000 - 60;
	if (left < 1)
		return -1;
	return left < life ? (long)left : life;
}

char *goman_s3_presign(const struct goman_s3_presign *p, const struct goman_creds *cr,
		       struct goman_err *err)
{
	if (!p || !cr || !p->endpoint || !p->region || !p->bucket || !*p->bucket || !p->key ||
	    !*p->key)
		return goman_err_set(err, GOMAN_EINVAL, GOMAN_CLASS_BAD_INPUT, "BadInput", "%s",
				     "presign: endpoint, region, bucket and key are needed"),
		       NULL;
	int64_t now = p->time_ms > 0 ? p->time_ms : goman_now_ms();
	long life = goman_presign_lifetime(p->expires_s, cr->expires_ms, now);
	if (life < 0)
		return goman_err_set(err, GOMAN_ECREDS, GOMAN_CLASS_AUTH, "CredentialsExpiring",
				     "%s",
				     "the credentials expire within a minute: too soon to presign"),
		       NULL;
	char *u = gm_s3_url(p->endpoint, p->bucket, p->key, NULL,
			    !goman_s3_endpoint_is_aws(p->endpoint));
	if (!u)
		return gm_err_oom(err), NULL;
	struct goman_sigv4_params sp = {.method = "GET",
					.url = u,
					.service = "s3",
					.region = p->region,
					.time_ms = now,
					.presign_expires = life,
					.s3 = true,
					.unsigned_payload = true,
					.normalize = -1};
	struct goman_kvs h = {0};
	struct goman_sigv4_out out = {0};
	char *url = NULL;
	if (goman_sigv4_sign(&sp, cr, &h, false, &out, err) == 0) {
		url = out.url;
		out.url = NULL;
	}
	goman_sigv4_out_clear(&out);
	goman_kvs_clear(&h);
	free(u);
	return url;
}
