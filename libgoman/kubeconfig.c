/*
 * kubeconfig.c - merging a cluster's kubeconfig into the user's (see goman/kubeconfig.h).
 *
 * Documents go through libyaml's document API: the user's file is copied node by node into
 * a new document, with goman's three entries put in place of old ones of the same name (or
 * appended), so keys, order and scalar styles that goman does not own come out as they went
 * in (comments are lost, as they are when kubectl writes the file). A first pass over the
 * parser's events refuses anchors, aliases and deep nesting before the loader sees them.
 *
 * Ownership: documents live only inside one call. Errors: -1 with err filled.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <yaml.h>
#include "goman/kubeconfig.h"
#include "buf_int.h"
#include "fdio_int.h"
#include "bytes_int.h"

#define MAX_DEPTH 64
#define ENTRY_PREFIX "goman-"

static int bad(struct goman_err *err, const char *what, const char *why)
{
	return goman_err_set(err, GOMAN_EINVAL, GOMAN_CLASS_BAD_INPUT, "BadInput", "%s: %s", what,
			     why);
}

/* ---- reading ------------------------------------------------------------------------- */

/* Refuses what the loader would expand or recurse on: anchors, aliases, deep nesting. */
static int check_events(const char *what, const char *s, size_t len, struct goman_err *err)
{
	yaml_parser_t p;
	if (!yaml_parser_initialize(&p))
		return gm_err_oom(err);
	yaml_parser_set_input_string(&p, (const unsigned char *)s, len);
	int depth = 0, rc = 0, docs = 0;
	for (;;) {
		yaml_event_t ev;
		if (!yaml_parser_parse(&p, &ev)) {
			char why[160];
			snprintf(why, sizeof(why), "not YAML (line %lu: %s)",
				 (unsigned long)p.problem_mark.line + 1,
				 p.problem ? p.problem : "parse error");
			rc = bad(err, what, why);
			break;
		}
		const yaml_char_t *anchor = NULL;
		switch (ev.type) {
		case YAML_ALIAS_EVENT: anchor = (const yaml_char_t *)"*"; break;
		case YAML_SCALAR_EVENT: anchor = ev.data.scalar.anchor; break;
		case YAML_SEQUENCE_START_EVENT: anchor = ev.data.sequence_start.anchor; break;
		case YAML_MAPPING_START_EVENT: anchor = ev.data.mapping_start.anchor; break;
		case YAML_DOCUMENT_START_EVENT: docs++; break;
		default: break;
		}
		if (ev.type == YAML_SEQUENCE_START_EVENT || ev.type == YAML_MAPPING_START_EVENT)
			depth++;
		if (ev.type == YAML_SEQUENCE_END_EVENT || ev.type == YAML_MAPPING_END_EVENT)
			depth--;
		int end = ev.type == YAML_STREAM_END_EVENT;
		yaml_event_delete(&ev);
		if (anchor) {
			rc = bad(err, what, "anchors and aliases are not accepted in a kubeconfig");
			break;
		}
		if (depth > MAX_DEPTH) {
			rc = bad(err, what, "nested too deeply");
			break;
		}
		if (docs > 1) {
			rc = bad(err, what, "more than one YAML document");
			break;
		}
		if (end)
			break;
	}
	yaml_parser_delete(&p);
	return rc;
}

/* Loads s into doc (always initialised on return 0, so the caller deletes it). */
static int load(const char *what, const char *s, size_t len, yaml_document_t *doc,
		struct goman_err *err)
{
	if (len > GOMAN_KUBECONFIG_MAX)
		return bad(err, what, "larger than the kubeconfig size limit (16 MiB)");
	if (check_events(what, s, len, err) != 0)
		return -1;
	yaml_parser_t p;
	if (!yaml_parser_initialize(&p))
		return gm_err_oom(err);
	yaml_parser_set_input_string(&p, (const unsigned char *)s, len);
	int ok = yaml_parser_load(&p, doc);
	yaml_parser_delete(&p);
	return ok ? 0 : bad(err, what, "not YAML");
}

static yaml_node_t *node(yaml_document_t *d, int i)
{
	return i ? yaml_document_get_node(d, i) : NULL;
}

