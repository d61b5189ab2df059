/*
 * ini.c - INI files in the ~/.aws/config dialect (see goman/ini.h).
 *
 * What it accepts, following botocore's reading of the same files (configparser plus its
 * nested-section pass):
 *   - "[name]" section headers; surrounding and repeated inner whitespace is folded, so
 *     "[  profile   dev ]" is the section "profile dev". A repeated section merges.
 *   - "key = value" or "key: value" (first delimiter wins, so URLs keep their colons);
 *     keys are folded to lower case; a later key replaces an earlier one.
 *   - full-line comments starting with '#' or ';'; an inline comment is a '#' or ';'
 *     preceded by whitespace (a secret or URL never holds " #"; "a#b" stays a value).
 *   - indented lines after a key: when the key had an empty value they are a nested
 *     sub-section ("s3 =\n  addressing_style = path" -> "s3.addressing_style"); otherwise
 *     they continue the value on a new line, as configparser does.
 *   - CRLF line ends and a leading UTF-8 BOM. Lines outside any section, and lines with no
 *     delimiter, are ignored rather than failing the whole file: one stray line in a
 *     user's config must not take every profile away.
 *
 * Cost: linear in the size of the text. Sections and keys are found through hash tables
 * (a config of 200 000 profiles is read at every start of every command), and a value
 * continued over many lines grows geometrically.
 * Size: goman_ini_load() refuses a file larger than GOMAN_MAX_CONFIG_BYTES (default 4 MiB).
 *
 * Ownership: the struct owns every string; lookups hand out borrowed pointers.
 * Errors: NULL with err (ENOTFOUND for a missing file, EIO for unreadable or too large,
 * ENOMEM).
 */
#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "goman/ini.h"
#include "bytes_int.h"

/* A config bigger than this is not a config: refuse rather than slurp it
 * (GOMAN_MAX_CONFIG_BYTES changes it). */
#define INI_MAX_BYTES ((size_t)4 << 20)

struct ini_kv {
	char *key;
	char *value;
	size_t vlen, vcap; /* vcap > 0 once the value grew by continuation lines */
};

/* open addressing over entry index + 1 (0 = empty), at most half full */
struct ini_hash {
	size_t *slots;
	size_t nslots;
};

struct ini_section {
	char *name;
	struct ini_kv *kv;
	size_t n, cap;
	struct ini_hash keys;
};

struct goman_ini {
	struct ini_section *s;
	size_t n, cap;
	struct ini_hash names;
};

/* FNV-1a of s, case-folded when fold (keys are matched without case, names with) */
static size_t hash_str(const char *s, int fold)
{
	uint64_t h = GM_FNV1A_INIT;
	for (; *s; s++)
		h = gm_fnv1a_step(h, (unsigned char)(fold ? tolower((unsigned char)*s) : *s));
	return (size_t)h;
}

/* Makes room for entry number n (0-based) in h, rehashing the n existing entries whose
 * names name(ctx, i) gives; -1 on ENOMEM. */
static int hash_reserve(struct ini_hash *h, size_t n, int fold,
			const char *(*name)(const void *ctx, size_t i), const void *ctx)
{
	if ((n + 1) * 2 <= h->nslots)
		return 0;
	size_t nslots = h->nslots ? h->nslots * 2 : 16;
	size_t *slots = calloc(nslots, sizeof(*slots));
	if (!slots)
		return -1;
	for (size_t i = 0; i < n; i++) {
		size_t j = hash_str(name(ctx, i), fold) & (nslots - 1);
		while (slots[j])
			j = (j + 1) & (nslots - 1);
		slots[j] = i + 1;
	}
	free(h->slots);
	h->slots = slots;
	h->nslots = nslots;
	return 0;
}

static void hash_insert(struct ini_hash *h, const char *name, int fold, size_t index)
{
	size_t j = hash_str(name, fold) & (h->nslots - 1);
	while (h->slots[j])
		j = (j + 1) & (h->nslots - 1);
	h->slots[j] = index + 1;
}

static const char *section_name_at(const void *ctx, size_t i)
{
	return ((const struct goman_ini *)ctx)->s[i].name;
}

