/*
 * jsonl.c - JSON lines in and out, and the contract's error record (see goman/jsonl.h).
 *
 * Reader: one buffer per reader, grown up to max_line + 2 bytes and never beyond, so memory
 * stays flat however long the stream is. A line is handed out in place (its '\n' replaced by
 * '\0'), valid until the next call. An over-long line is reported once as BadInput when the
 * cap is passed; its remaining bytes are then dropped up to and including its '\n'.
 * Writer: the serialised record and its '\n' go out in one write(2) (partial writes are
 * continued, EINTR retried, EAGAIN waited out with poll). Whatever reached a record (a
 * service's reply, a child's output, our own messages cut mid-character), the line written
 * is valid UTF-8: a byte that does not belong to a valid sequence becomes U+FFFD, in keys
 * and values alike, and NUL becomes U+FFFD too. This is done here once, for every command.
 * Errors come back as return codes with struct goman_err filled; nothing is printed.
 */
#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cjson/cJSON.h>
#include "goman/jsonl.h"
#include "internal.h"
#include "fdio_int.h"
#include "jsonl_int.h"
#include "bytes_int.h"

#define INITIAL_CAP (64 * 1024)

struct goman_jsonl_reader {
	int fd;
	size_t max_line;
	char *buf;
	size_t cap;   /* bytes allocated */
	size_t start; /* first unconsumed byte */
	size_t scan;  /* bytes in [start, scan) hold no '\n' */
	size_t end;   /* one past the last byte read */
	long lineno;
	bool eof;
	bool follow;   /* a growing file: end of file means "not yet", never the end */
	bool skipping; /* dropping the rest of an over-long line */
	const char *raw;
	size_t raw_len;
};

struct goman_jsonl_reader *goman_jsonl_reader_new(int fd, size_t max_line)
{
	struct goman_jsonl_reader *r = calloc(1, sizeof(*r));
	if (!r)
		return NULL;
	r->fd = fd;
	r->max_line = max_line ? max_line : GOMAN_JSONL_DEFAULT_MAX;
	/* +2: room for a whole max-length line and the '\0' that ends it in place */
	r->cap = r->max_line + 2 < INITIAL_CAP ? r->max_line + 2 : INITIAL_CAP;
	r->buf = malloc(r->cap);
	if (!r->buf) {
		free(r);
		return NULL;
	}
	r->raw = "";
	return r;
}

void goman_jsonl_reader_free(struct goman_jsonl_reader *r)
{
	if (!r)
		return;
	free(r->buf);
	free(r);
}

/* see jsonl_int.h */
size_t gm_utf8_invalid_at(const unsigned char *s, size_t len)
{
	size_t i = 0;
	while (i < len) {
		unsigned c = s[i];
		if (c < 0x80) {
			i++;
			continue;
		}
		size_t n;
		uint32_t cp, min;
		if (c >= 0xc2 && c <= 0xdf)
			n = 1, cp = c & 0x1f, min = 0x80;
		else if (c >= 0xe0 && c <= 0xef)
			n = 2, cp = c & 0x0f, min = 0x800;
		else if (c >= 0xf0 && c <= 0xf4)
			n = 3, cp = c & 0x07, min = 0x10000;
		else
			return i;
		if (len - i <= n)
			return i;
		for (size_t k = 1; k <= n; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return i;
			cp = (cp << 6) | (s[i + k] & 0x3f);
		}
		if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return i;
		i += n + 1;
	}
	return len;
}

bool goman_utf8_valid(const void *p, size_t n)
{
	return gm_utf8_invalid_at(p, n) == n;
}

/* Fills err with BadInput for the current line: "line N: <what> <arg>". */
static int bad(struct goman_jsonl_reader *r, struct goman_err *err, const char *what, size_t arg)
{
	goman_err_clear(err);
	goman_err_set(err, GOMAN_EINVAL, GOMAN_CLASS_BAD_INPUT, "BadInput", "line %ld: %s %zu",
		      r->lineno, what, arg);
	return GOMAN_JSONL_BAD;
}

