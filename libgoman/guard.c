/*
 * guard.c - breaker → rate limiter → retry around every attempt (see goman/guard.h).
 * Keeps one entry per (service, region, endpoint) seen by this process; an entry points at
 * its slot in the shared state file, or at a slot of its own when there is no file.
 * Allocates only when a new (service, region, endpoint) is first seen; the per-attempt path
 * allocates nothing (events, when $GOMAN_EVENTS is set, are the exception).
 * MaxConcurrent is counted twice: per guard (inflight; the caller's own finished attempts
 * wake its parked calls, as before the cap was shared) and per user, in the slot's cap
 * units (an attempt holds one from admission to its end). A call that finds every unit
 * held by other processes is told to ask again after a short poll of its own loop: no
 * other process can wake it. So that such a poll ever finds a unit free, a process that
 * found the cap full is named in the slot, and the others leave it the next unit.
 * Logs [CIRCUIT] and [RETRY] lines and emits "breaker" and "retry" events.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cjson/cJSON.h>
#include "goman/clock.h"
#include "goman/config.h"
#include "goman/guard.h"
#include "goman/log.h"
#include "shared_state_int.h"
#include "bytes_int.h"

/* backstop before a call parked behind MaxConcurrent asks again */
#define GUARD_SLOT_POLL_MS 500
/* a call waiting for a unit other processes hold asks again after this (±50 %), unless
 * $GOMAN_SHARED_CAP_POLL_MS says otherwise */
#define GUARD_UNIT_POLL_MS 20
/* a full cap is searched for units of dead owners at most this often per entry */
#define GUARD_REAP_MS 250

struct gm_guard_entry {
	char service[24], region[32];
	char endpoint[200];
	const struct goman_breaker_params *bp;
	struct gm_slot *slot; /* shared, or &own */
	int inflight;
	bool units;      /* MaxConcurrent is held in the slot's cap units (shared) */
	int64_t reap_ms; /* next look for dead owners' units */
	uint64_t held[(GM_STATE_UNITS + 63) / 64]; /* units this guard holds */
	struct gm_slot own;
};

struct goman_guard {
	struct goman_config cfg;
	struct gm_state *state;
	struct gm_guard_entry **ents;
	size_t n, cap;
	struct gm_guard_entry *last;
	struct goman_rng rng;
	bool events;      /* $GOMAN_EVENTS set: build event objects (they allocate) */
	bool shared_caps; /* MaxConcurrent per user (the state file's cap units) */
	uint64_t owner;   /* this process, as the cap units name it */
	int64_t unit_poll_ms;
};

int goman_guard_state_path(char *buf, size_t len)
{
	const char *e = getenv("GOMAN_STATE_FILE");
	const char *run = getenv("XDG_RUNTIME_DIR"), *st = getenv("XDG_STATE_HOME");
	const char *home = getenv("HOME");
	int n;
	if (e && *e)
		n = snprintf(buf, len, "%s", e);
	else if (run && *run && access(run, W_OK) == 0)
		n = snprintf(buf, len, "%s/goman/shared-state", run);
	else if (st && *st)
		n = snprintf(buf, len, "%s/goman/shared-state", st);
	else if (home && *home)
		n = snprintf(buf, len, "%s/.local/state/goman/shared-state", home);
	else
		return -1;
	return n > 0 && (size_t)n < len ? 0 : -1;
}

