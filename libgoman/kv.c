/*
 * kv.c - ordered name/value lists (see goman/kv.h). Owns copies of its strings.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "goman/kv.h"

static char *dup_n(const char *s, size_t n)
{
	char *p = malloc(n + 1);
	if (!p)
		return NULL;
	if (n)
		memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

int goman_kvs_addn(struct goman_kvs *l, const char *name, size_t nlen, const char *value,
		   size_t vlen)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 8;
		struct goman_kv *v = realloc(l->v, cap * sizeof(*v));
		if (!v)
			return -1;
		l->v = v;
		l->cap = cap;
	}
	char *n = dup_n(name, nlen);
	char *val = dup_n(value ? value : "", value ? vlen : 0);
	if (!n || !val) {
		free(n);
		free(val);
		return -1;
	}
	l->v[l->n].name = n;
	l->v[l->n].value = val;
	l->n++;
	return 0;
}

int goman_kvs_add(struct goman_kvs *l, const char *name, const char *value)
{
	return goman_kvs_addn(l, name, strlen(name), value, value ? strlen(value) : 0);
}

size_t goman_kvs_del(struct goman_kvs *l, const char *name)
{
	size_t w = 0, removed = 0;
	for (size_t r = 0; r < l->n; r++) {
		if (strcasecmp(l->v[r].name, name) == 0) {
			free(l->v[r].name);
			free(l->v[r].value);
			removed++;
			continue;
		}
		l->v[w++] = l->v[r];
	}
	l->n = w;
	return removed;
}

const char *goman_kvs_get(const struct goman_kvs *l, const char *name)
{
	for (size_t i = 0; i < l->n; i++)
		if (strcasecmp(l->v[i].name, name) == 0)
			return l->v[i].value;
	return NULL;
}

int goman_kvs_copy(struct goman_kvs *dst, const struct goman_kvs *src)
{
	for (size_t i = 0; i < src->n; i++)
		if (goman_kvs_add(dst, src->v[i].name, src->v[i].value) < 0)
			return -1;
	return 0;
}

void goman_kvs_clear(struct goman_kvs *l)
{
	if (!l)
		return;
	for (size_t i = 0; i < l->n; i++) {
		free(l->v[i].name);
		free(l->v[i].value);
	}
	free(l->v);
	l->v = NULL;
	l->n = l->cap = 0;
}
