/*
 * sigv4.c - AWS Signature Version 4 (see goman/sigv4.h): canonical request, string to sign,
 * signature; header mode and presigned-query mode; the signing-key cache.
 *
 * Ownership: goman_sigv4_sign() borrows params and credentials; it edits the caller's
 * header list in place (header mode) and hands back malloc'd strings in struct
 * goman_sigv4_out, freed by goman_sigv4_out_clear(). Everything else it allocates is freed
 * before it returns (one scratch buffer per call, `goto out` frees it).
 * Errors: -1 with struct goman_err (EINVAL for a bad URL or a missing field, ENOMEM).
 *
 * Why the low-level SHA256_* API: for the short strings SigV4 hashes, OpenSSL 3's EVP layer
 * (provider lookups, a malloc per context) costs more than the hashing itself. HMAC is
 * built on it by hand (RFC 2104), which also lets the key cache keep the keyed inner/outer
 * states, so a cached signature costs two compressions less than HMAC() from scratch.
 * The cache never holds a secret access key: entries are found by a SHA-256 of it.
 */
#define OPENSSL_SUPPRESS_DEPRECATED
#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "goman/clock.h"
#include "goman/sigv4.h"
#include "internal.h"
#include "buf_int.h"
#include "bytes_int.h"

#define ALGO "AWS4-HMAC-SHA256"
#define UNSIGNED_PAYLOAD "UNSIGNED-PAYLOAD"

static const char HEX[] = "0123456789ABCDEF";

static bool unreserved(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '_' || c == '.' || c == '~';
}

/* RFC 3986 encoding as SigV4 wants it: uppercase hex, everything but unreserved. */
static void b_enc(struct gm_buf *b, const char *s, size_t n, bool keep_slash)
{
	if (gm_buf_reserve(b, 3 * n) < 0)
		return;
	char *o = b->p + b->len;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (unreserved(c) || (keep_slash && c == '/')) {
			*o++ = (char)c;
		} else {
			*o++ = '%';
			*o++ = HEX[c >> 4];
			*o++ = HEX[c & 15];
		}
	}
	b->len = (size_t)(o - b->p);
	b->p[b->len] = '\0';
}

/* Encodes s after decoding its %XX escapes, so "%e1%88%b4", "ሴ" and "%E1%88%B4" all come out
 * the same. A '%' not followed by two hex digits is a literal '%'. '+' stays a literal plus
 * (RFC 3986, not HTML forms), as AWS reads it. */
static void b_reenc(struct gm_buf *b, const char *s, size_t n, bool keep_slash)
{
	if (!memchr(s, '%', n)) { /* nothing to decode: the common case */
		b_enc(b, s, n, keep_slash);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		int h, l;
		if (c == '%' && i + 2 < n && (h = gm_hex_value(s[i + 1])) >= 0 &&
		    (l = gm_hex_value(s[i + 2])) >= 0) {
			c = (char)(h * 16 + l);
			i += 2;
		}
		b_enc(b, &c, 1, keep_slash);
	}
}

char *goman_uri_encode(const char *s, size_t len, bool keep_slash)
{
	struct gm_buf b = {0};
	b_enc(&b, s ? s : "", s ? len : 0, keep_slash);
	return gm_buf_take(&b);
}

/* ---- SHA-256 and HMAC ---- */
static void sha256(const void *data, size_t len, unsigned char md[SHA256_DIGEST_LENGTH])
{
	SHA256_CTX c;
	SHA256_Init(&c);
	if (len)
		SHA256_Update(&c, data, len);
	SHA256_Final(md, &c);
}

void goman_sha256_hex(const void *data, size_t len, char out[65])
{
	unsigned char md[SHA256_DIGEST_LENGTH];
	sha256(data, len, md);
	gm_hex_encode(md, sizeof(md), out);
}

/* An HMAC-SHA256 key made ready: the states after the inner and outer padded key blocks. */
struct hmac_key {
	SHA256_CTX in, out;
};

static void hmac_init(struct hmac_key *k, const void *key, size_t klen)
{
	unsigned char block[SHA256_CBLOCK], pad[SHA256_CBLOCK];
	memset(block, 0, sizeof(block));
	if (klen > SHA256_CBLOCK)
		sha256(key, klen, block);
	else if (klen)
		memcpy(block, key, klen);
	for (size_t i = 0; i < sizeof(pad); i++)
		pad[i] = block[i] ^ 0x36;
	SHA256_Init(&k->in);
	SHA256_Update(&k->in, pad, sizeof(pad));
	for (size_t i = 0; i < sizeof(pad); i++)
		pad[i] = block[i] ^ 0x5c;
	SHA256_Init(&k->out);
	SHA256_Update(&k->out, pad, sizeof(pad));
	OPENSSL_cleanse(block, sizeof(block));
	OPENSSL_cleanse(pad, sizeof(pad));
}