/* Checks a complete line held in place at line[0..len) with line[len] == '\0'. */
static int take_line(struct goman_jsonl_reader *r, char *line, size_t len, const char **out,
		     size_t *out_len, struct goman_err *err)
{
	r->lineno++;
	if (len && line[len - 1] == '\r')
		line[--len] = '\0';
	r->raw = line;
	r->raw_len = len;
	*out = line;
	*out_len = len;
	if (len > r->max_line)
		return bad(r, err, "line longer than the byte limit", r->max_line);
	const char *nul = memchr(line, '\0', len);
	if (nul)
		return bad(r, err, "NUL byte at offset", (size_t)(nul - line));
	size_t at = gm_utf8_invalid_at((const unsigned char *)line, len);
	if (at != len)
		return bad(r, err, "not valid UTF-8 at byte offset", at);
	return GOMAN_JSONL_RECORD;
}

int goman_jsonl_next_raw(struct goman_jsonl_reader *r, const char **line, size_t *len,
			 struct goman_err *err)
{
	for (;;) {
		char *nl = memchr(r->buf + r->scan, '\n', r->end - r->scan);
		if (r->skipping) {
			if (nl) {
				r->skipping = false;
				r->start = r->scan = (size_t)(nl - r->buf) + 1;
				continue;
			}
			r->start = r->scan = r->end = 0; /* drop it all */
		} else if (nl) {
			size_t s = r->start, n = (size_t)(nl - r->buf) - s;
			*nl = '\0';
			r->start = r->scan = s + n + 1;
			int rc = take_line(r, r->buf + s, n, line, len, err);
			if (rc == GOMAN_JSONL_RECORD && r->raw_len == 0)
				continue; /* empty line */
			return rc;
		} else {
			r->scan = r->end;
			if (r->end - r->start > r->max_line) {
				/* report now, drop the rest later: the buffer never grows past the cap */
				r->lineno++;
				r->skipping = true;
				size_t shown = r->end - r->start < 256 ? r->end - r->start : 256;
				r->buf[r->start + shown] = '\0';
				r->raw = *line = r->buf + r->start;
				r->raw_len = *len = shown;
				r->start = r->scan = r->end;
				return bad(r, err, "line longer than the byte limit", r->max_line);
			}
		}
		if (r->eof) {
			if (r->end > r->start) { /* last line without '\n' */
				size_t s = r->start, n = r->end - s;
				r->buf[r->end] = '\0';
				r->start = r->scan = r->end;
				int rc = take_line(r, r->buf + s, n, line, len, err);
				if (rc == GOMAN_JSONL_RECORD && r->raw_len == 0)
					continue;
				return rc;
			}
			return GOMAN_JSONL_EOF;
		}
		if (r->start > 0) {
			memmove(r->buf, r->buf + r->start, r->end - r->start);
			r->end -= r->start;
			r->scan -= r->start;
			r->start = 0;
		}
		if (r->end + 1 >= r->cap) {
			size_t cap = r->cap * 2;
			if (cap > r->max_line + 2)
				cap = r->max_line + 2;
			char *b = realloc(r->buf, cap);
			if (!b) {
				goman_err_clear(err);
				gm_err_oom(err);
				return GOMAN_JSONL_IOERR;
			}
			r->buf = b;
			r->cap = cap;
			r->raw = "";
			r->raw_len = 0;
		}
		ssize_t got = read(r->fd, r->buf + r->end, r->cap - 1 - r->end);
		if (got < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return GOMAN_JSONL_AGAIN;
			int e = errno;
			goman_err_clear(err);
			goman_err_set(err, GOMAN_EIO, GOMAN_CLASS_NONE, "ReadError", "read: %s",
				      strerror(e));
			errno = e;
			return GOMAN_JSONL_IOERR;
		}
		if (got == 0) {
			if (r->follow)
				return GOMAN_JSONL_AGAIN; /* a partial last line waits for its '\n' */
			r->eof = true;
		}
		r->end += (size_t)got;
	}
}

/* Offset of the first \u0000 escape in s, or len. Backslashes only occur in strings, and
 * an escaped backslash is skipped whole, so "\\u0000" is not one. */
static size_t nul_escape_at(const char *s, size_t len)
{
	for (size_t i = 0; i + 1 < len; i++) {
		if (s[i] != '\\')
			continue;
		if (s[i + 1] == 'u' && len - i >= 6 && memcmp(s + i + 2, "0000", 4) == 0)
			return i;
		i++; /* the escaped character */
	}
	return len;
}