static int scalar_is(yaml_node_t *n, const char *s)
{
	return n && n->type == YAML_SCALAR_NODE && n->data.scalar.length == strlen(s) &&
	       memcmp(n->data.scalar.value, s, n->data.scalar.length) == 0;
}

/* index of the value under key in mapping m, or 0 */
static int map_get(yaml_document_t *d, yaml_node_t *m, const char *key)
{
	if (!m || m->type != YAML_MAPPING_NODE)
		return 0;
	for (yaml_node_pair_t *p = m->data.mapping.pairs.start; p < m->data.mapping.pairs.top; p++)
		if (scalar_is(node(d, p->key), key))
			return p->value;
	return 0;
}

/* The kinds of entry goman owns one of each: clusters[].cluster, users[].user,
 * contexts[].context. */
static const char *const lists[] = {"clusters", "contexts", "users"}; /* kubectl's order */
static const char *const bodies[] = {"cluster", "context", "user"};
enum { L_CLUSTERS, L_CONTEXTS, L_USERS, L_N };

/* A kubeconfig: a mapping (or nothing) whose lists hold mappings. */
static int check_shape(const char *what, yaml_document_t *d, struct goman_err *err)
{
	yaml_node_t *root = yaml_document_get_root_node(d);
	if (!root || (root->type == YAML_SCALAR_NODE && root->data.scalar.length == 0))
		return 0;
	if (root->type != YAML_MAPPING_NODE)
		return bad(err, what, "not a kubeconfig (the document is not a mapping)");
	for (int l = 0; l < L_N; l++) {
		yaml_node_t *seq = node(d, map_get(d, root, lists[l]));
		if (!seq || (seq->type == YAML_SCALAR_NODE && seq->data.scalar.length == 0))
			continue; /* kubectl writes "users: null" for none */
		if (seq->type != YAML_SEQUENCE_NODE)
			return bad(err, what,
				   "not a kubeconfig (clusters, users and contexts are lists)");
		for (yaml_node_item_t *it = seq->data.sequence.items.start;
		     it < seq->data.sequence.items.top; it++)
			if (node(d, *it)->type != YAML_MAPPING_NODE)
				return bad(err, what,
					   "not a kubeconfig (a list entry is not a mapping)");
	}
	return 0;
}

/* ---- writing ------------------------------------------------------------------------- */

struct out {
	yaml_document_t *doc;
	int failed;
};

static int add_str(struct out *o, const char *s)
{
	int i = yaml_document_add_scalar(o->doc, NULL, (yaml_char_t *)s, (int)strlen(s),
					 YAML_ANY_SCALAR_STYLE);
	if (!i)
		o->failed = 1;
	return i;
}

static void add_pair(struct out *o, int map, int key, int value)
{
	if (!map || !key || !value || !yaml_document_append_mapping_pair(o->doc, map, key, value))
		o->failed = 1;
}

static int copy_node(struct out *o, yaml_document_t *src, int idx, int depth);

static int copy_scalar(struct out *o, yaml_node_t *n)
{
	int i = yaml_document_add_scalar(o->doc, n->tag, n->data.scalar.value,
					 (int)n->data.scalar.length, n->data.scalar.style);
	if (!i)
		o->failed = 1;
	return i;
}

/* Copies the mapping at idx, with the value under replace_key (if given) swapped for
 * replace_value (an index in the out document). */
static int copy_map_replacing(struct out *o, yaml_document_t *src, int idx, const char *replace_key,
			      int replace_value, int depth)
{
	yaml_node_t *n = node(src, idx);
	int m = yaml_document_add_mapping(o->doc, n->tag, n->data.mapping.style);
	if (!m) {
		o->failed = 1;
		return 0;
	}
	int seen = 0;
	for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top;
	     p++) {
		int k = copy_node(o, src, p->key, depth + 1);
		if (replace_key && scalar_is(node(src, p->key), replace_key)) {
			add_pair(o, m, k, replace_value);
			seen = 1;
		} else {
			add_pair(o, m, k, copy_node(o, src, p->value, depth + 1));
		}
	}
	if (replace_key && !seen)
		add_pair(o, m, add_str(o, replace_key), replace_value);
	return m;
}

