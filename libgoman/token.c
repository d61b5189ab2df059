/*
 * token.c - the cluster token: get-or-create a SecureString in SSM Parameter Store.
 *
 * A new token is 32 bytes from OpenSSL's RAND_bytes, hex encoded. PutParameter goes
 * without Overwrite, so of several runs racing (or a repeated run) exactly one creates it
 * and the others get ParameterAlreadyExists and read the stored one back (GetParameter
 * WithDecryption): every run agrees on one token. The token never reaches a log line or an
 * event; the buffers that held it are wiped before they are freed.
 *
 * Ownership: *value is malloc'd for the caller (wipe and free it). Errors: -1 with err.
 */
#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include "goman/aws.h"
#include "goman/install.h"
#include "goman/log.h"
#include "bytes_int.h"

/* Wipes every string in a cJSON tree (it may hold the token). */
static void wipe(cJSON *j)
{
	for (; j; j = j->next) {
		if (j->valuestring)
			OPENSSL_cleanse(j->valuestring, strlen(j->valuestring));
		wipe(j->child);
	}
}

static void wipe_delete(cJSON *j)
{
	if (j)
		wipe(j->child);
	cJSON_Delete(j);
}

static int get_value(struct goman_aws *aws, const char *name, char **value, struct goman_err *err)
{
	cJSON *req = cJSON_CreateObject();
	if (!req || !cJSON_AddStringToObject(req, "Name", name) ||
	    !cJSON_AddTrueToObject(req, "WithDecryption")) {
		cJSON_Delete(req);
		return gm_err_oom(err);
	}
	struct goman_aws_call call = {.service = "ssm", .action = "GetParameter", .json = req};
	struct goman_aws_result res = {0};
	int rc = goman_aws_call(aws, &call, &res);
	cJSON_Delete(req);
	if (rc != 0) {
		if (err)
			*err = res.err;
		goman_aws_result_clear(&res);
		return -1;
	}
	const char *v = goman_json_path_str(res.data, "Parameter.Value");
	if (!v || !*v) {
		wipe_delete(res.data);
		res.data = NULL;
		goman_aws_result_clear(&res);
		return goman_err_set(err, GOMAN_EPARSE, GOMAN_CLASS_TRANSIENT, "BadReply",
				     "GetParameter %s: no value in the reply", name);
	}
	*value = strdup(v);
	wipe_delete(res.data);
	res.data = NULL;
	goman_aws_result_clear(&res);
	if (!*value)
		return gm_err_oom(err);
	return 0;
}

int goman_secret_put(struct goman_aws *aws, const char *name, const char *value,
		     const char *description, struct goman_err *err)
{
	if (!aws || !name || !*name || !value)
		return goman_err_set(err, GOMAN_EINVAL, GOMAN_CLASS_BAD_INPUT, "BadInput",
				     "secret: no AWS client, parameter name or value");
	/* the Standard tier holds 4 KB; two presigned URLs with a long session token can
	 * pass that */
	cJSON *req = cJSON_CreateObject();
	if (!req || !cJSON_AddStringToObject(req, "Name", name) ||
	    !cJSON_AddStringToObject(req, "Value", value) ||
	    !cJSON_AddStringToObject(req, "Type", "SecureString") ||
	    !cJSON_AddTrueToObject(req, "Overwrite") ||
	    !cJSON_AddStringToObject(req, "Tier", strlen(value) > 4096 ? "Advanced" : "Standard") ||
	    (description && !cJSON_AddStringToObject(req, "Description", description))) {
		wipe_delete(req);
		return gm_err_oom(err);
	}
	struct goman_aws_call call = {.service = "ssm", .action = "PutParameter", .json = req};
	struct goman_aws_result res = {0};
	int rc = goman_aws_call(aws, &call, &res);
	wipe_delete(req);
	if (rc != 0 && err)
		*err = res.err;
	goman_aws_result_clear(&res);
	return rc ? -1 : 0;
}

int goman_token_ensure(struct goman_aws *aws, const char *name, bool want_value, char **value,
		       bool *created, struct goman_err *err)
{
	unsigned char raw[32];
	char hex[sizeof(raw) * 2 + 1];
	if (value)
		*value = NULL;
	if (created)
		*created = false;
	if (!aws || !name || !*name)
		return goman_err_set(err, GOMAN_EINVAL, GOMAN_CLASS_BAD_INPUT, "BadInput",
				     "token: no AWS client or parameter name");
	if (RAND_bytes(raw, sizeof(raw)) != 1)
		return goman_err_set(err, GOMAN_EIO, GOMAN_CLASS_NONE, "Random",
				     "token: RAND_bytes failed");
	gm_hex_encode(raw, sizeof(raw), hex);
	OPENSSL_cleanse(raw, sizeof(raw));

	cJSON *req = cJSON_CreateObject();
	if (!req || !cJSON_AddStringToObject(req, "Name", name) ||
	    !cJSON_AddStringToObject(req, "Value", hex) ||
	    !cJSON_AddStringToObject(req, "Type", "SecureString") ||
	    !cJSON_AddStringToObject(req, "Description", "goman K3s cluster token")) {
		wipe_delete(req);
		OPENSSL_cleanse(hex, sizeof(hex));
		return gm_err_oom(err);
	}
	struct goman_aws_call call = {.service = "ssm", .action = "PutParameter", .json = req};
	struct goman_aws_result res = {0};
	int rc = goman_aws_call(aws, &call, &res);
	wipe_delete(req);
	if (rc == 0) {
		goman_log(GOMAN_LOG_INFO, "INSTALL", "created cluster token %s (SecureString)",
			  name);
		if (created)
			*created = true;
		goman_aws_result_clear(&res);
		if (want_value && value) {
			*value = strdup(hex);
			OPENSSL_cleanse(hex, sizeof(hex));
			if (!*value)
				return gm_err_oom(err);
			return 0;
		}
		OPENSSL_cleanse(hex, sizeof(hex));
		return 0;
	}
	OPENSSL_cleanse(hex, sizeof(hex));
	if (strcmp(res.err.code, "ParameterAlreadyExists") != 0) {
		if (err)
			*err = res.err;
		goman_aws_result_clear(&res);
		return -1;
	}
	goman_aws_result_clear(&res);
	goman_log(GOMAN_LOG_INFO, "INSTALL", "reusing cluster token %s", name);
	if (!want_value || !value)
		return 0;
	return get_value(aws, name, value, err);
}
