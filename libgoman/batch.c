/*
 * batch.c - the batching and bisection engine of goman/batch.h (no I/O, no event loop).
 *
 * Items are cut into batches in input order. A unit of work is a list of item indices
 * (a whole batch, or one half of a refused unit). Units wait in a deque: bisection halves
 * go to the front, so a refused batch is resolved before fresh batches start and the bad
 * IDs of one batch are isolated while its neighbours run. pump() starts units while fewer
 * than `concurrency` calls are in flight; it is guarded against re-entry (an executor that
 * finishes inside exec calls goman_batch_call_done(), which pumps again), so the stack
 * never grows with the number of calls.
 *
 * Bisection cost: a batch of n with one bad ID takes 1 + 2*ceil(log2 n) calls (both halves
 * of a refused unit are tried, since the good half holds IDs that must get their action).
 *
 * Ownership: the engine owns the items (their ID copies), the units and the calls; a call
 * is freed in goman_batch_call_done(). on_item gets borrowed items.
 * Errors: -1 with err for no memory; everything else is a per-item result.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "goman/batch.h"
#include <cjson/cJSON.h>
#include "goman/clock.h"
#include "goman/jsonl.h"
#include "goman/log.h"
#include "bytes_int.h"

struct item {
	struct goman_batch_item r;
	char *id;
	bool done;
	int64_t t0; /* mono ms when its batch first started; 0 = not yet */
};

struct unit {
	struct unit *next;
	size_t *idx;
	size_t n;
	int batch, depth;
};

struct call_priv {
	struct unit *u;
	const char **ids;
	int64_t t0;
};

struct goman_batch {
	struct goman_batch_opts o;
	struct item *items;
	size_t n, cap;
	struct unit *head, *tail;
	size_t inflight;
	bool started, pumping, repump;
	size_t reported;
	struct goman_batch_stats st;
};

static const char *const verb_names[] = {"describe",  "start", "stop", "reboot",
					 "terminate", "tag",   "wait"};

const char *goman_batch_verb_name(enum goman_batch_verb v)
{
	return (unsigned)v < sizeof(verb_names) / sizeof(verb_names[0]) ? verb_names[v] : "";
}

int goman_batch_verb_parse(const char *s, enum goman_batch_verb *out)
{
	for (size_t i = 0; s && i < sizeof(verb_names) / sizeof(verb_names[0]); i++) {
		if (!strcmp(s, verb_names[i])) {
			*out = (enum goman_batch_verb)i;
			return 0;
		}
	}
	return -1;
}

/* Codes by which EC2 refuses a whole call for the sake of one (or a few) of its IDs. */
static const char *const id_codes[] = {
	"InvalidInstanceID.NotFound",
	"InvalidInstanceID.Malformed",
	"InvalidInstanceID",
	"InvalidID",
	"IncorrectInstanceState",
	"IncorrectState",
	"OperationNotPermitted",
	"UnsupportedOperation",
	"UnsupportedHibernationConfiguration",
	"InvalidInstanceType",
};

bool goman_batch_bisectable(const struct goman_err *e)
{
	if (!e || e->rc != GOMAN_ESERVICE)
		return false;
	for (size_t i = 0; i < sizeof(id_codes) / sizeof(id_codes[0]); i++)
		if (!strcmp(e->code, id_codes[i]))
			return true;
	return false;
}

struct goman_batch *goman_batch_new(const struct goman_batch_opts *o, struct goman_err *err)
{
	if (!o || !o->exec || !o->on_item) {
		goman_err_set(err, GOMAN_EINVAL, GOMAN_CLASS_BAD_INPUT, "BadInput",
			      "a batch needs an executor and an item callback");
		return NULL;
	}
	if (o->batch_size > GOMAN_BATCH_MAX_IDS) {
		goman_err_set(err, GOMAN_EINVAL, GOMAN_CLASS_BAD_INPUT, "BadInput",
			      "batch size %zu is over the EC2 limit of %d IDs per call",
			      o->batch_size, GOMAN_BATCH_MAX_IDS);
		return NULL;
	}
	struct goman_batch *b = calloc(1, sizeof(*b));
	if (!b) {
		gm_err_oom(err);
		return NULL;
	}
	b->o = *o;
	if (!b->o.batch_size)
		b->o.batch_size = 10;
	if (!b->o.concurrency)
		b->o.concurrency = 1;
	if (!b->o.action)
		b->o.action = "call";
	return b;
}