static int copy_node(struct out *o, yaml_document_t *src, int idx, int depth)
{
	yaml_node_t *n = node(src, idx);
	if (!n || depth > MAX_DEPTH || o->failed) {
		o->failed = 1;
		return 0;
	}
	switch (n->type) {
	case YAML_SCALAR_NODE: return copy_scalar(o, n);
	case YAML_MAPPING_NODE: return copy_map_replacing(o, src, idx, NULL, 0, depth);
	case YAML_SEQUENCE_NODE: {
		int s = yaml_document_add_sequence(o->doc, n->tag, n->data.sequence.style);
		if (!s) {
			o->failed = 1;
			return 0;
		}
		for (yaml_node_item_t *it = n->data.sequence.items.start;
		     it < n->data.sequence.items.top; it++) {
			int c = copy_node(o, src, *it, depth + 1);
			if (!c || !yaml_document_append_sequence_item(o->doc, s, c))
				o->failed = 1;
		}
		return s;
	}
	default: o->failed = 1; return 0;
	}
}

/* The three entries goman writes, as out-document indexes. */
struct entries {
	int entry[L_N];
	const char *name;
};

static int make_entries(struct out *o, yaml_document_t *in, const struct goman_kubeconfig_opts *opt,
			const char *name, struct entries *e, struct goman_err *err)
{
	yaml_node_t *root = yaml_document_get_root_node(in);
	int body[L_N] = {0};
	for (int l = L_CLUSTERS; l <= L_USERS; l += L_USERS - L_CLUSTERS) {
		yaml_node_t *seq = root ? node(in, map_get(in, root, lists[l])) : NULL;
		yaml_node_t *first = seq && seq->type == YAML_SEQUENCE_NODE &&
						     seq->data.sequence.items.start <
							     seq->data.sequence.items.top
					     ? node(in, *seq->data.sequence.items.start)
					     : NULL;
		body[l] = first ? map_get(in, first, bodies[l]) : 0;
		if (!body[l] || node(in, body[l])->type != YAML_MAPPING_NODE) {
			char why[96];
			snprintf(why, sizeof(why), "no %s in the cluster's kubeconfig", bodies[l]);
			return bad(err, "incoming kubeconfig", why);
		}
	}
	e->name = name;
	/* - cluster: {...}  name: goman-X */
	int c = yaml_document_add_mapping(o->doc, NULL, YAML_BLOCK_MAPPING_STYLE);
	int server = opt->server ? add_str(o, opt->server) : 0;
	int cbody = server ? copy_map_replacing(o, in, body[L_CLUSTERS], "server", server, 1)
			   : copy_node(o, in, body[L_CLUSTERS], 1);
	add_pair(o, c, add_str(o, "cluster"), cbody);
	add_pair(o, c, add_str(o, "name"), add_str(o, name));
	/* - name: goman-X  user: {...} */
	int u = yaml_document_add_mapping(o->doc, NULL, YAML_BLOCK_MAPPING_STYLE);
	add_pair(o, u, add_str(o, "name"), add_str(o, name));
	add_pair(o, u, add_str(o, "user"), copy_node(o, in, body[L_USERS], 1));
	/* - context: {cluster: goman-X, user: goman-X}  name: goman-X */
	int x = yaml_document_add_mapping(o->doc, NULL, YAML_BLOCK_MAPPING_STYLE);
	int xb = yaml_document_add_mapping(o->doc, NULL, YAML_BLOCK_MAPPING_STYLE);
	add_pair(o, xb, add_str(o, "cluster"), add_str(o, name));
	add_pair(o, xb, add_str(o, "user"), add_str(o, name));
	add_pair(o, x, add_str(o, "context"), xb);
	add_pair(o, x, add_str(o, "name"), add_str(o, name));
	e->entry[L_CLUSTERS] = c;
	e->entry[L_USERS] = u;
	e->entry[L_CONTEXTS] = x;
	return o->failed ? gm_err_oom(err) : 0;
}

/* The list l of the user's file with goman's entry in place of one of the same name, or
 * appended. */
