/*
 * sigv4_bench.c - signing throughput of goman_sigv4_sign() on a typical EC2 POST (header mode,
 * form body), next to a raw OpenSSL HMAC/SHA-256 chain doing the same crypto work.
 *
 * Prints "RESULT <name> <ns_per_op> <ops_per_s>" lines (bench/10-sigv4.sh reads them) and
 * "SIG <hex>" for the request signed at 2015-08-30T12:36:00Z, so the script can check that
 * botocore signs the very same request to the very same signature.
 *
 * The raw chains (what any SigV4 signer must compute, and nothing else):
 *   raw_cached: SHA-256(payload) -> hex; SHA-256(a canonical request of the same size) -> hex,
 *               copied into a prebuilt string to sign; HMAC(kSigning, string to sign) -> hex.
 *               kSigning is known (as a signer with a key cache has it).
 *   raw_full:   raw_cached plus the 4 HMACs that derive kSigning from the secret.
 * Both use OpenSSL's one-shot SHA256() and HMAC(EVP_sha256()), the obvious OpenSSL calls.
 *   raw_cached_ll: raw_cached on the low-level SHA256_Init/Update/Final that goman uses, with
 *               HMAC written out (key padded every time): the floor a C signer can reach
 *               without caching keyed HMAC states (goman caches them: 2 compressions less).
 * goman_sign: the whole of goman_sigv4_sign() with its key cache warm (the normal case),
 *   including URL parsing, header list edits (4 frees + 4 mallocs), canonicalisation, sorting.
 * goman_sign_cold: the same with the cache emptied before each call (5 key HMACs each time,
 *   plus the cost of emptying the cache).
 */
#define OPENSSL_SUPPRESS_DEPRECATED
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "goman/sigv4.h"

void gm_sigv4_cache_reset(void); /* GOMAN_TESTABLE in sigv4.c (bench links the test build) */

#define URL "https://ec2.us-east-1.amazonaws.com/"
#define BODY                                                                                \
	"Action=DescribeInstances&Version=2016-11-15&Filter.1.Name=tag%3Agoman%3Acluster"   \
	"&Filter.1.Value.1=demo&Filter.2.Name=instance-state-name&Filter.2.Value.1=running" \
	"&MaxResults=100"
#define CTYPE "application/x-www-form-urlencoded; charset=utf-8"
#define SECRET "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts); /* CPU time: 2 cores shared by many */
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static volatile unsigned sink;

static void hexify(const unsigned char *d, size_t n, char *o)
{
	static const char hx[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		o[2 * i] = hx[d[i] >> 4];
		o[2 * i + 1] = hx[d[i] & 15];
	}
	o[2 * n] = '\0';
}

static const struct goman_creds creds = {.access_key_id = (char *)"AKIDEXAMPLE",
					 .secret_access_key = (char *)SECRET};

static struct goman_sigv4_params params(int64_t t)
{
	struct goman_sigv4_params p = {.method = "POST",
				       .url = URL,
				       .body = BODY,
				       .body_len = sizeof(BODY) - 1,
				       .service = "ec2",
				       .region = "us-east-1",
				       .time_ms = t,
				       .normalize = -1};
	return p;
}

static void goman_once(struct goman_kvs *h, bool cold)
{
	struct goman_sigv4_params p = params(1440938160000);
	struct goman_sigv4_out o;
	if (cold)
		gm_sigv4_cache_reset();
	/* the same list each time: a retry's re-sign replaces the signing headers */
	if (goman_sigv4_sign(&p, &creds, h, false, &o, NULL) < 0)
		abort();
	sink += (unsigned)o.signature[0];
}

/* what raw_* hashes: a canonical request and string to sign shaped like goman's */
static char canon[1024], sts[256];
static size_t canon_len, sts_len, sts_hash_at;
static unsigned char ksigning[32];

static void raw_setup(void)
{
	struct goman_kvs h = {0};
	goman_kvs_add(&h, "Content-Type", CTYPE);
	struct goman_sigv4_params p = params(1440938160000);
	struct goman_sigv4_out o;
	if (goman_sigv4_sign(&p, &creds, &h, true, &o, NULL) < 0)
		abort();
	canon_len = strlen(o.canonical_request);
	memcpy(canon, o.canonical_request, canon_len);
	sts_len = strlen(o.string_to_sign);
	memcpy(sts, o.string_to_sign, sts_len);
	sts_hash_at = sts_len - 64;
	goman_sigv4_out_clear(&o);
	goman_kvs_clear(&h);
	unsigned int l = 32;
	HMAC(EVP_sha256(), "AWS4" SECRET, sizeof("AWS4" SECRET) - 1,
	     (const unsigned char *)"20150830", 8, ksigning, &l);
	HMAC(EVP_sha256(), ksigning, 32, (const unsigned char *)"us-east-1", 9, ksigning, &l);
	HMAC(EVP_sha256(), ksigning, 32, (const unsigned char *)"ec2", 3, ksigning, &l);
	HMAC(EVP_sha256(), ksigning, 32, (const unsigned char *)"aws4_request", 12, ksigning, &l);
}

