/*
 * fuzz_xml.c - XML replies of the query protocols (EC2, IAM, STS) and S3/query error
 * documents into cJSON (aws_query.c, aws_error.c): any bytes, fed whole or in pieces, give a tree or a
 * ParseError, and the error-document reader never crashes on whatever tree came out.
 * Input: one byte choosing the feed chunk size, then the document.
 */
#include <stdio.h>
#include <cjson/cJSON.h>
#include "goman/aws_error.h"
#include "aws_int.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fz f = {data, size};
	unsigned mode = fz_byte(&f);
	struct goman_err err;
	goman_err_clear(&err);
	cJSON *v;
	char root[128] = "";
	if (mode & 1) {
		v = gm_xml_to_json((const char *)f.p, f.n, root, sizeof(root), &err);
	} else {
		/* in pieces, as replies arrive from the network */
		size_t chunk = (mode >> 1) + 1;
		struct gm_xml *x = gm_xml_new();
		if (!x)
			abort();
		int rc = 0;
		for (size_t off = 0; rc == 0 && off < f.n; off += chunk)
			rc = gm_xml_feed(x, (const char *)f.p + off,
					 f.n - off < chunk ? f.n - off : chunk, &err);
		v = rc == 0 ? gm_xml_finish(x, &err) : NULL;
		snprintf(root, sizeof(root), "%s", gm_xml_root(x) ? gm_xml_root(x) : "");
		gm_xml_free(x);
	}
	if (v) {
		struct goman_err e;
		goman_err_clear(&e);
		goman_aws_error_xml(root, v, &e);
		char *text = cJSON_PrintUnformatted(v);
		free(text);
		cJSON_Delete(v);
	} else if (err.rc == GOMAN_OK) {
		abort(); /* no tree and no error */
	}
	return 0;
}