static void hmac_run(const struct hmac_key *k, const void *msg, size_t n,
		     unsigned char out[SHA256_DIGEST_LENGTH])
{
	unsigned char ih[SHA256_DIGEST_LENGTH];
	SHA256_CTX c = k->in;
	SHA256_Update(&c, msg, n);
	SHA256_Final(ih, &c);
	c = k->out;
	SHA256_Update(&c, ih, sizeof(ih));
	SHA256_Final(out, &c);
	OPENSSL_cleanse(&c, sizeof(c));
}

static void hmac(const void *key, size_t klen, const void *msg, size_t n,
		 unsigned char out[SHA256_DIGEST_LENGTH])
{
	struct hmac_key k;
	hmac_init(&k, key, klen);
	hmac_run(&k, msg, n, out);
	OPENSSL_cleanse(&k, sizeof(k));
}

/* ---- signing-key cache: a few entries, least recently used goes first ---- */
#define KCACHE_N 8
struct kentry {
	bool used;
	unsigned char secret_hash[SHA256_DIGEST_LENGTH];
	char date[9];
	char region[40];
	char service[40];
	uint64_t last;
	struct hmac_key key;
};
static struct kentry kcache[KCACHE_N];
static uint64_t ktick;
static unsigned long khits, kmisses;
static pthread_mutex_t kmu = PTHREAD_MUTEX_INITIALIZER;

/* Unit tests: how the cache is doing. */
GOMAN_TESTABLE __attribute__((unused)) void
gm_sigv4_cache_stats(size_t *entries, unsigned long *hits, unsigned long *misses)
{
	pthread_mutex_lock(&kmu);
	size_t n = 0;
	for (size_t i = 0; i < KCACHE_N; i++)
		n += kcache[i].used;
	*entries = n;
	*hits = khits;
	*misses = kmisses;
	pthread_mutex_unlock(&kmu);
}

GOMAN_TESTABLE __attribute__((unused)) void gm_sigv4_cache_reset(void)
{
	pthread_mutex_lock(&kmu);
	OPENSSL_cleanse(kcache, sizeof(kcache));
	khits = kmisses = 0;
	pthread_mutex_unlock(&kmu);
}

/* kSigning = HMAC(HMAC(HMAC(HMAC("AWS4"+secret, date), region), service), "aws4_request") */
static void derive_key(const char *secret, const char *date, const char *region,
		       const char *service, struct hmac_key *out)
{
	unsigned char k[SHA256_DIGEST_LENGTH];
	size_t slen = strlen(secret);
	char *first = malloc(slen + 5);
	if (first) {
		memcpy(first, "AWS4", 4);
		memcpy(first + 4, secret, slen + 1);
		hmac(first, slen + 4, date, strlen(date), k);
		OPENSSL_cleanse(first, slen + 4);
		free(first);
	} else {
		/* no memory for the prefixed copy: same bytes fed through the hash in two parts */
		unsigned char block[SHA256_CBLOCK];
		if (slen + 4 > SHA256_CBLOCK) {
			SHA256_CTX c;
			SHA256_Init(&c);
			SHA256_Update(&c, "AWS4", 4);
			SHA256_Update(&c, secret, slen);
			SHA256_Final(block, &c);
			hmac(block, SHA256_DIGEST_LENGTH, date, strlen(date), k);
		} else {
			memcpy(block, "AWS4", 4);
			memcpy(block + 4, secret, slen);
			hmac(block, slen + 4, date, strlen(date), k);
		}
		OPENSSL_cleanse(block, sizeof(block));
	}
	hmac(k, sizeof(k), region, strlen(region), k);
	hmac(k, sizeof(k), service, strlen(service), k);
	hmac(k, sizeof(k), "aws4_request", 12, k);
	hmac_init(out, k, sizeof(k));
	OPENSSL_cleanse(k, sizeof(k));
}

