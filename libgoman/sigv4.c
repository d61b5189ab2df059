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

#define ALGO "AWS4-HMAC-SHA256"
#define UNSIGNED_PAYLOAD "UNSIGNED-PAYLOAD"

/* ---- growable scratch buffer: an out-of-memory sticks, checked once at the end ---- */
struct buf {
	char *p;
	size_t n, cap;
	bool oom;
	bool heap; /* p is malloc'd (else it is the caller's stack array, or NULL) */
};
/* a buffer that starts in a stack array: most signatures never touch malloc for it */
#define BUF_ON(arr)                            \
	{                                      \
		.p = (arr), .cap = sizeof(arr) \
	}

static void b_free(struct buf *b)
{
	if (b->heap)
		free(b->p);
}

static bool b_reserve(struct buf *b, size_t more)
{
	if (b->oom)
		return false;
	if (b->n + more + 1 <= b->cap)
		return true;
	size_t cap = b->cap ? b->cap : 1024;
	while (cap < b->n + more + 1)
		cap *= 2;
	char *p;
	if (b->heap) {
		p = realloc(b->p, cap);
	} else {
		p = malloc(cap);
		if (p && b->p && b->n)
			memcpy(p, b->p, b->n);
	}
	if (!p) {
		b->oom = true;
		return false;
	}
	b->p = p;
	b->cap = cap;
	b->heap = true;
	return true;
}

static inline void b_put(struct buf *b, const char *s, size_t n)
{
	if (b->n + n + 1 > b->cap && !b_reserve(b, n))
		return;
	if (n)
		memcpy(b->p + b->n, s, n);
	b->n += n;
	b->p[b->n] = '\0';
}

static void b_puts(struct buf *b, const char *s)
{
	b_put(b, s, strlen(s));
}

static inline void b_putc(struct buf *b, char c)
{
	if (b->n + 2 > b->cap && !b_reserve(b, 1))
		return;
	b->p[b->n++] = c;
	b->p[b->n] = '\0';
}

static const char HEX[] = "0123456789ABCDEF";

static bool unreserved(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '_' || c == '.' || c == '~';
}

/* RFC 3986 encoding as SigV4 wants it: uppercase hex, everything but unreserved. */
static void b_enc(struct buf *b, const char *s, size_t n, bool keep_slash)
{
	if (!b_reserve(b, 3 * n))
		return;
	char *o = b->p + b->n;
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
	b->n = (size_t)(o - b->p);
	b->p[b->n] = '\0';
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Encodes s after decoding its %XX escapes, so "%e1%88%b4", "ሴ" and "%E1%88%B4" all come out
 * the same. A '%' not followed by two hex digits is a literal '%'. '+' stays a literal plus
 * (RFC 3986, not HTML forms), as AWS reads it. */
static void b_reenc(struct buf *b, const char *s, size_t n, bool keep_slash)
{
	if (!memchr(s, '%', n)) { /* nothing to decode: the common case */
		b_enc(b, s, n, keep_slash);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		int h, l;
		if (c == '%' && i + 2 < n && (h = hexval(s[i + 1])) >= 0 &&
		    (l = hexval(s[i + 2])) >= 0) {
			c = (char)(h * 16 + l);
			i += 2;
		}
		b_enc(b, &c, 1, keep_slash);
	}
}

char *goman_uri_encode(const char *s, size_t len, bool keep_slash)
{
	struct buf b = {0};
	b_enc(&b, s ? s : "", s ? len : 0, keep_slash);
	if (!b.oom && !b.p)
		b_put(&b, "", 0);
	if (b.oom) {
		b_free(&b);
		return NULL;
	}
	return b.p;
}

/* ---- SHA-256 and HMAC ---- */
static void to_hex(const unsigned char *d, size_t n, char *out)
{
	static const char hx[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = hx[d[i] >> 4];
		out[2 * i + 1] = hx[d[i] & 15];
	}
	out[2 * n] = '\0';
}

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
	to_hex(md, sizeof(md), out);
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
static void normalized_path(struct buf *b, const char *p, size_t n)
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
					b->oom = true;
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
		b_putc(b, '/');
	for (size_t k = 0; k < nseg; k++) {
		if (k)
			b_putc(b, '/');
		b_put(b, p + seg[2 * k], seg[2 * k + 1]);
	}
	if (n && p[n - 1] == '/' && nseg)
		b_putc(b, '/');
done:
	if (seg != stackbuf)
		free(seg);
}

