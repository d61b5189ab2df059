/*
 * test_sigv4.c - SigV4 against data: every case of AWS's own suite (tests/vectors/aws-sigv4,
 * carried unmodified with its LICENSE and NOTICE) and of tests/vectors/sigv4 (our own, expected values computed once with botocore),
 * each in header mode and presigned-query mode, one cmocka test per case per mode.
 * Plus the behaviours the files cannot show: re-signing replaces signing headers, the key
 * cache stays small, bad input is refused.
 * Runs from the repository root.
 */
#include <cjson/cJSON.h>
#include <dirent.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include "unit.h"
#include "goman/clock.h"
#include "goman/sigv4.h"

/* GOMAN_TESTABLE in sigv4.c */
void gm_sigv4_cache_stats(size_t *entries, unsigned long *hits, unsigned long *misses);
void gm_sigv4_cache_reset(void);

#define OWN_VECTORS "tests/vectors/sigv4"

struct vcase {
	char dir[1024];
	char name[300];
	bool query; /* presigned-query mode */
};

static char *slurp(const char *dir, const char *file, size_t *len)
{
	char path[1400];
	snprintf(path, sizeof(path), "%s/%s", dir, file);
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	size_t cap = 4096, n = 0;
	char *p = malloc(cap);
	assert_non_null(p);
	size_t r;
	while ((r = fread(p + n, 1, cap - n - 1, f)) > 0) {
		n += r;
		if (cap - n - 1 == 0) {
			cap *= 2;
			p = realloc(p, cap);
			assert_non_null(p);
		}
	}
	fclose(f);
	p[n] = '\0';
	if (len)
		*len = n;
	return p;
}

/* expected text without trailing newlines (the suite's files have none, ours may) */
static char *expected(const char *dir, const char *file)
{
	char *s = slurp(dir, file, NULL);
	if (s) {
		size_t n = strlen(s);
		while (n && (s[n - 1] == '\n' || s[n - 1] == '\r'))
			s[--n] = '\0';
	}
	return s;
}

struct req {
	char *method, *path, *host;
	struct goman_kvs headers;
	char *body;
	size_t body_len;
};

static void req_clear(struct req *r)
{
	free(r->method);
	free(r->path);
	free(r->host);
	free(r->body);
	goman_kvs_clear(&r->headers);
}

/* request.txt: "METHOD PATH HTTP/1.1", headers (a line starting with whitespace continues
 * the previous value, kept raw with its newline), a blank line, the body. */
static void parse_request(const char *dir, struct req *r)
{
	memset(r, 0, sizeof(*r));
	size_t len;
	char *txt = slurp(dir, "request.txt", &len);
	assert_non_null(txt);
	char *eol = strchr(txt, '\n');
	size_t l0 = eol ? (size_t)(eol - txt) : len;
	char *sp = memchr(txt, ' ', l0);
	assert_non_null(sp);
	const char *proto = " HTTP/1.1";
	assert_true(l0 > strlen(proto));
	assert_memory_equal(txt + l0 - strlen(proto), proto, strlen(proto));
	r->method = strndup(txt, (size_t)(sp - txt));
	r->path = strndup(sp + 1, (size_t)(txt + l0 - strlen(proto) - sp - 1));
	char *s = eol ? eol + 1 : txt + len;
	while (*s) {
		char *e = strchr(s, '\n');
		size_t ll = e ? (size_t)(e - s) : strlen(s);
		char *next = e ? e + 1 : s + ll;
		if (ll == 0) { /* blank line: the body follows */
			s = next;
			break;
		}
		if ((*s == ' ' || *s == '\t') && r->headers.n) {
			struct goman_kv *kv = &r->headers.v[r->headers.n - 1];
			size_t ol = strlen(kv->value);
			char *nv = malloc(ol + 1 + ll + 1);
			assert_non_null(nv);
			memcpy(nv, kv->value, ol);
			nv[ol] = '\n';
			memcpy(nv + ol + 1, s, ll);
			nv[ol + 1 + ll] = '\0';
			free(kv->value);
			kv->value = nv;
		} else {
			char *colon = memchr(s, ':', ll);
			assert_non_null(colon);
			assert_int_equal(goman_kvs_addn(&r->headers, s, (size_t)(colon - s),
							colon + 1, (size_t)(s + ll - colon - 1)),
					 0);
		}
		s = next;
	}
	r->body_len = len - (size_t)(s - txt);
	r->body = malloc(r->body_len + 1);
	memcpy(r->body, s, r->body_len);
	r->body[r->body_len] = '\0';
	const char *h = goman_kvs_get(&r->headers, "Host");
	assert_non_null(h);
	r->host = strdup(h);
	free(txt);
}