static const char *key_at(const void *ctx, size_t i)
{
	return ((const struct ini_section *)ctx)->kv[i].key;
}

static char *dupn(const char *s, size_t n)
{
	char *p = malloc(n + 1);
	if (!p)
		return NULL;
	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

static void trim(const char **b, const char **e)
{
	while (*b < *e && isspace((unsigned char)**b))
		(*b)++;
	while (*e > *b && isspace((unsigned char)(*e)[-1]))
		(*e)--;
}

/* Cuts an inline comment: '#' or ';' preceded by whitespace. */
static const char *cut_comment(const char *b, const char *e)
{
	for (const char *p = b + 1; p < e; p++)
		if ((*p == '#' || *p == ';') && isspace((unsigned char)p[-1]))
			return p;
	return e;
}

static struct ini_section *find_section(const struct goman_ini *ini, const char *name)
{
	if (!ini->names.nslots)
		return NULL;
	size_t m = ini->names.nslots - 1;
	for (size_t j = hash_str(name, 0) & m; ini->names.slots[j]; j = (j + 1) & m) {
		struct ini_section *s = &ini->s[ini->names.slots[j] - 1];
		if (strcmp(s->name, name) == 0)
			return s;
	}
	return NULL;
}

/* Returns the section named (folded) name, adding it when new; NULL on ENOMEM. */
static struct ini_section *add_section(struct goman_ini *ini, const char *b, const char *e)
{
	char *name = malloc((size_t)(e - b) + 1);
	if (!name)
		return NULL;
	size_t w = 0;
	for (const char *p = b; p < e; p++) {
		if (isspace((unsigned char)*p)) {
			if (w && name[w - 1] != ' ')
				name[w++] = ' ';
			continue;
		}
		name[w++] = *p;
	}
	if (w && name[w - 1] == ' ')
		w--;
	name[w] = '\0';
	struct ini_section *s = find_section(ini, name);
	if (s) {
		free(name);
		return s;
	}
	if (ini->n == ini->cap) {
		size_t cap = ini->cap ? ini->cap * 2 : 8;
		struct ini_section *v = realloc(ini->s, cap * sizeof(*v));
		if (!v) {
			free(name);
			return NULL;
		}
		ini->s = v;
		ini->cap = cap;
	}
	if (hash_reserve(&ini->names, ini->n, 0, section_name_at, ini) < 0) {
		free(name);
		return NULL;
	}
	s = &ini->s[ini->n];
	memset(s, 0, sizeof(*s));
	s->name = name;
	hash_insert(&ini->names, name, 0, ini->n++);
	return s;
}

static struct ini_kv *find_key(const struct ini_section *s, const char *key)
{
	if (!s->keys.nslots)
		return NULL;
	size_t m = s->keys.nslots - 1;
	for (size_t j = hash_str(key, 1) & m; s->keys.slots[j]; j = (j + 1) & m) {
		struct ini_kv *kv = &s->kv[s->keys.slots[j] - 1];
		if (strcasecmp(kv->key, key) == 0)
			return kv;
	}
	return NULL;
}

/* Sets key (owned, already lower-cased) to value (owned); consumes both, even on error.
 * Returns the entry or NULL on ENOMEM. */
static struct ini_kv *set_key(struct ini_section *s, char *key, char *value)
{
	struct ini_kv *kv = find_key(s, key);
	if (kv) {
		free(key);
		free(kv->value);
		kv->value = value;
		kv->vlen = strlen(value);
		kv->vcap = 0;
		return kv;
	}
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 8;
		struct ini_kv *v = realloc(s->kv, cap * sizeof(*v));
		if (!v) {
			free(key);
			free(value);
			return NULL;
		}
		s->kv = v;
		s->cap = cap;
	}
	if (hash_reserve(&s->keys, s->n, 1, key_at, s) < 0) {
		free(key);
		free(value);
		return NULL;
	}
	kv = &s->kv[s->n];
	kv->key = key;
	kv->value = value;
	kv->vlen = strlen(value);
	kv->vcap = 0;
	hash_insert(&s->keys, key, 1, s->n++);
	return kv;
}

