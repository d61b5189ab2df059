/*
 * retry.c - retry policies and jitter, the AWS standard retry quota, and the adaptive
 * CUBIC send-rate limiter of botocore's adaptive mode (botocore/retries/{adaptive,
 * throttling,bucket,quota}.py), as pure functions over plain structs (see goman/retry.h).
 * No allocation, no clock reads, no sleeping: callers pass time and randomness in.
 */
#include <math.h>
#include <stdatomic.h>
#include <string.h>
#include "goman/retry.h"

/* the seed's policies (PERFORMANCE_GUIDE.md); aws has no deadline of its own */
static const struct goman_retry_policy policies[] = {
	{"default", 3, 1000, 30000, 2.0, 5 * 60 * 1000, GOMAN_JITTER_FULL},
	{"aws", 5, 500, 64000, 2.0, 0, GOMAN_JITTER_FULL},
	{"critical", 7, 2000, 120000, 2.0, 20 * 60 * 1000, GOMAN_JITTER_FULL},
	{"high-frequency", 2, 100, 2000, 1.5, 30000, GOMAN_JITTER_FULL},
	/* one attempt: a call that only asks whether the endpoint has an action (an
	 * emulator without it answers 5xx, and each attempt would count on the breaker) */
	{"once", 0, 0, 0, 1.0, 0, GOMAN_JITTER_NONE},
};

const struct goman_retry_policy *goman_retry_policy_named(const char *name)
{
	for (size_t i = 0; name && i < sizeof(policies) / sizeof(policies[0]); i++)
		if (strcmp(policies[i].name, name) == 0)
			return &policies[i];
	return NULL;
}

static const char *const jitter_names[] = {"full", "decorrelated", "none"};
static const char *const mode_names[] = {"standard", "legacy", "adaptive"};

const char *goman_jitter_name(enum goman_jitter j)
{
	return (unsigned)j < 3 ? jitter_names[j] : "full";
}

int goman_jitter_from_name(const char *s, enum goman_jitter *out)
{
	for (int i = 0; s && i < 3; i++)
		if (strcmp(s, jitter_names[i]) == 0)
			return *out = (enum goman_jitter)i, 0;
	return -1;
}

const char *goman_retry_mode_name(enum goman_retry_mode m)
{
	return (unsigned)m < 3 ? mode_names[m] : "standard";
}

int goman_retry_mode_from_name(const char *s, enum goman_retry_mode *out)
{
	for (int i = 0; s && i < 3; i++)
		if (strcmp(s, mode_names[i]) == 0)
			return *out = (enum goman_retry_mode)i, 0;
	return -1;
}

void goman_rng_seed(struct goman_rng *r, uint64_t seed)
{
	r->s = seed ? seed : UINT64_C(0x9E3779B97F4A7C15);
}

uint64_t goman_rng_next(struct goman_rng *r)
{
	uint64_t x = r->s ? r->s : UINT64_C(0x9E3779B97F4A7C15);
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	r->s = x;
	return x * UINT64_C(0x2545F4914F6CDD1D);
}

double goman_rng_unit(struct goman_rng *r)
{
	return (double)(goman_rng_next(r) >> 11) * (1.0 / 9007199254740992.0);
}

/* Settings come from files and the environment: any int64_t may arrive. Durations are
 * added and converted without overflow (a float outside int64_t's range makes the cast
 * undefined; a sum past INT64_MAX is undefined too). */
#define MS_MAX INT64_C(4611686018427387904) /* 2^62: far past any deadline, exact as double */

static int64_t ms_of(double d)
{
	return !(d > 0) ? 0 : d >= (double)MS_MAX ? MS_MAX : (int64_t)d;
}

static int64_t add_sat(int64_t a, int64_t b)
{
	if (b > 0 && a > INT64_MAX - b)
		return INT64_MAX;
	if (b < 0 && a < INT64_MIN - b)
		return INT64_MIN;
	return a + b;
}

int64_t goman_retry_backoff(const struct goman_retry_policy *p, int retry, int64_t prev_ms,
			    struct goman_rng *rng)
{
	double cap = (double)p->cap_ms, base = (double)p->base_ms;
	if (p->jitter == GOMAN_JITTER_DECORRELATED) {
		double lo = base, hi = 3.0 * (double)(prev_ms > 0 ? prev_ms : p->base_ms);
		if (hi < lo)
			hi = lo;
		double d = lo + goman_rng_unit(rng) * (hi - lo);
		return ms_of(d < cap ? d : cap);
	}
	double bound = base;
	for (int i = 1; i < retry && bound < cap; i++)
		bound *= p->multiplier > 1.0 ? p->multiplier : 1.0;
	if (bound > cap)
		bound = cap;
	if (p->jitter == GOMAN_JITTER_NONE)
		return ms_of(bound);
	int64_t d = ms_of(goman_rng_unit(rng) * (bound + 1.0));
	return d > ms_of(bound) ? ms_of(bound) : d;
}

