/*
 * signreq.c - goman-sign's record: a request to sign as JSON in, and the JSON shapes of its
 * answer out (see goman/signreq.h). URLs are taken apart with libcurl's URL API, never by
 * hand. struct goman_signreq owns copies of all its strings; goman_signreq_clear() frees
 * them. Bad input comes back as -1 with a BadInput goman_err.
 */
#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <curl/curl.h>
#include <cjson/cJSON.h>
#include <openssl/evp.h>
#include "goman/clock.h"
#include "goman/creds.h"
#include "goman/signreq.h"
#include "aws_int.h"
#include "jsonl_int.h"
#include "bytes_int.h"

static int bad(struct goman_err *err, const char *what, const char *field)
{
	goman_err_clear(err);
	return goman_err_set(err, GOMAN_EINVAL, GOMAN_CLASS_BAD_INPUT, "BadInput", "\"%s\" %s",
			     field, what);
}

/* Optional string field: 0 absent (or null), 1 copied into *out, -1 wrong type. */
static int get_str(const cJSON *rec, const char *name, char **out, struct goman_err *err)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(rec, name);
	if (!v || cJSON_IsNull(v))
		return 0;
	if (!cJSON_IsString(v))
		return bad(err, "must be a string", name);
	*out = strdup(v->valuestring);
	return *out ? 1 : gm_err_oom(err);
}

/* Optional boolean field into *out (-1 when absent). */
static int get_bool(const cJSON *rec, const char *name, int *out, struct goman_err *err)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(rec, name);
	*out = -1;
	if (!v || cJSON_IsNull(v))
		return 0;
	if (!cJSON_IsBool(v))
		return bad(err, "must be true or false", name);
	*out = cJSON_IsTrue(v) ? 1 : 0;
	return 0;
}

/* A header that would change the request on the wire is refused: a CR or LF in a value
 * ends the header and starts another, and a name that is not an HTTP token is not a name. */
static int add_header(struct goman_signreq *r, const char *name, const char *value,
		      struct goman_err *err)
{
	const char *n = name;
	for (; *n; n++)
		if ((unsigned char)*n <= 0x20 || (unsigned char)*n >= 0x7f ||
		    strchr("\"(),/:;<=>?@[\\]{}", *n))
			break;
	if (!*name || *n)
		return bad(err, "names must be HTTP tokens (no spaces, ':' or control bytes)",
			   "headers");
	if (!gm_header_value_ok(value))
		return bad(err, "values must not hold control bytes (CR, LF, NUL)", "headers");
	return goman_kvs_add(&r->headers, name, value) ? gm_err_oom(err) : 0;
}

static int get_headers(const cJSON *h, struct goman_signreq *r, struct goman_err *err)
{
	const cJSON *it;
	if (!h || cJSON_IsNull(h))
		return 0;
	if (cJSON_IsObject(h)) {
		cJSON_ArrayForEach (it, h) {
			if (!cJSON_IsString(it))
				return bad(err, "values must be strings", "headers");
			if (add_header(r, it->string, it->valuestring, err))
				return -1;
		}
		return 0;
	}
	if (!cJSON_IsArray(h))
		return bad(err, "must be an object or an array of [name, value] pairs", "headers");
	r->headers_array = true;
	cJSON_ArrayForEach (it, h) {
		const cJSON *n = cJSON_GetArrayItem(it, 0), *v = cJSON_GetArrayItem(it, 1);
		if (!cJSON_IsArray(it) || cJSON_GetArraySize(it) != 2 || !cJSON_IsString(n) ||
		    !cJSON_IsString(v))
			return bad(err, "items must be [name, value] pairs of strings", "headers");
		if (add_header(r, n->valuestring, v->valuestring, err))
			return -1;
	}
	return 0;
}