int goman_jsonl_next(struct goman_jsonl_reader *r, struct cJSON **out, struct goman_err *err)
{
	const char *line;
	size_t len;
	*out = NULL;
	int rc = goman_jsonl_next_raw(r, &line, &len, err);
	if (rc != GOMAN_JSONL_RECORD)
		return rc;
	/* a C string ends at NUL: "prod\u0000x" would silently become the cluster "prod" */
	size_t nul = nul_escape_at(line, len);
	if (nul != len)
		return bad(r, err, "NUL (\\u0000) in a string at byte offset", nul);
	const char *stop = NULL;
	cJSON *j = cJSON_ParseWithOpts(line, &stop, 1);
	if (!j)
		return bad(r, err, "not valid JSON, near byte offset",
			   stop && stop >= line ? (size_t)(stop - line) : 0);
	if (!cJSON_IsObject(j)) {
		cJSON_Delete(j);
		goman_err_clear(err);
		goman_err_set(err, GOMAN_EINVAL, GOMAN_CLASS_BAD_INPUT, "BadInput",
			      "line %ld: not a JSON object", r->lineno);
		return GOMAN_JSONL_BAD;
	}
	*out = j;
	return GOMAN_JSONL_RECORD;
}

const char *goman_jsonl_raw(const struct goman_jsonl_reader *r, size_t *len)
{
	if (len)
		*len = r->raw_len;
	return r->raw;
}

void goman_jsonl_reader_follow(struct goman_jsonl_reader *r, bool follow)
{
	r->follow = follow;
}

long goman_jsonl_lineno(const struct goman_jsonl_reader *r)
{
	return r->lineno;
}

bool goman_jsonl_buffered(const struct goman_jsonl_reader *r)
{
	if (r->skipping)
		return false;
	if (memchr(r->buf + r->scan, '\n', r->end - r->scan))
		return true;
	return r->eof;
}

/* One write(2) for the whole line in the usual case; gm_write_all only continues a partial
 * write (signals, a full pipe on a non-blocking fd). */
static int write_all(int fd, const char *p, size_t n, struct goman_err *err)
{
	if (gm_write_all(fd, p, n) == 0)
		return 0;
	int e = errno;
	goman_err_clear(err);
	goman_err_set(err, GOMAN_EIO, GOMAN_CLASS_NONE, "WriteError", "write: %s", strerror(e));
	errno = e;
	return -1;
}

/* Bytes of s[0..len) that are not valid UTF-8 (or are NUL): 0 when the line can go as is. */
static size_t invalid_bytes(const unsigned char *s, size_t len)
{
	size_t bad = 0;
	for (size_t i = 0; i < len;) {
		size_t ok = gm_utf8_invalid_at(s + i, len - i);
		const unsigned char *nul = memchr(s + i, '\0', ok);
		if (nul)
			ok = (size_t)(nul - (s + i));
		i += ok;
		if (i < len) {
			bad++;
			i++;
		}
	}
	return bad;
}

/* Copies s[0..len) to out with each invalid byte (and NUL) as U+FFFD; returns the length. */
static size_t copy_replacing(char *out, const unsigned char *s, size_t len)
{
	size_t o = 0;
	for (size_t i = 0; i < len;) {
		size_t ok = gm_utf8_invalid_at(s + i, len - i);
		const unsigned char *nul = memchr(s + i, '\0', ok);
		if (nul)
			ok = (size_t)(nul - (s + i));
		memcpy(out + o, s + i, ok);
		o += ok;
		i += ok;
		if (i < len) {
			memcpy(out + o, "\xef\xbf\xbd", 3);
			o += 3;
			i++;
		}
	}
	return o;
}

int goman_jsonl_write_raw(int fd, const char *line, size_t len, struct goman_err *err)
{
	char stackbuf[4096];
	size_t bad = invalid_bytes((const unsigned char *)line, len);
	size_t need = len + 2 * bad + 1; /* each bad byte grows by two */
	char *b = need <= sizeof(stackbuf) ? stackbuf : malloc(need);
	if (!b) {
		goman_err_clear(err);
		gm_err_oom(err);
		errno = ENOMEM;
		return -1;
	}
	size_t n = len;
	if (bad)
		n = copy_replacing(b, (const unsigned char *)line, len);
	else if (len)
		memcpy(b, line, len);
	b[n] = '\n';
	int rc = write_all(fd, b, n + 1, err);
	if (b != stackbuf) {
		int e = errno;
		free(b);
		errno = e;
	}
	return rc;
}

