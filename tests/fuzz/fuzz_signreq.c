/*
 * fuzz_signreq.c - goman-sign's input record (signreq.c): any JSON line is a request or a
 * BadInput error, the URL check and the service/region guess take any URL, and the answer
 * shapes (headers as array or object, response with body or body_base64) are JSON that
 * parses again.
 */
#include <stdio.h>
#include <cjson/cJSON.h>
#include "goman/signreq.h"
#include "fuzz.h"

static void round_trip(cJSON *v)
{
	char *text = v ? cJSON_PrintUnformatted(v) : NULL;
	if (text) {
		cJSON *back = cJSON_Parse(text);
		if (!back)
			abort();
		cJSON_Delete(back);
	}
	free(text);
	cJSON_Delete(v);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = fz_cstr(data, size);
	cJSON *rec = cJSON_Parse(text);
	struct goman_signreq r;
	memset(&r, 0, sizeof(r));
	struct goman_err err;
	goman_err_clear(&err);
	if (goman_signreq_parse(rec, &r, &err) == 0) {
		if (r.url) {
			struct goman_err e2;
			goman_err_clear(&e2);
			goman_signreq_check_url(r.url, &e2);
			char *svc = NULL, *reg = NULL;
			goman_signreq_guess(r.url, &svc, &reg);
			free(svc);
			free(reg);
		}
		round_trip(goman_signreq_headers_json(&r.headers, r.headers_array));
		round_trip(goman_signreq_response_json(200, &r.headers, r.body, r.body_len));
	} else if (err.rc == GOMAN_OK) {
		abort();
	}
	goman_signreq_clear(&r);
	cJSON_Delete(rec);
	/* the raw text as a URL too: the guess and the check take anything */
	struct goman_err e3;
	goman_err_clear(&e3);
	goman_signreq_check_url(text, &e3);
	char *svc = NULL, *reg = NULL;
	goman_signreq_guess(text, &svc, &reg);
	free(svc);
	free(reg);
	free(text);
	return 0;
}