static void signing_key(const char *secret, const char *date, const char *region,
			const char *service, struct hmac_key *out)
{
	size_t rl = strlen(region), sl = strlen(service);
	if (rl >= sizeof(kcache[0].region) || sl >= sizeof(kcache[0].service)) {
		derive_key(secret, date, region, service, out);
		return;
	}
	unsigned char h[SHA256_DIGEST_LENGTH];
	sha256(secret, strlen(secret), h);
	pthread_mutex_lock(&kmu);
	struct kentry *victim = &kcache[0];
	for (size_t i = 0; i < KCACHE_N; i++) {
		struct kentry *e = &kcache[i];
		if (e->used && memcmp(e->secret_hash, h, sizeof(h)) == 0 &&
		    strcmp(e->date, date) == 0 && strcmp(e->region, region) == 0 &&
		    strcmp(e->service, service) == 0) {
			e->last = ++ktick;
			*out = e->key;
			khits++;
			pthread_mutex_unlock(&kmu);
			return;
		}
		if (!e->used || (victim->used && e->last < victim->last))
			victim = e;
	}
	kmisses++;
	pthread_mutex_unlock(&kmu);
	/* derive outside the lock; a racing thread may derive the same key, which is harmless */
	derive_key(secret, date, region, service, out);
	pthread_mutex_lock(&kmu);
	OPENSSL_cleanse(&victim->key, sizeof(victim->key));
	victim->used = true;
	memcpy(victim->secret_hash, h, sizeof(h));
	memcpy(victim->date, date, sizeof(victim->date));
	memcpy(victim->region, region, rl + 1);
	memcpy(victim->service, service, sl + 1);
	victim->key = *out;
	victim->last = ++ktick;
	pthread_mutex_unlock(&kmu);
}

/* ---- URL pieces (borrowed from the caller's string) ---- */
struct url {
	const char *base; /* scheme://authority/path: everything before '?' or '#' */
	size_t base_len;
	const char *host; /* authority without userinfo */
	size_t host_len;
	const char *path;
	size_t path_len;
	const char *query; /* after '?', before '#' */
	size_t query_len;
	bool https;
};

static int parse_url(const char *u, struct url *out)
{
	memset(out, 0, sizeof(*out));
	const char *sep = strstr(u, "://");
	if (!sep || sep == u)
		return -1;
	for (const char *s = u; s < sep; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		      (*s >= '0' && *s <= '9') || *s == '+' || *s == '-' || *s == '.'))
			return -1;
	out->https = (size_t)(sep - u) == 5 && strncasecmp(u, "https", 5) == 0;
	const char *h = sep + 3;
	size_t alen = strcspn(h, "/?#");
	const char *at = memchr(h, '@', alen);
	out->host = at ? at + 1 : h;
	out->host_len = (size_t)(h + alen - out->host);
	if (out->host_len == 0)
		return -1;
	/* drop a default port: the Host header curl sends has none */
	const char *dp = out->https ? ":443" : ":80";
	size_t dl = strlen(dp);
	if (out->host_len > dl && memcmp(out->host + out->host_len - dl, dp, dl) == 0)
		out->host_len -= dl;
	out->path = h + alen;
	out->path_len = strcspn(out->path, "?#");
	out->base = u;
	out->base_len = (size_t)(out->path + out->path_len - u);
	if (out->path[out->path_len] == '?') {
		out->query = out->path + out->path_len + 1;
		out->query_len = strcspn(out->query, "#");
	}
	return 0;
}

/* ---- canonical pieces ---- */

/* botocore's remove_dot_segments: RFC 3986 5.2.4 plus empty segments dropped; a trailing
 * slash survives only when the path ended with one. Writes into b. */
static void normalized_path(struct gm_buf *b, const char *p, size_t n)
{
	size_t nseg = 0, cap = 16;
	size_t stackbuf[2 * 16];
	size_t *seg = stackbuf; /* pairs (start, len) */
	for (size_t i = 0; i <= n;) {
		size_t j = i;
		while (j < n && p[j] != '/')
			j++;
		size_t len = j - i;
		if (len == 0 || (len == 1 && p[i] == '.')) {
			/* skip */
		} else if (len == 2 && p[i] == '.' && p[i + 1] == '.') {
			if (nseg)
				nseg--;
		} else {
			if (nseg == cap) {
				size_t *ns = malloc(4 * cap * sizeof(*ns));
				if (!ns) {
					b->oom = 1;
					goto done;
				}
				memcpy(ns, seg, 2 * cap * sizeof(*ns));
				if (seg != stackbuf)
					free(seg);
				seg = ns;
				cap *= 2;
			}
			seg[2 * nseg] = i;
			seg[2 * nseg + 1] = len;
			nseg++;
		}
		i = j + 1;
	}
	if (n && p[0] == '/')
		gm_buf_addc(b, '/');
	for (size_t k = 0; k < nseg; k++) {
		if (k)
			gm_buf_addc(b, '/');
		gm_buf_add(b, p + seg[2 * k], seg[2 * k + 1]);
	}
	if (n && p[n - 1] == '/' && nseg)
		gm_buf_addc(b, '/');
done:
	if (seg != stackbuf)
		free(seg);
}

