/*
 * cluster_file.c - the cluster file (see goman/cluster_file.h and goman-cluster(5)).
 *
 * Shape: the bytes become one small tree (mappings, sequences, scalars, each with its line)
 * through libyaml's event parser or cJSON; then one validator walks the tree into struct
 * goman_cluster_file. So YAML and JSON share every rule and every message, and the two
 * syntaxes differ only in what a scalar can be: a YAML plain scalar is read as the key
 * wants it (string, integer, or exactly true/false), a JSON value must have its JSON type.
 *
 * Ownership: the tree is freed before parse returns; the struct owns its strings.
 * Errors: the first problem stops the walk; its message is "FILE[:LINE]: PATH: what".
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <cjson/cJSON.h>
#include <yaml.h>
#include "jsonl_int.h"
#include "goman/cluster_file.h"
#include "goman/creds.h"
#include "goman/k8s_names.h"
#include "goman/provision.h"
#include "bytes_int.h"
#include "internal.h"

#define MAX_DEPTH 32 /* the schema nests 4 deep; anything deeper is not a cluster file */
/* the largest mapping of the schema holds 64 labels; duplicate keys are found by a linear
 * scan, so a bound keeps a 1 MiB file of one huge mapping from costing seconds */
#define MAX_MAP_KEYS 256
#define DEFAULT_TYPE "t3.medium"

/* ---- the tree ----------------------------------------------------------------------- */

enum nkind { N_MAP, N_SEQ, N_SCALAR };
/* what a scalar was written as: YAML quoted (STR) or plain; JSON string, number, bool, null */
enum skind { S_STR, S_PLAIN, S_NUM, S_BOOL, S_NULL };

struct cnode {
	enum nkind kind;
	enum skind sk;
	char *s;
	unsigned line;
	char **keys; /* N_MAP */
	unsigned *key_lines;
	struct cnode **kids; /* N_MAP values, N_SEQ items */
	size_t n, cap;
};

static void cnode_free(struct cnode *n)
{
	if (!n)
		return;
	for (size_t i = 0; i < n->n; i++) {
		if (n->keys)
			free(n->keys[i]);
		cnode_free(n->kids[i]);
	}
	free(n->keys);
	free(n->key_lines);
	free(n->kids);
	free(n->s);
	free(n);
}

static struct cnode *cnode_new(enum nkind k, unsigned line)
{
	struct cnode *n = calloc(1, sizeof(*n));
	if (n) {
		n->kind = k;
		n->line = line;
	}
	return n;
}

/* Appends kid (and key for a map); takes both on success and on failure. */
static int cnode_add(struct cnode *n, char *key, unsigned key_line, struct cnode *kid)
{
	if (n->n == n->cap) {
		size_t c = n->cap ? n->cap * 2 : 8;
		struct cnode **k = realloc(n->kids, c * sizeof(*k));
		if (k)
			n->kids = k;
		if (k && n->kind == N_MAP) {
			char **ks = realloc(n->keys, c * sizeof(*ks));
			if (ks)
				n->keys = ks;
			unsigned *kl = ks ? realloc(n->key_lines, c * sizeof(*kl)) : NULL;
			if (kl)
				n->key_lines = kl;
			if (!kl)
				k = NULL;
		}
		if (!k) {
			free(key);
			cnode_free(kid);
			return -1;
		}
		n->cap = c;
	}
	if (n->kind == N_MAP) {
		n->keys[n->n] = key;
		n->key_lines[n->n] = key_line;
	}
	n->kids[n->n++] = kid;
	return 0;
}

static int map_find(const struct cnode *m, const char *key)
{
	for (size_t i = 0; i < m->n; i++)
		if (!strcmp(m->keys[i], key))
			return (int)i;
	return -1;
}

/* ---- errors ------------------------------------------------------------------------- */

struct ctx {
	const char *src;
	struct goman_err *err;
	char path[256];
	size_t max_groups;
};

static int verr_at(struct goman_err *e, const char *src, unsigned line, const char *path,
		   const char *fmt, va_list ap)
{
	char msg[400], where[300];
	vsnprintf(msg, sizeof(msg), fmt, ap);
	if (line)
		snprintf(where, sizeof(where), "%.200s:%u", src, line);
	else
		snprintf(where, sizeof(where), "%.200s", src);
	return goman_err_set(e, GOMAN_EINVAL, GOMAN_CLASS_BAD_INPUT, "BadClusterFile", "%s: %s%s%s",
			     where, path && *path ? path : "", path && *path ? ": " : "", msg);
}

__attribute__((format(printf, 4, 5))) static int fail(struct ctx *c, unsigned line,
						      const char *path, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	verr_at(c->err, c->src, line, path ? path : c->path, fmt, ap);
	va_end(ap);
	return -1;
}

__attribute__((format(printf, 4, 5))) static int fail_src(struct goman_err *e, const char *src,
							  unsigned line, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	verr_at(e, src, line, NULL, fmt, ap);
	va_end(ap);
	return -1;
}

/* path handling: push returns the old length to restore */
/* keys of the schema read as a.b; a user's key (a label, a tag) that holds other
 * characters reads as a["node-role.example.com/x"] so the path stays unambiguous */
static size_t push_key(struct ctx *c, const char *k)
{
	size_t l = strlen(c->path);
	bool plain = *k != '\0';
	for (const char *p = k; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || *p == '_' || *p == '-'))
			plain = false;
	if (plain)
		snprintf(c->path + l, sizeof(c->path) - l, "%s%.64s", l ? "." : "", k);
	else
		snprintf(c->path + l, sizeof(c->path) - l, "[\"%.64s\"]", k);
	return l;
}

static size_t push_index(struct ctx *c, size_t i)
{
	size_t l = strlen(c->path);
	snprintf(c->path + l, sizeof(c->path) - l, "[%zu]", i);
	return l;
}

static void pop(struct ctx *c, size_t l)
{
	c->path[l] = '\0';
}

/* A printable, bounded view of a value for messages. */
static const char *shown(const char *s, char *b, size_t bl)
{
	size_t j = 0;
	for (size_t i = 0; s[i] && j + 4 < bl; i++)
		b[j++] = (unsigned char)s[i] < 0x20 || s[i] == 0x7f ? '?' : s[i];
	if (s[0] && j + 4 >= bl && strlen(s) > j) {
		b[j++] = '.';
		b[j++] = '.';
		b[j++] = '.';
	}
	b[j] = '\0';
	return b;
}

/* ---- YAML → tree -------------------------------------------------------------------- */

struct yrd {
	yaml_parser_t p;
	const char *src;
	struct goman_err *err;
};

static int ynext(struct yrd *y, yaml_event_t *ev)
{
	if (!yaml_parser_parse(&y->p, ev)) {
		unsigned line = (unsigned)y->p.problem_mark.line + 1;
		if (y->p.error == YAML_MEMORY_ERROR)
			return gm_err_oom(y->err);
		return fail_src(y->err, y->src, line, "YAML syntax: %s%s%s",
				y->p.problem ? y->p.problem : "error", y->p.context ? " " : "",
				y->p.context ? y->p.context : "");
	}
	return 0;
}