static void unit_free(struct unit *u)
{
	if (u) {
		free(u->idx);
		free(u);
	}
}

void goman_batch_free(struct goman_batch *b)
{
	if (!b)
		return;
	for (size_t i = 0; i < b->n; i++)
		free(b->items[i].id);
	free(b->items);
	while (b->head) {
		struct unit *u = b->head;
		b->head = u->next;
		unit_free(u);
	}
	free(b);
}

int goman_batch_add(struct goman_batch *b, const char *id, void *item_ud, struct goman_err *err)
{
	if (!b || !id || b->started)
		return goman_err_set(err, GOMAN_EINVAL, GOMAN_CLASS_BAD_INPUT, "BadInput",
				     "items are added before the batch starts");
	if (b->n == b->cap) {
		size_t cap = b->cap ? b->cap * 2 : 64;
		struct item *v = realloc(b->items, cap * sizeof(*v));
		if (!v)
			return gm_err_oom(err);
		b->items = v;
		b->cap = cap;
	}
	struct item *it = &b->items[b->n];
	memset(it, 0, sizeof(*it));
	if (!(it->id = strdup(id)))
		return gm_err_oom(err);
	it->r.ud = item_ud;
	goman_err_clear(&it->r.err);
	b->n++;
	return 0;
}

static void push_back(struct goman_batch *b, struct unit *u)
{
	u->next = NULL;
	if (b->tail)
		b->tail->next = u;
	else
		b->head = u;
	b->tail = u;
}

static void push_front(struct goman_batch *b, struct unit *u)
{
	u->next = b->head;
	b->head = u;
	if (!b->tail)
		b->tail = u;
}

static struct unit *pop(struct goman_batch *b)
{
	struct unit *u = b->head;
	if (u) {
		b->head = u->next;
		if (!b->head)
			b->tail = NULL;
		u->next = NULL;
	}
	return u;
}

static struct unit *unit_new(const size_t *idx, size_t n, int batch, int depth)
{
	struct unit *u = calloc(1, sizeof(*u));
	if (!u || !(u->idx = malloc(n * sizeof(*u->idx)))) {
		free(u);
		return NULL;
	}
	memcpy(u->idx, idx, n * sizeof(*idx));
	u->n = n;
	u->batch = batch;
	u->depth = depth;
	return u;
}

/* Reports item i as final (once). */
static void finish_item(struct goman_batch *b, size_t i, const struct goman_err *e)
{
	struct item *it = &b->items[i];
	if (it->done)
		return;
	it->done = true;
	it->r.id = it->id;
	it->r.ok = !e || e->rc == GOMAN_OK;
	if (it->r.ok)
		goman_err_clear(&it->r.err);
	else
		it->r.err = *e;
	it->r.ms = it->t0 ? goman_mono_ms() - it->t0 : 0;
	if (it->r.ok)
		b->st.ok++;
	else
		b->st.failed++;
	b->reported++;
	b->o.on_item(&it->r, b->o.item_ud);
}

static void fail_unit(struct goman_batch *b, struct unit *u, const struct goman_err *e)
{
	for (size_t k = 0; k < u->n; k++)
		finish_item(b, u->idx[k], e);
}