static void canonical_path(struct gm_buf *b, struct gm_buf *tmp, const struct url *u, bool s3,
			   bool normalize)
{
	if (u->path_len == 0) {
		gm_buf_addc(b, '/');
		return;
	}
	if (s3) {
		/* S3 signs the object key encoded once: the wire form, made canonical */
		b_reenc(b, u->path, u->path_len, true);
		return;
	}
	/* other services: the wire path (already encoded once) is encoded again */
	if (normalize) {
		tmp->len = 0;
		normalized_path(tmp, u->path, u->path_len);
		if (tmp->oom)
			return;
		if (tmp->len == 0)
			gm_buf_addc(b, '/');
		else
			b_enc(b, tmp->p, tmp->len, true);
	} else {
		b_enc(b, u->path, u->path_len, true);
	}
}

/* Query parameters that a presigned URL carries and that we therefore own. */
static bool is_presign_param(const char *k, size_t n)
{
	static const char *const names[] = {
		"X-Amz-Algorithm",     "X-Amz-Credential",     "X-Amz-Date",     "X-Amz-Expires",
		"X-Amz-SignedHeaders", "X-Amz-Security-Token", "X-Amz-Signature"};
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strlen(names[i]) == n && strncasecmp(names[i], k, n) == 0)
			return true;
	return false;
}

/* offsets into the scratch arena: canonical "key=value" pair and where its key ends */
struct qpair {
	size_t off, keylen, len;
};

/* byte order of two counted strings, a shorter prefix first (SigV4's sort order) */
static int cmp_bytes(const char *a, size_t alen, const char *b, size_t blen)
{
	int c = memcmp(a, b, alen < blen ? alen : blen);
	if (c)
		return c;
	return alen < blen ? -1 : alen > blen;
}

static int cmp_qpair_arena(const void *a, const void *b, void *arena)
{
	const struct qpair *x = a, *y = b;
	const char *ar = arena;
	int c = cmp_bytes(ar + x->off, x->keylen, ar + y->off, y->keylen);
	if (c)
		return c;
	/* same key: order by value */
	return cmp_bytes(ar + x->off + x->keylen + 1, x->len - x->keylen - 1,
			 ar + y->off + y->keylen + 1, y->len - y->keylen - 1);
}

/* canonical header: lowercased name, trimmed value, position in the input (for stability) */
struct hent {
	size_t name_off, name_len, val_off, val_len, pos;
};

static int cmp_hent_arena(const void *a, const void *b, void *arena)
{
	const struct hent *x = a, *y = b;
	const char *ar = arena;
	int c = cmp_bytes(ar + x->name_off, x->name_len, ar + y->name_off, y->name_len);
	if (c)
		return c;
	return x->pos < y->pos ? -1 : x->pos > y->pos;
}

/* Headers that proxies and HTTP stacks change, or that carry the signature itself. */
static bool unsigned_header(const char *lname)
{
	static const char *const skip[] = {"authorization", "user-agent",        "x-amzn-trace-id",
					   "expect",        "transfer-encoding", "connection"};
	for (size_t i = 0; i < sizeof(skip) / sizeof(skip[0]); i++)
		if (lname[0] == skip[i][0] && strcmp(lname, skip[i]) == 0)
			return true;
	return false;
}

/* trimmed value, inner whitespace runs (folded lines too) as one space */
static bool is_ws(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f';
}

static void put_trimmed(struct gm_buf *b, const char *v)
{
	bool first = true;
	for (;;) {
		while (is_ws(*v))
			v++;
		if (!*v)
			return;
		const char *w = v;
		while (*w && !is_ws(*w))
			w++;
		if (!first)
			gm_buf_addc(b, ' ');
		gm_buf_add(b, v, (size_t)(w - v));
		first = false;
		v = w;
	}
}

static void put_lower(struct gm_buf *b, const char *s)
{
	size_t n = strlen(s);
	if (gm_buf_reserve(b, n) < 0)
		return;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		b->p[b->len + i] = (c >= 'A' && c <= 'Z') ? (char)(c + 32) : c;
	}
	b->len += n;
	b->p[b->len] = '\0';
}

/* qsort_r is a GNU extension with glibc's argument order (_GNU_SOURCE comes from the
 * Makefile); a tiny insertion sort would do for most requests but not for 1000-key forms. */
static void sort_arena(void *base, size_t n, size_t sz,
		       int (*cmp)(const void *, const void *, void *), void *arena)
{
	if (n > 1)
		qsort_r(base, n, sz, cmp, arena);
}

/* "YYYYMMDDTHHMMSSZ" for epoch ms, by the days-to-civil algorithm (H. Hinnant): gmtime_r
 * and strftime would take glibc's timezone lock on every signature. */