static void canonical_path(struct buf *b, struct buf *tmp, const struct url *u, bool s3,
			   bool normalize)
{
	if (u->path_len == 0) {
		b_putc(b, '/');
		return;
	}
	if (s3) {
		/* S3 signs the object key encoded once: the wire form, made canonical */
		b_reenc(b, u->path, u->path_len, true);
		return;
	}
	/* other services: the wire path (already encoded once) is encoded again */
	if (normalize) {
		tmp->n = 0;
		normalized_path(tmp, u->path, u->path_len);
		if (tmp->oom)
			return;
		if (tmp->n == 0)
			b_putc(b, '/');
		else
			b_enc(b, tmp->p, tmp->n, true);
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

static void put_trimmed(struct buf *b, const char *v)
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
			b_putc(b, ' ');
		b_put(b, v, (size_t)(w - v));
		first = false;
		v = w;
	}
}

static void put_lower(struct buf *b, const char *s)
{
	size_t n = strlen(s);
	if (!b_reserve(b, n))
		return;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		b->p[b->n + i] = (c >= 'A' && c <= 'Z') ? (char)(c + 32) : c;
	}
	b->n += n;
	b->p[b->n] = '\0';
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

static int oom(struct goman_err *err)
{
	return goman_err_set(err, GOMAN_ENOMEM, GOMAN_CLASS_NONE, "OutOfMemory",
			     "out of memory while signing");
}

int goman_sigv4_sign(const struct goman_sigv4_params *p, const struct goman_creds *c,
		     struct goman_kvs *headers, bool explain, struct goman_sigv4_out *out,
		     struct goman_err *err)
{
	if (out)
		memset(out, 0, sizeof(*out));
	if (!p || !c || !out || (!headers && p->presign_expires <= 0))
		return goman_err_set(err, GOMAN_EINVAL, GOMAN_CLASS_BAD_INPUT, "BadInput",
				     "sigv4: missing argument");
	if (!p->method || !*p->method || !p->url || !p->service || !*p->service || !p->region ||
	    !*p->region)
		return goman_err_set(err, GOMAN_EINVAL, GOMAN_CLASS_BAD_INPUT, "BadInput",
				     "sigv4: method, url, service and region are required");
	if (!c->access_key_id || !*c->access_key_id || !c->secret_access_key ||
	    !*c->secret_access_key)
		return goman_err_set(err, GOMAN_EINVAL, GOMAN_CLASS_BAD_INPUT, "BadInput",
				     "sigv4: credentials lack an access key id or secret");
	if (p->body_len && !p->body)
		return goman_err_set(err, GOMAN_EINVAL, GOMAN_CLASS_BAD_INPUT, "BadInput",
				     "sigv4: body_len without body");
	struct url u;
	if (parse_url(p->url, &u) < 0)
		return goman_err_set(err, GOMAN_EINVAL, GOMAN_CLASS_BAD_INPUT, "BadInput",
				     "sigv4: not an absolute URL: '%.200s'", p->url);

	const bool presign = p->presign_expires > 0;
	const bool normalize = p->normalize < 0 ? !p->s3 : p->normalize != 0;
	const char *token = c->session_token && *c->session_token ? c->session_token : NULL;
	const bool sign_token = token && !p->omit_session_token;
	const bool content_header = !presign && (p->s3 || p->sign_body);

	/* time */
	int64_t ms = p->time_ms ? p->time_ms : goman_now_ms();
	char amzdate[17], date[9];
	if (amz_date(ms, amzdate) < 0)
		return goman_err_set(err, GOMAN_EINVAL, GOMAN_CLASS_BAD_INPUT, "BadInput",
				     "sigv4: signing time out of range");
	memcpy(date, amzdate, 8);
	date[8] = '\0';

