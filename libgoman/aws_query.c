/*
 * aws_query.c - the AWS query protocol (EC2, STS, IAM): form-encoded POST bodies, and the
 * streaming XML → cJSON converter (expat) that every XML reply goes through (error
 * documents are read from its output by aws_error.c).
 *
 * The converter keeps one frame per open element: its text, an object for named children
 * and an array for <item>/<member> children. When an element closes, its frame collapses
 * into one value (string, array or object, by the rules in goman/aws.h) that is attached to
 * the parent frame. Memory is bounded by the converted document, not by the chunks.
 *
 * Ownership: gm_xml_new/gm_xml_free; gm_xml_finish hands the caller the converted object.
 * gm_query_form returns a malloc'd body. Errors: -1/NULL with struct goman_err filled.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>
#include <expat.h>
#include "aws_int.h"
#include "buf_int.h"
#include "bytes_int.h"

#define XML_MAX_DEPTH 128

/* ---- query protocol ---------------------------------------------------------------- */

const char *gm_query_version(const char *service)
{
	if (!service)
		return NULL;
	if (strcmp(service, "ec2") == 0)
		return "2016-11-15";
	if (strcmp(service, "sts") == 0)
		return "2011-06-15";
	if (strcmp(service, "iam") == 0)
		return "2010-05-08";
	return NULL;
}

/* application/x-www-form-urlencoded as botocore sends it (urlencode, i.e. quote_plus):
 * A-Za-z0-9-_.~ as they are, space as '+', every other byte %XX ('+' itself %2B). Not the
 * SigV4 encoding (sigv4.c): a service that re-encodes the parsed form to check a signature
 * (moto does) rebuilds this spelling, and refuses a body that spelled a space %20. */
static void sb_add_enc(struct gm_buf *b, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		unsigned char c = *p;
		if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		    c == '-' || c == '_' || c == '.' || c == '~') {
			gm_buf_add(b, (const char *)p, 1);
		} else if (c == ' ') {
			gm_buf_add(b, "+", 1);
		} else {
			char e[3] = {'%', hex[c >> 4], hex[c & 15]};
			gm_buf_add(b, e, 3);
		}
	}
}

static void form_pair(struct gm_buf *b, const char *k, const char *v)
{
	if (b->len)
		gm_buf_add(b, "&", 1);
	sb_add_enc(b, k);
	gm_buf_add(b, "=", 1);
	sb_add_enc(b, v ? v : "");
}

char *gm_query_form(const char *action, const char *version, const struct goman_kvs *params,
		    size_t *len)
{
	struct gm_buf b = {0};
	form_pair(&b, "Action", action);
	form_pair(&b, "Version", version);
	for (size_t i = 0; params && i < params->n; i++) {
		/* the caller's Action/Version would be sent twice and confuse the service */
		if (strcmp(params->v[i].name, "Action") == 0 ||
		    strcmp(params->v[i].name, "Version") == 0)
			continue;
		form_pair(&b, params->v[i].name, params->v[i].value);
	}
	if (b.oom) {
		free(b.p);
		return NULL;
	}
	if (len)
		*len = b.len;
	return b.p;
}

int gm_query_prepare(const struct goman_aws_call *call, const char *endpoint,
		     struct gm_aws_req *out, struct goman_err *err)
{
	const char *version = call->version ? call->version : gm_query_version(call->service);
	if (!version)
		return goman_err_set(err, GOMAN_EINVAL, GOMAN_CLASS_BAD_INPUT, "BadInput",
				     "service '%s' has no query API version", call->service);
	snprintf(out->method, sizeof(out->method), "POST");
	size_t elen = strlen(endpoint);
	out->url = malloc(elen + 2);
	out->body = gm_query_form(call->action, version, call->params, &out->body_len);
	if (!out->url || !out->body)
		return gm_err_oom(err);
	snprintf(out->url, elen + 2, "%s/", endpoint);
	if (goman_kvs_add(&out->headers, "Content-Type",
			  "application/x-www-form-urlencoded; charset=utf-8") != 0)
		return gm_err_oom(err);
	out->reply = GM_REPLY_XML;
	return 0;
}

/* ---- XML → cJSON ------------------------------------------------------------------- */

/* The named children of one open element, by name: a reply may hold tens of thousands
 * of siblings, and finding each one's slot by walking the object would make the
 * conversion quadratic. Open addressing; the key is the slot item's own name. */
struct child {
	cJSON *val; /* the child's value in obj, or the array of a repeated name */
	bool rep;   /* val is the array made for a repeated name (not the child's own) */
};

struct child_index {
	struct child *t;
	size_t cap, n; /* cap: 0 or a power of two */
};

struct frame {
	char *name;
	struct gm_buf text;
	cJSON *obj;   /* named children */
	cJSON *items; /* <item>/<member> children */
	struct child_index ix;
};