static char *lower_dup(const char *b, const char *e, const char *prefix)
{
	size_t pl = prefix ? strlen(prefix) + 1 : 0;
	char *k = malloc(pl + (size_t)(e - b) + 1);
	if (!k)
		return NULL;
	if (prefix) {
		memcpy(k, prefix, pl - 1);
		k[pl - 1] = '.';
	}
	for (size_t i = 0; b + i < e; i++)
		k[pl + i] = (char)tolower((unsigned char)b[i]);
	k[pl + (size_t)(e - b)] = '\0';
	return k;
}

/* Splits "key = value" / "key: value"; returns 0 and the trimmed parts, -1 without a
 * delimiter or with an empty key. */
static int split_kv(const char *b, const char *e, const char **kb, const char **ke, const char **vb,
		    const char **ve)
{
	const char *d = b;
	while (d < e && *d != '=' && *d != ':')
		d++;
	if (d == e)
		return -1;
	*kb = b;
	*ke = d;
	trim(kb, ke);
	if (*kb == *ke)
		return -1;
	*vb = d + 1;
	*ve = cut_comment(*vb, e);
	trim(vb, ve);
	return 0;
}

struct goman_ini *goman_ini_parse(const char *text, struct goman_err *err)
{
	struct goman_ini *ini = calloc(1, sizeof(*ini));
	if (!ini)
		goto nomem;
	struct ini_section *cur = NULL;
	/* the last key at the top level of cur: continuation lines attach to it */
	size_t last = (size_t)-1;
	int nested = 0; /* last key opened a nested sub-section (its value was empty) */
	const char *p = text;
	if ((unsigned char)p[0] == 0xEF && (unsigned char)p[1] == 0xBB &&
	    (unsigned char)p[2] == 0xBF)
		p += 3;
	while (*p) {
		const char *b = p, *e = strchr(p, '\n');
		if (!e)
			e = p + strlen(p);
		p = *e ? e + 1 : e;
		int indented = b < e && (*b == ' ' || *b == '\t');
		trim(&b, &e);
		if (b == e || *b == '#' || *b == ';')
			continue;
		if (*b == '[' && !indented) {
			const char *close = memchr(b, ']', (size_t)(e - b));
			last = (size_t)-1;
			cur = NULL;
			if (!close)
				continue; /* not a header: ignore the line, and its keys */
			const char *nb = b + 1, *ne = close;
			trim(&nb, &ne);
			if (!(cur = add_section(ini, nb, ne)))
				goto nomem;
			continue;
		}
		if (!cur)
			continue;
		if (indented && last != (size_t)-1) {
			struct ini_kv *parent = &cur->kv[last];
			const char *kb, *ke, *vb, *ve;
			if (nested) {
				if (split_kv(b, e, &kb, &ke, &vb, &ve) < 0)
					continue;
				char *k = lower_dup(kb, ke, parent->key);
				char *v = dupn(vb, (size_t)(ve - vb));
				if (!k || !v) {
					free(k);
					free(v);
					goto nomem;
				}
				/* set_key may move cur->kv: `last` is an index, not a pointer */
				if (!set_key(cur, k, v))
					goto nomem;
				continue;
			}
			/* multi-line value: value "\n" line; grown geometrically, so a value of
			 * many lines costs its length, not its length squared */
			const char *ce = cut_comment(b, e);
			trim(&b, &ce);
			size_t ol = parent->vlen, nl = (size_t)(ce - b), need = ol + 1 + nl + 1;
			if (need > parent->vcap) {
				size_t vcap = parent->vcap ? parent->vcap : 64;
				while (vcap < need)
					vcap *= 2;
				char *v = realloc(parent->value, vcap);
				if (!v)
					goto nomem;
				parent->value = v;
				parent->vcap = vcap;
			}
			char *v = parent->value;
			v[ol] = '\n';
			memcpy(v + ol + 1, b, nl);
			v[ol + 1 + nl] = '\0';
			parent->vlen = ol + 1 + nl;
			continue;
		}
		const char *kb, *ke, *vb, *ve;
		if (split_kv(b, e, &kb, &ke, &vb, &ve) < 0)
			continue;
		char *k = lower_dup(kb, ke, NULL);
		char *v = dupn(vb, (size_t)(ve - vb));
		if (!k || !v) {
			free(k);
			free(v);
			goto nomem;
		}
		struct ini_kv *kv = set_key(cur, k, v);
		if (!kv)
			goto nomem;
		last = (size_t)(kv - cur->kv);
		nested = (vb == ve);
	}
	return ini;
nomem:
	goman_ini_free(ini);
	gm_err_oom(err);
	return NULL;
}