static int merged_list(struct out *o, yaml_document_t *ex, int seq_idx, const struct entries *e,
		       int l, bool *replaced)
{
	int s = yaml_document_add_sequence(o->doc, NULL, YAML_BLOCK_SEQUENCE_STYLE);
	if (!s) {
		o->failed = 1;
		return 0;
	}
	int placed = 0;
	yaml_node_t *seq = node(ex, seq_idx);
	if (seq && seq->type == YAML_SEQUENCE_NODE)
		for (yaml_node_item_t *it = seq->data.sequence.items.start;
		     it < seq->data.sequence.items.top; it++) {
			int c;
			if (scalar_is(node(ex, map_get(ex, node(ex, *it), "name")), e->name)) {
				if (placed)
					continue; /* a duplicate of goman's name goes */
				c = e->entry[l];
				placed = 1;
				*replaced = true;
			} else {
				c = copy_node(o, ex, *it, 1);
			}
			if (!yaml_document_append_sequence_item(o->doc, s, c))
				o->failed = 1;
		}
	if (!placed && !yaml_document_append_sequence_item(o->doc, s, e->entry[l]))
		o->failed = 1;
	return s;
}

static int is_list_key(yaml_node_t *k)
{
	for (int l = 0; l < L_N; l++)
		if (scalar_is(k, lists[l]))
			return l;
	return -1;
}

static int current_context(struct out *o, yaml_document_t *ex, yaml_node_t *root,
			   const struct goman_kubeconfig_opts *opt, const char *name)
{
	yaml_node_t *cur = root ? node(ex, map_get(ex, root, "current-context")) : NULL;
	int has = cur && cur->type == YAML_SCALAR_NODE && cur->data.scalar.length > 0;
	if (opt->use || !has)
		return add_str(o, name);
	return copy_node(o, ex, map_get(ex, root, "current-context"), 1);
}

static int build(struct out *o, yaml_document_t *ex, yaml_document_t *in,
		 const struct goman_kubeconfig_opts *opt, bool *replaced, struct goman_err *err)
{
	char name[128];
	snprintf(name, sizeof(name), ENTRY_PREFIX "%s", opt->cluster);
	/* the emitter writes the first node added as the document's root */
	int m = yaml_document_add_mapping(o->doc, NULL, YAML_BLOCK_MAPPING_STYLE);
	struct entries e;
	if (!m)
		return gm_err_oom(err);
	if (make_entries(o, in, opt, name, &e, err) != 0)
		return -1;
	yaml_node_t *root = yaml_document_get_root_node(ex);
	if (root && root->type != YAML_MAPPING_NODE)
		root = NULL; /* an empty document */
	int done[L_N] = {0}, cur_done = 0;
	if (root)
		for (yaml_node_pair_t *p = root->data.mapping.pairs.start;
		     p < root->data.mapping.pairs.top; p++) {
			yaml_node_t *k = node(ex, p->key);
			int l = is_list_key(k), v;
			if (l >= 0 && !done[l]) {
				v = merged_list(o, ex, p->value, &e, l, replaced);
				done[l] = 1;
			} else if (l >= 0) {
				continue; /* a repeated key: the first one was merged */
			} else if (scalar_is(k, "current-context")) {
				v = current_context(o, ex, root, opt, name);
				cur_done = 1;
			} else {
				v = copy_node(o, ex, p->value, 1);
			}
			add_pair(o, m, copy_node(o, ex, p->key, 1), v);
		}
	/* what a new kubeconfig needs, in kubectl's order */
	if (!root)
		add_pair(o, m, add_str(o, "apiVersion"), add_str(o, "v1"));
	for (int l = 0; l < L_N; l++)
		if (!done[l])
			add_pair(o, m, add_str(o, lists[l]),
				 merged_list(o, ex, 0, &e, l, replaced));
	if (!cur_done)
		add_pair(o, m, add_str(o, "current-context"),
			 current_context(o, ex, root, opt, name));
	if (!root)
		add_pair(o, m, add_str(o, "kind"), add_str(o, "Config"));
	return o->failed ? gm_err_oom(err) : 0;
}

static int sink_write(void *data, unsigned char *buf, size_t size)
{
	struct gm_buf *b = data;
	gm_buf_add(b, (const char *)buf, size);
	return !b->oom;
}

