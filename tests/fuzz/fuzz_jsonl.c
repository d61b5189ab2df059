/*
 * fuzz_jsonl.c - the JSON-lines reader (jsonl.c): any bytes, read through an fd with a line
 * cap taken from the input, give records, BadInput lines or EOF, never a crash; every record
 * turned into an error record serialises to JSON that parses again.
 * Input: one byte choosing the line cap and mode, then the stream.
 */
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>
#include <cjson/cJSON.h>
#include "goman/jsonl.h"
#include "jsonl_int.h"
#include "fuzz.h"

static void write_all(int fd, const uint8_t *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);
		if (w <= 0)
			abort();
		p += w;
		n -= (size_t)w;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fz f = {data, size};
	unsigned mode = fz_byte(&f);
	/* small caps reach the over-long-line path; 0 is the default (1 MiB) */
	static const size_t caps[] = {0, 1, 2, 16, 64, 300, 4096};
	size_t cap = caps[(mode & 0x7) % (sizeof(caps) / sizeof(caps[0]))];
	int fd = memfd_create("jsonl", MFD_CLOEXEC);
	if (fd < 0)
		abort();
	write_all(fd, f.p, f.n);
	lseek(fd, 0, SEEK_SET);
	struct goman_jsonl_reader *r = goman_jsonl_reader_new(fd, cap);
	if (!r)
		abort();
	struct goman_err err;
	for (int guard = 0; guard < 100000; guard++) {
		int rc;
		if (mode & 0x10) {
			const char *line;
			size_t len;
			goman_err_clear(&err);
			rc = goman_jsonl_next_raw(r, &line, &len, &err);
			if (rc == GOMAN_JSONL_RECORD &&
			    gm_utf8_invalid_at((const unsigned char *)line, len) != len)
				abort(); /* a line handed out as good must be UTF-8 */
		} else {
			cJSON *j = NULL;
			goman_err_clear(&err);
			rc = goman_jsonl_next(r, &j, &err);
			if (rc == GOMAN_JSONL_RECORD) {
				if (!cJSON_IsObject(j))
					abort();
				struct goman_err e;
				goman_err_clear(&e);
				goman_err_set(&e, GOMAN_EINVAL, GOMAN_CLASS_BAD_INPUT, "BadInput",
					      "fuzz");
				cJSON *rec = goman_jsonl_error_record(
					j, (mode & 0x20) ? "install" : NULL, &e,
					goman_jsonl_lineno(r));
				char *text = rec ? cJSON_PrintUnformatted(rec) : NULL;
				if (text) {
					cJSON *back = cJSON_Parse(text);
					if (!back)
						abort(); /* what we write must read back */
					cJSON_Delete(back);
				}
				free(text);
				cJSON_Delete(rec);
				cJSON_Delete(j);
			} else if (j) {
				abort(); /* nothing handed out with a non-record answer */
			}
		}
		if (rc == GOMAN_JSONL_BAD) {
			size_t len;
			const char *raw = goman_jsonl_raw(r, &len);
			if (!raw)
				abort();
			cJSON *ej = goman_error_json(&err, goman_jsonl_lineno(r));
			cJSON_Delete(ej);
			continue;
		}
		if (rc != GOMAN_JSONL_RECORD)
			break;
	}
	goman_jsonl_reader_free(r);
	close(fd);
	return 0;
}