struct gm_xml {
	XML_Parser p;
	struct frame stack[XML_MAX_DEPTH];
	int depth;
	cJSON *result; /* the root's value, once closed */
	char root[96];
	int failed;           /* ENOMEM, too deep, DTD entity */
	const char *fail_msg; /* NULL after failed: out of memory */
};

static void fail(struct gm_xml *x, const char *msg)
{
	if (!x->failed) {
		x->failed = 1;
		x->fail_msg = msg;
	}
	XML_StopParser(x->p, XML_FALSE);
}

static const char *local_name(const char *n)
{
	const char *c = strrchr(n, ':'); /* prefixed names: keep the local part */
	return c ? c + 1 : n;
}

static void XMLCALL on_start(void *ud, const XML_Char *name, const XML_Char **attrs)
{
	struct gm_xml *x = ud;
	(void)attrs; /* attributes are ignored by the rules */
	if (x->failed)
		return;
	if (x->depth >= XML_MAX_DEPTH)
		return fail(x, "XML nested too deeply");
	const char *ln = local_name(name);
	if (x->depth == 0)
		snprintf(x->root, sizeof(x->root), "%s", ln);
	struct frame *f = &x->stack[x->depth];
	memset(f, 0, sizeof(*f));
	f->name = strdup(ln);
	if (!f->name)
		return fail(x, NULL);
	x->depth++;
}

static void XMLCALL on_text(void *ud, const XML_Char *s, int len)
{
	struct gm_xml *x = ud;
	if (x->failed || x->depth == 0)
		return;
	struct frame *f = &x->stack[x->depth - 1];
	if (f->obj || f->items)
		return; /* text beside child elements is layout whitespace */
	gm_buf_add(&f->text, s, (size_t)len);
	if (f->text.oom)
		fail(x, NULL);
}

