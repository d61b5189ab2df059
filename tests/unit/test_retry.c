/* test_retry.c - policies, jitter bounds, deadlines, eventual-consistency codes, the retry
 * quota's accounting through the guard, and AWS_MAX_ATTEMPTS / legacy mode. */
#include <stdio.h>
#include <string.h>
#include "unit.h"
#include "goman/clock.h"
#include "goman/config.h"
#include "goman/guard.h"
#include "goman/retry.h"

static int64_t fake_now;
static int64_t fake_clock(void *ctx)
{
	(void)ctx;
	return fake_now;
}

/* One row per seed policy: its numbers, and the delay before each retry without jitter
 * (base x multiplier^(retry-1), at most cap) - the ceiling full jitter draws under. */
static const struct {
	const char *name;
	int max_retries;
	int64_t base_ms, cap_ms;
	double multiplier;
	int64_t deadline_ms;
	int64_t delays[8]; /* retries 1..8 */
} policy_rows[] = {
	{"default",
	 3,
	 1000,
	 30000,
	 2.0,
	 300000,
	 {1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000}},
	{"aws", 5, 500, 64000, 2.0, 0, {500, 1000, 2000, 4000, 8000, 16000, 32000, 64000}},
	{"critical",
	 7,
	 2000,
	 120000,
	 2.0,
	 1200000,
	 {2000, 4000, 8000, 16000, 32000, 64000, 120000, 120000}},
	{"high-frequency", 2, 100, 2000, 1.5, 30000, {100, 150, 225, 337, 506, 759, 1139, 1708}},
};

static void seed_policies_have_the_seed_numbers(void **st)
{
	for (size_t i = 0; i < sizeof(policy_rows) / sizeof(policy_rows[0]); i++) {
		const struct goman_retry_policy *p = goman_retry_policy_named(policy_rows[i].name);
		assert_non_null(p);
		assert_string_equal(p->name, policy_rows[i].name);
		assert_int_equal(p->max_retries, policy_rows[i].max_retries);
		assert_int_equal(p->base_ms, policy_rows[i].base_ms);
		assert_int_equal(p->cap_ms, policy_rows[i].cap_ms);
		assert_true(p->multiplier == policy_rows[i].multiplier);
		assert_int_equal(p->deadline_ms, policy_rows[i].deadline_ms);
		assert_int_equal(p->jitter, GOMAN_JITTER_FULL);
		struct goman_retry_policy flat = *p;
		flat.jitter = GOMAN_JITTER_NONE;
		struct goman_rng r;
		goman_rng_seed(&r, 1);
		for (int retry = 1; retry <= 8; retry++)
			if (goman_retry_backoff(&flat, retry, 0, &r) !=
			    policy_rows[i].delays[retry - 1])
				fail_msg("%s retry %d: %lld ms, want %lld", policy_rows[i].name,
					 retry, (long long)goman_retry_backoff(&flat, retry, 0, &r),
					 (long long)policy_rows[i].delays[retry - 1]);
	}
	assert_null(goman_retry_policy_named("nope"));
	assert_null(goman_retry_policy_named("custom"));
	assert_null(goman_retry_policy_named(NULL));
}

static void full_jitter_stays_within_the_exponential_bound(void **st)
{
	struct goman_rng r;
	goman_rng_seed(&r, 42);
	const struct goman_retry_policy *p = goman_retry_policy_named("default");
	int64_t bound[] = {0, 1000, 2000, 4000, 8000, 16000, 30000, 30000};
	for (int retry = 1; retry <= 7; retry++) {
		int64_t lo = INT64_MAX, hi = 0;
		for (int i = 0; i < 2000; i++) {
			int64_t d = goman_retry_backoff(p, retry, 0, &r);
			assert_true(d >= 0 && d <= bound[retry]);
			lo = d < lo ? d : lo;
			hi = d > hi ? d : hi;
		}
		/* full jitter spreads over the whole range */
		assert_true(lo < bound[retry] / 10);
		assert_true(hi > bound[retry] * 9 / 10);
	}
	struct goman_retry_policy none = *p;
	none.jitter = GOMAN_JITTER_NONE;
	assert_int_equal(goman_retry_backoff(&none, 3, 0, &r), 4000);
	const struct goman_retry_policy *hf = goman_retry_policy_named("high-frequency");
	struct goman_retry_policy hfn = *hf;
	hfn.jitter = GOMAN_JITTER_NONE;
	assert_int_equal(goman_retry_backoff(&hfn, 3, 0, &r), 225); /* 100 × 1.5² */
}

