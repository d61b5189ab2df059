/*
 * goman/aws.h - the one generic AWS call path used by every command.
 *
 * A struct goman_aws holds the credential chain, the region, the endpoint resolution, the
 * HTTP loop and the breakers, retry policy, quota and rate limiter. Each call
 * is: resolve endpoint → build request (EC2/STS/IAM query form POST; SSM JSON 1.1 and
 * DynamoDB JSON 1.0 with X-Amz-Target; S3 REST) → sign → send on the shared loop →
 * parse (XML replies streamed through expat into cJSON; JSON replies with cJSON) →
 * classify errors in the one table (error.h) → retry with a fresh signature.
 *
 * XML to JSON: the root element is dropped; an element with only text becomes a string;
 * an element whose children are all <item> or <member> becomes an array (an empty element
 * whose name ends in "Set" becomes []); other elements become objects (repeated child names
 * become arrays). Attributes are ignored. Numbers and booleans stay strings.
 *
 * Ownership: the client is created by goman_aws_new() and freed by goman_aws_free() (NULL
 * ok). struct goman_aws_call is borrowed only during goman_aws_submit()/goman_aws_call().
 * A struct goman_aws_result passed to a done callback belongs to the library and lives
 * only during the callback: to keep ->data, set it to NULL after taking it. A result
 * filled by goman_aws_call() belongs to the caller: goman_aws_result_clear().
 * Errors: the result's err (rc OK on success). Service errors carry code, message, HTTP
 * status and request id. Every attempt passes the client's guard (goman/guard.h): breaker
 * -> adaptive send rate -> send, and the guard decides retries (retry_policy, else the
 * configured policy; the retry quota; AWS_RETRY_MODE/AWS_MAX_ATTEMPTS). A call the breaker
 * refuses ends with rc GOMAN_ECIRCUIT, class circuit_open, code "CircuitOpen" and
 * retry_after_ms = time until the next probe (commands exit 69 on it); it arrives in the
 * done callback, also when the first attempt is refused. A reply longer than the config's
 * max_reply_bytes (GOMAN_MAX_REPLY_BYTES, default 64 MiB) stops the transfer and ends the
 * call with EPARSE, class client, code "ReplyTooLarge", without a retry.
 */
#ifndef GOMAN_AWS_H
#define GOMAN_AWS_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "goman/error.h"
#include "goman/http.h"
#include "goman/kv.h"

struct cJSON;
struct goman_aws;
struct goman_config;
struct goman_creds;

struct goman_aws_opts {
	const char *profile;     /* NULL = AWS_PROFILE or default */
	const char *region;      /* NULL = resolved like the CLI */
	struct goman_http *http; /* borrowed loop to share; NULL = the client makes its own */
	const struct goman_config *config; /* resilience settings; NULL = the effective
					    * config: goman_config_init + goman_config_load */
	const struct goman_creds *creds;   /* explicit credentials (copied), overriding the chain */
};

struct goman_aws_call {
	const char *service; /* "ec2", "ssm", "s3", "dynamodb", "sts", "iam" */
	const char *action;  /* "DescribeInstances", "GetParameter", "PutObject" ... */
	const char *region;  /* NULL = client's region */
	/* query protocol (ec2, sts, iam): Action and Version are added for you */
	const struct goman_kvs *params;
	const char *version; /* NULL = the service's default API version */
	/* JSON protocols (ssm: JSON 1.1, dynamodb: JSON 1.0): the request object (borrowed) */
	const struct cJSON *json;
	/* S3 REST */
	const char *method; /* GET/PUT/HEAD/DELETE/POST */
	const char *bucket;
	const char *key;   /* any characters; encoded once, '/' kept */
	const char *query; /* raw query string without '?', already encoded ("uploads") */
	const struct goman_kvs *headers; /* extra request headers */
	const void *body;
	size_t body_len;
	/* behaviour */
	const char *retry_policy;     /* NULL = client default ("default", "aws", ...) */
	int64_t eventual_deadline_ms; /* >0: retry eventual-consistency codes this long */
};

/* The longest eventual_deadline_ms a record may ask for (one day). */
#define GOMAN_AWS_MAX_DEADLINE_MS INT64_C(86400000)
/* True when a record's eventual_deadline_ms is a finite number in 0..MAX (safe to cast). */
bool goman_aws_deadline_ok(const struct cJSON *v);

struct goman_aws_result {
	struct goman_err err;
	int http_status;
	struct cJSON *data; /* parsed reply (object), or NULL (S3 object bodies). On a
				   * JSON service's error reply (SSM, DynamoDB), its error
				   * body (e.g. "Item" of a failed condition); else NULL */
	char *raw;          /* S3: response body bytes; NULL otherwise */
	size_t raw_len;
	struct goman_kvs headers; /* response headers */
	int attempts;
	int64_t ms; /* wall time across all attempts */
};

typedef void (*goman_aws_done_fn)(struct goman_aws_result *res, void *ud);

struct goman_aws *goman_aws_new(const struct goman_aws_opts *opts, struct goman_err *err);
void goman_aws_free(struct goman_aws *a);
/* The loop to drive (goman_http_run) when using goman_aws_submit(). Borrowed. */
struct goman_http *goman_aws_http(struct goman_aws *a);
/* Region in use. Borrowed. */
const char *goman_aws_region(const struct goman_aws *a);

/* Queues a call; done runs from goman_http_run() once it succeeded or gave up.
 * A call the client knows to be malformed fails here (-1, EINVAL, class bad_input) and
 * never reaches the wire: a field of another protocol (params on ssm/dynamodb/s3, json on
 * ec2/sts/iam/s3, version outside the query services, method/bucket/key/query/headers/body
 * outside s3), an action that is not an operation name, a region that fails
 * goman_region_ok(), a method or header name that is not an HTTP token, a header value or
 * query with control bytes. */
int goman_aws_submit(struct goman_aws *a, const struct goman_aws_call *call, goman_aws_done_fn done,
		     void *ud, struct goman_err *err);
/* Blocking convenience: submits and runs the loop until this call is done. Returns 0 when
 * res->err.rc is OK, else -1. */
int goman_aws_call(struct goman_aws *a, const struct goman_aws_call *call,
		   struct goman_aws_result *res);
void goman_aws_result_clear(struct goman_aws_result *r);

/* Helpers for reading converted XML/JSON replies: string at a dotted path
 * ("instancesSet" / "instanceState.name"); NULL when absent. Borrowed. */
const char *goman_json_path_str(const struct cJSON *obj, const char *dotted);
/* the array at a dotted path, or NULL when absent or an empty string (empty XML element) */
struct cJSON *goman_json_path_array(const struct cJSON *obj, const char *dotted);

#endif
