/*
 * goman/sigv4.h - AWS Signature Version 4: canonical request, string to sign, signature,
 * in header mode (Authorization header) or presigned-query mode (X-Amz-* in the URL).
 *
 * Ownership: goman_sigv4_sign() borrows everything in its params and credentials, and
 * writes into `headers` (caller-owned list: existing signing headers are replaced, never
 * duplicated) or returns a malloc'd presigned URL in out->url. goman_sigv4_out_clear()
 * frees what the out struct holds. The secret key is never copied into any output.
 * Errors: -1 with struct goman_err filled (EINVAL for a bad URL or missing field).
 */
#ifndef GOMAN_SIGV4_H
#define GOMAN_SIGV4_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "goman/error.h"
#include "goman/kv.h"

struct goman_creds {
	char *access_key_id;
	char *secret_access_key;
	char *session_token; /* NULL when none */
	int64_t expires_ms;  /* 0 when it does not expire */
	char *source;        /* "env", "profile:NAME", "process", "assume-role", "ecs", "imds" */
};
void goman_creds_clear(struct goman_creds *c);
int goman_creds_copy(struct goman_creds *dst, const struct goman_creds *src);

struct goman_sigv4_params {
	const char *method; /* "GET", "POST", ... */
	const char *url;    /* absolute URL, path and query as they go on the wire */
	const void *body;   /* may be NULL when body_len is 0 */
	size_t body_len;
	const char *service; /* signing name: "ec2", "ssm", "s3", "dynamodb", "sts", "iam" ... */
	const char *region;
	int64_t time_ms;       /* signing time, epoch ms (0 = goman_now_ms()) */
	long presign_expires;  /* > 0: presigned-query mode with X-Amz-Expires */
	bool s3;               /* S3 rules: no double encoding, no normalisation, content sha */
	bool sign_body;        /* add signed x-amz-content-sha256 (always on for S3 header mode) */
	bool unsigned_payload; /* payload hash "UNSIGNED-PAYLOAD" (presigned S3 always) */
	int normalize;         /* -1 default (true unless s3), 0 off, 1 on */
	bool omit_session_token; /* sign without the token, add X-Amz-Security-Token afterwards */
};

struct goman_sigv4_out {
	char *canonical_request; /* malloc'd; only when explain was asked */
	char *string_to_sign;    /* malloc'd; only when explain was asked */
	char signature[65];      /* hex */
	char *url;               /* malloc'd presigned URL in presign mode, else NULL */
};
void goman_sigv4_out_clear(struct goman_sigv4_out *o);

/*
 * Signs. Header mode: adds/replaces Host (if absent), X-Amz-Date, X-Amz-Security-Token,
 * x-amz-content-sha256 (when asked) and Authorization in `headers`. Presign mode: headers
 * are signed as given (Host added to the signed set) and out->url gets the final URL.
 * explain: also fill out->canonical_request and out->string_to_sign.
 */
int goman_sigv4_sign(const struct goman_sigv4_params *p, const struct goman_creds *c,
		     struct goman_kvs *headers, bool explain, struct goman_sigv4_out *out,
		     struct goman_err *err);

/* Lowercase hex SHA-256 of data into out[65]. */
void goman_sha256_hex(const void *data, size_t len, char out[65]);

/* Percent-encodes every byte outside A-Za-z0-9-_.~ (and '/' too unless keep_slash).
 * Returns a malloc'd string, or NULL on out-of-memory. */
char *goman_uri_encode(const char *s, size_t len, bool keep_slash);

#endif
