/* test_breaker.c - every breaker transition, the probe cap, stale probes, and the guard's
 * CircuitOpen / MaxConcurrent answers, on an injected clock. */
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include "unit.h"
#include "goman/breaker.h"
#include "goman/clock.h"
#include "goman/config.h"
#include "goman/guard.h"
#include "goman/log.h"

static int64_t fake_now;
static int64_t fake_clock(void *ctx)
{
	(void)ctx;
	return fake_now;
}

static const struct goman_breaker_params P = {.failure_threshold = 3,
					      .recovery_ms = 1000,
					      .max_concurrent = 4,
					      .success_threshold = 2,
					      .probes = 2};

static enum goman_breaker_state state(_Atomic uint64_t *w)
{
	struct goman_breaker_view v;
	goman_breaker_unpack(atomic_load(w), &v);
	return v.state;
}

static void feed_fail(_Atomic uint64_t *w, const struct goman_breaker_pass *ps, int64_t now)
{
	struct goman_breaker_change c;
	goman_breaker_record(w, &P, ps, GOMAN_BREAKER_FAILURE, now, &c);
}

static void open_it(_Atomic uint64_t *w, int64_t now)
{
	struct goman_breaker_pass ps = {0};
	for (int i = 0; i < 3; i++)
		feed_fail(w, &ps, now);
}

static void closed_opens_after_threshold_consecutive_failures(void **st)
{
	_Atomic uint64_t w = 0;
	struct goman_breaker_pass ps = {0};
	struct goman_breaker_change c;
	feed_fail(&w, &ps, 10);
	feed_fail(&w, &ps, 10);
	assert_int_equal(state(&w), GOMAN_BREAKER_CLOSED);
	goman_breaker_record(&w, &P, &ps, GOMAN_BREAKER_SUCCESS, 10, &c); /* resets the count */
	feed_fail(&w, &ps, 10);
	feed_fail(&w, &ps, 10);
	assert_int_equal(state(&w), GOMAN_BREAKER_CLOSED);
	goman_breaker_record(&w, &P, &ps, GOMAN_BREAKER_FAILURE, 20, &c);
	assert_int_equal(state(&w), GOMAN_BREAKER_OPEN);
	assert_int_equal(c.from, GOMAN_BREAKER_CLOSED);
	assert_int_equal(c.to, GOMAN_BREAKER_OPEN);
}

static void throttling_and_client_errors_never_count(void **st)
{
	assert_int_equal(goman_breaker_counts(GOMAN_CLASS_THROTTLING), GOMAN_BREAKER_NEUTRAL);
	assert_int_equal(goman_breaker_counts(GOMAN_CLASS_CLIENT), GOMAN_BREAKER_NEUTRAL);
	assert_int_equal(goman_breaker_counts(GOMAN_CLASS_AUTH), GOMAN_BREAKER_NEUTRAL);
	assert_int_equal(goman_breaker_counts(GOMAN_CLASS_TRANSIENT), GOMAN_BREAKER_FAILURE);
	assert_int_equal(goman_breaker_counts(GOMAN_CLASS_TIMEOUT), GOMAN_BREAKER_FAILURE);
	_Atomic uint64_t w = 0;
	struct goman_breaker_pass ps = {0};
	struct goman_breaker_change c;
	for (int i = 0; i < 50; i++)
		goman_breaker_record(&w, &P, &ps, GOMAN_BREAKER_NEUTRAL, 1, &c);
	assert_int_equal(state(&w), GOMAN_BREAKER_CLOSED);
}

static void open_refuses_with_time_until_next_probe(void **st)
{
	_Atomic uint64_t w = 0;
	open_it(&w, 5000);
	struct goman_breaker_pass ps;
	struct goman_breaker_change c;
	int64_t in = 0;
	assert_false(goman_breaker_admit(&w, &P, 5300, &ps, &in, &c));
	assert_int_equal(in, 700);
	assert_false(goman_breaker_admit(&w, &P, 5999, &ps, &in, &c));
	assert_int_equal(in, 1);
}

