/*
 * buf_int.h - the library's one growable byte buffer (gm_ names, not exported).
 *
 * A zeroed struct gm_buf is an empty buffer. The buffer owns p; gm_buf_free() releases it
 * and leaves an empty, reusable buffer; gm_buf_take() hands p to the caller. p is always
 * NUL-terminated once anything was added. Out of memory is sticky: oom is set, later adds
 * do nothing, and gm_buf_take() returns NULL (freeing what there was), so callers check
 * once at the end instead of after every add.
 */
#ifndef GOMAN_BUF_INT_H
#define GOMAN_BUF_INT_H
#include <stddef.h>

struct gm_buf {
	char *p;
	size_t len, cap;
	int oom;
};

void gm_buf_add(struct gm_buf *b, const char *s, size_t n);
void gm_buf_adds(struct gm_buf *b, const char *s);
void gm_buf_printf(struct gm_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* '...' quoted for a POSIX shell (single quotes, embedded ones as '\'') */
void gm_buf_quote(struct gm_buf *b, const char *s);
/* drops the first n bytes (all of them when n >= len) */
void gm_buf_shift(struct gm_buf *b, size_t n);
void gm_buf_free(struct gm_buf *b);
/* p (or "" when nothing was added) for the caller to free; NULL after out-of-memory */
char *gm_buf_take(struct gm_buf *b);

#endif