	/* payload */
	char payload[65];
	if (p->unsigned_payload || (presign && p->s3))
		memcpy(payload, UNSIGNED_PAYLOAD, sizeof(UNSIGNED_PAYLOAD));
	else
		goman_sha256_hex(p->body, p->body_len, payload);

	/* header mode: our headers replace any left by an earlier signing (a retry) */
	if (!presign) {
		goman_kvs_del(headers, "Authorization");
		goman_kvs_del(headers, "X-Amz-Date");
		goman_kvs_del(headers, "X-Amz-Security-Token");
		if (content_header)
			goman_kvs_del(headers, "x-amz-content-sha256");
		if (!goman_kvs_get(headers, "Host") &&
		    goman_kvs_addn(headers, "Host", 4, u.host, u.host_len) < 0)
			return oom(err);
		if (token && goman_kvs_add(headers, "X-Amz-Security-Token", token) < 0)
			return oom(err);
		if (goman_kvs_add(headers, "X-Amz-Date", amzdate) < 0)
			return oom(err);
		if (content_header && goman_kvs_add(headers, "x-amz-content-sha256", payload) < 0)
			return oom(err);
	}

	int rc = -1;
	char ar_s[1024], cr_s[1024], tmp_s[512], sh_s[256];
	struct buf ar = BUF_ON(ar_s);   /* arena: lowercased names, trimmed values, query pairs */
	struct buf cr = BUF_ON(cr_s);   /* canonical request */
	struct buf tmp = BUF_ON(tmp_s); /* scratch */
	struct buf sh = BUF_ON(sh_s);   /* signed headers list */
	struct hent he_s[16], *he = NULL;
	struct qpair qp_s[16], *qp = NULL;
	size_t nh = 0, nq = 0;
	char scope[160];
	size_t rlen = strlen(p->region), svlen = strlen(p->service);
	size_t sl = 8 + 1 + rlen + 1 + svlen + sizeof("/aws4_request") - 1;
	if (sl < sizeof(scope)) {
		char *q = scope;
		memcpy(q, date, 8);
		q[8] = '/';
		q += 9;
		memcpy(q, p->region, rlen);
		q[rlen] = '/';
		q += rlen + 1;
		memcpy(q, p->service, svlen);
		memcpy(q + svlen, "/aws4_request", sizeof("/aws4_request"));
	} else {
		goman_err_set(err, GOMAN_EINVAL, GOMAN_CLASS_BAD_INPUT, "BadInput",
			      "sigv4: region or service name too long");
		goto out;
	}

	/* canonical headers */
	size_t hn = headers ? headers->n : 0;
	he = hn + 1 <= 16 ? he_s : malloc((hn + 1) * sizeof(*he));
	if (!he)
		goto nomem;
	bool have_host = false;
	for (size_t i = 0; i < hn; i++) {
		const struct goman_kv *kv = &headers->v[i];
		/* lowercase the name into the arena first; take it back if it is not signed */
		size_t mark = ar.n;
		put_lower(&ar, kv->name);
		b_putc(&ar, '\0');
		if (ar.oom)
			goto nomem;
		const char *ln = ar.p + mark;
		bool is_token = strcmp(ln, "x-amz-security-token") == 0;
		if (unsigned_header(ln) || (is_token && (presign || !sign_token)) ||
		    (presign && strcmp(ln, "x-amz-date") == 0)) {
			ar.n = mark;
			continue;
		}
		if (strcmp(ln, "host") == 0)
			have_host = true;
		struct hent *e = &he[nh++];
		e->pos = i;
		e->name_off = mark;
		e->name_len = ar.n - mark - 1;
		e->val_off = ar.n;
		put_trimmed(&ar, kv->value);
		e->val_len = ar.n - e->val_off;
		b_putc(&ar, '\0');
	}
	if (!have_host) { /* presign: Host goes into the signed set even when not listed */
		struct hent *e = &he[nh++];
		e->pos = hn;
		e->name_off = ar.n;
		b_puts(&ar, "host");
		e->name_len = 4;
		b_putc(&ar, '\0');
		e->val_off = ar.n;
		b_put(&ar, u.host, u.host_len);
		e->val_len = u.host_len;
		b_putc(&ar, '\0');
	}
	if (ar.oom)
		goto nomem;
	sort_arena(he, nh, sizeof(*he), cmp_hent_arena, ar.p);
	for (size_t i = 0; i < nh; i++) {
		if (i && he[i].name_len == he[i - 1].name_len &&
		    memcmp(ar.p + he[i].name_off, ar.p + he[i - 1].name_off, he[i].name_len) == 0)
			continue;
		if (sh.n)
			b_putc(&sh, ';');
		b_put(&sh, ar.p + he[i].name_off, he[i].name_len);
	}

