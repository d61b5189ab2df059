/*
 * aws_json.c - the AWS JSON protocols: SSM (JSON 1.1) and DynamoDB (JSON 1.0). A call is a
 * POST of the request object to "/" with X-Amz-Target "<prefix>.<Action>"; errors come
 * back as {"__type":"[namespace#]Code","message":"..."} (or "Message"), read by aws_error.c.
 *
 * Ownership: gm_json_prepare fills a caller-owned struct gm_aws_req (gm_aws_req_clear).
 * Errors: -1 with struct goman_err filled.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>
#include "aws_int.h"
#include "bytes_int.h"

struct json_service {
	const char *service, *target_prefix, *content_type;
};

static const struct json_service json_services[] = {
	{"ssm", "AmazonSSM", "application/x-amz-json-1.1"},
	{"dynamodb", "DynamoDB_20120810", "application/x-amz-json-1.0"},
};

bool gm_json_service(const char *service, const char **target_prefix, const char **content_type)
{
	for (size_t i = 0; service && i < sizeof(json_services) / sizeof(json_services[0]); i++) {
		if (strcmp(json_services[i].service, service) == 0) {
			if (target_prefix)
				*target_prefix = json_services[i].target_prefix;
			if (content_type)
				*content_type = json_services[i].content_type;
			return true;
		}
	}
	return false;
}

int gm_json_prepare(const struct goman_aws_call *call, const char *endpoint, struct gm_aws_req *out,
		    struct goman_err *err)
{
	const char *prefix, *ctype;
	if (!gm_json_service(call->service, &prefix, &ctype))
		return goman_err_set(err, GOMAN_EINVAL, GOMAN_CLASS_BAD_INPUT, "BadInput",
				     "service '%s' does not speak AWS JSON", call->service);
	if (call->json && !cJSON_IsObject(call->json))
		return goman_err_set(err, GOMAN_EINVAL, GOMAN_CLASS_BAD_INPUT, "BadInput",
				     "%s input must be a JSON object", call->action);
	snprintf(out->method, sizeof(out->method), "POST");
	size_t elen = strlen(endpoint);
	size_t tlen = strlen(prefix) + strlen(call->action) + 2;
	char *target = malloc(tlen);
	out->url = malloc(elen + 2);
	/* an absent input is the empty object: every JSON action accepts "{}" */
	out->body = call->json ? cJSON_PrintUnformatted(call->json) : strdup("{}");
	if (!target || !out->url || !out->body) {
		free(target);
		return gm_err_oom(err);
	}
	snprintf(out->url, elen + 2, "%s/", endpoint);
	snprintf(target, tlen, "%s.%s", prefix, call->action);
	out->body_len = strlen(out->body);
	int rc = goman_kvs_add(&out->headers, "Content-Type", ctype) |
		 goman_kvs_add(&out->headers, "X-Amz-Target", target);
	free(target);
	if (rc)
		return gm_err_oom(err);
	out->reply = GM_REPLY_JSON;
	return 0;
}