static void decorrelated_jitter_stays_between_base_and_three_times_previous(void **st)
{
	struct goman_rng r;
	goman_rng_seed(&r, 9);
	struct goman_retry_policy p = *goman_retry_policy_named("aws");
	p.jitter = GOMAN_JITTER_DECORRELATED;
	int64_t prev = 0;
	for (int i = 1; i < 200; i++) {
		int64_t d = goman_retry_backoff(&p, i, prev, &r);
		int64_t hi = 3 * (prev ? prev : p.base_ms);
		assert_true(d >= p.base_ms);
		assert_true(d <= (hi < p.cap_ms ? hi : p.cap_ms));
		prev = d;
	}
}

static void same_seed_gives_same_delays(void **st)
{
	struct goman_rng a, b;
	goman_rng_seed(&a, 1234);
	goman_rng_seed(&b, 1234);
	const struct goman_retry_policy *p = goman_retry_policy_named("aws");
	for (int i = 1; i < 6; i++)
		assert_int_equal(goman_retry_backoff(p, i, 0, &a),
				 goman_retry_backoff(p, i, 0, &b));
}

static struct goman_retry_in base_in(enum goman_class cls, int attempt)
{
	struct goman_retry_in in = {.policy = goman_retry_policy_named("default"),
				    .cls = cls,
				    .attempt = attempt,
				    .now_ms = 1000,
				    .started_ms = 1000,
				    .retry_after_ms = -1};
	return in;
}

static void decide_retries_only_retryable_classes_up_to_max(void **st)
{
	struct goman_rng r;
	goman_rng_seed(&r, 1);
	int64_t d;
	struct goman_retry_in in = base_in(GOMAN_CLASS_CLIENT, 1);
	assert_int_equal(goman_retry_decide(&in, &r, &d), GOMAN_RETRY_NO);
	in.cls = GOMAN_CLASS_AUTH;
	assert_int_equal(goman_retry_decide(&in, &r, &d), GOMAN_RETRY_NO);
	in.cls = GOMAN_CLASS_NONE;
	assert_int_equal(goman_retry_decide(&in, &r, &d), GOMAN_RETRY_NO);
	for (int a = 1; a <= 3; a++) {
		in = base_in(GOMAN_CLASS_THROTTLING, a);
		assert_int_equal(goman_retry_decide(&in, &r, &d), GOMAN_RETRY_YES);
	}
	in = base_in(GOMAN_CLASS_TRANSIENT, 4);
	assert_int_equal(goman_retry_decide(&in, &r, &d), GOMAN_RETRY_NO_ATTEMPTS);
}

static void decide_never_sleeps_past_the_deadline(void **st)
{
	struct goman_rng r;
	goman_rng_seed(&r, 1);
	struct goman_retry_policy p = *goman_retry_policy_named("default");
	p.jitter = GOMAN_JITTER_NONE; /* delay exactly 1000, 2000, 4000 */
	int64_t d;
	struct goman_retry_in in = base_in(GOMAN_CLASS_TRANSIENT, 2);
	in.policy = &p;
	in.deadline_ms = 1000 + 2500;
	assert_int_equal(goman_retry_decide(&in, &r, &d), GOMAN_RETRY_YES);
	assert_int_equal(d, 2000);
	in.now_ms = 1600; /* 1600 + 2000 ≥ 3500 */
	assert_int_equal(goman_retry_decide(&in, &r, &d), GOMAN_RETRY_NO_DEADLINE);
	/* the policy's own deadline when the call has none: 5 min from the first attempt */
	in = base_in(GOMAN_CLASS_TRANSIENT, 1);
	in.policy = &p;
	in.now_ms = 1000 + 299500;
	assert_int_equal(goman_retry_decide(&in, &r, &d), GOMAN_RETRY_NO_DEADLINE);
}

static void server_retry_after_hint_raises_the_delay(void **st)
{
	struct goman_rng r;
	goman_rng_seed(&r, 1);
	int64_t d;
	struct goman_retry_in in = base_in(GOMAN_CLASS_THROTTLING, 1);
	in.retry_after_ms = 5000;
	assert_int_equal(goman_retry_decide(&in, &r, &d), GOMAN_RETRY_YES);
	assert_int_equal(d, 5000);
}

