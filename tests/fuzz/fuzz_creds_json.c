/*
 * fuzz_creds_json.c - what a credential source prints: credential_process output (Version 1,
 * SessionToken) and the container/IMDS credentials JSON (Token), through the one reader of
 * both (gm_creds_from_json), plus the credential_process command-line splitter. Any input is
 * credentials or an error that says why; never a crash, never half-filled credentials.
 * Input: one byte choosing the source, then the JSON (or, for the splitter, a command line).
 */
#include <stdio.h>
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
	unsigned mode = fz_byte(&f);
	size_t len;
	char *text = fz_rest(&f, &len);
	struct goman_err err;
	goman_err_clear(&err);
	if (mode & 1) {
		char **argv = gm_split_args(text, &err);
		if (!argv && err.rc == GOMAN_OK)
			abort();
		gm_argv_free(argv);
	} else {
		cJSON *j = cJSON_ParseWithLength(text, len);
		struct goman_creds c = {0};
		static const char *const src[] = {"process", "ecs", "imds"};
		int rc = gm_creds_from_json(j, (mode & 2) ? "Token" : "SessionToken",
					    src[(mode >> 2) % 3], &c, &err);
		if (rc == 0) {
			if (!c.access_key_id || !c.secret_access_key || !*c.access_key_id ||
			    !*c.secret_access_key)
				abort(); /* success means both halves of the key */
		} else if (err.rc == GOMAN_OK || c.access_key_id || c.secret_access_key) {
			abort();
		}
		goman_creds_clear(&c);
		cJSON_Delete(j);
	}
	free(text);
	return 0;
}
