/*
 * goman/s3.h - presigned S3 URLs (what a node fetches without credentials of its own).
 *
 * Ownership: goman_s3_presign returns a malloc'd URL that carries the credentials' session
 * token when they have one: wipe it (OPENSSL_cleanse) before free. The options and the
 * credentials are borrowed.
 * Errors: NULL with err filled (bad input, no memory, credentials about to expire).
 */
#ifndef GOMAN_S3_H
#define GOMAN_S3_H
#include <stdbool.h>
#include <stdint.h>
#include "goman/sigv4.h"
#include "goman/error.h"

struct goman_s3_presign {
	const char *endpoint; /* the S3 endpoint of the region (goman_credchain_endpoint) */
	const char *region;
	const char *bucket, *key; /* key: any characters; '/' kept */
	long expires_s;           /* wanted lifetime, cut by goman_presign_lifetime */
	int64_t time_ms;          /* signing time, epoch ms (0 = now) */
};

/* A presigned GET URL. Virtual-host style (https://BUCKET.s3.REGION.amazonaws.com/KEY)
 * when the endpoint is AWS's own and the bucket name is a DNS label without dots (TLS
 * wildcards do not cover dotted names); path style (ENDPOINT/BUCKET/KEY) for any other
 * endpoint (emulators, proxies, loopback) and for dotted or non-DNS bucket names, as the
 * AWS SDKs do. */
char *goman_s3_presign(const struct goman_s3_presign *p, const struct goman_creds *cr,
		       struct goman_err *err);

/* Is url one of AWS's own endpoints (a host under amazonaws.com, not a loopback address)? */
bool goman_s3_endpoint_is_aws(const char *url);

/* Lifetime (seconds) of a presigned URL: want_s, within SigV4's 1..604800, and inside the
 * remaining life of the credentials that sign it (expires_ms, epoch ms; 0 = do not
 * expire) less a minute, since a URL made with temporary credentials stops working when
 * they expire whatever X-Amz-Expires says. -1 when they expire within that minute. */
long goman_presign_lifetime(long want_s, int64_t expires_ms, int64_t now_ms);

#endif
