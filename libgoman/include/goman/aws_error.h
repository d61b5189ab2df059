/*
 * goman/aws_error.h - the code, message and request id of an AWS error reply, whatever the
 * protocol: EC2 <Response><Errors><Error>, STS/IAM <ErrorResponse><Error>, S3 <Error>, and
 * JSON 1.0/1.1 {"__type", "message"} (or the x-amzn-ErrorType header). One parser, used by
 * the AWS client (goman/aws.h) and by goman-sign --send, so both name an error the same way.
 *
 * Ownership: everything is borrowed. With doc non-NULL, a JSON body that named the error is
 * handed back parsed in *doc (the caller cJSON_Delete()s it; NULL otherwise).
 * Errors: these functions only fill what they found of e->code, e->message and
 * e->request_id; rc, class and HTTP status stay as the caller set them (goman_err_set() and
 * goman_err_classify() before and after). They return 0 when the reply named an error
 * code, -1 when it did not (a success document, an empty or unreadable body).
 */
#ifndef GOMAN_AWS_ERROR_H
#define GOMAN_AWS_ERROR_H
#include <stddef.h>
#include "goman/error.h"
#include "goman/kv.h"

struct cJSON;

/* A whole reply body (XML when its first non-blank byte is '<', else JSON); headers
 * (NULL ok) give the code when a JSON body has none, and the request id when the body has
 * none (x-amzn-RequestId, x-amz-request-id). */
int goman_aws_error_parse(const char *body, size_t len, const struct goman_kvs *headers,
			  struct goman_err *e, struct cJSON **doc);

/* An XML reply already converted (root element name and the converted object, as the
 * streaming converter gives them), for callers that did not keep the body. */
int goman_aws_error_xml(const char *root, const struct cJSON *data, struct goman_err *e);

#endif