static void start_unit(struct goman_batch *b, struct unit *u)
{
	struct goman_batch_call *c = calloc(1, sizeof(*c));
	struct call_priv *p = calloc(1, sizeof(*p));
	const char **ids = calloc(u->n, sizeof(*ids));
	struct goman_err e = GOMAN_ERR_INIT;
	goman_err_clear(&e);
	if (!c || !p || !ids) {
		free(c);
		free(p);
		free(ids);
		gm_err_oom(&e);
		fail_unit(b, u, &e);
		unit_free(u);
		return;
	}
	int64_t now = goman_mono_ms();
	for (size_t k = 0; k < u->n; k++) {
		struct item *it = &b->items[u->idx[k]];
		ids[k] = it->id;
		it->r.calls++;
		it->r.batch = u->batch;
		if (!it->t0)
			it->t0 = now;
	}
	p->u = u;
	p->ids = ids;
	p->t0 = now;
	c->ids = ids;
	c->n = u->n;
	c->batch = u->batch;
	c->depth = u->depth;
	c->b = b;
	c->priv = p;
	b->inflight++;
	b->st.calls++;
	if (u->depth == 0)
		goman_log(GOMAN_LOG_INFO, "BATCH", "batch %d/%d: %s %zu instances", u->batch,
			  b->st.batches, b->o.action, u->n);
	else
		goman_log(GOMAN_LOG_INFO, "BATCH",
			  "batch %d: bisect depth %d: %s %zu instances (%s..)", u->batch, u->depth,
			  b->o.action, u->n, ids[0]);
	if (b->o.exec(c, b->o.exec_ud, &e) != 0) {
		if (e.rc == GOMAN_OK)
			goman_err_set(&e, GOMAN_EINVAL, GOMAN_CLASS_CLIENT, "",
				      "the call could not start");
		goman_batch_call_done(c, &e);
	}
}

static void pump(struct goman_batch *b)
{
	if (b->pumping) {
		b->repump = true;
		return;
	}
	b->pumping = true;
	do {
		b->repump = false;
		while (b->inflight < b->o.concurrency && b->head)
			start_unit(b, pop(b));
	} while (b->repump);
	b->pumping = false;
}

int goman_batch_start(struct goman_batch *b, struct goman_err *err)
{
	if (!b || b->started)
		return goman_err_set(err, GOMAN_EINVAL, GOMAN_CLASS_BAD_INPUT, "BadInput",
				     "the batch was already started");
	b->started = true;
	size_t bs = b->o.batch_size;
	b->st.batches = (int)((b->n + bs - 1) / bs);
	size_t *idx = malloc(bs * sizeof(*idx));
	if (!idx)
		return gm_err_oom(err);
	for (size_t i = 0, nb = 1; i < b->n; i += bs, nb++) {
		size_t n = b->n - i < bs ? b->n - i : bs;
		for (size_t k = 0; k < n; k++)
			idx[k] = i + k;
		struct unit *u = unit_new(idx, n, (int)nb, 0);
		if (!u) {
			free(idx);
			return gm_err_oom(err);
		}
		push_back(b, u);
	}
	free(idx);
	goman_log(GOMAN_LOG_INFO, "BATCH",
		  "%s: %zu instances in %d batches of up to %zu, %zu at a time", b->o.action, b->n,
		  b->st.batches, bs, b->o.concurrency);
	pump(b);
	return 0;
}

bool goman_batch_finished(const struct goman_batch *b)
{
	return !b || (b->started && b->reported == b->n);
}

void goman_batch_stats(const struct goman_batch *b, struct goman_batch_stats *st)
{
	if (b && st)
		*st = b->st;
}

void goman_batch_call_state(struct goman_batch_call *c, size_t i, const char *previous_state,
			    const char *state)
{
	if (!c || i >= c->n)
		return;
	struct call_priv *p = c->priv;
	struct item *it = &c->b->items[p->u->idx[i]];
	if (previous_state)
		snprintf(it->r.previous_state, sizeof(it->r.previous_state), "%s", previous_state);
	if (state)
		snprintf(it->r.state, sizeof(it->r.state), "%s", state);
}

/* A refused unit of more than one ID: try both halves again, ahead of fresh batches. */
static int bisect(struct goman_batch *b, struct unit *u, const struct goman_err *e)
{
	size_t half = u->n / 2;
	struct unit *l = unit_new(u->idx, half, u->batch, u->depth + 1);
	struct unit *r = unit_new(u->idx + half, u->n - half, u->batch, u->depth + 1);
	if (!l || !r) {
		unit_free(l);
		unit_free(r);
		return -1;
	}
	b->st.bisections++;
	goman_log(GOMAN_LOG_INFO, "BATCH",
		  "batch %d: %zu instances refused (%s): bisecting into %zu + %zu", u->batch, u->n,
		  e->code, l->n, r->n);
	push_front(b, r);
	push_front(b, l);
	return 0;
}