static void half_open_after_recovery_admits_capped_probes(void **st)
{
	_Atomic uint64_t w = 0;
	open_it(&w, 5000);
	struct goman_breaker_pass a, b, x;
	struct goman_breaker_change c;
	int64_t in = 0;
	assert_true(goman_breaker_admit(&w, &P, 6000, &a, &in, &c));
	assert_true(a.probe);
	assert_int_equal(c.from, GOMAN_BREAKER_OPEN);
	assert_int_equal(c.to, GOMAN_BREAKER_HALF_OPEN);
	assert_true(goman_breaker_admit(&w, &P, 6001, &b, &in, &c));
	assert_false(goman_breaker_admit(&w, &P, 6002, &x, &in, &c)); /* cap 2 */
	assert_true(in > 0);
	/* a neutral answer frees its probe slot */
	goman_breaker_record(&w, &P, &b, GOMAN_BREAKER_NEUTRAL, 6003, &c);
	assert_true(goman_breaker_admit(&w, &P, 6004, &x, &in, &c));
}

static void half_open_closes_after_success_threshold(void **st)
{
	_Atomic uint64_t w = 0;
	open_it(&w, 0);
	struct goman_breaker_pass a, b;
	struct goman_breaker_change c;
	int64_t in;
	goman_breaker_admit(&w, &P, 1000, &a, &in, &c);
	goman_breaker_admit(&w, &P, 1000, &b, &in, &c);
	goman_breaker_record(&w, &P, &a, GOMAN_BREAKER_SUCCESS, 1010, &c);
	assert_int_equal(state(&w), GOMAN_BREAKER_HALF_OPEN);
	goman_breaker_record(&w, &P, &b, GOMAN_BREAKER_SUCCESS, 1020, &c);
	assert_int_equal(state(&w), GOMAN_BREAKER_CLOSED);
	assert_int_equal(c.to, GOMAN_BREAKER_CLOSED);
	struct goman_breaker_view v;
	goman_breaker_unpack(atomic_load(&w), &v);
	assert_int_equal(v.failures, 0);
}

static void probe_failure_reopens_for_a_new_window(void **st)
{
	_Atomic uint64_t w = 0;
	open_it(&w, 0);
	struct goman_breaker_pass a;
	struct goman_breaker_change c;
	int64_t in;
	goman_breaker_admit(&w, &P, 1500, &a, &in, &c);
	feed_fail(&w, &a, 1600);
	assert_int_equal(state(&w), GOMAN_BREAKER_OPEN);
	assert_false(goman_breaker_admit(&w, &P, 2000, &a, &in, &c));
	assert_int_equal(in, 600); /* the window restarts at the probe failure */
}

static void late_answer_of_an_old_probe_is_ignored(void **st)
{
	_Atomic uint64_t w = 0;
	open_it(&w, 0);
	struct goman_breaker_pass old, a, b;
	struct goman_breaker_change c;
	int64_t in;
	goman_breaker_admit(&w, &P, 1000, &old, &in, &c);
	goman_breaker_admit(&w, &P, 1000, &a, &in, &c);
	/* both probes hang (their processes died); after a whole window new probes go */
	assert_false(goman_breaker_admit(&w, &P, 1500, &b, &in, &c));
	assert_true(goman_breaker_admit(&w, &P, 2000, &b, &in, &c));
	assert_int_not_equal(b.gen, old.gen);
	feed_fail(&w, &old, 2001); /* stale: must not re-open */
	assert_int_equal(state(&w), GOMAN_BREAKER_HALF_OPEN);
}

static void closed_admits_without_writing(void **st)
{
	_Atomic uint64_t w = 0;
	struct goman_breaker_pass ps;
	struct goman_breaker_change c;
	int64_t in;
	assert_true(goman_breaker_admit(&w, &P, 1, &ps, &in, &c));
	assert_false(ps.probe);
	assert_int_equal(atomic_load(&w), 0);
}

static char logbuf[4096];
static void sink(enum goman_level l, const char *tag, const char *msg, void *ctx)
{
	size_t n = strlen(logbuf);
	snprintf(logbuf + n, sizeof(logbuf) - n, "[%s] %s\n", tag, msg);
}