static void raw_once(bool full)
{
	unsigned char md[32], k[32];
	char hex[65];
	unsigned int l = 32;
	SHA256((const unsigned char *)BODY, sizeof(BODY) - 1, md);
	hexify(md, 32, hex);
	memcpy(canon + canon_len - 64, hex, 64);
	SHA256((const unsigned char *)canon, canon_len, md);
	hexify(md, 32, sts + sts_hash_at);
	const unsigned char *key = ksigning;
	if (full) {
		HMAC(EVP_sha256(), "AWS4" SECRET, sizeof("AWS4" SECRET) - 1,
		     (const unsigned char *)"20150830", 8, k, &l);
		HMAC(EVP_sha256(), k, 32, (const unsigned char *)"us-east-1", 9, k, &l);
		HMAC(EVP_sha256(), k, 32, (const unsigned char *)"ec2", 3, k, &l);
		HMAC(EVP_sha256(), k, 32, (const unsigned char *)"aws4_request", 12, k, &l);
		key = k;
	}
	HMAC(EVP_sha256(), key, 32, (const unsigned char *)sts, sts_len, md, &l);
	hexify(md, 32, hex);
	sink += (unsigned)hex[0];
}

static void ll_sha(const void *d, size_t n, unsigned char md[32])
{
	SHA256_CTX c;
	SHA256_Init(&c);
	SHA256_Update(&c, d, n);
	SHA256_Final(md, &c);
}

static void ll_hmac(const unsigned char *key, size_t kl, const void *m, size_t n,
		    unsigned char out[32])
{
	unsigned char pad[64], ih[32];
	SHA256_CTX c;
	memset(pad, 0x36, 64);
	for (size_t i = 0; i < kl; i++)
		pad[i] ^= key[i];
	SHA256_Init(&c);
	SHA256_Update(&c, pad, 64);
	SHA256_Update(&c, m, n);
	SHA256_Final(ih, &c);
	memset(pad, 0x5c, 64);
	for (size_t i = 0; i < kl; i++)
		pad[i] ^= key[i];
	SHA256_Init(&c);
	SHA256_Update(&c, pad, 64);
	SHA256_Update(&c, ih, 32);
	SHA256_Final(out, &c);
}

static void raw_ll_once(void)
{
	unsigned char md[32];
	char hex[65];
	ll_sha(BODY, sizeof(BODY) - 1, md);
	hexify(md, 32, hex);
	memcpy(canon + canon_len - 64, hex, 64);
	ll_sha(canon, canon_len, md);
	hexify(md, 32, sts + sts_hash_at);
	ll_hmac(ksigning, 32, sts, sts_len, md);
	hexify(md, 32, hex);
	sink += (unsigned)hex[0];
}

enum which { GOMAN, GOMAN_COLD, RAW_CACHED, RAW_FULL, RAW_LL };

static void report(const char *name, enum which w, double secs)
{
	struct goman_kvs h = {0};
	goman_kvs_add(&h, "Content-Type", CTYPE);
	long n = 0, batch = 1000;
	double t0 = now_s(), t;
	do {
		for (long i = 0; i < batch; i++) {
			switch (w) {
			case GOMAN: goman_once(&h, false); break;
			case GOMAN_COLD: goman_once(&h, true); break;
			case RAW_CACHED: raw_once(false); break;
			case RAW_FULL: raw_once(true); break;
			case RAW_LL: raw_ll_once(); break;
			}
		}
		n += batch;
		t = now_s() - t0;
	} while (t < secs);
	goman_kvs_clear(&h);
	printf("RESULT %s %.1f %.0f\n", name, t * 1e9 / (double)n, (double)n / t);
}

int main(int argc, char **argv)
{
	double secs = argc > 1 ? strtod(argv[1], NULL) : 1.0;
	if (secs <= 0)
		secs = 1.0;
	raw_setup();
	/* the signature both peers must agree on */
	struct goman_kvs h = {0};
	goman_kvs_add(&h, "Content-Type", CTYPE);
	struct goman_sigv4_params p = params(1440938160000);
	struct goman_sigv4_out o;
	if (goman_sigv4_sign(&p, &creds, &h, false, &o, NULL) < 0)
		return 1;
	printf("SIG %s\n", o.signature);
	goman_kvs_clear(&h);
	/* warm up, then alternate so drift in machine load hits both sides alike */
	report("warmup", GOMAN, secs / 4);
	for (int round = 0; round < 2; round++) {
		report("goman_sign", GOMAN, secs / 2);
		report("raw_cached", RAW_CACHED, secs / 2);
		report("goman_sign_cold", GOMAN_COLD, secs / 2);
		report("raw_full", RAW_FULL, secs / 2);
		report("raw_cached_ll", RAW_LL, secs / 2);
	}
	return 0;
}
