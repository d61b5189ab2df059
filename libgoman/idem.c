/*
 * idem.c - the idempotency store's front (see goman/idem.h): keys, canonical JSON, the
 * choice of backend, turning a verdict into a ticket, counters, events and [IDEMPOTENCY]
 * lines. Storage is behind struct gm_idem_ops (idem_file.c, idem_dynamo.c); what a record
 * is and how a found one is judged is idem_record.c's (idem_int.h is the seam).
 *
 * Ownership: the handle owns its backend state; tickets own their result. Errors come back
 * as -1 + *err (store failures); begin's answers are its return value.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>
#include "goman/clock.h"
#include "goman/idem.h"
#include "goman/log.h"
#include "bytes_int.h"
#include "idem_int.h"

#define TAG "IDEMPOTENCY"

/* ---- canonical JSON and hashes ---------------------------------------------------- */

static int cmp_items(const void *a, const void *b)
{
	const cJSON *x = *(const cJSON *const *)a, *y = *(const cJSON *const *)b;
	return strcmp(x->string ? x->string : "", y->string ? y->string : "");
}

/* Sorts object members by name at every depth, in place. 0, or -1 on no memory. */
static int sort_tree(cJSON *v)
{
	if (!cJSON_IsObject(v) && !cJSON_IsArray(v))
		return 0;
	size_t n = 0;
	for (cJSON *c = v->child; c; c = c->next) {
		if (sort_tree(c))
			return -1;
		n++;
	}
	if (!cJSON_IsObject(v) || n < 2)
		return 0;
	cJSON **a = malloc(n * sizeof(*a));
	if (!a)
		return -1;
	size_t i = 0;
	for (cJSON *c = v->child; c; c = c->next)
		a[i++] = c;
	qsort(a, n, sizeof(*a), cmp_items);
	/* relink as cJSON keeps it: prev of the head points at the tail */
	for (i = 0; i < n; i++) {
		a[i]->next = i + 1 < n ? a[i + 1] : NULL;
		a[i]->prev = i ? a[i - 1] : a[n - 1];
	}
	v->child = a[0];
	free(a);
	return 0;
}

char *goman_idem_canonical(const cJSON *v)
{
	if (!v)
		return strdup("null");
	cJSON *d = cJSON_Duplicate(v, 1);
	if (!d)
		return NULL;
	char *out = sort_tree(d) ? NULL : cJSON_PrintUnformatted(d);
	cJSON_Delete(d);
	return out;
}

/* SHA-256 hex of a and b joined by a NUL (so "ab"+"c" and "a"+"bc" differ) */
static int sha256_hex2(const char *a, const char *b, char out[65])
{
	size_t na = strlen(a) + 1, nb = strlen(b);
	char *both = malloc(na + nb);
	if (!both)
		return -1;
	memcpy(both, a, na);
	memcpy(both + na, b, nb);
	int rc = gm_sha256_hex(both, na + nb, out);
	free(both);
	return rc;
}

int goman_idem_key(const char *operation, const cJSON *identity, char out[65])
{
	if (!operation || !*operation)
		return -1;
	char *canon = goman_idem_canonical(identity);
	if (!canon)
		return -1;
	int rc = sha256_hex2(operation, canon, out);
	free(canon);
	return rc;
}

/* ---- open / close ------------------------------------------------------------------- */

struct goman_idem *goman_idem_open(const struct goman_idem_opts *opts, struct goman_err *err)
{
	struct goman_idem_opts o = {0};
	if (opts)
		o = *opts;
	struct goman_idem *s = calloc(1, sizeof(*s));
	if (!s) {
		gm_err_oom(err);
		return NULL;
	}
	s->ttl_ms = o.ttl_ms > 0 ? o.ttl_ms : GOMAN_IDEM_DEFAULT_TTL_MS;
	s->lease_ms = o.lease_ms > 0 ? o.lease_ms : GOMAN_IDEM_DEFAULT_LEASE_MS;
	if (!o.table)
		o.table = getenv("GOMAN_IDEMPOTENCY_TABLE");
	s->ops = o.table && *o.table ? &gm_idem_dynamo_ops : &gm_idem_file_ops;
	if (s->ops->open(s, &o, err)) {
		goman_idem_close(s);
		return NULL;
	}
	return s;
}

void goman_idem_close(struct goman_idem *s)
{
	if (!s)
		return;
	s->ops->close(s);
	free(s);
}

const char *goman_idem_backend(const struct goman_idem *s)
{
	return s ? s->ops->name : "file";
}

const char *goman_idem_dir(const struct goman_idem *s)
{
	return s && s->ops->dir ? s->ops->dir(s) : NULL;
}

