/*
 * fuzz_install_result.c - the installer's reading of a node's output (install.c): the
 * GOMAN_PROGRESS and GOMAN_RESULT lines k3s-install.sh prints and the `kubectl get nodes`
 * table of the verification step. Any output gives a result object or none, a progress in
 * 0..100 or -1, a ready count that is -1 or within the rows; never a crash.
 */
#include <stdio.h>
#include <cjson/cJSON.h>
#include "goman/install.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *out = fz_cstr(data, size);
	int progress = 7;
	cJSON *res = goman_install_parse_output(out, &progress);
	if (progress < -1 || progress > 100)
		abort();
	if (res && !cJSON_IsObject(res))
		abort();
	if (res) {
		/* what script_error reads from it */
		const cJSON *cls = cJSON_GetObjectItemCaseSensitive(res, "class");
		if (cJSON_IsString(cls))
			goman_class_from_name(cls->valuestring);
		char *text = cJSON_PrintUnformatted(res);
		free(text);
	}
	cJSON_Delete(res);
	res = goman_install_parse_output(out, NULL);
	cJSON_Delete(res);
	int ready = goman_install_count_ready(out);
	if (ready < -1)
		abort();
	free(out);
	return 0;
}