void goman_batch_call_done(struct goman_batch_call *c, const struct goman_err *err)
{
	if (!c)
		return;
	struct goman_batch *b = c->b;
	struct call_priv *p = c->priv;
	struct unit *u = p->u;
	int64_t ms = goman_mono_ms() - p->t0;
	free(p->ids);
	free(p);
	free(c);
	b->inflight--;
	if (!err || err->rc == GOMAN_OK) {
		if (u->depth == 0)
			goman_log(GOMAN_LOG_INFO, "BATCH", "batch %d: %zu ok in %lld ms", u->batch,
				  u->n, (long long)ms);
		else
			goman_log(GOMAN_LOG_INFO, "BATCH",
				  "batch %d: bisect depth %d: %zu ok in %lld ms", u->batch,
				  u->depth, u->n, (long long)ms);
		fail_unit(b, u, NULL);
	} else if (goman_batch_bisectable(err) && u->n > 1) {
		if (bisect(b, u, err) != 0) {
			struct goman_err e = GOMAN_ERR_INIT;
			gm_err_oom(&e);
			fail_unit(b, u, &e);
		}
	} else {
		struct goman_err e = *err;
		if (goman_batch_bisectable(err)) {
			/* isolated: this ID is bad, whatever the retry table says about the code
			 * right after a launch */
			e.retryable = false;
			b->st.isolated++;
			goman_log(GOMAN_LOG_INFO, "BATCH", "batch %d: %s isolated: %s", u->batch,
				  b->items[u->idx[0]].id, err->code);
		} else {
			goman_log(GOMAN_LOG_WARN, "BATCH",
				  "batch %d: %zu instances failed in %lld ms: %s %s", u->batch,
				  u->n, (long long)ms,
				  err->code[0] ? err->code : goman_strerror(err->rc), err->message);
		}
		fail_unit(b, u, &e);
	}
	unit_free(u);
	pump(b);
}

struct cJSON *goman_batch_record(const struct cJSON *input, const char *action,
				 const char *previous_state, const char *state, int batch,
				 int64_t ms, const struct goman_err *e, long line)
{
	bool ok = !e || e->rc == GOMAN_OK;
	cJSON *copy = input ? cJSON_Duplicate(input, 1) : cJSON_CreateObject();
	if (!copy)
		return NULL;
	cJSON_DeleteItemFromObjectCaseSensitive(copy, "batch");
	cJSON *out = copy;
	if (!ok) {
		out = goman_jsonl_error_record(copy, "batch", e, line);
		cJSON_Delete(copy);
		if (!out)
			return NULL;
	}
	cJSON *b = cJSON_GetObjectItemCaseSensitive(out, "batch");
	if (!b && !(b = cJSON_AddObjectToObject(out, "batch")))
		goto nomem;
	if (action && *action && !cJSON_AddStringToObject(b, "action", action))
		goto nomem;
	if (previous_state && *previous_state &&
	    !cJSON_AddStringToObject(b, "previous_state", previous_state))
		goto nomem;
	if (state && *state && !cJSON_AddStringToObject(b, "state", state))
		goto nomem;
	if (batch > 0 && !cJSON_AddNumberToObject(b, "batch", batch))
		goto nomem;
	if (!cJSON_AddNumberToObject(b, "ms", (double)ms))
		goto nomem;
	if (ok) {
		if (!cJSON_AddTrueToObject(b, "ok"))
			goto nomem;
		if (!cJSON_GetObjectItemCaseSensitive(out, "ok") &&
		    !cJSON_AddTrueToObject(out, "ok"))
			goto nomem;
	}
	return out;
nomem:
	cJSON_Delete(out);
	return NULL;
}