int goman_jsonl_write(int fd, const struct cJSON *obj, struct goman_err *err)
{
	char *s = cJSON_PrintUnformatted(obj);
	if (!s) {
		goman_err_clear(err);
		goman_err_set(err, GOMAN_ENOMEM, GOMAN_CLASS_NONE, "NoMemory",
			      "could not serialise the record");
		errno = ENOMEM;
		return -1;
	}
	int rc = goman_jsonl_write_raw(fd, s, strlen(s), err);
	int e = errno;
	cJSON_free(s);
	errno = e;
	return rc;
}

/* Copy of an identifier (code, request ID) reduced to printable ASCII: these are matched
 * and logged by programs, and a service or a line that put control or non-ASCII bytes in
 * them must not make a record that breaks a terminal or a grep. */
static void printable(char *dst, size_t cap, const char *src)
{
	size_t i = 0;
	for (; src[i] && i + 1 < cap; i++)
		dst[i] = src[i] >= 0x20 && src[i] < 0x7f ? src[i] : '?';
	dst[i] = '\0';
}

cJSON *goman_error_json(const struct goman_err *e, long line)
{
	cJSON *o = cJSON_CreateObject();
	if (!o)
		return NULL;
	char code[sizeof(e->code)], rid[sizeof(e->request_id)];
	printable(code, sizeof(code), e ? e->code : "");
	printable(rid, sizeof(rid), e ? e->request_id : "");
	if (!code[0])
		snprintf(code, sizeof(code), "%s",
			 e && e->cls == GOMAN_CLASS_BAD_INPUT ? "BadInput" : "Error");
	cJSON_AddStringToObject(o, "code", code);
	const char *msg = e && e->message[0] ? e->message : goman_strerror(e ? e->rc : GOMAN_OK);
	cJSON_AddStringToObject(o, "message", msg);
	if (e && e->cls != GOMAN_CLASS_NONE)
		cJSON_AddStringToObject(o, "class", goman_class_name(e->cls));
	cJSON_AddBoolToObject(o, "retryable", e && e->retryable);
	/* only what can be true goes out: an HTTP status is 100..599, a wait is at most
	 * GOMAN_RETRY_AFTER_MAX_MS (a longer one is that long) */
	if (e && e->http_status >= 100 && e->http_status <= 599)
		cJSON_AddNumberToObject(o, "http_status", e->http_status);
	if (rid[0])
		cJSON_AddStringToObject(o, "request_id", rid);
	if (e && e->retry_after_ms > 0)
		cJSON_AddNumberToObject(o, "retry_after_ms",
					(double)(e->retry_after_ms > GOMAN_RETRY_AFTER_MAX_MS
							 ? GOMAN_RETRY_AFTER_MAX_MS
							 : e->retry_after_ms));
	if (line > 0)
		cJSON_AddNumberToObject(o, "line", (double)line);
	return o;
}

/* Sets obj[name] = item, replacing what was there; consumes item. */
static void put(cJSON *obj, const char *name, cJSON *item)
{
	if (cJSON_GetObjectItemCaseSensitive(obj, name))
		cJSON_ReplaceItemInObjectCaseSensitive(obj, name, item);
	else
		cJSON_AddItemToObject(obj, name, item);
}

cJSON *goman_jsonl_error_record(const cJSON *input, const char *stage, const struct goman_err *e,
				long line)
{
	cJSON *rec = cJSON_IsObject(input) ? cJSON_Duplicate(input, 1) : cJSON_CreateObject();
	cJSON *ej = goman_error_json(e, line);
	if (!rec || !ej) {
		cJSON_Delete(rec);
		cJSON_Delete(ej);
		return NULL;
	}
	if (stage && *stage) {
		cJSON *st = cJSON_GetObjectItemCaseSensitive(rec, stage);
		if (!cJSON_IsObject(st)) {
			st = cJSON_CreateObject();
			if (!st) {
				cJSON_Delete(rec);
				cJSON_Delete(ej);
				return NULL;
			}
			put(rec, stage, st);
		}
		put(st, "ok", cJSON_CreateFalse());
		put(st, "error", ej);
	} else {
		put(rec, "error", ej);
	}
	put(rec, "ok", cJSON_CreateFalse());
	return rec;
}

bool gm_json_add(cJSON *o, const char *k, cJSON *v)
{
	if (!v)
		return false;
	if (!cJSON_AddItemToObject(o, k, v)) {
		cJSON_Delete(v);
		return false;
	}
	return true;
}