struct ctx {
	struct goman_creds creds;
	struct goman_sigv4_params p;
	cJSON *json;
};

static bool jbool(const cJSON *o, const char *k, bool def)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
	return cJSON_IsBool(v) ? cJSON_IsTrue(v) : def;
}

static const char *jstr(const cJSON *o, const char *k)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
	return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* context.json as the suite has it, plus our own "s3" and "unsigned_payload" */
static void parse_context(const char *dir, struct ctx *c)
{
	memset(c, 0, sizeof(*c));
	char *txt = slurp(dir, "context.json", NULL);
	assert_non_null(txt);
	c->json = cJSON_Parse(txt);
	free(txt);
	assert_non_null(c->json);
	const cJSON *cr = cJSON_GetObjectItemCaseSensitive(c->json, "credentials");
	assert_non_null(cr);
	c->creds.access_key_id = (char *)jstr(cr, "access_key_id");
	c->creds.secret_access_key = (char *)jstr(cr, "secret_access_key");
	c->creds.session_token = (char *)jstr(cr, "token");
	c->p.region = jstr(c->json, "region");
	c->p.service = jstr(c->json, "service");
	assert_non_null(c->p.region);
	assert_non_null(c->p.service);
	const char *ts = jstr(c->json, "timestamp");
	assert_non_null(ts);
	assert_int_equal(goman_parse_time(ts, &c->p.time_ms), 0);
	c->p.normalize = jbool(c->json, "normalize", true) ? 1 : 0;
	c->p.sign_body = jbool(c->json, "sign_body", false);
	c->p.omit_session_token = jbool(c->json, "omit_session_token", false);
	c->p.s3 = jbool(c->json, "s3", false);
	c->p.unsigned_payload = jbool(c->json, "unsigned_payload", false);
	const cJSON *exp = cJSON_GetObjectItemCaseSensitive(c->json, "expiration_in_seconds");
	c->p.presign_expires = cJSON_IsNumber(exp) ? (long)exp->valuedouble : 3600;
}

static void check_file(const char *dir, const char *file, const char *got)
{
	char *want = expected(dir, file);
	if (!want) /* signed-request files: the suite has them, botocore cannot make them */
		return;
	assert_non_null(got);
	assert_string_equal(got, want);
	free(want);
}

static void run_case(void **state)
{
	const struct vcase *vc = *state;
	const char *mode = vc->query ? "query" : "header";
	struct req r;
	struct ctx c;
	parse_request(vc->dir, &r);
	parse_context(vc->dir, &c);

	size_t ul = strlen(r.host) + strlen(r.path) + 16;
	char *url = malloc(ul);
	snprintf(url, ul, "https://%s%s", r.host, r.path);
	c.p.method = r.method;
	c.p.url = url;
	c.p.body = r.body;
	c.p.body_len = r.body_len;
	if (!vc->query)
		c.p.presign_expires = 0;

	struct goman_sigv4_out out;
	struct goman_err err = GOMAN_ERR_INIT;
	goman_err_clear(&err);
	int rc = goman_sigv4_sign(&c.p, &c.creds, &r.headers, true, &out, &err);
	if (rc != 0)
		fail_msg("%s: %s", vc->name, err.message);

	char f[64];
	snprintf(f, sizeof(f), "%s-canonical-request.txt", mode);
	check_file(vc->dir, f, out.canonical_request);
	snprintf(f, sizeof(f), "%s-string-to-sign.txt", mode);
	check_file(vc->dir, f, out.string_to_sign);
	snprintf(f, sizeof(f), "%s-signature.txt", mode);
	char *sig = expected(vc->dir, f);
	assert_non_null(sig);
	assert_string_equal(out.signature, sig);
	free(sig);
	if (vc->query) {
		assert_non_null(out.url);
		assert_null(goman_kvs_get(&r.headers, "Authorization"));
	} else {
		assert_null(out.url);
	}

	/* the whole signed request, as the suite prints it */
	snprintf(f, sizeof(f), "%s-signed-request.txt", mode);
	char *want = slurp(vc->dir, f, NULL);
	if (want) {
		size_t cap = strlen(want) + 65536, n = 0;
		char *got = malloc(cap);
		const char *target = r.path;
		if (vc->query) {
			size_t pre = strlen("https://") + strlen(r.host);
			assert_true(strlen(out.url) >= pre);
			target = out.url + pre;
		}
		n += (size_t)snprintf(got + n, cap - n, "%s %s HTTP/1.1\n", r.method, target);
		for (size_t i = 0; i < r.headers.n; i++)
			n += (size_t)snprintf(got + n, cap - n, "%s:%s\n", r.headers.v[i].name,
					      r.headers.v[i].value);
		n += (size_t)snprintf(got + n, cap - n, "\n%s", r.body);
		assert_true(n < cap);
		assert_string_equal(got, want);
		free(got);
		free(want);
	}

	goman_sigv4_out_clear(&out);
	free(url);
	cJSON_Delete(c.json);
	req_clear(&r);
}

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Adds two tests (header, query) for every case directory under root. Returns how many
 * case directories it found. */
