/* test_ratelimit.c - the adaptive (CUBIC) send-rate limiter, as botocore's adaptive mode:
 * off until the first throttle, multiplicative decrease on throttles, cubic recovery,
 * token waits that follow the fill rate, repair of a damaged state. Simulated time only. */
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
	double at_k = P.scale * pow((double)(t0 + (int64_t)(k * 1000) - t0) / 1000.0 - k, 3) + a.w_max;
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

static void acquire_paces_requests_at_the_fill_rate(void **st)
{
	struct goman_adaptive a;
	int64_t t = 0;
	warm(&a, &t);
	/* throttle at a low measured rate: few tokens per second */
	a.measured_rate = 4.0;
	goman_adaptive_update(&a, &P, true, t); /* rate ≈ 4 × 0.7 = 2.8/s, capped by 2×measured */
	double rate = a.fill_rate;
	/* 20 back-to-back acquisitions at the same instant queue behind each other */
	int64_t last = 0;
	for (int i = 0; i < 20; i++) {
		int64_t w = goman_adaptive_acquire(&a, &P, t);
		assert_true(w >= last);
		last = w;
	}
	/* the 20th waits about 19/rate seconds */
	double expect = 19.0 / rate * 1000.0;
	assert_true(last > expect * 0.8 && last < expect * 1.3);
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
		cmocka_unit_test(never_below_the_minimum_rate),
		cmocka_unit_test(a_damaged_state_is_repaired_not_trusted),
	};
	return cmocka_run_group_tests(tests, setup, NULL);
}