static void eventual_codes_retry_within_their_own_deadline_not_the_count(void **st)
{
	assert_true(goman_is_eventual("ec2", "DescribeInstances", "InvalidInstanceID.NotFound"));
	assert_true(goman_is_eventual("ssm", "GetCommandInvocation", "InvocationDoesNotExist"));
	struct goman_rng r;
	goman_rng_seed(&r, 1);
	struct goman_retry_policy p = *goman_retry_policy_named("high-frequency");
	p.jitter = GOMAN_JITTER_NONE;
	int64_t d;
	struct goman_retry_in in = base_in(GOMAN_CLASS_CLIENT, 10); /* far past max_retries */
	in.policy = &p;
	in.eventual = true;
	in.eventual_deadline_ms = 1000 + 10000;
	assert_int_equal(goman_retry_decide(&in, &r, &d), GOMAN_RETRY_YES);
	assert_int_equal(d, 2000);
	in.now_ms = 1000 + 8500;
	assert_int_equal(goman_retry_decide(&in, &r, &d), GOMAN_RETRY_NO_DEADLINE);
	in.eventual_deadline_ms = 0;
	assert_int_equal(goman_retry_decide(&in, &r, &d), GOMAN_RETRY_NO);
}

static void quota_takes_costs_refuses_when_empty_and_refunds(void **st)
{
	struct goman_quota q = {0};
	assert_int_equal(goman_quota_available(&q, 500), 500);
	for (int i = 0; i < 100; i++)
		assert_true(goman_quota_acquire(&q, 500, 5));
	assert_int_equal(goman_quota_available(&q, 500), 0);
	assert_false(goman_quota_acquire(&q, 500, 5));
	goman_quota_release(&q, 10);
	assert_int_equal(goman_quota_available(&q, 500), 10);
	assert_false(goman_quota_acquire(&q, 500, 11));
	goman_quota_release(&q, 1000);
	assert_int_equal(goman_quota_available(&q, 500), 500); /* never above capacity */
}

static struct goman_config cfg;
static struct goman_guard *mkguard(enum goman_retry_mode mode)
{
	goman_config_init(&cfg);
	cfg.retry_mode = mode;
	cfg.retry.max_retries = 100;
	cfg.retry.deadline_ms = 0;
	cfg.breaker[GOMAN_SVC_EC2].failure_threshold = 1000;
	struct goman_guard_opts o = {.config = &cfg, .no_shared_state = true, .seed = 3};
	return goman_guard_new(&o, NULL);
}

static int attempt(struct goman_guard *g, struct goman_guard_ticket *t, const struct goman_err *res,
		   int64_t *rin)
{
	int64_t w;
	struct goman_err e = GOMAN_ERR_INIT;
	assert_int_equal(goman_guard_before(g, t, "ec2", "r", "e", &w, &e), 0);
	return goman_guard_after(g, t, res, "ec2", "DescribeInstances", rin);
}

static void guard_charges_5_per_retry_10_per_timeout_and_refunds_on_success(void **st)
{
	goman_clock_override(fake_clock, fake_clock, NULL);
	fake_now = 1000;
	struct goman_guard *g = mkguard(GOMAN_RETRY_STANDARD);
	struct goman_err thr = GOMAN_ERR_INIT, tmo = GOMAN_ERR_INIT;
	goman_err_clear(&thr);
	goman_err_set(&thr, GOMAN_ESERVICE, GOMAN_CLASS_THROTTLING, "RequestLimitExceeded", "slow");
	goman_err_clear(&tmo);
	goman_err_set(&tmo, GOMAN_ETIMEOUT, GOMAN_CLASS_TIMEOUT, "Timeout", "t");
	struct goman_guard_ticket t;
	goman_guard_ticket_init(&t, 0);
	int64_t rin;
	assert_int_equal(attempt(g, &t, &thr, &rin), 1);
	assert_int_equal(goman_guard_quota(g, "ec2", "r", "e"), 495);
	assert_int_equal(attempt(g, &t, &tmo, &rin), 1);
	assert_int_equal(goman_guard_quota(g, "ec2", "r", "e"), 485);
	assert_int_equal(attempt(g, &t, NULL, &rin), 0); /* success refunds the last cost */
	assert_int_equal(goman_guard_quota(g, "ec2", "r", "e"), 495);
	/* drain: each call fails once and gives up when the bucket is empty */
	int retries = 0;
	for (int i = 0; i < 200; i++) {
		goman_guard_ticket_init(&t, 0);
		retries += attempt(g, &t, &thr, &rin);
	}
	assert_int_equal(retries, 99);
	assert_int_equal(goman_guard_quota(g, "ec2", "r", "e"), 0);
	/* a first-try success refunds 1 */
	goman_guard_ticket_init(&t, 0);
	attempt(g, &t, NULL, &rin);
	assert_int_equal(goman_guard_quota(g, "ec2", "r", "e"), 1);
	goman_guard_free(g);
	goman_clock_override(NULL, NULL, NULL);
}