struct goman_guard *goman_guard_new(const struct goman_guard_opts *opts, struct goman_err *err)
{
	struct goman_guard_opts none = {0};
	if (!opts)
		opts = &none;
	struct goman_guard *g = calloc(1, sizeof(*g));
	if (!g) {
		gm_err_oom(err);
		return NULL;
	}
	if (opts->config) {
		g->cfg = *opts->config;
	} else {
		goman_config_init(&g->cfg);
		if (goman_config_load(&g->cfg, err) < 0) {
			free(g);
			return NULL;
		}
	}
	goman_rng_seed(&g->rng,
		       opts->seed ? opts->seed
				  : (uint64_t)goman_now_ms() * 2654435761u ^ (uint64_t)getpid());
	const char *ev = getenv("GOMAN_EVENTS");
	g->events = ev && *ev;
	if (!opts->no_shared_state) {
		char path[512];
		const char *p = opts->state_file;
		if (!p && g->cfg.state_file[0])
			p = g->cfg.state_file;
		if (!p && goman_guard_state_path(path, sizeof(path)) == 0)
			p = path;
		struct goman_err e = GOMAN_ERR_INIT;
		goman_err_clear(&e);
		if (p)
			g->state = gm_state_open(p, &e);
		if (!g->state)
			goman_log(GOMAN_LOG_WARN, "CIRCUIT", "breakers are per process: %s",
				  p ? e.message : "no state directory");
	}
	const char *sc = getenv("GOMAN_SHARED_CAPS"), *pm = getenv("GOMAN_SHARED_CAP_POLL_MS");
	g->owner = gm_state_owner(g->state);
	g->shared_caps = g->state && g->owner && !opts->no_shared_caps && !(sc && !strcmp(sc, "0"));
	char *end = NULL;
	long long v = pm && *pm ? strtoll(pm, &end, 10) : 0;
	g->unit_poll_ms = end && !*end && v > 0 && v <= 60000 ? v : GUARD_UNIT_POLL_MS;
	return g;
}

void goman_guard_free(struct goman_guard *g)
{
	if (!g)
		return;
	gm_state_check(g->state);
	for (size_t i = 0; i < g->n; i++) {
		struct gm_guard_entry *e = g->ents[i];
		/* attempts still in flight: their units go back with the guard */
		for (int u = 0; e->units && u < GM_STATE_UNITS; u++)
			if (e->held[u / 64] >> (u % 64) & 1)
				gm_slot_give(e->slot, u, g->owner);
		free(e);
	}
	free(g->ents);
	gm_state_close(g->state);
	free(g);
}

void goman_guard_ticket_init(struct goman_guard_ticket *t, int64_t deadline_ms)
{
	memset(t, 0, sizeof(*t));
	t->deadline_ms = deadline_ms;
}

const struct goman_config *goman_guard_config(const struct goman_guard *g)
{
	return &g->cfg;
}

const char *goman_guard_state_file(const struct goman_guard *g)
{
	return gm_state_path(g->state);
}

static bool same(const char *a, const char *b)
{
	return strcmp(a, b ? b : "") == 0;
}

static struct gm_guard_entry *entry(struct goman_guard *g, const char *service, const char *region,
				    const char *endpoint)
{
	gm_state_check(g->state);
	struct gm_guard_entry *e = g->last;
	if (e && same(e->service, service) && same(e->region, region) &&
	    same(e->endpoint, endpoint))
		return e;
	for (size_t i = 0; i < g->n; i++) {
		e = g->ents[i];
		if (same(e->service, service) && same(e->region, region) &&
		    same(e->endpoint, endpoint))
			return g->last = e;
	}
	if (g->n == g->cap) {
		size_t nc = g->cap ? g->cap * 2 : 8;
		void *p = realloc(g->ents, nc * sizeof(*g->ents));
		if (!p)
			return NULL;
		g->ents = p;
		g->cap = nc;
	}
	e = calloc(1, sizeof(*e));
	if (!e)
		return NULL;
	snprintf(e->service, sizeof(e->service), "%s", service ? service : "");
	snprintf(e->region, sizeof(e->region), "%s", region ? region : "");
	snprintf(e->endpoint, sizeof(e->endpoint), "%s", endpoint ? endpoint : "");
	e->bp = goman_config_breaker(&g->cfg, service);
	char name[300];
	snprintf(name, sizeof(name), "%s|%s|%s", e->service, e->region, e->endpoint);
	e->slot = g->state ? gm_state_slot(g->state, name) : NULL;
	if (!e->slot)
		e->slot = &e->own;
	e->units = g->shared_caps && e->slot != &e->own;
	g->ents[g->n++] = e;
	return g->last = e;
}