static int yrefuse(struct yrd *y, const yaml_event_t *ev)
{
	unsigned line = (unsigned)ev->start_mark.line + 1;
	const yaml_char_t *anchor = NULL, *tag = NULL;
	switch (ev->type) {
	case YAML_ALIAS_EVENT:
		return fail_src(y->err, y->src, line, "aliases (*name) are not allowed");
	case YAML_SCALAR_EVENT:
		anchor = ev->data.scalar.anchor;
		tag = ev->data.scalar.tag;
		break;
	case YAML_SEQUENCE_START_EVENT:
		anchor = ev->data.sequence_start.anchor;
		tag = ev->data.sequence_start.tag;
		break;
	case YAML_MAPPING_START_EVENT:
		anchor = ev->data.mapping_start.anchor;
		tag = ev->data.mapping_start.tag;
		break;
	default: return 0;
	}
	if (anchor)
		return fail_src(y->err, y->src, line, "anchors (&name) are not allowed");
	if (tag)
		return fail_src(y->err, y->src, line, "explicit tags (!tag) are not allowed");
	return 0;
}

/* Builds the node that ev starts (ev is consumed). */
static struct cnode *ynode(struct yrd *y, yaml_event_t *ev, int depth)
{
	unsigned line = (unsigned)ev->start_mark.line + 1;
	if (yrefuse(y, ev) != 0) {
		yaml_event_delete(ev);
		return NULL;
	}
	if (depth > MAX_DEPTH) {
		yaml_event_delete(ev);
		fail_src(y->err, y->src, line, "nested deeper than %d levels", MAX_DEPTH);
		return NULL;
	}
	if (ev->type == YAML_SCALAR_EVENT) {
		struct cnode *n = cnode_new(N_SCALAR, line);
		if (n) {
			n->sk = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE ? S_PLAIN : S_STR;
			n->s = strndup((const char *)ev->data.scalar.value, ev->data.scalar.length);
			if (!n->s || strlen(n->s) != ev->data.scalar.length) {
				bool nul = n->s != NULL;
				cnode_free(n);
				n = NULL;
				if (nul)
					fail_src(y->err, y->src, line,
						 "NUL characters are not allowed");
				else
					gm_err_oom(y->err);
			}
		} else {
			gm_err_oom(y->err);
		}
		yaml_event_delete(ev);
		return n;
	}
	if (ev->type != YAML_SEQUENCE_START_EVENT && ev->type != YAML_MAPPING_START_EVENT) {
		yaml_event_delete(ev);
		fail_src(y->err, y->src, line, "unexpected YAML event");
		return NULL;
	}
	bool map = ev->type == YAML_MAPPING_START_EVENT;
	yaml_event_delete(ev);
	struct cnode *n = cnode_new(map ? N_MAP : N_SEQ, line);
	if (!n) {
		gm_err_oom(y->err);
		return NULL;
	}
	for (;;) {
		yaml_event_t e;
		if (ynext(y, &e) != 0)
			goto bad;
		if (e.type == YAML_SEQUENCE_END_EVENT || e.type == YAML_MAPPING_END_EVENT) {
			yaml_event_delete(&e);
			return n;
		}
		char *key = NULL;
		unsigned kline = (unsigned)e.start_mark.line + 1;
		if (map) {
			if (yrefuse(y, &e) != 0) {
				yaml_event_delete(&e);
				goto bad;
			}
			if (e.type != YAML_SCALAR_EVENT) {
				yaml_event_delete(&e);
				fail_src(y->err, y->src, kline, "keys must be plain strings");
				goto bad;
			}
			size_t klen = e.data.scalar.length;
			key = strndup((const char *)e.data.scalar.value, klen);
			yaml_event_delete(&e);
			if (!key) {
				gm_err_oom(y->err);
				goto bad;
			}
			if (strlen(key) != klen) { /* "name\0x" must not read as name */
				fail_src(y->err, y->src, kline, "NUL characters are not allowed");
				free(key);
				goto bad;
			}
			char b[80];
			if (map_find(n, key) >= 0 || n->n >= MAX_MAP_KEYS) {
				if (n->n >= MAX_MAP_KEYS)
					fail_src(y->err, y->src, kline,
						 "a mapping of more than %d keys", MAX_MAP_KEYS);
				else
					fail_src(y->err, y->src, kline, "%s: duplicate key",
						 shown(key, b, sizeof(b)));
				free(key);
				goto bad;
			}
			if (ynext(y, &e) != 0) {
				free(key);
				goto bad;
			}
		}
		struct cnode *kid = ynode(y, &e, depth + 1);
		if (!kid) {
			free(key);
			goto bad;
		}
		if (cnode_add(n, key, kline, kid) != 0) {
			gm_err_oom(y->err);
			goto bad;
		}
	}
bad:
	cnode_free(n);
	return NULL;
}

static struct cnode *yaml_tree(const char *buf, size_t len, const char *src, struct goman_err *err)
{
	struct yrd y = {.src = src, .err = err};
	struct cnode *root = NULL;
	yaml_event_t ev;
	if (!yaml_parser_initialize(&y.p)) {
		gm_err_oom(err);
		return NULL;
	}
	yaml_parser_set_input_string(&y.p, (const unsigned char *)buf, len);
	if (ynext(&y, &ev) != 0) /* STREAM-START */
		goto out;
	yaml_event_delete(&ev);
	if (ynext(&y, &ev) != 0)
		goto out;
	if (ev.type == YAML_STREAM_END_EVENT) {
		yaml_event_delete(&ev);
		fail_src(err, src, 0, "the file is empty");
		goto out;
	}
	yaml_event_delete(&ev); /* DOCUMENT-START */
	if (ynext(&y, &ev) != 0)
		goto out;
	root = ynode(&y, &ev, 0);
	if (!root)
		goto out;
	if (ynext(&y, &ev) != 0) /* DOCUMENT-END */
		goto bad;
	yaml_event_delete(&ev);
	if (ynext(&y, &ev) != 0)
		goto bad;
	if (ev.type != YAML_STREAM_END_EVENT) {
		fail_src(err, src, (unsigned)ev.start_mark.line + 1,
			 "only one YAML document is allowed");
		yaml_event_delete(&ev);
		goto bad;
	}
	yaml_event_delete(&ev);
	goto out;
bad:
	cnode_free(root);
	root = NULL;
out:
	yaml_parser_delete(&y.p);
	return root;
}

/* ---- JSON → tree -------------------------------------------------------------------- */