int goman_signreq_parse(const cJSON *rec, struct goman_signreq *r, struct goman_err *err)
{
	char *tm = NULL;
	const cJSON *v;
	memset(r, 0, sizeof(*r));
	r->sign_body = r->unsigned_payload = r->normalize = -1;
	if (get_str(rec, "url", &r->url, err) < 0 || get_str(rec, "method", &r->method, err) < 0 ||
	    get_str(rec, "body", &r->body, err) < 0 ||
	    get_str(rec, "service", &r->service, err) < 0 ||
	    get_str(rec, "region", &r->region, err) < 0 || get_str(rec, "time", &tm, err) < 0)
		goto fail;
	if (!r->url) {
		bad(err, "is missing", "url");
		goto fail;
	}
	if (goman_signreq_check_url(r->url, err))
		goto fail;
	if (get_headers(cJSON_GetObjectItemCaseSensitive(rec, "headers"), r, err))
		goto fail;
	r->body_len = r->body ? strlen(r->body) : 0;
	if (!r->method && !(r->method = strdup(r->body ? "POST" : "GET"))) {
		gm_err_oom(err);
		goto fail;
	}
	for (char *m = r->method; *m; m++)
		if (!isupper((unsigned char)*m)) {
			bad(err, "must be an upper-case HTTP method", "method");
			goto fail;
		}
	if (r->region && !goman_region_ok(r->region)) {
		bad(err, "must be a region name (letters, digits and '-', at most 63)", "region");
		goto fail;
	}
	if (tm && goman_parse_time(tm, &r->time_ms)) {
		bad(err, "must be an ISO 8601 UTC time such as 2015-08-30T12:36:00Z", "time");
		goto fail;
	}
	v = cJSON_GetObjectItemCaseSensitive(rec, "presign");
	if (v && !cJSON_IsNull(v) && !cJSON_IsFalse(v)) {
		/* AWS accepts 1 s to 7 days */
		if (!cJSON_IsNumber(v) || v->valuedouble < 1 || v->valuedouble > 604800 ||
		    v->valuedouble != floor(v->valuedouble)) {
			bad(err, "must be a whole number of seconds from 1 to 604800", "presign");
			goto fail;
		}
		r->presign = (long)v->valuedouble;
	}
	int ost;
	if (get_bool(rec, "sign_body", &r->sign_body, err) ||
	    get_bool(rec, "unsigned_payload", &r->unsigned_payload, err) ||
	    get_bool(rec, "normalize", &r->normalize, err) ||
	    get_bool(rec, "omit_session_token", &ost, err))
		goto fail;
	r->omit_session_token = ost == 1;
	free(tm);
	return 0;
fail:
	free(tm);
	goman_signreq_clear(r);
	return -1;
}

void goman_signreq_clear(struct goman_signreq *r)
{
	if (!r)
		return;
	free(r->method);
	free(r->url);
	free(r->body);
	free(r->service);
	free(r->region);
	goman_kvs_clear(&r->headers);
	memset(r, 0, sizeof(*r));
	r->sign_body = r->unsigned_payload = r->normalize = -1;
}

/* Host of url, lower-cased, malloc'd; NULL when url does not parse or is not http(s). */
static char *url_host(const char *url)
{
	CURLU *u = curl_url();
	char *scheme = NULL, *host = NULL, *out = NULL;
	if (!u)
		return NULL;
	if (curl_url_set(u, CURLUPART_URL, url, CURLU_NON_SUPPORT_SCHEME) == CURLUE_OK &&
	    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
	    (strcmp(scheme, "http") == 0 || strcmp(scheme, "https") == 0) &&
	    curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK && host[0]) {
		out = strdup(host);
		for (char *p = out; p && *p; p++)
			*p = (char)tolower((unsigned char)*p);
	}
	curl_free(scheme);
	curl_free(host);
	curl_url_cleanup(u);
	return out;
}

int goman_signreq_check_url(const char *url, struct goman_err *err)
{
	char *h = url_host(url);
	if (!h)
		return bad(err, "must be an absolute http:// or https:// URL with a host", "url");
	free(h);
	return 0;
}

/* "us-west-2", "eu-central-1", "us-gov-west-1", "cn-north-1" */
static bool looks_like_region(const char *s, size_t n)
{
	return n >= 4 && memchr(s, '-', n) && isdigit((unsigned char)s[n - 1]) &&
	       isalpha((unsigned char)s[0]);
}

static char *dupn(const char *s, size_t n)
{
	char *p = malloc(n + 1);
	if (p) {
		memcpy(p, s, n);
		p[n] = '\0';
	}
	return p;
}

