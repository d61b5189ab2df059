/*
 * buf.c - the growable byte buffer every module appends text to (see buf_int.h).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "buf_int.h"

static int reserve(struct gm_buf *b, size_t more)
{
	if (b->oom)
		return -1;
	if (b->len + more + 1 <= b->cap)
		return 0;
	size_t cap = b->cap ? b->cap : 256;
	while (cap < b->len + more + 1)
		cap *= 2;
	char *p = realloc(b->p, cap);
	if (!p) {
		b->oom = 1;
		return -1;
	}
	b->p = p;
	b->cap = cap;
	return 0;
}

void gm_buf_add(struct gm_buf *b, const char *s, size_t n)
{
	if (reserve(b, n) < 0)
		return;
	if (n)
		memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

void gm_buf_adds(struct gm_buf *b, const char *s)
{
	gm_buf_add(b, s, strlen(s));
}

void gm_buf_printf(struct gm_buf *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int need = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (need < 0) {
		b->oom = 1;
		return;
	}
	if (reserve(b, (size_t)need) < 0)
		return;
	va_start(ap, fmt);
	vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
	va_end(ap);
	b->len += (size_t)need;
}

void gm_buf_quote(struct gm_buf *b, const char *s)
{
	gm_buf_adds(b, "'");
	for (const char *q; (q = strchr(s, '\'')); s = q + 1) {
		gm_buf_add(b, s, (size_t)(q - s));
		gm_buf_adds(b, "'\\''");
	}
	gm_buf_adds(b, s);
	gm_buf_adds(b, "'");
}

void gm_buf_shift(struct gm_buf *b, size_t n)
{
	if (n >= b->len) {
		b->len = 0;
	} else {
		memmove(b->p, b->p + n, b->len - n);
		b->len -= n;
	}
	if (b->p)
		b->p[b->len] = '\0';
}

void gm_buf_free(struct gm_buf *b)
{
	free(b->p);
	memset(b, 0, sizeof(*b));
}

char *gm_buf_take(struct gm_buf *b)
{
	char *p = b->oom ? NULL : b->p ? b->p : strdup("");
	if (b->oom)
		free(b->p);
	memset(b, 0, sizeof(*b));
	return p;
}