static void breaker_changed(const struct goman_guard *g, const struct gm_guard_entry *e,
			    const struct goman_breaker_change *c, int64_t retry_in)
{
	if (c->from == c->to)
		return;
	const char *from = goman_breaker_state_name(c->from), *to = goman_breaker_state_name(c->to);
	if (c->to == GOMAN_BREAKER_OPEN)
		goman_log(GOMAN_LOG_WARN, "CIRCUIT", "%s %s: %s -> %s, next probe in %lld ms",
			  e->service, e->region, from, to, (long long)retry_in);
	else
		goman_log(GOMAN_LOG_INFO, "CIRCUIT", "%s %s: %s -> %s", e->service, e->region, from,
			  to);
	if (!g->events)
		return;
	cJSON *ev = cJSON_CreateObject();
	cJSON_AddStringToObject(ev, "service", e->service);
	cJSON_AddStringToObject(ev, "region", e->region);
	if (e->endpoint[0])
		cJSON_AddStringToObject(ev, "endpoint", e->endpoint);
	cJSON_AddStringToObject(ev, "from", from);
	cJSON_AddStringToObject(ev, "to", to);
	goman_event("breaker", ev);
}

static bool adaptive_on(const struct goman_guard *g)
{
	return g->cfg.retry_mode == GOMAN_RETRY_ADAPTIVE;
}

static void lock(struct goman_guard *g, struct gm_guard_entry *e)
{
	if (e->slot != &e->own)
		gm_state_lock(g->state, e->slot);
}

static void unlock(struct goman_guard *g, struct gm_guard_entry *e)
{
	if (e->slot != &e->own)
		gm_state_unlock(g->state, e->slot);
}

static int64_t cap_of(const struct gm_guard_entry *e)
{
	return e->bp->max_concurrent > GM_STATE_UNITS ? GM_STATE_UNITS : e->bp->max_concurrent;
}

/* A cap unit for the attempt about to be admitted: its index, or -1 when every unit is
 * held (by other processes: this guard's own calls wait on inflight first). */
static int unit_take(struct goman_guard *g, struct gm_guard_entry *e, int64_t now)
{
	int cap = (int)cap_of(e);
	/* processes start their search at different units: fewer lost compare-and-swaps */
	unsigned from = (unsigned)(g->owner >> 32);
	int u = gm_slot_take(e->slot, cap, g->owner, from);
	if (u < 0 && now >= e->reap_ms) {
		e->reap_ms = now + GUARD_REAP_MS;
		if (gm_slot_reap(e->slot, cap) > 0)
			u = gm_slot_take(e->slot, cap, g->owner, from);
	}
	/* a waiter counts as gone when it has not asked for three of its polls */
	int64_t fresh = 3 * g->unit_poll_ms;
	if (u < 0) {
		gm_slot_wait(e->slot, g->owner, now, fresh);
		return -1;
	}
	if (!gm_slot_may_keep(e->slot, cap, g->owner, now, fresh)) {
		gm_slot_give(e->slot, u, g->owner);
		return -1;
	}
	e->held[u / 64] |= UINT64_C(1) << (u % 64);
	return u;
}

static void unit_give(struct goman_guard *g, struct gm_guard_entry *e, int u)
{
	if (u < 0)
		return;
	e->held[u / 64] &= ~(UINT64_C(1) << (u % 64));
	gm_slot_give(e->slot, u, g->owner);
}