/* GOMAN_MAX_CONFIG_BYTES: a positive decimal byte count, else the default */
static size_t max_config_bytes(void)
{
	const char *v = getenv("GOMAN_MAX_CONFIG_BYTES");
	if (!v || !*v)
		return INI_MAX_BYTES;
	char *end;
	errno = 0;
	unsigned long long n = strtoull(v, &end, 10);
	if (errno || *end || n == 0 || v[0] == '-' || n > SIZE_MAX / 2)
		return INI_MAX_BYTES;
	return (size_t)n;
}

struct goman_ini *goman_ini_load(const char *path, struct goman_err *err)
{
	size_t max = max_config_bytes();
	FILE *f = fopen(path, "rb");
	if (!f) {
		if (errno == ENOENT || errno == ENOTDIR)
			goman_err_set(err, GOMAN_ENOTFOUND, GOMAN_CLASS_NONE, "", "no file '%s'",
				      path);
		else
			goman_err_set(err, GOMAN_EIO, GOMAN_CLASS_NONE, "", "cannot open '%s': %s",
				      path, strerror(errno));
		return NULL;
	}
	char *buf = NULL;
	size_t len = 0, cap = 0;
	for (;;) {
		if (len > max) {
			free(buf);
			fclose(f);
			goman_err_set(err, GOMAN_EIO, GOMAN_CLASS_NONE, "ConfigTooLarge",
				      "'%s' is larger than %zu bytes (GOMAN_MAX_CONFIG_BYTES)",
				      path, max);
			return NULL;
		}
		if (cap - len < 4096) {
			/* room for max + 1 bytes at most: one byte past the cap proves it is exceeded */
			cap = cap ? cap * 2 : 8192;
			if (cap > max + 2)
				cap = max + 2 > len + 2 ? max + 2 : len + 2;
			char *nb = realloc(buf, cap);
			if (!nb) {
				free(buf);
				fclose(f);
				gm_err_oom(err);
				return NULL;
			}
			buf = nb;
		}
		size_t r = fread(buf + len, 1, cap - len - 1, f);
		len += r;
		if (r == 0)
			break;
	}
	int bad = ferror(f);
	fclose(f);
	if (bad) {
		free(buf);
		goman_err_set(err, GOMAN_EIO, GOMAN_CLASS_NONE, "", "cannot read '%s'", path);
		return NULL;
	}
	buf[len] = '\0';
	/* A NUL inside the file ends the text there: such a file is not text anyway. */
	struct goman_ini *ini = goman_ini_parse(buf, err);
	free(buf);
	return ini;
}

void goman_ini_free(struct goman_ini *ini)
{
	if (!ini)
		return;
	for (size_t i = 0; i < ini->n; i++) {
		struct ini_section *s = &ini->s[i];
		for (size_t j = 0; j < s->n; j++) {
			free(s->kv[j].key);
			free(s->kv[j].value);
		}
		free(s->kv);
		free(s->keys.slots);
		free(s->name);
	}
	free(ini->s);
	free(ini->names.slots);
	free(ini);
}

const char *goman_ini_get(const struct goman_ini *ini, const char *section, const char *key)
{
	if (!ini || !section || !key)
		return NULL;
	const struct ini_section *s = find_section(ini, section);
	if (!s)
		return NULL;
	const struct ini_kv *kv = find_key(s, key);
	return kv ? kv->value : NULL;
}

const char *goman_ini_section(const struct goman_ini *ini, size_t i)
{
	return ini && i < ini->n ? ini->s[i].name : NULL;
}

const char *goman_ini_key(const struct goman_ini *ini, const char *section, size_t i,
			  const char **value)
{
	const struct ini_section *s = ini && section ? find_section(ini, section) : NULL;
	if (!s || i >= s->n)
		return NULL;
	if (value)
		*value = s->kv[i].value;
	return s->kv[i].key;
}