static struct cnode *jnode(const cJSON *j, const char *src, int depth, struct goman_err *err)
{
	if (depth > MAX_DEPTH) {
		fail_src(err, src, 0, "nested deeper than %d levels", MAX_DEPTH);
		return NULL;
	}
	bool map = cJSON_IsObject(j);
	if (map || cJSON_IsArray(j)) {
		struct cnode *n = cnode_new(map ? N_MAP : N_SEQ, 0);
		if (!n) {
			gm_err_oom(err);
			return NULL;
		}
		const cJSON *k;
		cJSON_ArrayForEach (k, j) {
			char *key = NULL;
			if (map) {
				char b[80];
				if (n->n >= MAX_MAP_KEYS) {
					fail_src(err, src, 0, "a mapping of more than %d keys",
						 MAX_MAP_KEYS);
					cnode_free(n);
					return NULL;
				}
				if (map_find(n, k->string) >= 0) {
					fail_src(err, src, 0, "%s: duplicate key",
						 shown(k->string, b, sizeof(b)));
					cnode_free(n);
					return NULL;
				}
				if (!(key = strdup(k->string))) {
					gm_err_oom(err);
					cnode_free(n);
					return NULL;
				}
			}
			struct cnode *kid = jnode(k, src, depth + 1, err);
			if (!kid) {
				free(key);
				cnode_free(n);
				return NULL;
			}
			if (cnode_add(n, key, 0, kid) != 0) {
				cnode_free(n);
				gm_err_oom(err);
				return NULL;
			}
		}
		return n;
	}
	struct cnode *n = cnode_new(N_SCALAR, 0);
	if (!n) {
		gm_err_oom(err);
		return NULL;
	}
	char num[64];
	const char *s;
	if (cJSON_IsString(j)) {
		n->sk = S_STR;
		s = j->valuestring;
	} else if (cJSON_IsNumber(j)) {
		n->sk = S_NUM;
		double d = j->valuedouble;
		if (d >= -1e15 && d <= 1e15 && d == (double)(long long)d)
			snprintf(num, sizeof(num), "%lld", (long long)d);
		else
			snprintf(num, sizeof(num), "%.17g", d);
		s = num;
	} else if (cJSON_IsBool(j)) {
		n->sk = S_BOOL;
		s = cJSON_IsTrue(j) ? "true" : "false";
	} else {
		n->sk = S_NULL;
		s = "null";
	}
	if (!(n->s = strdup(s))) {
		cnode_free(n);
		gm_err_oom(err);
		return NULL;
	}
	return n;
}

static unsigned line_of(const char *buf, const char *pos)
{
	unsigned l = 1;
	for (const char *p = buf; p < pos; p++)
		l += *p == '\n';
	return l;
}

static struct cnode *json_tree(const char *buf, size_t len, const char *src, struct goman_err *err)
{
	const char *end = NULL;
	cJSON *j = cJSON_ParseWithLengthOpts(buf, len, &end, 0);
	if (!j) {
		if (!end || end < buf || end > buf + len)
			end = buf;
		return fail_src(err, src, line_of(buf, end), "JSON syntax error"), NULL;
	}
	for (const char *p = end; p < buf + len; p++)
		if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r') {
			cJSON_Delete(j);
			return fail_src(err, src, line_of(buf, p), "JSON: text after the object"),
			       NULL;
		}
	struct cnode *n = jnode(j, src, 0, err);
	cJSON_Delete(j);
	return n;
}

/* ---- value rules -------------------------------------------------------------------- */

static const char *const via_names[] = {"ssm", "ssh", "local"};

static bool is_alnum(char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9');
}

static bool is_lower_alnum(char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9');
}

static bool all_hex(const char *s, size_t min, size_t max)
{
	size_t n = strlen(s);
	if (n < min || n > max)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return true;
}

/* v1.31.4+k3s1, v1.30.0-rc1+k3s2 */
static bool k3s_version_ok(const char *s)
{
	const char *p = s;
	if (*p++ != 'v')
		return false;
	for (int part = 0; part < 3; part++) {
		if (part && *p++ != '.')
			return false;
		const char *d = p;
		while (*p >= '0' && *p <= '9')
			p++;
		if (p == d || p - d > 5)
			return false;
	}
	if (*p == '-') {
		p++;
		const char *d = p;
		while (is_lower_alnum(*p))
			p++;
		if (p == d || p - d > 16)
			return false;
	}
	if (strncmp(p, "+k3s", 4))
		return false;
	p += 4;
	const char *d = p;
	while (*p >= '0' && *p <= '9')
		p++;
	return p > d && p - d <= 5 && !*p;
}

/* stable, latest, testing, v1.31: a path segment of the channel server */
static bool channel_ok(const char *s)
{
	size_t n = strlen(s);
	if (n < 1 || n > 32 || !is_lower_alnum(s[0]))
		return false;
	for (size_t i = 1; i < n; i++)
		if (!is_lower_alnum(s[i]) && s[i] != '.' && s[i] != '-')
			return false;
	return true;
}

/* a login name as useradd takes it */
static bool user_ok(const char *s)
{
	size_t n = strlen(s);
	if (n < 1 || n > 32 || !((s[0] >= 'a' && s[0] <= 'z') || s[0] == '_'))
		return false;
	for (size_t i = 1; i < n; i++)
		if (!is_lower_alnum(s[i]) && s[i] != '_' && s[i] != '-' && s[i] != '.')
			return false;
	return true;
}

/* family.size: t3.medium, m7i-flex.large, u-6tb1.metal */
static bool type_ok(const char *s)
{
	size_t n = strlen(s);
	const char *dot = strchr(s, '.');
	if (n > 32 || !dot || dot == s || !dot[1] || !(s[0] >= 'a' && s[0] <= 'z'))
		return false;
	for (const char *p = s; p < dot; p++)
		if (!is_lower_alnum(*p) && *p != '-')
			return false;
	for (const char *p = dot + 1; *p; p++)
		if (!is_lower_alnum(*p))
			return false;
	return true;
}

/* IPv4 a.b.c.d/n, the network address (no host bits), as EC2 security groups take it */
static bool cidr_ok(const char *s, char *why, size_t wl)
{
	const char *sl = strchr(s, '/');
	char ip[20];
	struct in_addr a;
	snprintf(why, wl, "must be an IPv4 CIDR like 203.0.113.0/24");
	if (!sl || sl == s || (size_t)(sl - s) >= sizeof(ip))
		return false;
	memcpy(ip, s, (size_t)(sl - s));
	ip[sl - s] = '\0';
	if (inet_pton(AF_INET, ip, &a) != 1)
		return false;
	const char *b = sl + 1;
	if (!*b || strlen(b) > 2 || (b[0] == '0' && b[1]))
		return false;
	long bits = 0;
	for (const char *p = b; *p; p++) {
		if (*p < '0' || *p > '9')
			return false;
		bits = bits * 10 + (*p - '0');
	}
	if (bits > 32)
		return false;
	uint32_t v = ntohl(a.s_addr), mask = bits ? 0xffffffffu << (32 - bits) : 0;
	if (v & ~mask) {
		struct in_addr net = {.s_addr = htonl(v & mask)};
		char nb[INET_ADDRSTRLEN];
		inet_ntop(AF_INET, &net, nb, sizeof(nb));
		snprintf(why, wl, "has host bits set (the network is %s/%ld)", nb, bits);
		return false;
	}
	return true;
}

/* an RFC 1123 host name with at least one dot (so a misspelt "pubic" is not a host) */
static bool dns_ok(const char *s)
{
	size_t n = strlen(s), lab = 0;
	if (n < 3 || n > 253 || !strchr(s, '.'))
		return false;
	for (size_t i = 0; i <= n; i++) {
		if (i == n || s[i] == '.') {
			if (lab == 0 || lab > 63 || s[i - 1] == '-')
				return false;
			lab = 0;
			continue;
		}
		if (!is_alnum(s[i]) && !(s[i] == '-' && lab > 0))
			return false;
		lab++;
	}
	return true;
}