static bool ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);
	return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* Collapses a closed frame into its value (consumes the frame's parts). */
static cJSON *frame_value(struct frame *f)
{
	cJSON *v;
	if (f->items && !f->obj) {
		v = f->items;
	} else if (f->obj) {
		if (f->items) /* mixed: keep the list under its own name */
			cJSON_AddItemToObject(f->obj, "item", f->items);
		v = f->obj;
	} else if (ends_with(f->name, "Set") &&
		   (!f->text.p || strspn(f->text.p, " \t\r\n") == f->text.len)) {
		v = cJSON_CreateArray();
	} else {
		v = cJSON_CreateString(f->text.p ? f->text.p : "");
	}
	f->obj = f->items = NULL;
	free(f->ix.t);
	f->ix = (struct child_index){0};
	free(f->text.p);
	f->text = (struct gm_buf){0};
	return v;
}

#ifdef GOMAN_UNIT_TEST
unsigned long gm_xml_name_compares;
#define COUNT_COMPARE() (gm_xml_name_compares++)
#else
#define COUNT_COMPARE() ((void)0)
#endif

static size_t name_hash(const char *s)
{
	return (size_t)gm_fnv1a(s, strlen(s));
}

/* The slot for name: its entry, or the empty one where it goes. */
static struct child *ix_find(const struct child_index *ix, const char *name)
{
	size_t m = ix->cap - 1;
	for (size_t i = name_hash(name) & m;; i = (i + 1) & m) {
		struct child *c = &ix->t[i];
		if (!c->val)
			return c;
		COUNT_COMPARE();
		if (strcmp(c->val->string, name) == 0)
			return c;
	}
}

static int ix_grow(struct child_index *ix)
{
	size_t cap = ix->cap ? ix->cap * 2 : 16;
	struct child *old = ix->t;
	size_t oldcap = ix->cap;
	if (!(ix->t = calloc(cap, sizeof(*ix->t)))) {
		ix->t = old;
		return -1;
	}
	ix->cap = cap;
	for (size_t i = 0; i < oldcap; i++)
		if (old[i].val)
			*ix_find(ix, old[i].val->string) = old[i];
	free(old);
	return 0;
}

static int attach(struct frame *parent, const char *name, cJSON *v)
{
	if (strcmp(name, "item") == 0 || strcmp(name, "member") == 0) {
		if (!parent->items && !(parent->items = cJSON_CreateArray()))
			return -1;
		cJSON_AddItemToArray(parent->items, v);
		return 0;
	}
	if (!parent->obj && !(parent->obj = cJSON_CreateObject()))
		return -1;
	struct child_index *ix = &parent->ix;
	if ((ix->n + 1) * 2 > ix->cap && ix_grow(ix) != 0)
		return -1;
	struct child *c = ix_find(ix, name);
	if (!c->val) {
		if (!cJSON_AddItemToObject(parent->obj, name, v))
			return -1;
		/* cJSON adds at the end: the item just added is the last child */
		c->val = parent->obj->child->prev;
		ix->n++;
		return 0;
	}
	/* a repeated name: the first value turns into an array of all of them. rep marks
	 * the arrays made that way, so a child whose own value is an array is not mistaken
	 * for one. */
	if (!c->rep) {
		cJSON *arr = cJSON_CreateArray();
		if (!arr || !cJSON_AddItemToObject(parent->obj, name, arr)) {
			cJSON_Delete(arr);
			return -1;
		}
		cJSON *prev = cJSON_DetachItemViaPointer(parent->obj, c->val);
		cJSON_AddItemToArray(arr, prev);
		c->val = arr;
		c->rep = true;
	}
	cJSON_AddItemToArray(c->val, v);
	return 0;
}

static void XMLCALL on_end(void *ud, const XML_Char *name)
{
	struct gm_xml *x = ud;
	(void)name;
	if (x->failed || x->depth == 0)
		return;
	struct frame *f = &x->stack[--x->depth];
	cJSON *v = frame_value(f);
	char *fname = f->name;
	f->name = NULL;
	if (!v) {
		free(fname);
		return fail(x, NULL);
	}
	if (x->depth == 0) {
		x->result = v;
	} else if (attach(&x->stack[x->depth - 1], fname, v) != 0) {
		cJSON_Delete(v);
		free(fname);
		return fail(x, NULL);
	}
	free(fname);
}

static void XMLCALL on_entity_decl(void *ud, const XML_Char *entityName, int is_parameter_entity,
				   const XML_Char *value, int value_length, const XML_Char *base,
				   const XML_Char *systemId, const XML_Char *publicId,
				   const XML_Char *notationName)
{
	(void)entityName, (void)is_parameter_entity, (void)value, (void)value_length, (void)base;
	(void)systemId, (void)publicId, (void)notationName;
	/* AWS never declares entities; a document that does is refused (entity expansion) */
	fail(ud, "XML entity declarations are not accepted");
}

struct gm_xml *gm_xml_new(void)
{
	struct gm_xml *x = calloc(1, sizeof(*x));
	if (!x)
		return NULL;
	x->p = XML_ParserCreate("UTF-8");
	if (!x->p) {
		free(x);
		return NULL;
	}
	XML_SetUserData(x->p, x);
	XML_SetElementHandler(x->p, on_start, on_end);
	XML_SetCharacterDataHandler(x->p, on_text);
	XML_SetEntityDeclHandler(x->p, on_entity_decl);
	return x;
}

void gm_xml_free(struct gm_xml *x)
{
	if (!x)
		return;
	while (x->depth > 0) {
		struct frame *f = &x->stack[--x->depth];
		free(f->ix.t);
		free(f->name);
		free(f->text.p);
		cJSON_Delete(f->obj);
		cJSON_Delete(f->items);
	}
	cJSON_Delete(x->result);
	XML_ParserFree(x->p);
	free(x);
}

const char *gm_xml_root(const struct gm_xml *x)
{
	return x ? x->root : "";
}

static int parse_error(struct gm_xml *x, struct goman_err *err)
{
	if (x->failed && !x->fail_msg)
		return gm_err_oom(err);
	if (x->failed)
		return goman_err_set(err, GOMAN_EPARSE, GOMAN_CLASS_NONE, "ParseError", "%s",
				     x->fail_msg);
	return goman_err_set(err, GOMAN_EPARSE, GOMAN_CLASS_NONE, "ParseError",
			     "XML reply: %s at line %lu", XML_ErrorString(XML_GetErrorCode(x->p)),
			     (unsigned long)XML_GetCurrentLineNumber(x->p));
}

int gm_xml_feed(struct gm_xml *x, const char *data, size_t len, struct goman_err *err)
{
	while (len > 0) {
		/* expat takes int lengths */
		int n = len > (1u << 30) ? (1 << 30) : (int)len;
		if (XML_Parse(x->p, data, n, XML_FALSE) != XML_STATUS_OK || x->failed)
			return parse_error(x, err);
		data += n;
		len -= (size_t)n;
	}
	return 0;
}

cJSON *gm_xml_finish(struct gm_xml *x, struct goman_err *err)
{
	if (XML_Parse(x->p, "", 0, XML_TRUE) != XML_STATUS_OK || x->failed) {
		parse_error(x, err);
		return NULL;
	}
	cJSON *v = x->result;
	x->result = NULL;
	if (!v) {
		goman_err_set(err, GOMAN_EPARSE, GOMAN_CLASS_NONE, "ParseError", "empty XML reply");
		return NULL;
	}
	if (cJSON_IsObject(v))
		return v;
	cJSON *o = cJSON_CreateObject();
	if (!o) {
		cJSON_Delete(v);
		gm_err_oom(err);
		return NULL;
	}
	cJSON_AddItemToObject(o, x->root, v);
	return o;
}

cJSON *gm_xml_to_json(const char *xml, size_t len, char *root, size_t rootlen,
		      struct goman_err *err)
{
	struct gm_xml *x = gm_xml_new();
	if (!x) {
		gm_err_oom(err);
		return NULL;
	}
	cJSON *v = NULL;
	if (gm_xml_feed(x, xml, len, err) == 0)
		v = gm_xml_finish(x, err);
	if (root && rootlen)
		snprintf(root, rootlen, "%s", x->root);
	gm_xml_free(x);
	return v;
}