static int amz_date(int64_t ms, char out[17])
{
	if (ms < 0 || ms / 1000 > 253402300799LL) /* 9999-12-31T23:59:59Z */
		return -1;
	int64_t s = ms / 1000, days = s / 86400, sod = s % 86400;
	int64_t z = days + 719468, era = z / 146097, doe = z - era * 146097;
	int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100), mp = (5 * doy + 2) / 153;
	int64_t d = doy - (153 * mp + 2) / 5 + 1, m = mp < 10 ? mp + 3 : mp - 9;
	int64_t y = yoe + era * 400 + (m <= 2);
	int64_t v[6] = {y, m, d, sod / 3600, sod / 60 % 60, sod % 60};
	int w[6] = {4, 2, 2, 2, 2, 2};
	char *o = out;
	for (int i = 0; i < 6; i++) {
		if (i == 3)
			*o++ = 'T';
		for (int k = w[i] - 1; k >= 0; k--) {
			o[k] = (char)('0' + v[i] % 10);
			v[i] /= 10;
		}
		o += w[i];
	}
	*o++ = 'Z';
	*o = '\0';
	return 0;
}

void goman_sigv4_out_clear(struct goman_sigv4_out *o)
{
	if (!o)
		return;
	free(o->canonical_request);
	free(o->string_to_sign);
	free(o->url);
	memset(o, 0, sizeof(*o));
}

/* One signature's working state: borrowed inputs, what is derived from them, and the
 * scratch buffers, which start on the stack (most signatures never call malloc for them). */
struct sign {
	const struct goman_sigv4_params *p;
	const struct goman_creds *c;
	struct url u;
	bool presign, sign_token;
	const char *token; /* NULL when there is none */
	char amzdate[17], date[9], payload[65], scope[160];
	size_t scope_len;
	struct gm_buf ar;  /* arena: lowercased names, trimmed values, query pairs */
	struct gm_buf cr;  /* canonical request */
	struct gm_buf tmp; /* scratch: normalized path, string to sign, Authorization */
	struct gm_buf sh;  /* signed headers list */
	struct gm_buf url; /* presign: the URL handed back */
	struct hent *he;
	struct qpair *qp;
	size_t nh, nq, qcap;
	char ar_s[1024], cr_s[1024], tmp_s[512], sh_s[256];
	struct hent he_s[16];
	struct qpair qp_s[16];
};

static void sign_free(struct sign *s)
{
	gm_buf_free(&s->ar);
	gm_buf_free(&s->cr);
	gm_buf_free(&s->tmp);
	gm_buf_free(&s->sh);
	gm_buf_free(&s->url);
	if (s->he != s->he_s)
		free(s->he);
	if (s->qp != s->qp_s)
		free(s->qp);
}

static int bad_input(struct goman_err *err, const char *msg)
{
	return goman_err_set(err, GOMAN_EINVAL, GOMAN_CLASS_BAD_INPUT, "BadInput", "sigv4: %s",
			     msg);
}

static int check_args(const struct goman_sigv4_params *p, const struct goman_creds *c,
		      const struct goman_kvs *headers, const struct goman_sigv4_out *out,
		      struct goman_err *err)
{
	if (!p || !c || !out || (!headers && p->presign_expires <= 0))
		return bad_input(err, "missing argument");
	if (!p->method || !*p->method || !p->url || !p->service || !*p->service || !p->region ||
	    !*p->region)
		return bad_input(err, "method, url, service and region are required");
	if (!c->access_key_id || !*c->access_key_id || !c->secret_access_key ||
	    !*c->secret_access_key)
		return bad_input(err, "credentials lack an access key id or secret");
	if (p->body_len && !p->body)
		return bad_input(err, "body_len without body");
	return 0;
}

/* URL, time, payload hash and credential scope */
static int sign_start(struct sign *s, struct goman_err *err)
{
	const struct goman_sigv4_params *p = s->p;
	if (parse_url(p->url, &s->u) < 0)
		return goman_err_set(err, GOMAN_EINVAL, GOMAN_CLASS_BAD_INPUT, "BadInput",
				     "sigv4: not an absolute URL: '%.200s'", p->url);
	s->presign = p->presign_expires > 0;
	const char *token = s->c->session_token;
	s->token = token && *token ? token : NULL;
	s->sign_token = s->token && !p->omit_session_token;
	if (amz_date(p->time_ms ? p->time_ms : goman_now_ms(), s->amzdate) < 0)
		return bad_input(err, "signing time out of range");
	memcpy(s->date, s->amzdate, 8);
	s->date[8] = '\0';
	if (p->unsigned_payload || (s->presign && p->s3))
		memcpy(s->payload, UNSIGNED_PAYLOAD, sizeof(UNSIGNED_PAYLOAD));
	else
		goman_sha256_hex(p->body, p->body_len, s->payload);
	size_t rlen = strlen(p->region), svlen = strlen(p->service);
	s->scope_len = 8 + 1 + rlen + 1 + svlen + sizeof("/aws4_request") - 1;
	if (s->scope_len >= sizeof(s->scope))
		return bad_input(err, "region or service name too long");
	char *q = s->scope;
	memcpy(q, s->date, 8);
	q[8] = '/';
	q += 9;
	memcpy(q, p->region, rlen);
	q[rlen] = '/';
	q += rlen + 1;
	memcpy(q, p->service, svlen);
	memcpy(q + svlen, "/aws4_request", sizeof("/aws4_request"));
	return 0;
}

