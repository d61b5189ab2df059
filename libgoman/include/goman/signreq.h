/*
 * goman/signreq.h - a request to sign, as a JSON record (goman-sign's input line), and the
 * JSON shapes that go back on its output line.
 *
 * Record fields: "method","url","headers","body","service","region","time","presign",
 * "unsigned_payload","sign_body","normalize","omit_session_token". "headers" is an object
 * or an array of [name, value] pairs (duplicates allowed, order kept); the output uses the
 * shape that was given.
 *
 * Ownership: goman_signreq_parse() fills a caller-owned struct (free with
 * goman_signreq_clear(), safe on a zeroed or half-filled struct); the record is borrowed.
 * Functions returning cJSON * or char * hand a new object/string to the caller.
 * Errors: -1 with struct goman_err (EINVAL, class bad_input, code "BadInput") for input the
 * record cannot mean.
 */
#ifndef GOMAN_SIGNREQ_H
#define GOMAN_SIGNREQ_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "goman/error.h"
#include "goman/kv.h"

struct cJSON;

struct goman_signreq {
	char *method; /* given, else POST with a body, GET without */
	char *url;
	struct goman_kvs headers;
	bool headers_array; /* "headers" came as [[name, value], ...] */
	char *body;         /* NULL when absent */
	size_t body_len;
	char *service, *region;                     /* NULL when not in the record */
	int64_t time_ms;                            /* 0 = now */
	long presign;                               /* > 0: presigned URL valid this many seconds */
	int sign_body, unsigned_payload, normalize; /* -1 not given, 0 false, 1 true */
	bool omit_session_token;
};

int goman_signreq_parse(const struct cJSON *rec, struct goman_signreq *out, struct goman_err *err);
void goman_signreq_clear(struct goman_signreq *r);

/* Checks url is an absolute http(s) URL with a host. Returns 0, or -1 with BadInput. */
int goman_signreq_check_url(const char *url, struct goman_err *err);

/*
 * Service and region an AWS host name implies: "ec2.us-west-2.amazonaws.com" → ec2,
 * us-west-2; S3 forms ("s3.amazonaws.com", "bucket.s3.eu-west-1.amazonaws.com",
 * "s3-us-west-2.amazonaws.com", "s3.dualstack.REGION...") → s3 and the region (us-east-1
 * for the global form); global services ("sts.amazonaws.com", "iam.amazonaws.com") →
 * us-east-1. Each out string is malloc'd, or NULL when the host does not say.
 */
void goman_signreq_guess(const char *url, char **service, char **region);

/* Headers as JSON: an array of [name, value] pairs, or an object (duplicate names kept). */
struct cJSON *goman_signreq_headers_json(const struct goman_kvs *h, bool as_array);

/* {"status","headers","body"} or "body_base64" instead of "body" when the bytes are not
 * UTF-8 text (or hold a NUL). */
struct cJSON *goman_signreq_response_json(long status, const struct goman_kvs *headers,
					  const char *body, size_t body_len);

#endif