void goman_signreq_guess(const char *url, char **service, char **region)
{
	*service = *region = NULL;
	char *host = url_host(url);
	if (!host)
		return;
	static const char *const suffixes[] = {".amazonaws.com", ".amazonaws.com.cn"};
	size_t hl = strlen(host), base = 0;
	for (size_t i = 0; i < 2 && !base; i++) {
		size_t sl = strlen(suffixes[i]);
		if (hl > sl && strcmp(host + hl - sl, suffixes[i]) == 0)
			base = hl - sl;
	}
	if (!base) {
		free(host);
		return;
	}
	host[base] = '\0';
	/* labels of what is left: [bucket.]s3[.dualstack][.region] or svc[.region] */
	const char *lab[16];
	size_t len[16], n = 0;
	for (char *p = host; n < 16;) {
		char *dot = strchr(p, '.');
		lab[n] = p;
		len[n++] = dot ? (size_t)(dot - p) : strlen(p);
		if (!dot)
			break;
		p = dot + 1;
	}
	for (size_t i = 0; i < n; i++) {
		bool s3 = len[i] == 2 && memcmp(lab[i], "s3", 2) == 0;
		bool s3dash = len[i] > 3 && memcmp(lab[i], "s3-", 3) == 0;
		if (!s3 && !s3dash)
			continue;
		*service = strdup("s3");
		const char *r = NULL;
		size_t rl = 0;
		if (s3dash && looks_like_region(lab[i] + 3, len[i] - 3))
			r = lab[i] + 3, rl = len[i] - 3;
		for (size_t k = i + 1; !r && k < n; k++)
			if (looks_like_region(lab[k], len[k]))
				r = lab[k], rl = len[k];
		*region = r ? dupn(r, rl) : strdup("us-east-1");
		free(host);
		return;
	}
	*service = dupn(lab[0], len[0]);
	if (n >= 2 && looks_like_region(lab[1], len[1]))
		*region = dupn(lab[1], len[1]);
	else if (n == 1 && (strcmp(host, "sts") == 0 || strcmp(host, "iam") == 0))
		*region = strdup("us-east-1"); /* the global endpoints sign for us-east-1 */
	free(host);
}

cJSON *goman_signreq_headers_json(const struct goman_kvs *h, bool as_array)
{
	cJSON *out = as_array ? cJSON_CreateArray() : cJSON_CreateObject();
	for (size_t i = 0; out && i < h->n; i++) {
		if (as_array) {
			const char *pair[2] = {h->v[i].name, h->v[i].value};
			cJSON *p = cJSON_CreateStringArray(pair, 2);
			if (!p || !cJSON_AddItemToArray(out, p)) {
				cJSON_Delete(p);
				cJSON_Delete(out);
				return NULL;
			}
		} else if (!cJSON_AddStringToObject(out, h->v[i].name, h->v[i].value)) {
			cJSON_Delete(out);
			return NULL;
		}
	}
	return out;
}

cJSON *goman_signreq_response_json(long status, const struct goman_kvs *headers, const char *body,
				   size_t body_len)
{
	cJSON *o = cJSON_CreateObject();
	if (!o)
		return NULL;
	cJSON_AddNumberToObject(o, "status", (double)status);
	cJSON *h = goman_signreq_headers_json(headers, false);
	if (h)
		cJSON_AddItemToObject(o, "headers", h);
	if (!body)
		body = "", body_len = 0;
	bool text = !memchr(body, '\0', body_len) &&
		    gm_utf8_invalid_at((const unsigned char *)body, body_len) == body_len;
	if (text) {
		char *copy = dupn(body, body_len); /* body need not end in '\0' */
		if (copy)
			cJSON_AddStringToObject(o, "body", copy);
		free(copy);
	} else {
		char *b64 = malloc(4 * ((body_len + 2) / 3) + 1);
		if (b64) {
			EVP_EncodeBlock((unsigned char *)b64, (const unsigned char *)body,
					(int)body_len);
			cJSON_AddStringToObject(o, "body_base64", b64);
			free(b64);
		}
	}
	return o;
}