/* characters, not bytes: EC2 counts Unicode characters; NULL when fine */
static const char *utf8_why(const char *s, size_t max, size_t *chars)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t c = 0;
	while (*p) {
		int extra = *p < 0x80             ? 0
			    : (*p & 0xe0) == 0xc0 ? 1
			    : (*p & 0xf0) == 0xe0 ? 2
			    : (*p & 0xf8) == 0xf0 ? 3
						  : -1;
		if (extra < 0)
			return "is not valid UTF-8";
		if (*p < 0x20 || *p == 0x7f)
			return "holds a control character";
		p++;
		for (int i = 0; i < extra; i++, p++)
			if ((*p & 0xc0) != 0x80)
				return "is not valid UTF-8";
		c++;
	}
	*chars = c;
	return c > max ? "is too long" : NULL;
}

/* ---- tree → struct ------------------------------------------------------------------ */

static const char *kind_name(const struct cnode *n)
{
	return n->kind == N_MAP ? "a mapping" : n->kind == N_SEQ ? "a list" : "a scalar";
}

static int want_map(struct ctx *c, const struct cnode *n, const char *allowed)
{
	if (n->kind != N_MAP)
		return fail(c, n->line, NULL, "must be a mapping (%s), not %s", allowed,
			    kind_name(n));
	return 0;
}

/* Every key of m in the space-separated list allowed, or an error naming the key. */
static int known_keys(struct ctx *c, const struct cnode *m, const char *allowed)
{
	for (size_t i = 0; i < m->n; i++) {
		const char *k = m->keys[i];
		size_t kl = strlen(k);
		bool ok = false;
		for (const char *a = allowed; *a && !ok;) {
			const char *e = strchr(a, ' ');
			size_t al = e ? (size_t)(e - a) : strlen(a);
			ok = al == kl && !memcmp(a, k, kl);
			a += al + (e ? 1 : 0);
		}
		if (!ok) {
			char b[80];
			size_t l = push_key(c, shown(k, b, sizeof(b)));
			fail(c, m->key_lines[i], NULL, "unknown key (known here: %s)", allowed);
			pop(c, l);
			return -1;
		}
	}
	return 0;
}

static const struct cnode *get(const struct cnode *m, const char *k)
{
	int i = map_find(m, k);
	return i < 0 ? NULL : m->kids[i];
}

/* a string: JSON string, or any YAML scalar but a plain null */
static int as_str(struct ctx *c, const struct cnode *n, char **out)
{
	if (n->kind != N_SCALAR || n->sk == S_NUM || n->sk == S_BOOL || n->sk == S_NULL ||
	    (n->sk == S_PLAIN && (!*n->s || !strcmp(n->s, "~") || !strcmp(n->s, "null"))))
		return fail(c, n->line, NULL, "must be a string, not %s",
			    n->kind != N_SCALAR ? kind_name(n)
			    : n->sk == S_NUM    ? "a number"
			    : n->sk == S_BOOL   ? "a boolean"
						: "null");
	if (!(*out = strdup(n->s)))
		return gm_err_oom(c->err);
	return 0;
}

/* what a wrong value was, for messages: 'yes', the string "3", a list */
static const char *what(const struct cnode *n, char *b, size_t bl)
{
	char v[40];
	if (n->kind != N_SCALAR)
		return kind_name(n);
	snprintf(b, bl, n->sk == S_STR ? "the string \"%s\"" : "'%s'", shown(n->s, v, sizeof(v)));
	return b;
}

static int as_bool(struct ctx *c, const struct cnode *n, bool *out)
{
	if (n->kind == N_SCALAR && (n->sk == S_PLAIN || n->sk == S_BOOL)) {
		if (!strcmp(n->s, "true") || !strcmp(n->s, "false")) {
			*out = n->s[0] == 't';
			return 0;
		}
	}
	char b[40];
	return fail(c, n->line, NULL, "must be true or false, not %s", what(n, b, sizeof(b)));
}

static int as_int(struct ctx *c, const struct cnode *n, long min, long max, long *out)
{
	char b[40];
	if (n->kind == N_SCALAR && (n->sk == S_PLAIN || n->sk == S_NUM)) {
		const char *p = n->s;
		long v = 0;
		bool ok = *p != '\0';
		/* every integer of the schema is a count or a size; a leading 0 is octal to
		 * YAML 1.1 readers and decimal to 1.2 ones, so it is refused rather than guessed */
		if (*p == '-' || (p[0] == '0' && p[1]))
			ok = false;
		for (; ok && *p; p++) {
			if (*p < '0' || *p > '9' || v > 100000000)
				ok = false;
			else
				v = v * 10 + (*p - '0');
		}
		if (ok && v >= min && v <= max) {
			*out = v;
			return 0;
		}
	}
	return fail(c, n->line, NULL, "must be an integer from %ld to %ld, not %s", min, max,
		    what(n, b, sizeof(b)));
}

/* v is one of the space-separated words; *idx its position */
static int as_enum(struct ctx *c, const struct cnode *n, const char *words, int *idx)
{
	char *s = NULL;
	if (as_str(c, n, &s) != 0)
		return -1;
	int i = 0;
	size_t sl = strlen(s);
	for (const char *a = words; *a; i++) {
		const char *e = strchr(a, ' ');
		size_t al = e ? (size_t)(e - a) : strlen(a);
		if (al == sl && !memcmp(a, s, sl)) {
			free(s);
			*idx = i;
			return 0;
		}
		a += al + (e ? 1 : 0);
	}
	char b[80];
	fail(c, n->line, NULL, "must be one of %s, not '%s'", words, shown(s, b, sizeof(b)));
	free(s);
	return -1;
}

/* A string field checked by ok(); *out set. why names the rule. */
static int str_rule(struct ctx *c, const struct cnode *m, const char *key, bool (*ok)(const char *),
		    const char *why, char **out)
{
	const struct cnode *n = get(m, key);
	if (!n)
		return 0;
	size_t l = push_key(c, key);
	int r = as_str(c, n, out);
	if (r == 0 && !ok(*out)) {
		char b[80];
		fail(c, n->line, NULL, "'%s' %s", shown(*out, b, sizeof(b)), why);
		free(*out);
		*out = NULL;
		r = -1;
	}
	pop(c, l);
	return r;
}

static bool name_ok(const char *s)
{
	return goman_cluster_name_ok(s);
}

static int parse_k3s(struct ctx *c, const struct cnode *m, struct goman_cluster_file *cf)
{
	if (want_map(c, m, "version or channel") || known_keys(c, m, "version channel"))
		return -1;
	if (str_rule(c, m, "version", k3s_version_ok, "is not a K3s version like v1.31.4+k3s1",
		     &cf->k3s_version) ||
	    str_rule(c, m, "channel", channel_ok, "is not a channel name like stable or v1.31",
		     &cf->k3s_channel))
		return -1;
	if (!cf->k3s_version == !cf->k3s_channel)
		return fail(c, m->line, NULL, "give exactly one of version or channel");
	return 0;
}