/* ---- quota ---------------------------------------------------------------------------- */

bool goman_quota_acquire(struct goman_quota *q, int64_t capacity, int64_t cost)
{
	int64_t s = atomic_load_explicit(&q->spent, memory_order_relaxed), n;
	do {
		/* a damaged value heals to a full bucket; the swap still expects the value that is
		 * there (expecting the healed one would never match, and spin) */
		int64_t have = s < 0 || s > capacity ? 0 : s;
		if (capacity - have < cost)
			return false;
		n = have + cost;
	} while (!atomic_compare_exchange_weak_explicit(&q->spent, &s, n, memory_order_acq_rel,
							memory_order_relaxed));
	return true;
}

void goman_quota_release(struct goman_quota *q, int64_t amount)
{
	int64_t s = atomic_load_explicit(&q->spent, memory_order_relaxed);
	while (s != 0) { /* full bucket: nothing to do and no write (the common case) */
		int64_t n = s - amount;
		if (n < 0)
			n = 0;
		if (atomic_compare_exchange_weak_explicit(&q->spent, &s, n, memory_order_acq_rel,
							  memory_order_relaxed))
			return;
	}
}

int64_t goman_quota_available(const struct goman_quota *q, int64_t capacity)
{
	int64_t s = atomic_load_explicit(&((struct goman_quota *)q)->spent, memory_order_relaxed);
	if (s < 0 || s > capacity)
		s = 0;
	return capacity - s;
}

/* ---- adaptive ------------------------------------------------------------------------- */

void goman_adaptive_params_default(struct goman_adaptive_params *p)
{
	p->min_rate = 0.5;
	p->beta = 0.7;
	p->scale = 0.4;
	p->smoothing = 0.8;
	p->bucket_ms = 500;
	p->max_rate_scale = 2.0;
}

static int64_t floor_to(int64_t t, int64_t step)
{
	if (step <= 0)
		step = 500;
	return t - ((t % step) + step) % step;
}

/* A struct that is zero, or was damaged by a writer killed mid-update (values are written
 * one by one), is brought back to botocore's starting state. */
static void adaptive_check(struct goman_adaptive *a, const struct goman_adaptive_params *p,
			   int64_t now)
{
	bool sane = a->valid == 1 && isfinite(a->fill_rate) && a->fill_rate > 0 &&
		    isfinite(a->max_capacity) && a->max_capacity >= 1 && isfinite(a->capacity) &&
		    isfinite(a->w_max) && a->w_max >= 0 && isfinite(a->k) &&
		    isfinite(a->measured_rate) && a->measured_rate >= 0 && isfinite(a->count) &&
		    a->last_refill_ms <= now + 1000;
	if (sane)
		return;
	memset(a, 0, sizeof(*a));
	a->fill_rate = 1.0 > p->min_rate ? 1.0 : p->min_rate;
	a->max_capacity = 1.0;
	a->last_refill_ms = now;
	a->last_fail_ms = now;
	a->last_bucket_ms = floor_to(now, 1000);
	a->valid = 1;
}

static void refill(struct goman_adaptive *a, int64_t now)
{
	if (now > a->last_refill_ms) {
		a->capacity += (double)(now - a->last_refill_ms) / 1000.0 * a->fill_rate;
		if (a->capacity > a->max_capacity)
			a->capacity = a->max_capacity;
	}
	a->last_refill_ms = now;
}

int64_t goman_adaptive_acquire(struct goman_adaptive *a, const struct goman_adaptive_params *p,
			       int64_t now_ms)
{
	adaptive_check(a, p, now_ms);
	if (!a->enabled)
		return 0;
	refill(a, now_ms);
	if (a->capacity >= 1.0) {
		a->capacity -= 1.0;
		return 0;
	}
	/* No token, and none reserved: the caller asks again after the wait. A reservation
	 * would price the wait at the rate of this moment for good, so a queue built while the
	 * rate was low would drain at that rate long after it recovered; asking again prices
	 * each wait at the rate of its own moment. The wait is capped at one measuring bucket
	 * so a rate that rises meanwhile is seen soon. (A debt written by an older reserving
	 * writer is bounded like damage.) */
	double floor_cap = -30.0 * a->fill_rate;
	if (a->capacity < floor_cap)
		a->capacity = floor_cap;
	int64_t wait = (int64_t)ceil((1.0 - a->capacity) / a->fill_rate * 1000.0);
	int64_t cap = p->bucket_ms > 0 ? p->bucket_ms : 500;
	if (wait < 1)
		wait = 1;
	return wait < cap ? wait : cap;
}