	/* canonical query: decode, re-encode, sort by key then value; bare keys get '=' */
	size_t qcap = 8;
	for (size_t i = 0; i < u.query_len; i++)
		qcap += u.query[i] == '&';
	qp = qcap <= 16 ? qp_s : malloc(qcap * sizeof(*qp));
	if (!qp)
		goto nomem;
	for (size_t i = 0; i < u.query_len;) {
		const char *s = u.query + i;
		size_t len = strcspn(s, "&#");
		if (i + len > u.query_len)
			len = u.query_len - i;
		i += len + 1;
		if (len == 0)
			continue;
		const char *eq = memchr(s, '=', len);
		size_t klen = eq ? (size_t)(eq - s) : len;
		if (presign && is_presign_param(s, klen))
			continue;
		struct qpair *q = &qp[nq++];
		q->off = ar.n;
		b_reenc(&ar, s, klen, false);
		q->keylen = ar.n - q->off;
		b_putc(&ar, '=');
		if (eq)
			b_reenc(&ar, eq + 1, len - klen - 1, false);
		q->len = ar.n - q->off;
	}
	if (presign) {
		char exp[32];
		snprintf(exp, sizeof(exp), "%ld", p->presign_expires);
		const char *names[6] = {"X-Amz-Algorithm",     "X-Amz-Credential",
					"X-Amz-Date",          "X-Amz-Expires",
					"X-Amz-SignedHeaders", "X-Amz-Security-Token"};
		for (int k = 0; k < 6; k++) {
			if (k == 5 && !sign_token)
				break;
			struct qpair *q = &qp[nq++];
			q->off = ar.n;
			b_puts(&ar, names[k]);
			q->keylen = ar.n - q->off;
			b_putc(&ar, '=');
			switch (k) {
			case 0: b_puts(&ar, ALGO); break;
			case 1:
				b_enc(&ar, c->access_key_id, strlen(c->access_key_id), false);
				b_puts(&ar, "%2F");
				b_enc(&ar, scope, sl, false);
				break;
			case 2: b_puts(&ar, amzdate); break;
			case 3: b_puts(&ar, exp); break;
			case 4: b_enc(&ar, sh.p ? sh.p : "", sh.n, false); break;
			default: b_enc(&ar, token, strlen(token), false); break;
			}
			q->len = ar.n - q->off;
		}
	}
	if (ar.oom || sh.oom)
		goto nomem;
	sort_arena(qp, nq, sizeof(*qp), cmp_qpair_arena, ar.p);

	/* the canonical request */
	b_puts(&cr, p->method);
	b_putc(&cr, '\n');
	canonical_path(&cr, &tmp, &u, p->s3, normalize);
	b_putc(&cr, '\n');
	for (size_t i = 0; i < nq; i++) {
		if (i)
			b_putc(&cr, '&');
		b_put(&cr, ar.p + qp[i].off, qp[i].len);
	}
	b_putc(&cr, '\n');
	for (size_t i = 0; i < nh; i++) {
		bool cont = i && he[i].name_len == he[i - 1].name_len &&
			    memcmp(ar.p + he[i].name_off, ar.p + he[i - 1].name_off,
				   he[i].name_len) == 0;
		if (cont) {
			/* duplicate names: one line, values joined by ',' in their given order */
			cr.n--; /* the '\n' */
			b_putc(&cr, ',');
		} else {
			b_put(&cr, ar.p + he[i].name_off, he[i].name_len);
			b_putc(&cr, ':');
		}
		b_put(&cr, ar.p + he[i].val_off, he[i].val_len);
		b_putc(&cr, '\n');
	}
	b_putc(&cr, '\n');
	b_put(&cr, sh.p ? sh.p : "", sh.n);
	b_putc(&cr, '\n');
	b_puts(&cr, payload);
	if (cr.oom || tmp.oom)
		goto nomem;