/* Header mode: our headers replace any left by an earlier signing (a retry). */
static int set_headers(struct sign *s, struct goman_kvs *headers, struct goman_err *err)
{
	const bool content_header = s->p->s3 || s->p->sign_body;
	goman_kvs_del(headers, "Authorization");
	goman_kvs_del(headers, "X-Amz-Date");
	goman_kvs_del(headers, "X-Amz-Security-Token");
	if (content_header)
		goman_kvs_del(headers, "x-amz-content-sha256");
	if ((!goman_kvs_get(headers, "Host") &&
	     goman_kvs_addn(headers, "Host", 4, s->u.host, s->u.host_len) < 0) ||
	    (s->token && goman_kvs_add(headers, "X-Amz-Security-Token", s->token) < 0) ||
	    goman_kvs_add(headers, "X-Amz-Date", s->amzdate) < 0 ||
	    (content_header && goman_kvs_add(headers, "x-amz-content-sha256", s->payload) < 0))
		return gm_err_oom(err);
	return 0;
}

static bool same_name(const struct sign *s, size_t i)
{
	if (i == 0)
		return false;
	const struct hent *a = &s->he[i], *b = &s->he[i - 1];
	return a->name_len == b->name_len &&
	       memcmp(s->ar.p + a->name_off, s->ar.p + b->name_off, a->name_len) == 0;
}

/* Canonical headers into the arena (sorted by name, stable) and the signed-headers list;
 * -1 when out of memory. */
static int canonical_headers(struct sign *s, const struct goman_kvs *headers)
{
	struct gm_buf *ar = &s->ar;
	size_t hn = headers ? headers->n : 0;
	s->he = hn + 1 <= 16 ? s->he_s : malloc((hn + 1) * sizeof(*s->he));
	if (!s->he)
		return -1;
	bool have_host = false;
	for (size_t i = 0; i < hn; i++) {
		/* lowercase the name into the arena first; take it back if it is not signed */
		size_t mark = ar->len;
		put_lower(ar, headers->v[i].name);
		gm_buf_addc(ar, '\0');
		if (ar->oom)
			return -1;
		const char *ln = ar->p + mark;
		bool is_token = strcmp(ln, "x-amz-security-token") == 0;
		if (unsigned_header(ln) || (is_token && (s->presign || !s->sign_token)) ||
		    (s->presign && strcmp(ln, "x-amz-date") == 0)) {
			ar->len = mark;
			continue;
		}
		have_host |= strcmp(ln, "host") == 0;
		struct hent *e = &s->he[s->nh++];
		*e = (struct hent){.pos = i, .name_off = mark, .name_len = ar->len - mark - 1};
		e->val_off = ar->len;
		put_trimmed(ar, headers->v[i].value);
		e->val_len = ar->len - e->val_off;
		gm_buf_addc(ar, '\0');
	}
	if (!have_host) { /* presign: Host goes into the signed set even when not listed */
		struct hent *e = &s->he[s->nh++];
		*e = (struct hent){.pos = hn, .name_off = ar->len, .name_len = 4};
		gm_buf_add(ar, "host", 5);
		e->val_off = ar->len;
		gm_buf_add(ar, s->u.host, s->u.host_len);
		e->val_len = s->u.host_len;
		gm_buf_addc(ar, '\0');
	}
	if (ar->oom)
		return -1;
	sort_arena(s->he, s->nh, sizeof(*s->he), cmp_hent_arena, ar->p);
	for (size_t i = 0; i < s->nh; i++) {
		if (same_name(s, i))
			continue;
		if (s->sh.len)
			gm_buf_addc(&s->sh, ';');
		gm_buf_add(&s->sh, ar->p + s->he[i].name_off, s->he[i].name_len);
	}
	return s->sh.oom ? -1 : 0;
}