int goman_guard_before(struct goman_guard *g, struct goman_guard_ticket *t, const char *service,
		       const char *region, const char *endpoint, int64_t *wait_ms,
		       struct goman_err *err)
{
	*wait_ms = 0;
	if (t->admitted)
		goman_guard_abandon(g, t);
	struct gm_guard_entry *e = entry(g, service, region, endpoint);
	if (!e)
		return gm_err_oom(err);
	if (e->inflight >= e->bp->max_concurrent && e->bp->max_concurrent > 0) {
		/* a slot frees when an attempt of this process ends: a caller that hears of it
		 * (aws.c wakes its parked calls) asks then; this is only the backstop */
		*wait_ms = GUARD_SLOT_POLL_MS;
		return 1;
	}
	int64_t now = goman_mono_ms();
	struct goman_breaker_change chg;
	int64_t retry_in = 0;
	if (!goman_breaker_admit(&e->slot->breaker, e->bp, now, &t->pass, &retry_in, &chg)) {
		goman_err_set(err, GOMAN_ECIRCUIT, GOMAN_CLASS_CIRCUIT_OPEN, "CircuitOpen",
			      "circuit breaker for %s in %s is open; next probe in %lld ms",
			      e->service, e->region, (long long)retry_in);
		if (err)
			err->retry_after_ms = retry_in;
		return -1;
	}
	breaker_changed(g, e, &chg, 0);
	int unit = -1;
	if (e->units && e->bp->max_concurrent > 0 && (unit = unit_take(g, e, now)) < 0) {
		/* the units are other processes': none of them can wake us when one frees. The
		 * breaker is asked first, so an open one ends the call instead of a wait; its
		 * admission (a probe, maybe) goes back until a unit is there. */
		goman_breaker_record(&e->slot->breaker, e->bp, &t->pass, GOMAN_BREAKER_NEUTRAL, now,
				     &chg);
		*wait_ms = g->unit_poll_ms / 2 +
			   (int64_t)(goman_rng_unit(&g->rng) * (double)g->unit_poll_ms);
		return 1;
	}
	if (adaptive_on(g)) {
		lock(g, e);
		int64_t w = goman_adaptive_acquire(&e->slot->adaptive, &g->cfg.adaptive, now);
		unlock(g, e);
		if (w > 0) {
			/* no send token yet: give the breaker's admission (a probe slot, maybe)
			 * back and let the caller ask again, when the wait is priced anew */
			goman_breaker_record(&e->slot->breaker, e->bp, &t->pass,
					     GOMAN_BREAKER_NEUTRAL, now, &chg);
			unit_give(g, e, unit);
			*wait_ms = w;
			return 1;
		}
	}
	e->inflight++;
	t->unit = unit + 1;
	t->e = e;
	t->admitted = true;
	if (t->attempt++ == 0)
		t->started_ms = now;
	t->sent_ms = now;
	return 0;
}

void goman_guard_abandon(struct goman_guard *g, struct goman_guard_ticket *t)
{
	if (!t->admitted)
		return;
	gm_state_check(g->state);
	t->admitted = false;
	t->e->inflight--;
	unit_give(g, t->e, t->unit - 1);
	t->unit = 0;
	struct goman_breaker_change chg;
	goman_breaker_record(&t->e->slot->breaker, t->e->bp, &t->pass, GOMAN_BREAKER_NEUTRAL,
			     goman_mono_ms(), &chg);
	t->attempt--;
}