/* Emits doc (which the emitter consumes). */
static int emit(yaml_document_t *doc, char **out, size_t *out_len, struct goman_err *err)
{
	yaml_emitter_t em;
	struct gm_buf s = {0};
	if (!yaml_emitter_initialize(&em)) {
		yaml_document_delete(doc);
		return gm_err_oom(err);
	}
	yaml_emitter_set_output(&em, sink_write, &s);
	yaml_emitter_set_width(&em, -1); /* certificate data stays on one line */
	yaml_emitter_set_unicode(&em, 1);
	int ok = yaml_emitter_open(&em) && yaml_emitter_dump(&em, doc) && yaml_emitter_close(&em);
	yaml_emitter_delete(&em);
	size_t len = s.len;
	char *text = gm_buf_take(&s);
	if (!ok || !text || !len) {
		free(text);
		return goman_err_set(err, GOMAN_EINVAL, GOMAN_CLASS_NONE, "EmitFailed",
				     "cannot write the merged kubeconfig");
	}
	*out = text;
	*out_len = len;
	return 0;
}

static int name_ok(const char *c)
{
	/* goman's cluster-name rule; the entry name goes into YAML and file names */
	size_t n = c ? strlen(c) : 0;
	if (n < 1 || n > 40 || c[0] < 'a' || c[0] > 'z')
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!((c[i] >= 'a' && c[i] <= 'z') || (c[i] >= '0' && c[i] <= '9') || c[i] == '-'))
			return 0;
	return 1;
}

int goman_kubeconfig_merge(const char *existing, size_t existing_len, const char *incoming,
			   size_t incoming_len, const struct goman_kubeconfig_opts *o, char **out,
			   size_t *out_len, bool *replaced, struct goman_err *err)
{
	*out = NULL;
	*out_len = 0;
	*replaced = false;
	if (!o || !name_ok(o->cluster))
		return bad(err, "kubeconfig", "the cluster name is not a goman cluster name");
	yaml_document_t ex, in, res;
	if (load("kubeconfig", existing ? existing : "", existing ? existing_len : 0, &ex, err))
		return -1;
	if (load("incoming kubeconfig", incoming, incoming_len, &in, err)) {
		yaml_document_delete(&ex);
		return -1;
	}
	int rc = -1;
	if (check_shape("kubeconfig", &ex, err) == 0 &&
	    check_shape("incoming kubeconfig", &in, err) == 0) {
		if (!yaml_document_initialize(&res, NULL, NULL, NULL, 1, 1)) {
			rc = gm_err_oom(err);
		} else {
			struct out od = {&res, 0};
			if (build(&od, &ex, &in, o, replaced, err) == 0)
				rc = emit(&res, out, out_len, err);
			else
				yaml_document_delete(&res);
		}
	}
	yaml_document_delete(&ex);
	yaml_document_delete(&in);
	return rc;
}

long goman_kubeconfig_foreign(const char *doc, size_t len, const char *keep, char *first,
			      size_t first_size, struct goman_err *err)
{
	yaml_document_t d;
	if (first && first_size)
		first[0] = '\0';
	if (load("kubeconfig", doc, len, &d, err))
		return -1;
	long n = 0;
	if (check_shape("kubeconfig", &d, err) != 0) {
		n = -1;
	} else {
		yaml_node_t *root = yaml_document_get_root_node(&d);
		for (int l = 0; root && root->type == YAML_MAPPING_NODE && l < L_N; l++) {
			yaml_node_t *seq = node(&d, map_get(&d, root, lists[l]));
			if (!seq || seq->type != YAML_SEQUENCE_NODE)
				continue;
			for (yaml_node_item_t *it = seq->data.sequence.items.start;
			     it < seq->data.sequence.items.top; it++) {
				yaml_node_t *nm = node(&d, map_get(&d, node(&d, *it), "name"));
				if (keep && scalar_is(nm, keep))
					continue;
				if (n++ == 0 && first && first_size && nm &&
				    nm->type == YAML_SCALAR_NODE)
					snprintf(first, first_size, "%.*s",
						 (int)nm->data.scalar.length,
						 (const char *)nm->data.scalar.value);
			}
		}
	}
	yaml_document_delete(&d);
	return n;
}

