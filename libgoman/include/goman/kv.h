/*
 * goman/kv.h - ordered list of name/value string pairs.
 *
 * Used for HTTP headers, query parameters and form fields alike. Order is kept and
 * duplicates are allowed (SigV4 and EC2 forms need both).
 *
 * Ownership: the list owns copies of every string added; goman_kvs_clear() frees them
 * and leaves an empty, reusable list. A zeroed struct is a valid empty list.
 * Errors: functions that allocate return 0 on success, -1 on out-of-memory.
 */
#ifndef GOMAN_KV_H
#define GOMAN_KV_H
#include <stddef.h>

struct goman_kv {
	char *name;
	char *value;
};

struct goman_kvs {
	struct goman_kv *v;
	size_t n, cap;
};

int goman_kvs_add(struct goman_kvs *l, const char *name, const char *value);
/* name/value given with lengths; value may contain NULs only if you never print it */
int goman_kvs_addn(struct goman_kvs *l, const char *name, size_t nlen, const char *value,
		   size_t vlen);
/* removes every entry whose name matches case-insensitively; returns how many */
size_t goman_kvs_del(struct goman_kvs *l, const char *name);
/* first value whose name matches case-insensitively, or NULL (borrowed) */
const char *goman_kvs_get(const struct goman_kvs *l, const char *name);
int goman_kvs_copy(struct goman_kvs *dst, const struct goman_kvs *src);
void goman_kvs_clear(struct goman_kvs *l);

#endif
