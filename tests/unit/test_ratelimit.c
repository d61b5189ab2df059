/* test_ratelimit.c - the adaptive (CUBIC) send-rate limiter, as botocore's adaptive mode:
 * off until the first throttle, multiplicative decrease on throttles, cubic recovery,
 * token waits that follow the fill rate without reserving tokens (so a raised rate applies
 * at the next ask), a first throttle before any measured bucket, repair of a damaged
 * state. Simulated time only. */
#include <math.h>
#include <string.h>
#include "unit.h"
#include "goman/retry.h"

static struct goman_adaptive_params P;

static int setup(void **st)
{
	goman_adaptive_params_default(&P);
	return 0;
}

static void sends_freely_until_the_first_throttle(void **st)
{
	struct goman_adaptive a;
	memset(&a, 0, sizeof(a));
	for (int t = 0; t < 1000; t += 10) {
		assert_int_equal(goman_adaptive_acquire(&a, &P, t), 0);
		goman_adaptive_update(&a, &P, false, t);
	}
	assert_int_equal(a.enabled, 0);
}

/* a client sending at 100 req/s for 2 s, then throttled */
static void warm(struct goman_adaptive *a, int64_t *t)
{
	memset(a, 0, sizeof(*a));
	for (; *t < 2000; *t += 10)
		goman_adaptive_update(a, &P, false, *t);
}

static void throttle_cuts_the_rate_to_beta_times_measured(void **st)
{
	struct goman_adaptive a;
	int64_t t = 0;
	warm(&a, &t);
	assert_true(a.measured_rate > 80 && a.measured_rate < 120);
	double measured = a.measured_rate;
	double r = goman_adaptive_update(&a, &P, true, t);
	assert_int_equal(a.enabled, 1);
	assert_true(fabs(r - 0.7 * measured) < 1.0);
	/* a second throttle at once cuts again, from the new (lower) rate */
	double r2 = goman_adaptive_update(&a, &P, true, t + 1);
	assert_true(r2 < r * 0.75);
}

static void rate_recovers_cubically_towards_and_past_w_max(void **st)
{
	struct goman_adaptive a;
	int64_t t = 0;
	warm(&a, &t);
	double w_max = a.measured_rate;
	goman_adaptive_update(&a, &P, true, t);
	int64_t t0 = t;
	double k = a.k;
	assert_true(k > 0);
	/* formula check against CUBIC: scale·(dt−k)³ + w_max, before the measured-rate cap */
	double at_k =
		P.scale * pow((double)(t0 + (int64_t)(k * 1000) - t0) / 1000.0 - k, 3) + a.w_max;
	assert_true(fabs(at_k - w_max) < 1.0);
	/* keep sending at the allowed rate: the rate climbs back */
	double prev = a.fill_rate, r = prev;
	t = t0;
	while (t < t0 + 10000) {
		t += (int64_t)(1000.0 / a.fill_rate) + 1;
		r = goman_adaptive_update(&a, &P, false, t);
	}
	assert_true(r > prev);
	assert_true(r > 0.9 * w_max); /* back near where it was throttled */
	assert_true(a.enabled);
}

/* A sender that is told to wait asks again after that wait; n senders do so for `ms`
 * simulated milliseconds from *t. Returns the tokens handed out. */
static int senders(struct goman_adaptive *a, int n, int64_t *t, int64_t ms, int64_t *max_wait)
{
	int64_t next[64];
	int sent = 0;
	for (int i = 0; i < n; i++)
		next[i] = *t;
	for (int64_t end = *t + ms; *t < end; (*t)++) {
		for (int i = 0; i < n; i++) {
			if (next[i] > *t)
				continue;
			int64_t w = goman_adaptive_acquire(a, &P, *t);
			if (w == 0) {
				sent++;
				next[i] = *t + 1; /* a fresh call right away */
			} else {
				assert_true(w > 0);
				if (w > *max_wait)
					*max_wait = w;
				next[i] = *t + w;
			}
		}
	}
	return sent;
}

/* the state a throttled limiter would be in at `rate` req/s, bucket empty */
static void limit(struct goman_adaptive *a, double rate)
{
	a->enabled = 1;
	a->fill_rate = rate;
	a->max_capacity = 1.0;
	a->capacity = 0;
}

static void acquire_paces_requests_at_the_fill_rate(void **st)
{
	struct goman_adaptive a;
	int64_t t = 0;
	warm(&a, &t);
	goman_adaptive_update(&a, &P, true, t);
	limit(&a, 2.8); /* few tokens per second */
	double rate = a.fill_rate;
	/* 20 senders asking again whenever told for 10 s get about 10 × rate tokens */
	int64_t max_wait = 0;
	int sent = senders(&a, 20, &t, 10000, &max_wait);
	assert_in_range(sent, (int)(10 * rate) - 1, (int)(10 * rate) + 2);
	assert_true(max_wait > 0);
}