static int parse_install(struct ctx *c, const struct cnode *m, struct goman_cluster_file *cf)
{
	if (want_map(c, m, "via, user, key, address") || known_keys(c, m, "via user key address"))
		return -1;
	const struct cnode *n = get(m, "via");
	int v = 0;
	if (n) {
		size_t l = push_key(c, "via");
		int r = as_enum(c, n, "ssm ssh local", &v);
		pop(c, l);
		if (r)
			return -1;
	}
	cf->via = (enum goman_cf_via)v;
	static const char *const ssh_only[] = {"user", "key", "address"};
	for (size_t i = 0; i < 3; i++) {
		const struct cnode *k = get(m, ssh_only[i]);
		if (k && cf->via != GOMAN_CF_VIA_SSH) {
			size_t l = push_key(c, ssh_only[i]);
			fail(c, k->line, NULL, "only with via: ssh");
			pop(c, l);
			return -1;
		}
	}
	if (str_rule(c, m, "user", user_ok, "is not a login name", &cf->ssh_user))
		return -1;
	if ((n = get(m, "key"))) {
		size_t l = push_key(c, "key");
		int r = as_str(c, n, &cf->ssh_key);
		if (r == 0 && (!*cf->ssh_key || strlen(cf->ssh_key) > 4096))
			r = fail(c, n->line, NULL, "must be a file name");
		pop(c, l);
		if (r)
			return -1;
	}
	if ((n = get(m, "address"))) {
		size_t l = push_key(c, "address");
		int r = as_enum(c, n, "public private", &v);
		pop(c, l);
		if (r)
			return -1;
		cf->ssh_address = (enum goman_cf_addr)v;
	}
	return 0;
}

static bool subnet_ok(const char *s)
{
	return !strncmp(s, "subnet-", 7) && all_hex(s + 7, 1, 32);
}

static int parse_cidr(struct ctx *c, const struct cnode *m, const char *key, char **out)
{
	const struct cnode *n = get(m, key);
	if (!n)
		return 0;
	size_t l = push_key(c, key);
	int r = as_str(c, n, out);
	char why[96], b[80];
	if (r == 0 && !cidr_ok(*out, why, sizeof(why)))
		r = fail(c, n->line, NULL, "'%s' %s", shown(*out, b, sizeof(b)), why);
	pop(c, l);
	return r;
}

/* a list of strings, each checked; or (one_ok) a single string as a list of one */
static int str_list(struct ctx *c, const struct cnode *n, bool one_ok, size_t max,
		    bool (*ok)(const char *), const char *why, char ***out, size_t *nout)
{
	const struct cnode *one[1] = {n};
	const struct cnode *const *items = one;
	size_t k = 1;
	if (n->kind == N_SEQ) {
		items = (const struct cnode *const *)n->kids;
		k = n->n;
	} else if (!one_ok || n->kind != N_SCALAR) {
		return fail(c, n->line, NULL, "must be a list%s, not %s",
			    one_ok ? " or a string" : "", kind_name(n));
	}
	if (k < 1 || k > max)
		return fail(c, n->line, NULL, "must hold 1 to %zu entries, not %zu", max, k);
	if (!(*out = calloc(k, sizeof(char *))))
		return gm_err_oom(c->err);
	for (size_t i = 0; i < k; i++) {
		size_t l = n->kind == N_SEQ ? push_index(c, i) : strlen(c->path);
		char b[80];
		int r = as_str(c, items[i], &(*out)[i]);
		if (r == 0)
			*nout = i + 1;
		if (r == 0 && !ok((*out)[i]))
			r = fail(c, items[i]->line, NULL, "'%s' %s", shown((*out)[i], b, sizeof(b)),
				 why);
		for (size_t j = 0; r == 0 && j < i; j++)
			if (!strcmp((*out)[j], (*out)[i]))
				r = fail(c, items[i]->line, NULL, "'%s' is listed twice",
					 shown((*out)[i], b, sizeof(b)));
		pop(c, l);
		if (r)
			return -1;
	}
	return 0;
}

static int parse_network(struct ctx *c, const struct cnode *m, struct goman_cluster_file *cf)
{
	if (want_map(c, m, "subnets, ssh_cidr, api_cidr, api_endpoint") ||
	    known_keys(c, m, "subnets ssh_cidr api_cidr api_endpoint"))
		return -1;
	const struct cnode *n = get(m, "subnets");
	if (n) {
		size_t l = push_key(c, "subnets");
		int r = str_list(c, n, false, GOMAN_CF_MAX_SUBNETS, subnet_ok,
				 "is not a subnet ID like subnet-0abc123", &cf->subnets,
				 &cf->nsubnets);
		pop(c, l);
		if (r)
			return -1;
	}
	if (parse_cidr(c, m, "ssh_cidr", &cf->ssh_cidr) ||
	    parse_cidr(c, m, "api_cidr", &cf->api_cidr))
		return -1;
	if ((n = get(m, "api_endpoint"))) {
		char *s = NULL, b[80];
		size_t l = push_key(c, "api_endpoint");
		int r = as_str(c, n, &s);
		if (r == 0) {
			if (!strcmp(s, "public") || !strcmp(s, "private"))
				cf->api_endpoint =
					s[1] == 'u' ? GOMAN_CF_ADDR_PUBLIC : GOMAN_CF_ADDR_PRIVATE;
			else if (dns_ok(s)) {
				cf->api_endpoint = GOMAN_CF_ADDR_DNS;
				cf->api_dns = s;
				s = NULL;
			} else
				r = fail(c, n->line, NULL,
					 "'%s' must be public, private or a DNS name (with a dot)",
					 shown(s, b, sizeof(b)));
		}
		free(s);
		pop(c, l);
		if (r)
			return -1;
	}
	return 0;
}

/* mapping of string → string, each pair checked by check() (NULL or why not) */
static int str_map(struct ctx *c, const struct cnode *n, size_t max,
		   const char *(*check)(const char *k, const char *v, bool *on_key),
		   struct goman_cf_pair **out, size_t *nout)
{
	if (n->kind != N_MAP)
		return fail(c, n->line, NULL, "must be a mapping, not %s", kind_name(n));
	if (n->n > max)
		return fail(c, n->line, NULL, "at most %zu entries, not %zu", max, n->n);
	if (!n->n)
		return 0;
	if (!(*out = calloc(n->n, sizeof(**out))))
		return gm_err_oom(c->err);
	for (size_t i = 0; i < n->n; i++) {
		char b[80];
		size_t l = push_key(c, shown(n->keys[i], b, sizeof(b)));
		struct goman_cf_pair *p = &(*out)[i];
		int r = as_str(c, n->kids[i], &p->value);
		if (r == 0) {
			*nout = i + 1;
			if (!(p->key = strdup(n->keys[i])))
				r = gm_err_oom(c->err);
		}
		bool on_key = false;
		const char *why = r == 0 ? check(p->key, p->value, &on_key) : NULL;
		if (why)
			r = on_key ? fail(c, n->key_lines[i], NULL, "key %s", why)
				   : fail(c, n->kids[i]->line, NULL, "value '%s' %s",
					  shown(p->value, b, sizeof(b)), why);
		pop(c, l);
		if (r)
			return -1;
	}
	return 0;
}

static const char *label_check(const char *k, const char *v, bool *on_key)
{
	const char *why = goman_k8s_label_key_why(k, strlen(k));
	if (why) {
		*on_key = true;
		return why;
	}
	if (!goman_k8s_label_value_ok(v, strlen(v)))
		return "must be empty or 1-63 of A-Z a-z 0-9 - _ . starting and ending "
		       "alphanumeric";
	return NULL;
}

