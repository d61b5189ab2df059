/*
 * buf.c - the growable byte buffer every module appends text to (see buf_int.h).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "buf_int.h"

int gm_buf_reserve(struct gm_buf *b, size_t more)
{
	if (b->oom)
		return -1;
	if (b->len + more + 1 <= b->cap)
		return 0;
	size_t cap = b->cap ? b->cap : 256;
	while (cap < b->len + more + 1)
		cap *= 2;
	char *p = b->borrowed ? malloc(cap) : realloc(b->p, cap);
	if (!p) {
		b->oom = 1;
		return -1;
	}
	if (b->borrowed && b->len)
		memcpy(p, b->p, b->len);
	b->p = p;
	b->cap = cap;
	b->borrowed = 0;
	return 0;
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
	if (gm_buf_reserve(b, (size_t)need) < 0)
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
	if (!b->borrowed)
		free(b->p);
	memset(b, 0, sizeof(*b));
}

char *gm_buf_take(struct gm_buf *b)
{
	char *p;
	if (b->oom) {
		p = NULL;
	} else if (b->borrowed || !b->p) { /* the caller's array, or nothing: a copy */
		p = malloc(b->len + 1);
		if (p) {
			if (b->len)
				memcpy(p, b->p, b->len);
			p[b->len] = '\0';
		}
	} else {
		p = b->p;
		b->p = NULL;
	}
	gm_buf_free(b);
	return p;
}