static void legacy_mode_has_no_quota(void **st)
{
	struct goman_guard *g = mkguard(GOMAN_RETRY_LEGACY);
	struct goman_err thr = GOMAN_ERR_INIT;
	goman_err_clear(&thr);
	goman_err_set(&thr, GOMAN_ESERVICE, GOMAN_CLASS_THROTTLING, "Throttling", "slow");
	struct goman_guard_ticket t;
	int64_t rin;
	int retries = 0;
	for (int i = 0; i < 200; i++) {
		goman_guard_ticket_init(&t, 0);
		retries += attempt(g, &t, &thr, &rin);
	}
	assert_int_equal(retries, 200);
	goman_guard_free(g);
}

static void guard_gives_up_after_max_retries_and_never_retries_client_errors(void **st)
{
	goman_clock_override(fake_clock, fake_clock, NULL);
	fake_now = 5000;
	struct goman_guard *g = mkguard(GOMAN_RETRY_STANDARD);
	g = (goman_guard_free(g), NULL);
	goman_config_init(&cfg);
	cfg.retry.max_retries = 2; /* as AWS_MAX_ATTEMPTS=3 */
	struct goman_guard_opts o = {.config = &cfg, .no_shared_state = true, .seed = 3};
	g = goman_guard_new(&o, NULL);
	struct goman_err e5 = GOMAN_ERR_INIT;
	goman_err_clear(&e5);
	goman_err_set(&e5, GOMAN_ESERVICE, GOMAN_CLASS_NONE, "InternalError", "x");
	e5.http_status = 500;
	struct goman_guard_ticket t;
	goman_guard_ticket_init(&t, 0);
	int64_t rin;
	assert_int_equal(attempt(g, &t, &e5, &rin), 1);
	assert_true(rin >= 0 && rin <= 1000);
	assert_int_equal(attempt(g, &t, &e5, &rin), 1);
	assert_true(rin <= 2000);
	assert_int_equal(attempt(g, &t, &e5, &rin), 0);
	struct goman_err c = GOMAN_ERR_INIT;
	goman_err_clear(&c);
	goman_err_set(&c, GOMAN_ESERVICE, GOMAN_CLASS_NONE, "InvalidParameterValue", "bad");
	c.http_status = 400;
	goman_guard_ticket_init(&t, 0);
	assert_int_equal(attempt(g, &t, &c, &rin), 0);
	/* ...but an eventual-consistency 4xx is retried */
	goman_err_set(&c, GOMAN_ESERVICE, GOMAN_CLASS_NONE, "InvalidInstanceID.NotFound",
		      "not yet");
	c.http_status = 400;
	goman_guard_ticket_init(&t, 0);
	assert_int_equal(attempt(g, &t, &c, &rin), 1);
	goman_guard_free(g);
	goman_clock_override(NULL, NULL, NULL);
}

static void huge_settings_saturate_instead_of_overflowing(void **st)
{
	struct goman_rng r;
	goman_rng_seed(&r, 1);
	int64_t d;
	struct goman_retry_policy p = *goman_retry_policy_named("default");
	p.deadline_ms = INT64_MAX;
	p.cap_ms = INT64_MAX;
	p.base_ms = INT64_MAX;
	p.jitter = GOMAN_JITTER_NONE;
	struct goman_retry_in in = base_in(GOMAN_CLASS_TRANSIENT, 1);
	in.policy = &p;
	in.started_ms = in.now_ms = INT64_C(1) << 40;
	/* a deadline that far is no deadline: the retry goes, after a finite delay */
	assert_int_equal(goman_retry_decide(&in, &r, &d), GOMAN_RETRY_YES);
	assert_true(d > 0);
	p.jitter = GOMAN_JITTER_DECORRELATED;
	in.prev_delay_ms = INT64_MAX;
	assert_int_equal(goman_retry_decide(&in, &r, &d), GOMAN_RETRY_YES);
	assert_true(d > 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(seed_policies_have_the_seed_numbers),
		cmocka_unit_test(full_jitter_stays_within_the_exponential_bound),
		cmocka_unit_test(decorrelated_jitter_stays_between_base_and_three_times_previous),
		cmocka_unit_test(same_seed_gives_same_delays),
		cmocka_unit_test(decide_retries_only_retryable_classes_up_to_max),
		cmocka_unit_test(decide_never_sleeps_past_the_deadline),
		cmocka_unit_test(server_retry_after_hint_raises_the_delay),
		cmocka_unit_test(eventual_codes_retry_within_their_own_deadline_not_the_count),
		cmocka_unit_test(quota_takes_costs_refuses_when_empty_and_refunds),
		cmocka_unit_test(guard_charges_5_per_retry_10_per_timeout_and_refunds_on_success),
		cmocka_unit_test(legacy_mode_has_no_quota),
		cmocka_unit_test(guard_gives_up_after_max_retries_and_never_retries_client_errors),
		cmocka_unit_test(huge_settings_saturate_instead_of_overflowing),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
