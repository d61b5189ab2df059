/*
 * goman/jsonl.h - JSON lines in and out, and the error record of the contract.
 *
 * Reader: reads an fd in blocks, splits on '\n', enforces a length cap and UTF-8, counts
 * lines; a bad line is reported (BadInput, with its line number) and reading goes on.
 * Writer: each record is serialised compactly and written with ONE write(2) of the whole
 * line (so lines from several processes on one pipe never interleave).
 *
 * Ownership: reader from _new, freed by _free (NULL ok). goman_jsonl_next() hands the
 * caller a cJSON object it must cJSON_Delete(). goman_jsonl_raw() borrows the last line's
 * text (valid until the next call). goman_jsonl_error_record() returns a new object
 * (caller deletes); its input is borrowed (copied).
 */
#ifndef GOMAN_JSONL_H
#define GOMAN_JSONL_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "goman/error.h"

struct cJSON;
struct goman_jsonl_reader;

enum {
	GOMAN_JSONL_RECORD = 1, /* *out holds an object */
	GOMAN_JSONL_EOF = 0,
	GOMAN_JSONL_BAD = -1,   /* this line is bad: err filled (BadInput, line); go on */
	GOMAN_JSONL_AGAIN = -2, /* non-blocking fd has no whole line yet */
	GOMAN_JSONL_IOERR = -3, /* read(2) failed: err filled */
};

#define GOMAN_JSONL_DEFAULT_MAX (1024 * 1024)

struct goman_jsonl_reader *goman_jsonl_reader_new(int fd, size_t max_line);
void goman_jsonl_reader_free(struct goman_jsonl_reader *r);
/* Follow mode (tail -f): at end of file return GOMAN_JSONL_AGAIN instead of EOF, and keep a
 * partial last line until its newline arrives. */
void goman_jsonl_reader_follow(struct goman_jsonl_reader *r, bool follow);
/* Next line parsed as a JSON object (anything else is BAD). Empty lines are skipped. A
 * string holding \u0000 is BAD too: our strings end at NUL, so the value would be cut. */
int goman_jsonl_next(struct goman_jsonl_reader *r, struct cJSON **out, struct goman_err *err);
/* Next line as raw text, without parsing (UTF-8 and length still checked); *line borrowed. */
int goman_jsonl_next_raw(struct goman_jsonl_reader *r, const char **line, size_t *len,
			 struct goman_err *err);
/* Text of the line last returned (RECORD or BAD), without '\n'. Borrowed. */
const char *goman_jsonl_raw(const struct goman_jsonl_reader *r, size_t *len);
long goman_jsonl_lineno(const struct goman_jsonl_reader *r);
/* True when a whole line is already buffered (no read needed). */
bool goman_jsonl_buffered(const struct goman_jsonl_reader *r);

/* True when p[0..n) is valid UTF-8 by the reader's rule (overlongs, surrogates and code
 * points above U+10FFFF are not): text that may go out as a JSON string as it is. */
bool goman_utf8_valid(const void *p, size_t n);

/* Writes obj as one line with one write(2). Returns 0, or -1 (EIO, errno kept). Bytes that
 * are not valid UTF-8 in its keys or strings go out as U+FFFD. */
int goman_jsonl_write(int fd, const struct cJSON *obj, struct goman_err *err);
/* Writes raw bytes + '\n' with one write(2) (retrying partial writes); invalid UTF-8 and NUL
 * bytes go out as U+FFFD. */
int goman_jsonl_write_raw(int fd, const char *line, size_t len, struct goman_err *err);

/* The longest retry_after_ms a record carries (one day): a longer wait is reported as this. */
#define GOMAN_RETRY_AFTER_MAX_MS INT64_C(86400000)

/* The contract's error object: {"code","message","class","retryable","http_status",
 * "request_id","retry_after_ms","line"} with fields that do not apply left out
 * (line <= 0 is left out). Whatever e holds, the numbers are sane: http_status only when
 * 100..599, retry_after_ms only when > 0 and at most GOMAN_RETRY_AFTER_MAX_MS; code and
 * request_id are printable ASCII (other bytes become '?'). */
struct cJSON *goman_error_json(const struct goman_err *e, long line);
/* Copy of input (or {} when NULL) with "error" set to goman_error_json() and "ok":false.
 * Under stage (e.g. "provision"), sets stage.ok=false and stage.error instead, and the
 * top-level "ok":false. */
struct cJSON *goman_jsonl_error_record(const struct cJSON *input, const char *stage,
				       const struct goman_err *e, long line);

#endif