static size_t add_cases(const char *root, const char *label, struct CMUnitTest **t, size_t *nt,
			size_t *cap)
{
	DIR *d = opendir(root);
	if (!d)
		return 0;
	char **names = NULL;
	size_t nn = 0;
	struct dirent *de;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		char probe[1400];
		snprintf(probe, sizeof(probe), "%s/%s/request.txt", root, de->d_name);
		FILE *f = fopen(probe, "r");
		if (!f)
			continue;
		fclose(f);
		names = realloc(names, (nn + 1) * sizeof(*names));
		names[nn++] = strdup(de->d_name);
	}
	closedir(d);
	qsort(names, nn, sizeof(*names), cmp_names);
	for (size_t i = 0; i < nn; i++) {
		for (int q = 0; q < 2; q++) {
			/* a mode is tested where its expected signature is on file */
			char sig[1400];
			snprintf(sig, sizeof(sig), "%s/%s/%s-signature.txt", root, names[i],
				 q ? "query" : "header");
			FILE *f = fopen(sig, "r");
			if (!f)
				continue;
			fclose(f);
			if (*nt == *cap) {
				*cap = *cap ? *cap * 2 : 64;
				*t = realloc(*t, *cap * sizeof(**t));
			}
			struct vcase *vc = calloc(1, sizeof(*vc));
			snprintf(vc->dir, sizeof(vc->dir), "%s/%s", root, names[i]);
			snprintf(vc->name, sizeof(vc->name), "%s/%s/%s", label, names[i],
				 q ? "query" : "header");
			vc->query = q;
			(*t)[(*nt)++] = (struct CMUnitTest){vc->name, run_case, NULL, NULL, vc};
		}
		free(names[i]);
	}
	free(names);
	return nn;
}

/* ---- behaviours ---- */

static struct goman_creds test_creds(const char *token)
{
	struct goman_creds c = {0};
	c.access_key_id = (char *)"AKIDEXAMPLE";
	c.secret_access_key = (char *)"wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
	c.session_token = (char *)token;
	return c;
}

static size_t count(const struct goman_kvs *h, const char *name)
{
	size_t n = 0;
	for (size_t i = 0; i < h->n; i++)
		n += strcasecmp(h->v[i].name, name) == 0;
	return n;
}