static const char *tag_check(const char *k, const char *v, bool *on_key)
{
	size_t n;
	const char *why;
	*on_key = true;
	if (!*k)
		return "must not be empty";
	if ((why = utf8_why(k, 128, &n)))
		return !strcmp(why, "is too long") ? "is longer than 128 characters" : why;
	if (!strncasecmp(k, "aws:", 4))
		return "must not start with aws: (reserved by AWS)";
	if (!strncmp(k, "goman:", 6))
		return "must not start with goman: (goman's own tags)";
	if (!strcmp(k, "Name"))
		return "must not be Name (goman sets it to the node name)";
	*on_key = false;
	if ((why = utf8_why(v, 256, &n)))
		return !strcmp(why, "is too long") ? "is longer than 256 characters" : why;
	return NULL;
}

static int parse_taint(struct ctx *c, const struct cnode *n, struct goman_cf_taint *t)
{
	char *s = NULL, b[80];
	if (as_str(c, n, &s) != 0)
		return -1;
	const char *why = NULL;
	char *colon = strrchr(s, ':');
	if (!colon) {
		why = "must be key=value:Effect or key:Effect";
	} else {
		*colon = '\0';
		const char *eff = colon + 1;
		char *eq = strchr(s, '=');
		if (eq)
			*eq = '\0';
		if (strcmp(eff, "NoSchedule") && strcmp(eff, "PreferNoSchedule") &&
		    strcmp(eff, "NoExecute"))
			why = "Effect must be NoSchedule, PreferNoSchedule or NoExecute";
		else if (goman_k8s_key_why(s, strlen(s)))
			why = "key must be [prefix/]name as a label key";
		else if (eq && !goman_k8s_label_value_ok(eq + 1, strlen(eq + 1)))
			why = "value must be empty or a label value (1-63 of A-Z a-z 0-9 - _ .)";
		if (!why) {
			t->key = strdup(s);
			t->value = strdup(eq ? eq + 1 : "");
			t->effect = strdup(eff);
			if (!t->key || !t->value || !t->effect) {
				free(s);
				return gm_err_oom(c->err);
			}
		}
		if (eq)
			*eq = '=';
		*colon = ':';
	}
	if (why)
		fail(c, n->line, NULL, "'%s' %s", shown(s, b, sizeof(b)), why);
	free(s);
	return why ? -1 : 0;
}

static bool ami_ok(const char *s)
{
	if (!strncmp(s, "ami-", 4))
		return all_hex(s + 4, 1, 32);
	if (strncmp(s, "ssm:/", 5) || strlen(s) > 2048)
		return false;
	for (const char *p = s + 4; *p; p++)
		if (!is_alnum(*p) && !strchr("/_.-", *p))
			return false;
	return true;
}

static int parse_group(struct ctx *c, const struct cnode *m, struct goman_cf_group *g)
{
	static const char keys[] = "name role count type ami spot labels taints tags volume_gb";
	if (want_map(c, m, keys) || known_keys(c, m, keys))
		return -1;
	g->line = m->line;
	static const char *const req[] = {"name", "role", "count"};
	for (size_t i = 0; i < 3; i++)
		if (!get(m, req[i]))
			return fail(c, m->line, NULL, "missing key '%s'", req[i]);
	if (str_rule(c, m, "name", name_ok, "must match ^[a-z][a-z0-9-]{0,39}$", &g->name))
		return -1;
	const struct cnode *n = get(m, "role");
	int role = 0;
	size_t l = push_key(c, "role");
	int r = as_enum(c, n, "server agent", &role);
	pop(c, l);
	if (r)
		return -1;
	g->server = role == 0;
	l = push_key(c, "count");
	r = as_int(c, get(m, "count"), 0, GOMAN_CF_MAX_COUNT, &g->count);
	pop(c, l);
	if (r)
		return -1;
	if ((n = get(m, "type"))) {
		l = push_key(c, "type");
		r = str_list(c, n, true, GOMAN_CF_MAX_TYPES, type_ok,
			     "is not an instance type like t3.medium", &g->types, &g->ntypes);
		pop(c, l);
		if (r)
			return -1;
	} else {
		if (!(g->types = calloc(1, sizeof(char *))) ||
		    !(g->types[0] = strdup(DEFAULT_TYPE)))
			return gm_err_oom(c->err);
		g->ntypes = 1;
	}
	if (str_rule(c, m, "ami", ami_ok, "is not an AMI ID (ami-...) or ssm:/parameter", &g->ami))
		return -1;
	if ((n = get(m, "spot"))) {
		l = push_key(c, "spot");
		r = as_bool(c, n, &g->spot);
		pop(c, l);
		if (r)
			return -1;
	}
	if ((n = get(m, "labels"))) {
		l = push_key(c, "labels");
		r = str_map(c, n, GOMAN_CF_MAX_LABELS, label_check, &g->labels, &g->nlabels);
		pop(c, l);
		if (r)
			return -1;
	}
	if ((n = get(m, "taints"))) {
		l = push_key(c, "taints");
		if (n->kind != N_SEQ)
			r = fail(c, n->line, NULL, "must be a list, not %s", kind_name(n));
		else if (n->n > GOMAN_CF_MAX_TAINTS)
			r = fail(c, n->line, NULL, "at most %d entries, not %zu",
				 GOMAN_CF_MAX_TAINTS, n->n);
		else if (n->n && !(g->taints = calloc(n->n, sizeof(*g->taints))))
			r = gm_err_oom(c->err);
		for (size_t i = 0; r == 0 && i < n->n; i++) {
			size_t l2 = push_index(c, i);
			g->ntaints = i + 1;
			r = parse_taint(c, n->kids[i], &g->taints[i]);
			for (size_t j = 0; r == 0 && j < i; j++)
				if (!strcmp(g->taints[j].key, g->taints[i].key) &&
				    !strcmp(g->taints[j].effect, g->taints[i].effect))
					r = fail(
						c, n->kids[i]->line, NULL,
						"a taint with this key and effect is listed twice");
			pop(c, l2);
		}
		pop(c, l);
		if (r)
			return -1;
	}
	if ((n = get(m, "tags"))) {
		l = push_key(c, "tags");
		r = str_map(c, n, GOMAN_CF_MAX_TAGS, tag_check, &g->tags, &g->ntags);
		pop(c, l);
		if (r)
			return -1;
	}
	if ((n = get(m, "volume_gb"))) {
		long v;
		l = push_key(c, "volume_gb");
		r = as_int(c, n, GOMAN_CF_VOLUME_MIN, GOMAN_CF_VOLUME_MAX, &v);
		pop(c, l);
		if (r)
			return -1;
		g->volume_gb = (int)v;
	}
	return 0;
}

static int parse_groups(struct ctx *c, const struct cnode *n, struct goman_cluster_file *cf)
{
	if (n->kind != N_SEQ)
		return fail(c, n->line, NULL, "must be a list of groups, not %s", kind_name(n));
	if (n->n < 1 || n->n > c->max_groups)
		return fail(c, n->line, NULL, "must hold 1 to %zu groups, not %zu", c->max_groups,
			    n->n);
	if (!(cf->groups = calloc(n->n, sizeof(*cf->groups))))
		return gm_err_oom(c->err);
	long servers = 0, agents = 0;
	for (size_t i = 0; i < n->n; i++) {
		size_t l = push_index(c, i);
		struct goman_cf_group *g = &cf->groups[i];
		cf->ngroups = i + 1;
		int r = parse_group(c, n->kids[i], g);
		for (size_t j = 0; r == 0 && j < i; j++)
			if (!strcmp(cf->groups[j].name, g->name)) {
				size_t l2 = push_key(c, "name");
				r = fail(c, get(n->kids[i], "name")->line, NULL,
					 "'%s' is the name of groups[%zu] too", g->name, j);
				pop(c, l2);
			}
		pop(c, l);
		if (r)
			return -1;
		*(g->server ? &servers : &agents) += g->count;
	}
	if (servers < 1)
		return fail(c, n->line, NULL, "the groups must have at least one server in total");
	/* goman-provision numbers nodes per role up to 99999 */
	if (servers > 99999 || agents > 99999)
		return fail(c, n->line, NULL, "more than 99999 nodes of one role");
	return 0;
}

