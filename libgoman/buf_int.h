/*
 * buf_int.h - the library's one growable byte buffer (gm_ names, not exported).
 *
 * A zeroed struct gm_buf is an empty buffer. The buffer owns p; gm_buf_free() releases it
 * and leaves an empty, reusable buffer; gm_buf_take() hands p to the caller. p is always
 * NUL-terminated once anything was added. Out of memory is sticky: oom is set, later adds
 * do nothing, and gm_buf_take() returns NULL (freeing what there was), so callers check
 * once at the end instead of after every add.
 *
 * A buffer may start in the caller's array (GM_BUF_ON, a stack array): it is used until the
 * text outgrows it, then copied to the heap, so hot paths that mostly write short text
 * (SigV4's canonical request) never call malloc; free and take work the same either way.
 */
#ifndef GOMAN_BUF_INT_H
#define GOMAN_BUF_INT_H
#include <stddef.h>
#include <string.h>

struct gm_buf {
	char *p;
	size_t len, cap;
	int oom;
	int borrowed; /* p is the caller's array (GM_BUF_ON), not ours to free */
};
#define GM_BUF_ON(arr)                                        \
	{                                                     \
		.p = (arr), .cap = sizeof(arr), .borrowed = 1 \
	}

/* room for more bytes and a NUL after len: 0, or -1 (and oom set) */
int gm_buf_reserve(struct gm_buf *b, size_t more);

/* inline: SigV4 appends a few dozen short pieces per signature */
static inline void gm_buf_add(struct gm_buf *b, const char *s, size_t n)
{
	if ((b->oom || b->len + n + 1 > b->cap) && gm_buf_reserve(b, n) < 0)
		return;
	if (n)
		memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}
static inline void gm_buf_adds(struct gm_buf *b, const char *s)
{
	gm_buf_add(b, s, strlen(s));
}
static inline void gm_buf_addc(struct gm_buf *b, char c)
{
	gm_buf_add(b, &c, 1);
}

void gm_buf_printf(struct gm_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* '...' quoted for a POSIX shell (single quotes, embedded ones as '\'') */
void gm_buf_quote(struct gm_buf *b, const char *s);
/* drops the first n bytes (all of them when n >= len) */
void gm_buf_shift(struct gm_buf *b, size_t n);
void gm_buf_free(struct gm_buf *b);
/* p (or "" when nothing was added) for the caller to free; NULL after out-of-memory */
char *gm_buf_take(struct gm_buf *b);

#endif