	/* string to sign, signature */
	char crhash[65];
	goman_sha256_hex(cr.p, cr.n, crhash);
	tmp.n = 0;
	b_puts(&tmp, ALGO "\n");
	b_puts(&tmp, amzdate);
	b_putc(&tmp, '\n');
	b_put(&tmp, scope, sl);
	b_putc(&tmp, '\n');
	b_puts(&tmp, crhash);
	if (tmp.oom)
		goto nomem;
	struct hmac_key key;
	unsigned char sig[SHA256_DIGEST_LENGTH];
	signing_key(c->secret_access_key, date, p->region, p->service, &key);
	hmac_run(&key, tmp.p, tmp.n, sig);
	OPENSSL_cleanse(&key, sizeof(key));
	to_hex(sig, sizeof(sig), out->signature);

	if (explain) {
		out->canonical_request = cr.heap ? cr.p : strdup(cr.p);
		if (cr.heap)
			cr.heap = false; /* now the caller's */
		if (!out->canonical_request)
			goto nomem;
		out->string_to_sign = strdup(tmp.p);
		if (!out->string_to_sign)
			goto nomem;
	}

	if (presign) {
		/* the URL as given, our parameters after the caller's (in the AWS suite's order) */
		struct buf ub = {0};
		b_put(&ub, u.base, u.base_len);
		char sepc = '?';
		for (size_t i = 0; i < u.query_len;) {
			const char *s = u.query + i;
			size_t len = strcspn(s, "&#");
			if (i + len > u.query_len)
				len = u.query_len - i;
			i += len + 1;
			if (len == 0)
				continue;
			const char *eq = memchr(s, '=', len);
			if (is_presign_param(s, eq ? (size_t)(eq - s) : len))
				continue;
			b_putc(&ub, sepc);
			sepc = '&';
			b_put(&ub, s, len);
		}
		b_putc(&ub, sepc);
		b_puts(&ub, "X-Amz-Algorithm=" ALGO "&X-Amz-Credential=");
		b_enc(&ub, c->access_key_id, strlen(c->access_key_id), false);
		b_puts(&ub, "%2F");
		b_enc(&ub, scope, sl, false);
		b_puts(&ub, "&X-Amz-Date=");
		b_puts(&ub, amzdate);
		b_puts(&ub, "&X-Amz-SignedHeaders=");
		b_enc(&ub, sh.p ? sh.p : "", sh.n, false);
		char exp[48];
		snprintf(exp, sizeof(exp), "&X-Amz-Expires=%ld", p->presign_expires);
		b_puts(&ub, exp);
		if (token) { /* omit_session_token: unsigned, but still carried */
			b_puts(&ub, "&X-Amz-Security-Token=");
			b_enc(&ub, token, strlen(token), false);
		}
		b_puts(&ub, "&X-Amz-Signature=");
		b_puts(&ub, out->signature);
		if (ub.oom) {
			b_free(&ub);
			goto nomem;
		}
		out->url = ub.p;
	} else {
		tmp.n = 0;
		b_puts(&tmp, ALGO " Credential=");
		b_puts(&tmp, c->access_key_id);
		b_putc(&tmp, '/');
		b_put(&tmp, scope, sl);
		b_puts(&tmp, ", SignedHeaders=");
		b_put(&tmp, sh.p ? sh.p : "", sh.n);
		b_puts(&tmp, ", Signature=");
		b_puts(&tmp, out->signature);
		if (tmp.oom || goman_kvs_add(headers, "Authorization", tmp.p) < 0)
			goto nomem;
	}
	rc = 0;
	goto out;
nomem:
	oom(err);
	goman_sigv4_out_clear(out);
out:
	b_free(&ar);
	b_free(&cr);
	b_free(&tmp);
	b_free(&sh);
	if (he != he_s)
		free(he);
	if (qp != qp_s)
		free(qp);
	return rc;
}
