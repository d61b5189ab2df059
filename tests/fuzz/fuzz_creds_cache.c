/*
 * fuzz_creds_cache.c - the files goman reads that other programs write: an AWS CLI
 * credential cache entry (~/.aws/cli/cache/SHA1.json, gm_cache_parse) and an `aws sso login`
 * token cache (~/.aws/sso/cache/SHA1.json, gm_sso_token_parse), plus the Python-compatible
 * JSON string escaping of cache keys. Any input is credentials, a stale entry, or a refusal;
 * never a crash, never half-filled credentials.
 * Input: one byte choosing the parser, then the file's text (or the string to escape).
 */
#include <stdio.h>
#include <string.h>
#include <cjson/cJSON.h>
#include "goman/clock.h"
#include "creds_int.h"
#include "fuzz.h"

/* a fixed "now" (2026-01-01), so whether an Expiration has passed does not depend on the day */
static int64_t fixed_now(void *ctx)
{
	(void)ctx;
	return 1767225600000LL;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	goman_clock_override(fixed_now, fixed_now, NULL);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fz f = {data, size};
	unsigned mode = fz_byte(&f) % 3;
	size_t len;
	char *text = fz_rest(&f, &len);
	if (mode == 0) {
		struct goman_creds c = {0};
		int rc = gm_cache_parse(text, len, 5 * 60 * 1000, &c, "assume-role");
		if (rc == 0 && (!c.access_key_id || !c.secret_access_key || !c.expires_ms))
			abort(); /* a hit is whole credentials with an expiry */
		if (rc != 0 && (c.access_key_id || c.secret_access_key))
			abort();
		goman_creds_clear(&c);
	} else if (mode == 1) {
		cJSON *doc = cJSON_ParseWithLength(text, len);
		const char *access = NULL;
		int64_t exp = 0;
		if (gm_sso_token_parse(doc, &access, &exp) == 0 && (!access || !*access))
			abort();
		cJSON_Delete(doc);
	} else {
		char *buf = NULL;
		size_t n = 0;
		if (gm_py_json_string(text, &buf, &n) == 0) {
			/* what Python's json.dumps(ensure_ascii=True) gives is ASCII JSON */
			cJSON *back = cJSON_Parse(buf);
			if (!cJSON_IsString(back) || strcmp(back->valuestring, text))
				abort();
			for (size_t i = 0; i < n; i++)
				if ((unsigned char)buf[i] >= 0x80)
					abort();
			cJSON_Delete(back);
		}
		free(buf);
	}
	free(text);
	return 0;
}