/* ---- files --------------------------------------------------------------------------- */

char *goman_kubeconfig_default_path(void)
{
	const char *k = getenv("KUBECONFIG");
	if (k && *k) {
		size_t n = strcspn(k, ":");
		if (n > 0)
			return strndup(k, n);
	}
	const char *home = getenv("HOME");
	if (!home || !*home)
		return NULL;
	size_t n = strlen(home) + sizeof("/.kube/config");
	char *p = malloc(n);
	if (p)
		snprintf(p, n, "%s/.kube/config", home);
	return p;
}

static int io_err(struct goman_err *err, const char *what, const char *path)
{
	return goman_err_set(err, GOMAN_EIO, GOMAN_CLASS_NONE, "IOError", "%s %s: %s", what, path,
			     strerror(errno));
}

/* mkdir -p for the file's directory, new directories 0700 */
static int make_parent(char *path)
{
	char *slash = strrchr(path, '/');
	if (!slash || slash == path)
		return 0;
	*slash = '\0';
	struct stat st;
	int rc = 0;
	if (stat(path, &st) != 0) {
		rc = make_parent(path);
		if (rc == 0 && mkdir(path, 0700) != 0 && errno != EEXIST)
			rc = -1;
	}
	*slash = '/';
	return rc;
}

/* Reads a regular file whole (up to the size limit); *len 0 and NULL data when it does
 * not exist. */