void goman_idem_get_stats(const struct goman_idem *s, struct goman_idem_stats *out)
{
	if (s)
		*out = s->stats;
	else
		memset(out, 0, sizeof(*out));
}

void goman_idem_ticket_clear(struct goman_idem_ticket *t)
{
	if (!t)
		return;
	cJSON_Delete(t->result);
	memset(t, 0, sizeof(*t));
}

/* ---- begin / complete / fail / cleanup ------------------------------------------------- */

static void emit(const struct goman_idem_ticket *t, const char *result)
{
	cJSON *ev = cJSON_CreateObject();
	if (!ev)
		return;
	cJSON_AddStringToObject(ev, "operation", t->operation);
	cJSON_AddStringToObject(ev, "result", result);
	cJSON_AddStringToObject(ev, "key", t->key);
	if (t->taken_over)
		cJSON_AddBoolToObject(ev, "taken_over", 1);
	goman_event("idempotency", ev);
}

static void owner_into_ticket(const struct gm_idem_rec *r, struct goman_idem_ticket *t)
{
	t->owner_pid = r->owner_pid;
	snprintf(t->owner_host, sizeof(t->owner_host), "%s", r->owner_host);
	t->owner_started_ms = r->started_at;
	t->lease_expires_ms = r->lease_expires;
	t->expires_ms = r->expires_at;
}

int goman_idem_begin(struct goman_idem *s, const char *operation, const cJSON *identity,
		     const cJSON *params, struct goman_idem_ticket *t, struct goman_err *err)
{
	memset(t, 0, sizeof(*t));
	if (!s || !operation || !*operation || strlen(operation) >= sizeof(t->operation))
		return goman_err_set(err, GOMAN_EINVAL, GOMAN_CLASS_BAD_INPUT, "BadInput",
				     "idempotency: an operation name (under 64 bytes) is needed");
	snprintf(t->operation, sizeof(t->operation), "%s", operation);
	char *canon = goman_idem_canonical(identity);
	char *pcanon = params ? goman_idem_canonical(params) : canon;
	int bad = !canon || !pcanon || sha256_hex2(operation, canon, t->key) ||
		  sha256_hex2(operation, pcanon, t->payload_hash);
	if (pcanon != canon)
		free(pcanon);
	free(canon);
	if (bad)
		return gm_err_oom(err);

	int64_t now = goman_now_ms();
	struct gm_idem_rec mine, found;
	memset(&found, 0, sizeof(found));
	if (gm_idem_rec_init_owner(&mine, operation, t->key, t->payload_hash, identity, now,
				   s->lease_ms, s->ttl_ms)) {
		gm_idem_rec_clear(&mine);
		return goman_err_set(err, GOMAN_EIO, GOMAN_CLASS_NONE, "NoRandom",
				     "idempotency: no random bytes for a ClientToken");
	}
	enum gm_idem_verdict v;
	int rc = s->ops->begin(s, &mine, &found, &v, err);
	if (rc) {
		gm_idem_rec_clear(&mine);
		gm_idem_rec_clear(&found);
		return -1;
	}
	int state;
	switch (v) {
	case GM_IDEM_CREATED:
	case GM_IDEM_REPLACE_FRESH:
	case GM_IDEM_REPLACE_TAKEOVER:
		state = GOMAN_IDEM_NEW;
		t->taken_over = v == GM_IDEM_REPLACE_TAKEOVER;
		snprintf(t->client_token, sizeof(t->client_token), "%s", mine.client_token);
		snprintf(t->owner_id, sizeof(t->owner_id), "%s", mine.owner);
		if (t->taken_over)
			owner_into_ticket(&found, t);
		else
			owner_into_ticket(&mine, t);
		s->stats.miss++;
		if (t->taken_over) {
			s->stats.taken_over++;
			goman_log(
				GOMAN_LOG_INFO, TAG,
				"%s: took over %s record of pid %ld on %s, reusing its ClientToken",
				operation, found.status, found.owner_pid, found.owner_host);
		} else {
			goman_log(GOMAN_LOG_DEBUG, TAG, "%s: miss, key %.12s", operation, t->key);
		}
		emit(t, "miss");
		break;
	case GM_IDEM_ANSWER_COMPLETED:
		state = GOMAN_IDEM_COMPLETED;
		snprintf(t->client_token, sizeof(t->client_token), "%s", found.client_token);
		owner_into_ticket(&found, t);
		t->result = found.result;
		found.result = NULL;
		s->stats.hit++;
		goman_log(GOMAN_LOG_INFO, TAG, "%s: hit, completed at %lld, reusing its result",
			  operation, (long long)found.started_at);
		emit(t, "hit");
		break;
	case GM_IDEM_ANSWER_IN_PROGRESS:
		state = GOMAN_IDEM_IN_PROGRESS;
		snprintf(t->client_token, sizeof(t->client_token), "%s", found.client_token);
		owner_into_ticket(&found, t);
		s->stats.in_progress++;
		goman_err_set(err, GOMAN_ECONFLICT, GOMAN_CLASS_CLIENT, "IdempotencyInProgress",
			      "%s is already in progress (pid %ld on %s); retry after it ends",
			      operation, found.owner_pid, found.owner_host);
		goman_log(GOMAN_LOG_INFO, TAG, "%s: in progress by pid %ld on %s", operation,
			  found.owner_pid, found.owner_host);
		emit(t, "in_progress");
		break;
	default:
		state = GOMAN_IDEM_MISMATCH;
		owner_into_ticket(&found, t);
		s->stats.mismatch++;
		goman_err_set(err, GOMAN_ECONFLICT, GOMAN_CLASS_CLIENT, "IdempotencyMismatch",
			      "%s was already run for these identity fields with other parameters "
			      "(record %s); use the same parameters, wait for it to expire, or "
			      "remove it: goman-idem forget %s",
			      operation, found.status, t->key);
		goman_log(GOMAN_LOG_WARN, TAG, "%s: mismatch, same key with other parameters",
			  operation);
		emit(t, "mismatch");
		break;
	}
	gm_idem_rec_clear(&mine);
	gm_idem_rec_clear(&found);
	t->state = (enum goman_idem_state)state;
	return state;
}