/* a new pair at the arena's end; NULL when out of memory */
static struct qpair *new_pair(struct sign *s)
{
	if (s->nq == s->qcap) {
		size_t cap = s->qcap * 2;
		struct qpair *n = s->qp == s->qp_s ? malloc(cap * sizeof(*n))
						   : realloc(s->qp, cap * sizeof(*n));
		if (!n)
			return NULL;
		if (s->qp == s->qp_s)
			memcpy(n, s->qp_s, sizeof(s->qp_s));
		s->qp = n;
		s->qcap = cap;
	}
	struct qpair *q = &s->qp[s->nq++];
	q->off = s->ar.len;
	return q;
}

/* The one walk over the caller's query: each pair decoded, re-encoded and kept for the
 * canonical query (bare keys get '='); when presigning, the pair also goes as given into
 * the URL handed back, less any X-Amz-* parameter of ours left by an earlier signing. */
static int canonical_query(struct sign *s)
{
	const struct url *u = &s->u;
	s->qp = s->qp_s;
	s->qcap = sizeof(s->qp_s) / sizeof(s->qp_s[0]);
	if (s->presign)
		gm_buf_add(&s->url, u->base, u->base_len);
	for (size_t i = 0; i < u->query_len;) {
		const char *q = u->query + i;
		size_t len = strcspn(q, "&#");
		if (i + len > u->query_len)
			len = u->query_len - i;
		i += len + 1;
		if (len == 0)
			continue;
		const char *eq = memchr(q, '=', len);
		size_t klen = eq ? (size_t)(eq - q) : len;
		if (s->presign) {
			if (is_presign_param(q, klen))
				continue;
			gm_buf_addc(&s->url, s->url.len == u->base_len ? '?' : '&');
			gm_buf_add(&s->url, q, len);
		}
		struct qpair *p = new_pair(s);
		if (!p)
			return -1;
		b_reenc(&s->ar, q, klen, false);
		p->keylen = s->ar.len - p->off;
		gm_buf_addc(&s->ar, '=');
		if (eq)
			b_reenc(&s->ar, eq + 1, len - klen - 1, false);
		p->len = s->ar.len - p->off;
	}
	return s->ar.oom || s->url.oom ? -1 : 0;
}

/* Presign: our X-Amz-* parameters onto the URL (in the AWS suite's order) and, but for
 * an unsigned session token, into the canonical query as the same encoded pairs. */
static int presign_params(struct sign *s)
{
	struct gm_buf *ub = &s->url;
	char exp[32];
	snprintf(exp, sizeof(exp), "%ld", s->p->presign_expires);
	gm_buf_addc(ub, ub->len == s->u.base_len ? '?' : '&');
	size_t start = ub->len;
	gm_buf_adds(ub, "X-Amz-Algorithm=" ALGO "&X-Amz-Credential=");
	b_enc(ub, s->c->access_key_id, strlen(s->c->access_key_id), false);
	gm_buf_adds(ub, "%2F");
	b_enc(ub, s->scope, s->scope_len, false);
	gm_buf_adds(ub, "&X-Amz-Date=");
	gm_buf_adds(ub, s->amzdate);
	gm_buf_adds(ub, "&X-Amz-SignedHeaders=");
	b_enc(ub, s->sh.p ? s->sh.p : "", s->sh.len, false);
	gm_buf_adds(ub, "&X-Amz-Expires=");
	gm_buf_adds(ub, exp);
	size_t signed_end = ub->len;
	if (s->token) { /* omit_session_token: unsigned, but still carried */
		gm_buf_adds(ub, "&X-Amz-Security-Token=");
		b_enc(ub, s->token, strlen(s->token), false);
		if (s->sign_token)
			signed_end = ub->len;
	}
	if (ub->oom)
		return -1;
	for (size_t i = start; i < signed_end;) {
		size_t len = strcspn(ub->p + i, "&");
		if (i + len > signed_end)
			len = signed_end - i;
		struct qpair *q = new_pair(s);
		if (!q)
			return -1;
		gm_buf_add(&s->ar, ub->p + i, len);
		q->keylen = strcspn(ub->p + i, "=");
		q->len = len;
		i += len + 1;
	}
	return s->ar.oom ? -1 : 0;
}