static int read_file(const char *path, char **data, size_t *len, struct goman_err *err)
{
	*data = NULL;
	*len = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? 0 : io_err(err, "cannot read", path);
	struct stat st;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		errno = EINVAL;
		return io_err(err, "not a regular file:", path);
	}
	if ((unsigned long long)st.st_size > GOMAN_KUBECONFIG_MAX) {
		close(fd);
		return bad(err, path, "larger than the kubeconfig size limit (16 MiB)");
	}
	char *p = malloc((size_t)st.st_size + 1);
	size_t got = 0;
	while (p && got < (size_t)st.st_size) {
		ssize_t r = read(fd, p + got, (size_t)st.st_size - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	close(fd);
	if (!p)
		return gm_err_oom(err);
	p[got] = '\0';
	*data = p;
	*len = got;
	return 0;
}

/* The file path names: path itself, or the file a symbolic link at path points to. */
static char *target_of(const char *path, struct goman_err *err)
{
	struct stat st;
	if (lstat(path, &st) == 0 && S_ISLNK(st.st_mode)) {
		char *t = realpath(path, NULL);
		if (!t)
			io_err(err, "cannot follow the link", path);
		return t;
	}
	char *t = strdup(path);
	if (!t)
		gm_err_oom(err);
	return t;
}

static int backup(const char *path, const char *data, size_t len, char **backup_path,
		  struct goman_err *err)
{
	char stamp[32];
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	struct tm tm;
	gmtime_r(&ts.tv_sec, &tm);
	strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%S", &tm);
	size_t n = strlen(path) + 64;
	char *b = malloc(n);
	if (!b)
		return gm_err_oom(err);
	int fd = -1;
	for (int i = 0; i < 100 && fd < 0; i++) {
		if (i == 0)
			snprintf(b, n, "%s.goman-%s.%03ldZ.bak", path, stamp, ts.tv_nsec / 1000000);
		else
			snprintf(b, n, "%s.goman-%s.%03ldZ-%d.bak", path, stamp,
				 ts.tv_nsec / 1000000, i);
		fd = open(b, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (fd < 0 && errno != EEXIST)
			break;
	}
	if (fd < 0 || gm_write_all(fd, data, len) != 0 || fsync(fd) != 0) {
		io_err(err, "cannot write the backup", b);
		if (fd >= 0) {
			close(fd);
			unlink(b);
		}
		free(b);
		return -1;
	}
	close(fd);
	*backup_path = b;
	return 0;
}

/* content → a temporary file beside path → renamed over it, 0600 */
static int replace(const char *path, const char *content, size_t len, struct goman_err *err)
{
	size_t n = strlen(path) + 32;
	char *tmp = malloc(n);
	if (!tmp)
		return gm_err_oom(err);
	snprintf(tmp, n, "%s.goman-tmp-XXXXXX", path);
	int fd = mkostemp(tmp, O_CLOEXEC); /* mkstemp creates 0600 */
	int rc = 0;
	if (fd < 0) {
		rc = io_err(err, "cannot create a file beside", path);
	} else if (fchmod(fd, 0600) != 0 || gm_write_all(fd, content, len) != 0 || fsync(fd) != 0) {
		rc = io_err(err, "cannot write", tmp);
	}
	if (fd >= 0 && close(fd) != 0 && rc == 0)
		rc = io_err(err, "cannot write", tmp);
	if (fd >= 0 && rc == 0 && rename(tmp, path) != 0)
		rc = io_err(err, "cannot replace", path);
	if (fd >= 0 && rc != 0)
		unlink(tmp);
	free(tmp);
	return rc;
}

void goman_kubeconfig_result_free(struct goman_kubeconfig_result *r)
{
	if (!r)
		return;
	free(r->path);
	free(r->backup_path);
	memset(r, 0, sizeof(*r));
}

/* Under the lock: read what is there, decide, back it up, replace it. */
static int update_locked(const char *target, const char *incoming, size_t incoming_len,
			 const struct goman_kubeconfig_opts *o, bool standalone,
			 struct goman_kubeconfig_result *res, struct goman_err *err)
{
	char *old = NULL, *merged = NULL;
	size_t old_len = 0, merged_len = 0;
	int rc = read_file(target, &old, &old_len, err);
	if (rc == 0 && old && standalone) {
		char name[128], first[128];
		snprintf(name, sizeof(name), ENTRY_PREFIX "%s", o->cluster);
		long n = goman_kubeconfig_foreign(old, old_len, name, first, sizeof(first), err);
		if (n < 0)
			rc = -1;
		else if (n > 0)
			rc = goman_err_set(err, GOMAN_ECONFLICT, GOMAN_CLASS_NONE,
					   "KubeconfigInUse",
					   "%s holds other entries (%s%s): not replacing it; merge "
					   "into it instead",
					   target, first, n > 1 ? ", ..." : "");
	}
	if (rc == 0)
		rc = goman_kubeconfig_merge(standalone ? NULL : old, standalone ? 0 : old_len,
					    incoming, incoming_len, o, &merged, &merged_len,
					    &res->replaced, err);
	if (rc == 0 && old)
		rc = backup(target, old, old_len, &res->backup_path, err);
	if (rc == 0)
		rc = replace(target, merged, merged_len, err);
	free(old);
	free(merged);
	return rc;
}

int goman_kubeconfig_update(const char *path, const char *incoming, size_t incoming_len,
			    const struct goman_kubeconfig_opts *o, bool standalone,
			    struct goman_kubeconfig_result *res, struct goman_err *err)
{
	memset(res, 0, sizeof(*res));
	if (!o || !name_ok(o->cluster))
		return bad(err, "kubeconfig", "the cluster name is not a goman cluster name");
	char *target = target_of(path, err);
	if (!target)
		return -1;
	int rc = -1;
	size_t n = strlen(target) + sizeof(".lock");
	char *lock = malloc(n);
	if (!lock) {
		gm_err_oom(err);
		goto out;
	}
	snprintf(lock, n, "%s.lock", target);
	if (make_parent(target) != 0) {
		io_err(err, "cannot create the directory of", target);
		goto out;
	}
	/* kubectl's own lock: the same file, so neither writes over the other */
	int lfd = open(lock, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (lfd < 0) {
		if (errno == EEXIST)
			goman_err_set(err, GOMAN_ECONFLICT, GOMAN_CLASS_NONE, "KubeconfigLocked",
				      "%s is locked by another writer (%s exists; remove it if no "
				      "kubectl or goman is writing)",
				      target, lock);
		else
			io_err(err, "cannot lock", target);
		goto out;
	}
	close(lfd);
	rc = update_locked(target, incoming, incoming_len, o, standalone, res, err);
	unlink(lock);
out:
	free(lock);
	if (rc == 0) {
		res->path = target;
		target = NULL;
	} else {
		goman_kubeconfig_result_free(res);
	}
	free(target);
	return rc;
}