static void a_refused_ask_reserves_nothing_and_waits_at_most_a_bucket(void **st)
{
	struct goman_adaptive a;
	int64_t t = 0;
	warm(&a, &t);
	goman_adaptive_update(&a, &P, true, t);
	limit(&a, 0.7); /* a token every ~1.4 s */
	/* 20 asks at one instant: all told to wait, none taking (or owing) a token */
	for (int i = 0; i < 20; i++) {
		int64_t w = goman_adaptive_acquire(&a, &P, t);
		assert_true(w > 0 && w <= P.bucket_ms);
	}
	assert_true(a.capacity >= 0 && a.capacity < 1);
	/* so the first ask after a token's worth of time gets it */
	t += (int64_t)(1000.0 / a.fill_rate) + 1;
	assert_int_equal(goman_adaptive_acquire(&a, &P, t), 0);
}

static void a_rate_raised_while_senders_wait_applies_at_their_next_ask(void **st)
{
	struct goman_adaptive a;
	int64_t t = 0;
	warm(&a, &t);
	goman_adaptive_update(&a, &P, true, t);
	limit(&a, 0.7);
	int64_t mw = 0;
	int slow = senders(&a, 50, &t, 5000, &mw); /* 50 queued senders at the low rate */
	assert_in_range(slow, 2, 5);
	/* the service recovers and the rate is raised (as CUBIC would, here at once) */
	a.fill_rate = 20.0;
	int fast = senders(&a, 50, &t, 5000, &mw);
	/* the next 5 s already run at ~20/s: nothing was priced at 0.7/s in advance (with
	 * reservations the 50 queued senders would still be owed ~70 s at the old rate) */
	assert_in_range(fast, 90, 125);
}

static void a_throttle_in_the_first_bucket_cuts_from_the_rate_sent(void **st)
{
	struct goman_adaptive a;
	memset(&a, 0, sizeof(a));
	/* 40 answers in 200 ms (200/s), all inside the first 1 s bucket, then a throttle */
	int64_t t = 10000;
	for (int i = 0; i < 40; i++, t += 5) {
		assert_int_equal(goman_adaptive_acquire(&a, &P, t), 0);
		goman_adaptive_update(&a, &P, false, t);
	}
	assert_true(a.measured_rate == 0); /* no bucket closed yet */
	double r = goman_adaptive_update(&a, &P, true, t);
	/* measured ≈ 41 / 0.2 s; the cut is beta × that, far above the 0.5/s floor that a
	 * measured rate of 0 would give */
	assert_true(a.measured_rate > 150 && a.measured_rate < 250);
	assert_true(fabs(r - P.beta * a.measured_rate) < 1.0);
	assert_true(r > 100);
}

static void never_below_the_minimum_rate(void **st)
{
	struct goman_adaptive a;
	int64_t t = 0;
	warm(&a, &t);
	for (int i = 0; i < 50; i++)
		goman_adaptive_update(&a, &P, true, t + i);
	assert_true(a.fill_rate >= P.min_rate);
	int64_t w = goman_adaptive_acquire(&a, &P, t + 100);
	assert_true(w <= (int64_t)(2.0 / P.min_rate * 1000) + 1);
}

static void a_damaged_state_is_repaired_not_trusted(void **st)
{
	struct goman_adaptive a;
	int64_t t = 0;
	warm(&a, &t);
	goman_adaptive_update(&a, &P, true, t);
	a.fill_rate = NAN; /* a writer killed half way through */
	a.capacity = -INFINITY;
	int64_t w = goman_adaptive_acquire(&a, &P, t + 10);
	assert_int_equal(w, 0);
	assert_true(isfinite(a.fill_rate) && a.fill_rate > 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(sends_freely_until_the_first_throttle),
		cmocka_unit_test(throttle_cuts_the_rate_to_beta_times_measured),
		cmocka_unit_test(rate_recovers_cubically_towards_and_past_w_max),
		cmocka_unit_test(acquire_paces_requests_at_the_fill_rate),
		cmocka_unit_test(a_refused_ask_reserves_nothing_and_waits_at_most_a_bucket),
		cmocka_unit_test(a_rate_raised_while_senders_wait_applies_at_their_next_ask),
		cmocka_unit_test(a_throttle_in_the_first_bucket_cuts_from_the_rate_sent),
		cmocka_unit_test(never_below_the_minimum_rate),
		cmocka_unit_test(a_damaged_state_is_repaired_not_trusted),
	};
	return cmocka_run_group_tests(tests, setup, NULL);
}