static void resigning_replaces_signing_headers(void **state)
{
	struct goman_creds c = test_creds("TOKEN1");
	struct goman_sigv4_params p = {.method = "PUT",
				       .url = "https://bucket.s3.us-east-1.amazonaws.com/k",
				       .body = "x",
				       .body_len = 1,
				       .service = "s3",
				       .region = "us-east-1",
				       .time_ms = 1440938160000,
				       .s3 = true,
				       .normalize = -1};
	struct goman_kvs h = {0};
	goman_kvs_add(&h, "Content-Type", "text/plain");
	struct goman_sigv4_out o1, o2;
	assert_int_equal(goman_sigv4_sign(&p, &c, &h, false, &o1, NULL), 0);
	assert_null(o1.canonical_request);
	char *date1 = strdup(goman_kvs_get(&h, "X-Amz-Date"));
	/* a retry a minute later, with refreshed credentials */
	p.time_ms += 60000;
	c.session_token = (char *)"TOKEN2";
	assert_int_equal(goman_sigv4_sign(&p, &c, &h, false, &o2, NULL), 0);
	assert_int_equal(count(&h, "Authorization"), 1);
	assert_int_equal(count(&h, "X-Amz-Date"), 1);
	assert_int_equal(count(&h, "X-Amz-Security-Token"), 1);
	assert_int_equal(count(&h, "x-amz-content-sha256"), 1);
	assert_int_equal(count(&h, "Host"), 1);
	assert_int_equal(count(&h, "Content-Type"), 1);
	assert_string_equal(goman_kvs_get(&h, "X-Amz-Security-Token"), "TOKEN2");
	assert_string_not_equal(goman_kvs_get(&h, "X-Amz-Date"), date1);
	assert_string_not_equal(o1.signature, o2.signature);
	/* the second signature is the one a fresh request would get */
	struct goman_kvs fresh = {0};
	goman_kvs_add(&fresh, "Content-Type", "text/plain");
	struct goman_sigv4_out o3;
	assert_int_equal(goman_sigv4_sign(&p, &c, &fresh, false, &o3, NULL), 0);
	assert_string_equal(o2.signature, o3.signature);
	assert_string_equal(goman_kvs_get(&h, "Authorization"),
			    goman_kvs_get(&fresh, "Authorization"));
	/* dropping the token on a retry removes the stale header too */
	c.session_token = NULL;
	assert_int_equal(goman_sigv4_sign(&p, &c, &h, false, &o3, NULL), 0);
	assert_int_equal(count(&h, "X-Amz-Security-Token"), 0);
	free(date1);
	goman_kvs_clear(&h);
	goman_kvs_clear(&fresh);
}

static void presign_replaces_its_query_parameters(void **state)
{
	struct goman_creds c = test_creds(NULL);
	struct goman_sigv4_params p = {.method = "GET",
				       .url = "https://bucket.s3.amazonaws.com/k?versionId=3",
				       .service = "s3",
				       .region = "us-east-1",
				       .time_ms = 1440938160000,
				       .presign_expires = 60,
				       .s3 = true,
				       .normalize = -1};
	struct goman_sigv4_out o1, o2;
	assert_int_equal(goman_sigv4_sign(&p, &c, NULL, false, &o1, NULL), 0);
	p.url = o1.url; /* presign the presigned URL again */
	assert_int_equal(goman_sigv4_sign(&p, &c, NULL, false, &o2, NULL), 0);
	assert_string_equal(o1.url, o2.url);
	assert_non_null(strstr(o1.url, "?versionId=3&X-Amz-Algorithm="));
	assert_null(strstr(o1.url, "wJalrXUtnFEMI"));
	goman_sigv4_out_clear(&o1);
	goman_sigv4_out_clear(&o2);
}

static void key_cache_stays_small_and_hits(void **state)
{
	gm_sigv4_cache_reset();
	struct goman_creds c = test_creds(NULL);
	struct goman_sigv4_params p = {.method = "GET",
				       .url = "https://h/",
				       .service = "ec2",
				       .time_ms = 1440938160000,
				       .normalize = -1};
	char region[32];
	struct goman_sigv4_out o;
	for (int i = 0; i < 50; i++) {
		snprintf(region, sizeof(region), "region-%d", i);
		p.region = region;
		struct goman_kvs h = {0};
		assert_int_equal(goman_sigv4_sign(&p, &c, &h, false, &o, NULL), 0);
		goman_kvs_clear(&h);
	}
	size_t n;
	unsigned long hits, misses;
	gm_sigv4_cache_stats(&n, &hits, &misses);
	assert_in_range(n, 1, 8);
	assert_int_equal(misses, 50);
	assert_int_equal(hits, 0);
	/* the latest is kept; another secret with the same scope is a different key */
	struct goman_kvs h = {0};
	assert_int_equal(goman_sigv4_sign(&p, &c, &h, false, &o, NULL), 0);
	char sig1[65];
	memcpy(sig1, o.signature, 65);
	c.secret_access_key = (char *)"another-secret";
	assert_int_equal(goman_sigv4_sign(&p, &c, &h, false, &o, NULL), 0);
	gm_sigv4_cache_stats(&n, &hits, &misses);
	assert_int_equal(hits, 1);
	assert_int_equal(misses, 51);
	assert_string_not_equal(sig1, o.signature);
	goman_kvs_clear(&h);
}

