/*
 * goman/retry.h - retry policies, jitter, the AWS standard retry quota and the adaptive
 * (CUBIC) client-side send-rate limiter, as pure functions over small plain structs.
 *
 * Nothing here allocates, sleeps or reads the clock by itself: callers pass "now" (from
 * goman/clock.h) and a random source (struct goman_rng, seeded by the caller), so tests are
 * deterministic. The quota and limiter structs are plain data so they can live in the
 * shared state file (guard.c puts them there, under its locks).
 * Errors: none; functions return decisions.
 */
#ifndef GOMAN_RETRY_H
#define GOMAN_RETRY_H
#include <stdbool.h>
#include <stdint.h>
#include "goman/error.h"

enum goman_jitter { GOMAN_JITTER_FULL = 0, GOMAN_JITTER_DECORRELATED, GOMAN_JITTER_NONE };
enum goman_retry_mode { GOMAN_RETRY_STANDARD = 0, GOMAN_RETRY_LEGACY, GOMAN_RETRY_ADAPTIVE };

struct goman_retry_policy {
	const char *name; /* "default", "aws", "critical", "high-frequency", "custom" */
	int max_retries;  /* retries after the first attempt */
	int64_t base_ms;
	int64_t cap_ms;
	double multiplier;
	int64_t deadline_ms; /* whole call, from its first attempt; 0 = none */
	enum goman_jitter jitter;
};

/* The seed's policies by name; NULL for an unknown name ("custom" is not in the table). */
const struct goman_retry_policy *goman_retry_policy_named(const char *name);
const char *goman_jitter_name(enum goman_jitter j);
int goman_jitter_from_name(const char *s, enum goman_jitter *out);
const char *goman_retry_mode_name(enum goman_retry_mode m);
int goman_retry_mode_from_name(const char *s, enum goman_retry_mode *out);

/* xorshift64* random source; seed 0 is replaced by a fixed non-zero seed. */
struct goman_rng {
	uint64_t s;
};
void goman_rng_seed(struct goman_rng *r, uint64_t seed);
uint64_t goman_rng_next(struct goman_rng *r);
/* uniform in [0, 1) */
double goman_rng_unit(struct goman_rng *r);

/* The backoff before retry number `retry` (1 = first retry). prev_ms is the previous delay
 * (decorrelated jitter), 0 at first. Full: U[0, min(cap, base·mult^(retry-1))];
 * decorrelated: min(cap, U[base, 3·prev]) (prev = base at first); none: the bound itself. */
int64_t goman_retry_backoff(const struct goman_retry_policy *p, int retry, int64_t prev_ms,
			    struct goman_rng *rng);

/* ---- AWS standard-mode retry quota (token bucket, as the SDKs) ----------------------
 * Stored as tokens *spent* so that a zero-filled struct is a full bucket. */
struct goman_quota {
	_Atomic int64_t spent;
};
/* Takes cost if available: true, else false (no retry). */
bool goman_quota_acquire(struct goman_quota *q, int64_t capacity, int64_t cost);
/* Gives back up to amount (never above capacity). */
void goman_quota_release(struct goman_quota *q, int64_t amount);
int64_t goman_quota_available(const struct goman_quota *q, int64_t capacity);

/* ---- adaptive mode: CUBIC send rate + a client token bucket (botocore's adaptive.py) ---- */
struct goman_adaptive_params {
	double min_rate;       /* requests/s floor of the bucket: 0.5 */
	double beta;           /* multiplicative decrease: 0.7 */
	double scale;          /* CUBIC C: 0.4 */
	double smoothing;      /* measured-rate EWMA weight: 0.8 */
	int64_t bucket_ms;     /* measured-rate time bucket: 500 */
	double max_rate_scale; /* new rate ≤ this × measured rate: 2.0 */
};
void goman_adaptive_params_default(struct goman_adaptive_params *p);

/* All times in ms of the monotonic clock. A zero-filled struct is "not enabled yet": until
 * the first throttle every request is sent at once (as botocore). */
struct goman_adaptive {
	int32_t enabled;
	int32_t valid;    /* 0 in a zero-filled struct: initialise on first use */
	double fill_rate; /* tokens/s */
	double max_capacity;
	double capacity; /* may go negative: reservations of queued senders */
	int64_t last_refill_ms;
	double w_max; /* CUBIC */
	double k;
	int64_t last_fail_ms;
	double measured_rate; /* EWMA of the send rate, req/s */
	double count;
	int64_t last_bucket_ms;
};
/* Before sending: 0 = a token was taken, send now. Otherwise no token was taken (nothing is
 * reserved): ask again after the returned wait (ms, at most bucket_ms), so every wait is
 * priced at the send rate of its own moment. */
int64_t goman_adaptive_acquire(struct goman_adaptive *a, const struct goman_adaptive_params *p,
			       int64_t now_ms);
/* After a response: throttled or not. Returns the new send rate (req/s). A throttle before
 * the first measuring bucket has closed takes the rate sent so far (responses counted since
 * the bucket's start) as the measured rate. */
double goman_adaptive_update(struct goman_adaptive *a, const struct goman_adaptive_params *p,
			     bool throttled, int64_t now_ms);

/* ---- the decision after one attempt ---------------------------------------------------- */
struct goman_retry_in {
	const struct goman_retry_policy *policy;
	enum goman_retry_mode mode;
	enum goman_class cls; /* of the attempt's error (NONE = success) */
	bool eventual;        /* an eventual-consistency code for this operation */
	int attempt;          /* 1 = the first attempt just finished */
	int64_t now_ms;
	int64_t started_ms;           /* the call's first attempt */
	int64_t deadline_ms;          /* absolute (mono); 0 = started + policy deadline */
	int64_t eventual_deadline_ms; /* absolute (mono); 0 = none */
	int64_t retry_after_ms;       /* server hint, -1 none */
	int64_t prev_delay_ms;
};
enum goman_retry_reason {
	GOMAN_RETRY_NO = 0, /* success or not retryable */
	GOMAN_RETRY_YES,
	GOMAN_RETRY_NO_ATTEMPTS, /* retries used up */
	GOMAN_RETRY_NO_DEADLINE, /* the next attempt would start past the deadline */
	GOMAN_RETRY_NO_QUOTA,    /* retry quota exhausted */
};
/* Pure policy part (quota is the caller's): returns YES with *delay_ms, or why not. */
enum goman_retry_reason goman_retry_decide(const struct goman_retry_in *in, struct goman_rng *rng,
					   int64_t *delay_ms);
const char *goman_retry_reason_name(enum goman_retry_reason r);

#endif