static int parse_root(struct ctx *c, const struct cnode *root, struct goman_cluster_file *cf)
{
	if (root->kind != N_MAP)
		return fail(c, root->line, NULL,
			    "the file must be a mapping (name, groups, ...), not %s",
			    kind_name(root));
	if (known_keys(c, root, "name region k3s install network groups"))
		return -1;
	if (!get(root, "name"))
		return fail(c, root->line, NULL, "missing key 'name'");
	if (!get(root, "groups"))
		return fail(c, root->line, NULL, "missing key 'groups'");
	if (str_rule(c, root, "name", name_ok, "must match ^[a-z][a-z0-9-]{0,39}$", &cf->name) ||
	    str_rule(c, root, "region", goman_region_ok, "is not a region name like us-east-1",
		     &cf->region))
		return -1;
	static const char *const subs[] = {"k3s", "install", "network"};
	static int (*const fns[])(struct ctx *, const struct cnode *,
				  struct goman_cluster_file *) = {parse_k3s, parse_install,
								  parse_network};
	for (size_t i = 0; i < 3; i++) {
		const struct cnode *n = get(root, subs[i]);
		if (!n)
			continue;
		size_t l = push_key(c, subs[i]);
		int r = fns[i](c, n, cf);
		pop(c, l);
		if (r)
			return -1;
	}
	size_t l = push_key(c, "groups");
	int r = parse_groups(c, get(root, "groups"), cf);
	pop(c, l);
	return r;
}

static bool ends_with(const char *s, const char *suf)
{
	size_t n = strlen(s), l = strlen(suf);
	return n >= l && !strcasecmp(s + n - l, suf);
}

int goman_cluster_file_parse(const char *buf, size_t len, const char *source,
			     const struct goman_cf_opts *o, struct goman_cluster_file **out,
			     struct goman_err *err)
{
	struct goman_cf_opts dflt = {0};
	if (!o)
		o = &dflt;
	size_t max = o->max_bytes ? o->max_bytes : GOMAN_CF_MAX_BYTES;
	const char *src = !source || !strcmp(source, "-") ? "<stdin>" : source;
	*out = NULL;
	if (len > max)
		return fail_src(err, src, 0, "larger than %zu bytes (GOMAN_CLUSTER_FILE_MAX_BYTES)",
				max);
	enum goman_cf_format f = o->format;
	if (f == GOMAN_CF_AUTO) {
		if (ends_with(src, ".json"))
			f = GOMAN_CF_JSON;
		else if (ends_with(src, ".yaml") || ends_with(src, ".yml"))
			f = GOMAN_CF_YAML;
		else {
			size_t i = 0;
			while (i < len && (buf[i] == ' ' || buf[i] == '\t' || buf[i] == '\n' ||
					   buf[i] == '\r'))
				i++;
			f = i < len && buf[i] == '{' ? GOMAN_CF_JSON : GOMAN_CF_YAML;
		}
	}
	struct cnode *root =
		f == GOMAN_CF_JSON ? json_tree(buf, len, src, err) : yaml_tree(buf, len, src, err);
	if (!root)
		return -1;
	struct goman_cluster_file *cf = calloc(1, sizeof(*cf));
	struct ctx c = {.src = src,
			.err = err,
			.max_groups = o->max_groups ? o->max_groups : GOMAN_CF_MAX_GROUPS};
	int r = -1;
	if (!cf || !(cf->source = strdup(src)))
		gm_err_oom(err);
	else
		r = parse_root(&c, root, cf);
	cnode_free(root);
	if (r != 0) {
		goman_cluster_file_free(cf);
		return -1;
	}
	*out = cf;
	return 0;
}

int goman_cluster_file_read(const char *path, const struct goman_cf_opts *o,
			    struct goman_cluster_file **out, struct goman_err *err)
{
	size_t max = o && o->max_bytes ? o->max_bytes : GOMAN_CF_MAX_BYTES;
	bool in = !strcmp(path, "-");
	*out = NULL;
	int fd = in ? 0 : open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return goman_err_set(err, errno == ENOENT ? GOMAN_ENOTFOUND : GOMAN_EIO,
				     GOMAN_CLASS_NONE, "", "%.300s: %s", path, strerror(errno));
	/* one byte past the cap tells "too large" from "exactly the cap" */
	size_t cap = 64 * 1024, len = 0;
	char *buf = malloc(cap);
	int r = -1;
	while (buf) {
		if (len == cap) {
			size_t nc = cap * 2 > max + 1 ? max + 1 : cap * 2;
			char *nb = nc > cap ? realloc(buf, nc) : NULL;
			if (!nb)
				break;
			buf = nb;
			cap = nc;
		}
		ssize_t k = read(fd, buf + len, cap - len);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0) {
			goman_err_set(err, GOMAN_EIO, GOMAN_CLASS_NONE, "", "%.300s: %s",
				      in ? "<stdin>" : path, strerror(errno));
			goto out;
		}
		if (k == 0) {
			r = goman_cluster_file_parse(buf, len, path, o, out, err);
			goto out;
		}
		len += (size_t)k;
		if (len > max) {
			r = fail_src(err, in ? "<stdin>" : path, 0,
				     "larger than %zu bytes (GOMAN_CLUSTER_FILE_MAX_BYTES)", max);
			goto out;
		}
	}
	if (len <= max)
		gm_err_oom(err);
out:
	free(buf);
	if (!in)
		close(fd);
	return r;
}

static void free_pairs(struct goman_cf_pair *p, size_t n)
{
	for (size_t i = 0; p && i < n; i++) {
		free(p[i].key);
		free(p[i].value);
	}
	free(p);
}

static void free_strs(char **s, size_t n)
{
	for (size_t i = 0; s && i < n; i++)
		free(s[i]);
	free(s);
}

void goman_cluster_file_free(struct goman_cluster_file *cf)
{
	if (!cf)
		return;
	for (size_t i = 0; cf->groups && i < cf->ngroups; i++) {
		struct goman_cf_group *g = &cf->groups[i];
		free(g->name);
		free_strs(g->types, g->ntypes);
		free(g->ami);
		free_pairs(g->labels, g->nlabels);
		free_pairs(g->tags, g->ntags);
		for (size_t j = 0; g->taints && j < g->ntaints; j++) {
			free(g->taints[j].key);
			free(g->taints[j].value);
			free(g->taints[j].effect);
		}
		free(g->taints);
	}
	free(cf->groups);
	free_strs(cf->subnets, cf->nsubnets);
	free(cf->source);
	free(cf->name);
	free(cf->region);
	free(cf->k3s_version);
	free(cf->k3s_channel);
	free(cf->ssh_user);
	free(cf->ssh_key);
	free(cf->ssh_cidr);
	free(cf->api_cidr);
	free(cf->api_dns);
	free(cf);
}