double goman_adaptive_update(struct goman_adaptive *a, const struct goman_adaptive_params *p,
			     bool throttled, int64_t now_ms)
{
	adaptive_check(a, p, now_ms);
	/* RateClocker: EWMA of what was sent, per time bucket */
	int64_t bucket = floor_to(now_ms, p->bucket_ms);
	a->count += 1.0;
	if (bucket > a->last_bucket_ms) {
		double cur = a->count / ((double)(bucket - a->last_bucket_ms) / 1000.0);
		a->measured_rate = cur * p->smoothing + a->measured_rate * (1.0 - p->smoothing);
		a->count = 0;
		a->last_bucket_ms = bucket;
	}
	if (throttled && a->measured_rate <= 0) {
		/* throttled inside the first bucket, before any rate was measured: botocore would
		 * cut from 0 to the minimum rate and crawl back from there; the rate actually sent
		 * so far is the better start */
		int64_t el = now_ms - a->last_bucket_ms;
		a->measured_rate = a->count / ((double)(el > 1 ? el : 1) / 1000.0);
	}
	double rate;
	if (!throttled) {
		double dt = (double)(now_ms - a->last_fail_ms) / 1000.0 - a->k;
		rate = p->scale * dt * dt * dt + a->w_max;
	} else {
		double use = a->enabled && a->fill_rate < a->measured_rate ? a->fill_rate
									   : a->measured_rate;
		a->w_max = use;
		a->k = cbrt(use * (1.0 - p->beta) / p->scale);
		a->last_fail_ms = now_ms;
		rate = use * p->beta;
		a->enabled = 1;
	}
	double lim = p->max_rate_scale * a->measured_rate;
	if (rate > lim)
		rate = lim;
	refill(a, now_ms);
	a->fill_rate = rate > p->min_rate ? rate : p->min_rate;
	a->max_capacity = rate >= 1.0 ? rate : 1.0;
	if (a->capacity > a->max_capacity)
		a->capacity = a->max_capacity;
	return a->fill_rate;
}

/* ---- the decision --------------------------------------------------------------------- */

static const char *const reason_names[] = {"no", "retry", "attempts", "deadline", "quota"};

const char *goman_retry_reason_name(enum goman_retry_reason r)
{
	return (unsigned)r < 5 ? reason_names[r] : "no";
}

enum goman_retry_reason goman_retry_decide(const struct goman_retry_in *in, struct goman_rng *rng,
					   int64_t *delay_ms)
{
	const struct goman_retry_policy *p = in->policy;
	*delay_ms = 0;
	if (in->cls == GOMAN_CLASS_NONE)
		return GOMAN_RETRY_NO;
	bool retryable = in->cls == GOMAN_CLASS_THROTTLING || in->cls == GOMAN_CLASS_TRANSIENT ||
			 in->cls == GOMAN_CLASS_TIMEOUT;
	if (!retryable && !in->eventual)
		return GOMAN_RETRY_NO;
	int64_t deadline = in->deadline_ms;
	if (!deadline && p->deadline_ms > 0)
		deadline = add_sat(in->started_ms, p->deadline_ms);
	if (in->eventual) {
		/* "not yet" answers: their own deadline, not the retry count */
		if (in->eventual_deadline_ms <= 0)
			return GOMAN_RETRY_NO;
		if (!deadline || in->eventual_deadline_ms < deadline)
			deadline = in->eventual_deadline_ms;
	} else if (in->attempt - 1 >= p->max_retries) {
		return GOMAN_RETRY_NO_ATTEMPTS;
	}
	int retry = in->attempt < 1 ? 1 : in->attempt;
	int64_t d = goman_retry_backoff(p, retry > 62 ? 62 : retry, in->prev_delay_ms, rng);
	if (in->retry_after_ms > d)
		d = in->retry_after_ms < p->cap_ms ? in->retry_after_ms : p->cap_ms;
	if (deadline && add_sat(in->now_ms, d) >= deadline)
		return GOMAN_RETRY_NO_DEADLINE;
	*delay_ms = d;
	return GOMAN_RETRY_YES;
}