int goman_guard_after(struct goman_guard *g, struct goman_guard_ticket *t,
		      const struct goman_err *res, const char *service, const char *action,
		      int64_t *retry_in_ms)
{
	*retry_in_ms = 0;
	if (!t->admitted || !t->e)
		return 0;
	struct gm_guard_entry *e = t->e;
	gm_state_check(g->state);
	t->admitted = false;
	e->inflight--;
	unit_give(g, e, t->unit - 1);
	t->unit = 0;
	int64_t now = goman_mono_ms();
	enum goman_class cls = GOMAN_CLASS_NONE;
	bool eventual = false;
	if (res && res->rc != GOMAN_OK) {
		cls = res->cls;
		if (cls == GOMAN_CLASS_NONE) {
			struct goman_err c = *res;
			goman_err_classify(&c, service, action);
			cls = c.cls;
		}
		eventual =
			res->rc == GOMAN_ESERVICE && goman_is_eventual(service, action, res->code);
	}
	struct goman_breaker_change chg;
	enum goman_breaker_outcome bo = goman_breaker_counts(cls);
	/* a probe that got any 4xx reached a service that parsed the request and answered:
	 * it is up. Neutral here would keep a breaker half-open for as long as the probes
	 * happen to be requests the service refuses. */
	if (t->pass.probe && bo == GOMAN_BREAKER_NEUTRAL && res && res->http_status >= 400 &&
	    res->http_status < 500)
		bo = GOMAN_BREAKER_SUCCESS;
	goman_breaker_record(&e->slot->breaker, e->bp, &t->pass, bo, now, &chg);
	breaker_changed(g, e, &chg, e->bp->recovery_ms);
	bool quota = g->cfg.retry_mode != GOMAN_RETRY_LEGACY;
	if (adaptive_on(g)) {
		lock(g, e);
		goman_adaptive_update(&e->slot->adaptive, &g->cfg.adaptive,
				      cls == GOMAN_CLASS_THROTTLING, now);
		unlock(g, e);
	}
	if (cls == GOMAN_CLASS_NONE) {
		if (quota)
			goman_quota_release(&e->slot->quota, t->quota_held
								     ? t->quota_held
								     : g->cfg.quota_success_refund);
		t->quota_held = 0;
		return 0;
	}
	const struct goman_retry_policy *pol = &g->cfg.retry;
	if (t->policy) {
		const struct goman_retry_policy *np = goman_retry_policy_named(t->policy);
		if (np)
			pol = np;
	}
	struct goman_retry_in in = {
		.policy = pol,
		.mode = g->cfg.retry_mode,
		.cls = cls,
		.eventual = eventual,
		.attempt = t->attempt,
		.now_ms = now,
		.started_ms = t->started_ms,
		.deadline_ms = t->deadline_ms,
		.eventual_deadline_ms =
			t->eventual_deadline_ms
				? t->eventual_deadline_ms
				: (g->cfg.eventual_deadline_ms > INT64_MAX - t->started_ms
					   ? INT64_MAX
					   : t->started_ms + g->cfg.eventual_deadline_ms),
		.retry_after_ms = res ? res->retry_after_ms : -1,
		.prev_delay_ms = t->prev_delay_ms,
	};
	int64_t delay = 0;
	enum goman_retry_reason r = goman_retry_decide(&in, &g->rng, &delay);
	if (r == GOMAN_RETRY_YES && quota && !eventual) {
		int64_t cost = cls == GOMAN_CLASS_TIMEOUT ? g->cfg.quota_timeout_cost
							  : g->cfg.quota_retry_cost;
		if (goman_quota_acquire(&e->slot->quota, g->cfg.quota_capacity, cost))
			t->quota_held = cost;
		else
			r = GOMAN_RETRY_NO_QUOTA;
	}
	const char *why = eventual ? "eventual" : goman_class_name(cls);
	if (r != GOMAN_RETRY_YES) {
		if (r != GOMAN_RETRY_NO)
			goman_log(GOMAN_LOG_DEBUG, "RETRY",
				  "%s %s: giving up after %d attempts (%s, %s)", service,
				  action ? action : "", t->attempt, why,
				  goman_retry_reason_name(r));
		return 0;
	}
	goman_log(GOMAN_LOG_DEBUG, "RETRY", "%s %s: attempt %d %s, retrying in %lld ms", service,
		  action ? action : "", t->attempt, why, (long long)delay);
	t->prev_delay_ms = delay;
	*retry_in_ms = delay;
	if (!g->events)
		return 1;
	cJSON *ev = cJSON_CreateObject();
	cJSON_AddStringToObject(ev, "service", service ? service : "");
	cJSON_AddStringToObject(ev, "region", e->region);
	if (action)
		cJSON_AddStringToObject(ev, "action", action);
	cJSON_AddNumberToObject(ev, "attempt", t->attempt);
	cJSON_AddNumberToObject(ev, "delay_ms", (double)delay);
	cJSON_AddStringToObject(ev, "reason", cls == GOMAN_CLASS_THROTTLING ? "throttled" : why);
	if (res && res->code[0])
		cJSON_AddStringToObject(ev, "code", res->code);
	goman_event("retry", ev);
	return 1;
}

enum goman_breaker_state goman_guard_breaker_state(struct goman_guard *g, const char *service,
						   const char *region, const char *endpoint)
{
	struct gm_guard_entry *e = entry(g, service, region, endpoint);
	if (!e)
		return GOMAN_BREAKER_CLOSED;
	struct goman_breaker_view v;
	goman_breaker_unpack(atomic_load(&e->slot->breaker), &v);
	return v.state;
}

int64_t goman_guard_quota(struct goman_guard *g, const char *service, const char *region,
			  const char *endpoint)
{
	struct gm_guard_entry *e = entry(g, service, region, endpoint);
	return e ? goman_quota_available(&e->slot->quota, g->cfg.quota_capacity) : 0;
}