/* method, path, sorted query, headers, signed headers, payload hash */
static int canonical_request(struct sign *s)
{
	const struct goman_sigv4_params *p = s->p;
	struct gm_buf *cr = &s->cr;
	const char *ar = s->ar.p;
	const bool normalize = p->normalize < 0 ? !p->s3 : p->normalize != 0;
	sort_arena(s->qp, s->nq, sizeof(*s->qp), cmp_qpair_arena, s->ar.p);
	gm_buf_adds(cr, p->method);
	gm_buf_addc(cr, '\n');
	canonical_path(cr, &s->tmp, &s->u, p->s3, normalize);
	gm_buf_addc(cr, '\n');
	for (size_t i = 0; i < s->nq; i++) {
		if (i)
			gm_buf_addc(cr, '&');
		gm_buf_add(cr, ar + s->qp[i].off, s->qp[i].len);
	}
	gm_buf_addc(cr, '\n');
	for (size_t i = 0; i < s->nh; i++) {
		const struct hent *h = &s->he[i];
		if (same_name(s, i)) {
			/* duplicate names: one line, values joined by ',' in their given order */
			cr->len--; /* the '\n' */
			gm_buf_addc(cr, ',');
		} else {
			gm_buf_add(cr, ar + h->name_off, h->name_len);
			gm_buf_addc(cr, ':');
		}
		gm_buf_add(cr, ar + h->val_off, h->val_len);
		gm_buf_addc(cr, '\n');
	}
	gm_buf_addc(cr, '\n');
	gm_buf_add(cr, s->sh.p ? s->sh.p : "", s->sh.len);
	gm_buf_addc(cr, '\n');
	gm_buf_adds(cr, s->payload);
	return cr->oom || s->tmp.oom ? -1 : 0;
}

/* string to sign (left in tmp, for explain) and its HMAC with the signing key */
static int signature(struct sign *s, char out[65])
{
	char crhash[65];
	goman_sha256_hex(s->cr.p, s->cr.len, crhash);
	struct gm_buf *t = &s->tmp;
	t->len = 0;
	gm_buf_adds(t, ALGO "\n");
	gm_buf_adds(t, s->amzdate);
	gm_buf_addc(t, '\n');
	gm_buf_add(t, s->scope, s->scope_len);
	gm_buf_addc(t, '\n');
	gm_buf_adds(t, crhash);
	if (t->oom)
		return -1;
	struct hmac_key key;
	unsigned char sig[SHA256_DIGEST_LENGTH];
	signing_key(s->c->secret_access_key, s->date, s->p->region, s->p->service, &key);
	hmac_run(&key, t->p, t->len, sig);
	OPENSSL_cleanse(&key, sizeof(key));
	gm_hex_encode(sig, sizeof(sig), out);
	return 0;
}

static int authorization(struct sign *s, struct goman_kvs *headers, const char *sig)
{
	struct gm_buf *t = &s->tmp;
	t->len = 0;
	gm_buf_adds(t, ALGO " Credential=");
	gm_buf_adds(t, s->c->access_key_id);
	gm_buf_addc(t, '/');
	gm_buf_add(t, s->scope, s->scope_len);
	gm_buf_adds(t, ", SignedHeaders=");
	gm_buf_add(t, s->sh.p ? s->sh.p : "", s->sh.len);
	gm_buf_adds(t, ", Signature=");
	gm_buf_adds(t, sig);
	return t->oom || goman_kvs_add(headers, "Authorization", t->p) < 0 ? -1 : 0;
}

int goman_sigv4_sign(const struct goman_sigv4_params *p, const struct goman_creds *c,
		     struct goman_kvs *headers, bool explain, struct goman_sigv4_out *out,
		     struct goman_err *err)
{
	if (out)
		memset(out, 0, sizeof(*out));
	if (check_args(p, c, headers, out, err))
		return -1;
	struct sign s;
	s.p = p;
	s.c = c;
	s.ar = (struct gm_buf)GM_BUF_ON(s.ar_s);
	s.cr = (struct gm_buf)GM_BUF_ON(s.cr_s);
	s.tmp = (struct gm_buf)GM_BUF_ON(s.tmp_s);
	s.sh = (struct gm_buf)GM_BUF_ON(s.sh_s);
	s.url = (struct gm_buf){0};
	s.he = s.he_s;
	s.qp = s.qp_s;
	s.nh = s.nq = 0;
	int rc = -1;
	if (sign_start(&s, err) || (!s.presign && set_headers(&s, headers, err)))
		goto out;
	if (canonical_headers(&s, headers) || canonical_query(&s) ||
	    (s.presign && presign_params(&s)) || canonical_request(&s) ||
	    signature(&s, out->signature))
		goto nomem;
	if (explain && (!(out->canonical_request = gm_buf_take(&s.cr)) ||
			!(out->string_to_sign = strdup(s.tmp.p))))
		goto nomem;
	if (s.presign) {
		gm_buf_adds(&s.url, "&X-Amz-Signature=");
		gm_buf_adds(&s.url, out->signature);
		if (!(out->url = gm_buf_take(&s.url)))
			goto nomem;
	} else if (authorization(&s, headers, out->signature)) {
		goto nomem;
	}
	rc = 0;
	goto out;
nomem:
	gm_err_oom(err);
	goman_sigv4_out_clear(out);
out:
	sign_free(&s);
	return rc;
}
