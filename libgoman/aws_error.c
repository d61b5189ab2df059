/*
 * aws_error.c - AWS error replies, every protocol: see goman/aws_error.h. The XML forms go
 * through the library's one XML converter (aws_query.c); JSON through cJSON.
 */
#include <stdio.h>
#include <string.h>
#include <cjson/cJSON.h>
#include "goman/aws_error.h"
#include "aws_int.h"

static const char *str_at(const cJSON *o, const char *name)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
	return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* The first element when repeated names became an array. */
static const cJSON *first(const cJSON *v)
{
	return cJSON_IsArray(v) ? cJSON_GetArrayItem(v, 0) : v;
}

static void fill(struct goman_err *e, const cJSON *err_obj, const char *request_id)
{
	const char *code = str_at(err_obj, "Code");
	const char *msg = str_at(err_obj, "Message");
	snprintf(e->code, sizeof(e->code), "%s", code ? code : "");
	if (msg)
		snprintf(e->message, sizeof(e->message), "%s", msg);
	if (request_id)
		snprintf(e->request_id, sizeof(e->request_id), "%s", request_id);
}

/* <Response> or <ErrorResponse>: EC2 nests <Errors><Error>; STS/IAM have <Error> directly.
 * Emulators mix the two (moto answers auth failures with <ErrorResponse><Errors><Error>),
 * so take both. */
static int query_error(const cJSON *data, struct goman_err *e)
{
	const cJSON *errs = cJSON_GetObjectItemCaseSensitive(data, "Errors");
	const cJSON *er = first(cJSON_GetObjectItemCaseSensitive(errs, "Error"));
	if (!cJSON_IsObject(er))
		er = first(cJSON_GetObjectItemCaseSensitive(data, "Error"));
	if (!cJSON_IsObject(er))
		return -1;
	const char *rid = str_at(data, "RequestID");
	fill(e, er, rid ? rid : str_at(data, "RequestId"));
	return 0;
}

int goman_aws_error_xml(const char *root, const cJSON *data, struct goman_err *e)
{
	if (!root || !data)
		return -1;
	if (strcmp(root, "Error") == 0) { /* S3 */
		fill(e, data, str_at(data, "RequestId"));
		return 0;
	}
	/* any other root around EC2's <Errors> is read as EC2's <Response>: front ends and
	 * emulators wrap it in roots of their own */
	if (strcmp(root, "Response") == 0 || strcmp(root, "ErrorResponse") == 0 ||
	    cJSON_GetObjectItemCaseSensitive(data, "Errors"))
		return query_error(data, e);
	return -1;
}

/* "com.amazonaws.dynamodb.v20120810#ResourceNotFoundException" → the part after '#';
 * some services append ":http://..." details after the code, dropped too */
static void set_code(struct goman_err *e, const char *t)
{
	const char *hash = strrchr(t, '#');
	t = hash ? hash + 1 : t;
	snprintf(e->code, sizeof(e->code), "%.*s", (int)strcspn(t, ":"), t);
}

static int json_error(const char *body, size_t len, const struct goman_kvs *headers,
		      struct goman_err *e, cJSON **doc)
{
	cJSON *j = body && len ? cJSON_ParseWithLength(body, len) : NULL;
	const char *t = str_at(j, "__type");
	if (!t)
		t = str_at(j, "code");
	bool in_body = t != NULL;
	if (!t && headers)
		t = goman_kvs_get(headers, "x-amzn-ErrorType");
	if (!t) {
		cJSON_Delete(j);
		return -1;
	}
	set_code(e, t);
	const char *m = str_at(j, "message");
	if (!m)
		m = str_at(j, "Message");
	if (m)
		snprintf(e->message, sizeof(e->message), "%s", m);
	if (doc && in_body && cJSON_IsObject(j))
		*doc = j;
	else
		cJSON_Delete(j);
	return 0;
}

int goman_aws_error_parse(const char *body, size_t len, const struct goman_kvs *headers,
			  struct goman_err *e, cJSON **doc)
{
	if (doc)
		*doc = NULL;
	if (!body)
		len = 0;
	size_t lead = 0;
	while (lead < len && body[lead] && strchr(" \t\r\n", body[lead]))
		lead++;
	int rc;
	if (lead < len && body[lead] == '<') {
		char root[96] = "";
		cJSON *x = gm_xml_to_json(body, len, root, sizeof(root), NULL);
		rc = goman_aws_error_xml(root, x, e);
		cJSON_Delete(x);
		const char *t = headers && rc ? goman_kvs_get(headers, "x-amzn-ErrorType") : NULL;
		if (t) {
			set_code(e, t);
			rc = 0;
		}
	} else {
		rc = json_error(body, len, headers, e, doc);
	}
	const char *rid = headers ? goman_kvs_get(headers, "x-amzn-RequestId") : NULL;
	if (!rid && headers)
		rid = goman_kvs_get(headers, "x-amz-request-id");
	if (rid && !e->request_id[0])
		snprintf(e->request_id, sizeof(e->request_id), "%s", rid);
	return rc;
}