/* ---- output ------------------------------------------------------------------------- */

static cJSON *strs_json(char *const *s, size_t n)
{
	cJSON *a = cJSON_CreateArray();
	for (size_t i = 0; a && i < n; i++)
		if (!cJSON_AddItemToArray(a, cJSON_CreateString(s[i]))) {
			cJSON_Delete(a);
			return NULL;
		}
	return a;
}

static cJSON *pairs_json(const struct goman_cf_pair *p, size_t n)
{
	cJSON *o = cJSON_CreateObject();
	for (size_t i = 0; o && i < n; i++)
		if (!cJSON_AddStringToObject(o, p[i].key, p[i].value)) {
			cJSON_Delete(o);
			return NULL;
		}
	return o;
}

static cJSON *taints_json(const struct goman_cf_group *g)
{
	cJSON *a = cJSON_CreateArray();
	for (size_t i = 0; a && i < g->ntaints; i++) {
		const struct goman_cf_taint *t = &g->taints[i];
		size_t l = strlen(t->key) + strlen(t->value) + strlen(t->effect) + 3;
		char *s = malloc(l);
		if (s)
			snprintf(s, l, "%s%s%s:%s", t->key, *t->value ? "=" : "", t->value,
				 t->effect);
		cJSON *v = s ? cJSON_CreateString(s) : NULL;
		free(s);
		if (!cJSON_AddItemToArray(a, v)) {
			cJSON_Delete(v);
			cJSON_Delete(a);
			return NULL;
		}
	}
	return a;
}

/* the group fields both outputs share */
static bool group_fields(cJSON *o, const struct goman_cf_group *g, const char *types_key)
{
	return gm_json_add(o, types_key, strs_json(g->types, g->ntypes)) &&
	       (!g->ami || gm_json_add(o, "ami", cJSON_CreateString(g->ami))) &&
	       gm_json_add(o, "spot", cJSON_CreateBool(g->spot)) &&
	       gm_json_add(o, "labels", pairs_json(g->labels, g->nlabels)) &&
	       gm_json_add(o, "taints", taints_json(g)) &&
	       gm_json_add(o, "tags", pairs_json(g->tags, g->ntags)) &&
	       (!g->volume_gb || gm_json_add(o, "volume_gb", cJSON_CreateNumber(g->volume_gb)));
}

static const char *addr_name(enum goman_cf_addr a)
{
	return a == GOMAN_CF_ADDR_PRIVATE ? "private" : "public";
}

cJSON *goman_cluster_file_to_json(const struct goman_cluster_file *cf)
{
	const char *const *via = via_names;
	cJSON *o = cJSON_CreateObject(), *k3s = NULL, *in = NULL, *net = NULL, *gs = NULL;
	bool ok = o && gm_json_add(o, "name", cJSON_CreateString(cf->name)) &&
		  (!cf->region || gm_json_add(o, "region", cJSON_CreateString(cf->region)));
	if (ok && (cf->k3s_version || cf->k3s_channel))
		ok = gm_json_add(o, "k3s", k3s = cJSON_CreateObject()) &&
		     (cf->k3s_version
			      ? gm_json_add(k3s, "version", cJSON_CreateString(cf->k3s_version))
			      : gm_json_add(k3s, "channel", cJSON_CreateString(cf->k3s_channel)));
	ok = ok && gm_json_add(o, "install", in = cJSON_CreateObject()) &&
	     gm_json_add(in, "via", cJSON_CreateString(via[cf->via]));
	if (ok && cf->via == GOMAN_CF_VIA_SSH)
		ok = (!cf->ssh_user || gm_json_add(in, "user", cJSON_CreateString(cf->ssh_user))) &&
		     (!cf->ssh_key || gm_json_add(in, "key", cJSON_CreateString(cf->ssh_key))) &&
		     gm_json_add(in, "address", cJSON_CreateString(addr_name(cf->ssh_address)));
	ok = ok && gm_json_add(o, "network", net = cJSON_CreateObject()) &&
	     (!cf->nsubnets || gm_json_add(net, "subnets", strs_json(cf->subnets, cf->nsubnets))) &&
	     (!cf->ssh_cidr || gm_json_add(net, "ssh_cidr", cJSON_CreateString(cf->ssh_cidr))) &&
	     (!cf->api_cidr || gm_json_add(net, "api_cidr", cJSON_CreateString(cf->api_cidr))) &&
	     gm_json_add(net, "api_endpoint",
			 cJSON_CreateString(cf->api_endpoint == GOMAN_CF_ADDR_DNS
						    ? cf->api_dns
						    : addr_name(cf->api_endpoint)));
	ok = ok && gm_json_add(o, "groups", gs = cJSON_CreateArray());
	for (size_t i = 0; ok && i < cf->ngroups; i++) {
		const struct goman_cf_group *g = &cf->groups[i];
		cJSON *j = cJSON_CreateObject();
		ok = cJSON_AddItemToArray(gs, j) &&
		     gm_json_add(j, "name", cJSON_CreateString(g->name)) &&
		     gm_json_add(j, "role", cJSON_CreateString(g->server ? "server" : "agent")) &&
		     gm_json_add(j, "count", cJSON_CreateNumber((double)g->count)) &&
		     group_fields(j, g, "type");
	}
	if (!ok) {
		cJSON_Delete(o);
		return NULL;
	}
	return o;
}

/* The specs name the file's subnets as a list, so goman-provision places each role over
 * them by AZ (servers apart, agents round-robin, counting nodes that already run) rather
 * than by a fixed index; and the transport, which goman-provision tags for drain. */
int goman_cluster_file_node_specs(const struct goman_cluster_file *cf, cJSON *arr)
{
	for (int pass = 0; pass < 2; pass++) {
		long index = 0;
		for (size_t i = 0; i < cf->ngroups; i++) {
			const struct goman_cf_group *g = &cf->groups[i];
			if (g->server != (pass == 0))
				continue;
			for (long k = 0; k < g->count; k++, index++) {
				const char *role = g->server ? "server" : "agent";
				char name[160];
				snprintf(name, sizeof(name), "%s-%s-%ld", cf->name, role, index);
				cJSON *o = cJSON_CreateObject();
				bool ok = o && cJSON_AddItemToArray(arr, o) &&
					  gm_json_add(o, "cluster", cJSON_CreateString(cf->name)) &&
					  gm_json_add(o, "role", cJSON_CreateString(role)) &&
					  gm_json_add(o, "index",
						      cJSON_CreateNumber((double)index)) &&
					  gm_json_add(o, "name", cJSON_CreateString(name)) &&
					  gm_json_add(o, "group", cJSON_CreateString(g->name)) &&
					  gm_json_add(o, "instance_type",
						      cJSON_CreateString(g->types[0])) &&
					  (!cf->nsubnets ||
					   gm_json_add(o, "subnets",
						       strs_json(cf->subnets, cf->nsubnets))) &&
					  gm_json_add(o, "via",
						      cJSON_CreateString(via_names[cf->via])) &&
					  (!cf->region ||
					   gm_json_add(o, "region",
						       cJSON_CreateString(cf->region))) &&
					  group_fields(o, g, "types");
				if (!ok)
					return -1;
			}
		}
	}
	return 0;
}