static int finish(struct goman_idem *s, const struct goman_idem_ticket *t, const char *status,
		  const cJSON *result, const cJSON *error, struct goman_err *err)
{
	if (!s || !t || t->state != GOMAN_IDEM_NEW || !t->owner_id[0])
		return goman_err_set(err, GOMAN_EINVAL, GOMAN_CLASS_BAD_INPUT, "BadInput",
				     "idempotency: only the owner of a NEW ticket can finish it");
	int rc = s->ops->finish(s, t, status, result, error, err);
	if (rc == 0)
		goman_log(GOMAN_LOG_DEBUG, TAG, "%s: %s", t->operation, status);
	return rc;
}

int goman_idem_complete(struct goman_idem *s, const struct goman_idem_ticket *t,
			const cJSON *result, struct goman_err *err)
{
	return finish(s, t, "COMPLETED", result, NULL, err);
}

int goman_idem_fail(struct goman_idem *s, const struct goman_idem_ticket *t,
		    const struct goman_err *why, struct goman_err *err)
{
	cJSON *e = cJSON_CreateObject();
	if (!e)
		return gm_err_oom(err);
	if (why) {
		cJSON_AddStringToObject(e, "code", why->code);
		cJSON_AddStringToObject(e, "message", why->message);
	}
	int rc = finish(s, t, "FAILED", NULL, e, err);
	cJSON_Delete(e);
	return rc;
}

int goman_idem_cleanup(struct goman_idem *s, size_t *removed, struct goman_err *err)
{
	size_t n = 0;
	if (!s)
		return goman_err_set(err, GOMAN_EINVAL, GOMAN_CLASS_BAD_INPUT, "BadInput",
				     "no store");
	int rc = s->ops->cleanup(s, &n, err);
	s->stats.cleaned += n;
	if (removed)
		*removed = n;
	if (n)
		goman_log(GOMAN_LOG_INFO, TAG, "cleanup removed %zu expired record%s", n,
			  n == 1 ? "" : "s");
	return rc;
}

int goman_idem_list(struct goman_idem *s, bool all, goman_idem_list_fn fn, void *ctx,
		    struct goman_err *err)
{
	if (!s || !fn)
		return goman_err_set(err, GOMAN_EINVAL, GOMAN_CLASS_BAD_INPUT, "BadInput",
				     "no store");
	return s->ops->list(s, all, fn, ctx, err);
}

int goman_idem_forget(struct goman_idem *s, const char *key, bool force, struct goman_err *err)
{
	size_t n = key ? strspn(key, "0123456789abcdef") : 0;
	if (!s || n != 64 || key[n])
		return goman_err_set(
			err, GOMAN_EINVAL, GOMAN_CLASS_BAD_INPUT, "BadInput",
			"idempotency: '%s' is not a record key (64 lowercase hex digits)",
			key ? key : "");
	int rc = s->ops->forget(s, key, force, err);
	if (rc == 1)
		goman_log(GOMAN_LOG_INFO, TAG, "forgot record %.12s", key);
	return rc;
}