static struct goman_guard *guard(int64_t thr, int64_t maxc)
{
	static struct goman_config cfg;
	goman_config_init(&cfg);
	cfg.breaker[GOMAN_SVC_EC2].failure_threshold = thr;
	cfg.breaker[GOMAN_SVC_EC2].recovery_ms = 1000;
	cfg.breaker[GOMAN_SVC_EC2].max_concurrent = maxc;
	struct goman_guard_opts o = {.config = &cfg, .no_shared_state = true, .seed = 7};
	struct goman_guard *g = goman_guard_new(&o, NULL);
	assert_non_null(g);
	return g;
}

static void guard_refuses_with_circuit_open_error_and_logs(void **st)
{
	goman_clock_override(fake_clock, fake_clock, NULL);
	goman_log_set_sink(sink, NULL);
	logbuf[0] = 0;
	fake_now = 100000;
	struct goman_guard *g = guard(2, 8);
	struct goman_err e = GOMAN_ERR_INIT, bad = GOMAN_ERR_INIT;
	goman_err_clear(&bad);
	goman_err_set(&bad, GOMAN_ESERVICE, GOMAN_CLASS_NONE, "InternalError", "boom");
	bad.http_status = 500;
	int64_t wait, rin;
	for (int i = 0; i < 2; i++) {
		struct goman_guard_ticket t;
		goman_guard_ticket_init(&t, 0);
		assert_int_equal(
			goman_guard_before(g, &t, "ec2", "us-east-1", "http://x", &wait, &e), 0);
		goman_guard_after(g, &t, &bad, "ec2", "DescribeRegions", &rin);
	}
	assert_int_equal(goman_guard_breaker_state(g, "ec2", "us-east-1", "http://x"),
			 GOMAN_BREAKER_OPEN);
	assert_non_null(strstr(logbuf, "[CIRCUIT] ec2 us-east-1: closed -> open"));
	struct goman_guard_ticket t;
	goman_guard_ticket_init(&t, 0);
	fake_now += 250;
	goman_err_clear(&e);
	assert_int_equal(goman_guard_before(g, &t, "ec2", "us-east-1", "http://x", &wait, &e), -1);
	assert_int_equal(e.rc, GOMAN_ECIRCUIT);
	assert_int_equal(e.cls, GOMAN_CLASS_CIRCUIT_OPEN);
	assert_string_equal(e.code, "CircuitOpen");
	assert_int_equal(e.retry_after_ms, 750);
	/* another endpoint is another breaker */
	assert_int_equal(goman_guard_before(g, &t, "ec2", "us-west-2", "http://x", &wait, &e), 0);
	goman_guard_abandon(g, &t);
	fake_now += 750;
	assert_int_equal(goman_guard_before(g, &t, "ec2", "us-east-1", "http://x", &wait, &e), 0);
	assert_non_null(strstr(logbuf, "open -> half-open"));
	goman_guard_free(g);
	goman_log_set_sink(NULL, NULL);
	goman_clock_override(NULL, NULL, NULL);
}

static void guard_caps_in_flight_attempts_per_process(void **st)
{
	struct goman_guard *g = guard(5, 2);
	struct goman_guard_ticket t[3];
	int64_t wait;
	struct goman_err e = GOMAN_ERR_INIT;
	for (int i = 0; i < 3; i++)
		goman_guard_ticket_init(&t[i], 0);
	assert_int_equal(goman_guard_before(g, &t[0], "ec2", "r", "e", &wait, &e), 0);
	assert_int_equal(goman_guard_before(g, &t[1], "ec2", "r", "e", &wait, &e), 0);
	assert_int_equal(goman_guard_before(g, &t[2], "ec2", "r", "e", &wait, &e), 1);
	assert_true(wait > 0);
	int64_t rin;
	goman_guard_after(g, &t[0], NULL, "ec2", "DescribeRegions", &rin);
	assert_int_equal(goman_guard_before(g, &t[2], "ec2", "r", "e", &wait, &e), 0);
	goman_guard_free(g);
}

