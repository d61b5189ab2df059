/*
 * aws_int.h - what aws.c shares with its protocol files (aws_query.c, aws_json.c,
 * aws_s3.c) and http.c. Library-internal (gm_ names); nothing here is installed.
 *
 * Ownership: functions returning char * or cJSON * hand the caller a new allocation.
 * struct gm_aws_req owns its url, headers and body (gm_aws_req_clear()).
 * Errors: -1 (or NULL) with struct goman_err filled.
 */
#ifndef GOMAN_AWS_INT_H
#define GOMAN_AWS_INT_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "goman/aws.h"
#include "goman/error.h"
#include "goman/http.h"
#include "goman/kv.h"
#include "internal.h"

struct cJSON;

/* ---- http.c ---------------------------------------------------------------------- */
/* Runs the loop until *flag becomes non-zero (or nothing is pending). */
void gm_http_run_until(struct goman_http *h, const int *flag);
/* Drops an in-flight request without calling its callbacks. */
void gm_http_cancel(struct goman_http *h, long id);

/* True when v may go on the wire as a header value: no control bytes but HTAB (a CR or LF
 * would end the header and start another). */
bool gm_header_value_ok(const char *v);

/* ---- aws.c: the credential chain's caller (creds_int.h) --------------------------- */
struct gm_cc_call;
struct goman_credchain;
/* The hook aws.c installs on its own chain (ctx = the client): STS query calls signed with
 * the call's credentials or unsigned, and unsigned REST-JSON calls, on the client's loop
 * and through its guard. */
int gm_aws_creds_call(void *ctx, const struct gm_cc_call *call, struct cJSON **reply,
		      struct goman_err *err);
/* A client for a bare chain's own calls: borrows cc (endpoints), makes its own loop and
 * guard, never resolves credentials itself. Freed with goman_aws_free (cc stays). */
struct goman_aws *gm_aws_new_on_chain(struct goman_credchain *cc, struct goman_err *err);

/* ---- the request a protocol file builds; aws.c signs and sends it ----------------- */
enum gm_reply {
	GM_REPLY_XML,  /* query protocol: XML replies, success and error */
	GM_REPLY_JSON, /* JSON 1.0/1.1: JSON replies, errors with __type */
	GM_REPLY_S3,   /* S3: XML or raw bytes on success, XML errors */
};

struct gm_aws_req {
	char method[8];
	char *url;
	struct goman_kvs headers; /* unsigned base headers; each attempt signs a copy */
	char *body;
	size_t body_len;
	bool s3;        /* S3 signing rules */
	bool raw_reply; /* S3 object bodies: keep the bytes, do not parse */
	enum gm_reply reply;
};
void gm_aws_req_clear(struct gm_aws_req *r);

/* ---- aws_query.c: EC2 / STS / IAM query protocol ---------------------------------- */
/* Default API version of a query service ("ec2" → "2016-11-15"), NULL if not query. */
const char *gm_query_version(const char *service);
/* Form body "Action=..&Version=..&k=v.." with every byte outside A-Za-z0-9-_.~ encoded. */
char *gm_query_form(const char *action, const char *version, const struct goman_kvs *params,
		    size_t *len);
int gm_query_prepare(const struct goman_aws_call *call, const char *endpoint,
		     struct gm_aws_req *out, struct goman_err *err);

/* Streaming XML → cJSON converter (rules in goman/aws.h). */
struct gm_xml;
struct gm_xml *gm_xml_new(void);
void gm_xml_free(struct gm_xml *x);
/* Feeds one chunk; -1 with err (EPARSE) once the document is broken. */
int gm_xml_feed(struct gm_xml *x, const char *data, size_t len, struct goman_err *err);
/* Ends the document and returns the converted root (always an object; the root element
 * itself is dropped, a root that is text or a list goes under its own name). */
struct cJSON *gm_xml_finish(struct gm_xml *x, struct goman_err *err);
/* Name of the root element, "" before it was seen. Borrowed. */
const char *gm_xml_root(const struct gm_xml *x);
/* One-shot conversion; root (if not NULL) gets the root element's name. */
struct cJSON *gm_xml_to_json(const char *xml, size_t len, char *root, size_t rootlen,
			     struct goman_err *err);

/* ---- aws_json.c: SSM JSON 1.1, DynamoDB JSON 1.0 --------------------------------- */
/* X-Amz-Target prefix and content type; false when the service is not a JSON one. */
bool gm_json_service(const char *service, const char **target_prefix, const char **content_type);
int gm_json_prepare(const struct goman_aws_call *call, const char *endpoint, struct gm_aws_req *out,
		    struct goman_err *err);

/* ---- aws_s3.c: S3 REST ------------------------------------------------------------- */
/* True when a bucket name can be a DNS label (virtual-host style). */
bool gm_s3_bucket_dns_ok(const char *bucket);
/* URL for bucket/key on endpoint; path style when path_style or the name is not DNS-safe. */
char *gm_s3_url(const char *endpoint, const char *bucket, const char *key, const char *query,
		bool path_style);
/* Builds the request; path_style forces path-style URLs (custom or loopback endpoints). */
int gm_s3_prepare(const struct goman_aws_call *call, const char *endpoint, const char *region,
		  bool path_style, struct gm_aws_req *out, struct goman_err *err);

#ifdef GOMAN_UNIT_TEST
/* aws_query.c: element-name comparisons made while attaching children (the converter's
 * work per sibling must not grow with the number of siblings) */
extern unsigned long gm_xml_name_compares;
#endif

#endif