static void bad_input_is_refused(void **state)
{
	struct goman_creds c = test_creds(NULL);
	struct goman_sigv4_params p = {.method = "GET",
				       .url = "not a url",
				       .service = "ec2",
				       .region = "us-east-1",
				       .normalize = -1};
	struct goman_kvs h = {0};
	struct goman_sigv4_out o;
	struct goman_err e = GOMAN_ERR_INIT;
	goman_err_clear(&e);
	assert_int_equal(goman_sigv4_sign(&p, &c, &h, false, &o, &e), -1);
	assert_int_equal(e.rc, GOMAN_EINVAL);
	p.url = "https://ec2.amazonaws.com/";
	p.region = NULL;
	assert_int_equal(goman_sigv4_sign(&p, &c, &h, false, &o, &e), -1);
	p.region = "us-east-1";
	c.secret_access_key = NULL;
	assert_int_equal(goman_sigv4_sign(&p, &c, &h, false, &o, &e), -1);
	assert_int_equal(h.n, 0); /* nothing half-done to the headers */
}

static void clock_is_used_when_time_is_zero(void **state)
{
	struct goman_creds c = test_creds(NULL);
	struct goman_sigv4_params p = {.method = "GET",
				       .url = "https://h/",
				       .service = "ec2",
				       .region = "us-east-1",
				       .normalize = -1};
	struct goman_kvs h = {0};
	struct goman_sigv4_out o;
	int64_t before = goman_now_ms() / 1000;
	assert_int_equal(goman_sigv4_sign(&p, &c, &h, false, &o, NULL), 0);
	int64_t t;
	const char *d = goman_kvs_get(&h, "X-Amz-Date");
	assert_non_null(d);
	assert_int_equal(goman_parse_time(d, &t), 0);
	assert_in_range(t / 1000, before, before + 5);
	goman_kvs_clear(&h);
}

static void helpers_encode_and_hash(void **state)
{
	char *e = goman_uri_encode("a b/+~%\xe1\x88\xb4", 10, true);
	assert_string_equal(e, "a%20b/%2B~%25%E1%88%B4");
	free(e);
	e = goman_uri_encode("a/b", 3, false);
	assert_string_equal(e, "a%2Fb");
	free(e);
	char h[65];
	goman_sha256_hex("", 0, h);
	assert_string_equal(h, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

int main(void)
{
	struct CMUnitTest *t = NULL;
	size_t nt = 0, cap = 0;
	const char *suite = UNIT_AWS_SIGV4_SUITE;
	size_t nsuite = add_cases(suite, "suite", &t, &nt, &cap);
	size_t nown = add_cases(OWN_VECTORS, "own", &t, &nt, &cap);
	if (nsuite != 38)
		fprintf(stderr, "test_sigv4: expected 38 suite cases in %s, found %zu\n", suite,
			nsuite);
	if (nown == 0)
		fprintf(stderr, "test_sigv4: no cases in %s\n", OWN_VECTORS);
	const struct CMUnitTest fixed[] = {
		cmocka_unit_test(resigning_replaces_signing_headers),
		cmocka_unit_test(presign_replaces_its_query_parameters),
		cmocka_unit_test(key_cache_stays_small_and_hits),
		cmocka_unit_test(bad_input_is_refused),
		cmocka_unit_test(clock_is_used_when_time_is_zero),
		cmocka_unit_test(helpers_encode_and_hash),
	};
	t = realloc(t, (nt + sizeof(fixed) / sizeof(fixed[0])) * sizeof(*t));
	for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
		t[nt++] = fixed[i];
	int failed = _cmocka_run_group_tests("sigv4", t, nt, NULL, NULL);
	for (size_t i = 0; i < nt; i++)
		if (t[i].test_func == run_case)
			free(t[i].initial_state);
	free(t);
	/* a missing suite is a failure, not a quiet pass */
	return failed || nsuite != 38 || nown == 0;
}
