/*
 * fuzz_ini.c - INI text in the ~/.aws/config dialect (ini.c): any text parses or fails with
 * ENOMEM only, and every section and key listed can be looked up again with the value the
 * listing gave (sections merge, later keys win, so a listing and a lookup must agree).
 */
#include <stdio.h>
#include "goman/ini.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = fz_cstr(data, size);
	struct goman_err err;
	goman_err_clear(&err);
	struct goman_ini *ini = goman_ini_parse(text, &err);
	if (!ini)
		abort(); /* only out of memory fails, and the fuzzer's limits are far below that */
	const char *sec;
	for (size_t i = 0; (sec = goman_ini_section(ini, i)); i++) {
		const char *key, *val;
		for (size_t k = 0; (key = goman_ini_key(ini, sec, k, &val)); k++) {
			const char *again = goman_ini_get(ini, sec, key);
			if (!again || strcmp(again, val) != 0)
				abort();
		}
	}
	goman_ini_get(ini, "default", "region");
	goman_ini_get(ini, "profile dev", "s3.addressing_style");
	goman_ini_free(ini);
	free(text);
	return 0;
}