static void since_in_the_future_counts_as_now(void **st)
{
	/* open, with since_ms at the top of its 40 bits: a damaged word, or one from before a
	 * reboot restarted the monotonic clock */
	uint64_t since = (UINT64_C(1) << 40) - 5;
	_Atomic uint64_t w = (uint64_t)GOMAN_BREAKER_OPEN | since << 24;
	struct goman_breaker_pass ps;
	struct goman_breaker_change c;
	int64_t in = 0;
	assert_false(goman_breaker_admit(&w, &P, 5000, &ps, &in, &c));
	assert_int_equal(in, P.recovery_ms);
	/* the window ran from the first look: one recovery later a probe goes */
	assert_false(goman_breaker_admit(&w, &P, 5500, &ps, &in, &c));
	assert_int_equal(in, 500);
	assert_true(goman_breaker_admit(&w, &P, 6000, &ps, &in, &c));
	assert_true(ps.probe);
	/* the same for a half-open word */
	_Atomic uint64_t h = (uint64_t)GOMAN_BREAKER_HALF_OPEN | (uint64_t)2 << 9 | since << 24;
	assert_false(goman_breaker_admit(&h, &P, 5000, &ps, &in, &c));
	assert_int_equal(in, P.recovery_ms);
	assert_true(goman_breaker_admit(&h, &P, 6000, &ps, &in, &c));
}

static void guard_half_open_probe_answered_4xx_closes_the_breaker(void **st)
{
	goman_clock_override(fake_clock, fake_clock, NULL);
	fake_now = 200000;
	struct goman_guard *g = guard(2, 8);
	struct goman_err e = GOMAN_ERR_INIT, bad = GOMAN_ERR_INIT, denied = GOMAN_ERR_INIT;
	goman_err_clear(&bad);
	goman_err_set(&bad, GOMAN_ESERVICE, GOMAN_CLASS_NONE, "InternalError", "boom");
	bad.http_status = 500;
	goman_err_clear(&denied);
	goman_err_set(&denied, GOMAN_ESERVICE, GOMAN_CLASS_NONE, "ValidationException", "no");
	denied.http_status = 400;
	int64_t wait, rin;
	struct goman_guard_ticket t;
	for (int i = 0; i < 2; i++) {
		goman_guard_ticket_init(&t, 0);
		assert_int_equal(goman_guard_before(g, &t, "ec2", "r", "e", &wait, &e), 0);
		goman_guard_after(g, &t, &bad, "ec2", "DescribeRegions", &rin);
	}
	assert_int_equal(goman_guard_breaker_state(g, "ec2", "r", "e"), GOMAN_BREAKER_OPEN);
	fake_now += 1000;
	int needed = 0;
	while (goman_guard_breaker_state(g, "ec2", "r", "e") != GOMAN_BREAKER_CLOSED &&
	       needed < 10) {
		goman_guard_ticket_init(&t, 0);
		assert_int_equal(goman_guard_before(g, &t, "ec2", "r", "e", &wait, &e), 0);
		assert_true(t.pass.probe);
		goman_guard_after(g, &t, &denied, "ec2", "DescribeRegions", &rin);
		needed++;
	}
	/* the probes count as successes: as many as the success threshold close it */
	assert_int_equal(goman_guard_breaker_state(g, "ec2", "r", "e"), GOMAN_BREAKER_CLOSED);
	struct goman_config cfg;
	goman_config_init(&cfg);
	assert_int_equal(needed, cfg.breaker[GOMAN_SVC_EC2].success_threshold);
	goman_guard_free(g);
	goman_clock_override(NULL, NULL, NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(closed_opens_after_threshold_consecutive_failures),
		cmocka_unit_test(throttling_and_client_errors_never_count),
		cmocka_unit_test(open_refuses_with_time_until_next_probe),
		cmocka_unit_test(half_open_after_recovery_admits_capped_probes),
		cmocka_unit_test(half_open_closes_after_success_threshold),
		cmocka_unit_test(probe_failure_reopens_for_a_new_window),
		cmocka_unit_test(late_answer_of_an_old_probe_is_ignored),
		cmocka_unit_test(closed_admits_without_writing),
		cmocka_unit_test(guard_refuses_with_circuit_open_error_and_logs),
		cmocka_unit_test(guard_caps_in_flight_attempts_per_process),
		cmocka_unit_test(since_in_the_future_counts_as_now),
		cmocka_unit_test(guard_half_open_probe_answered_4xx_closes_the_breaker),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
