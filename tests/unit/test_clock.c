/*
 * test_clock.c - the duration and time parsers behind flags and records (clock.c).
 */
#include <stdint.h>
#include <string.h>
#include "unit.h"
#include "goman/clock.h"

static void durations_in_every_unit_add_up(void **state)
{
	int64_t ms;
	assert_int_equal(goman_parse_duration_ms("90", &ms), 0);
	assert_int_equal(ms, 90000);
	assert_int_equal(goman_parse_duration_ms("1.5s", &ms), 0);
	assert_int_equal(ms, 1500);
	assert_int_equal(goman_parse_duration_ms("1h2m3s4ms", &ms), 0);
	assert_int_equal(ms, 3723004);
	assert_int_equal(goman_parse_duration_ms("2d", &ms), 0);
	assert_int_equal(ms, 172800000);
}

static void durations_nan_inf_and_huge_are_rejected(void **state)
{
	static const char *const bad[] = {"nan",   "NaN",    "nanms",  "inf",   "infinity", "-inf",
					  "1e999", "1e999s", "9e15d",  "0x10s", " 5s",      "+5s",
					  "-5s",   "5s nan", "1e308d", "",      "s",        "5x"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int64_t ms = 42;
		if (goman_parse_duration_ms(bad[i], &ms) != -1)
			fail_msg("'%s' was accepted as %lld ms", bad[i], (long long)ms);
		assert_int_equal(ms, 42); /* a refused value leaves the output alone */
	}
}

/* goman-fanout's --timeout, --grace and --retry-delay had a parser of their own: every form
 * it took still reads the same, and what it refused but the one grammar has (1h30m, 0) now
 * reads too */
static void durations_fanout_took_read_the_same(void **state)
{
	static const struct {
		const char *s;
		int64_t ms;
	} same[] = {{"30", 30000},   {"1.5s", 1500}, {"500ms", 500},     {"2m", 120000},
		    {"1h", 3600000}, {"0.5", 500},   {"1h30m", 5400000}, {"0", 0}};
	for (size_t i = 0; i < sizeof(same) / sizeof(same[0]); i++) {
		int64_t ms = -1;
		if (goman_parse_duration_ms(same[i].s, &ms) != 0 || ms != same[i].ms)
			fail_msg("'%s' read as %lld ms, not %lld", same[i].s, (long long)ms,
				 (long long)same[i].ms);
	}
	static const char *const refused[] = {"", "-5", "5 parsecs", "s", "5parsecs"};
	for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
		int64_t ms = 7;
		assert_int_equal(goman_parse_duration_ms(refused[i], &ms), -1);
		assert_int_equal(ms, 7);
	}
}

static void rfc3339_round_trips_and_clamps_what_it_cannot_say(void **state)
{
	char buf[64];
	int64_t t;
	assert_int_equal(goman_parse_time("2026-12-03T05:26:41.123Z", &t), 0);
	assert_string_equal(goman_rfc3339(t, buf, sizeof(buf)), "2026-12-03T05:26:41.123Z");
	/* before 1970 the milliseconds count forwards from the second, as for any other time */
	assert_string_equal(goman_rfc3339(-1, buf, sizeof(buf)), "1969-12-31T23:59:59.999Z");
	assert_string_equal(goman_rfc3339(INT64_MAX, buf, sizeof(buf)), "9999-12-31T23:59:59.999Z");
	assert_string_equal(goman_rfc3339(INT64_MIN, buf, sizeof(buf)), "0000-01-01T00:00:00.000Z");
}

static int64_t slept_ms;
static void fake_sleep(int64_t ms, void *ctx)
{
	(void)ctx;
	slept_ms += ms;
}

static void sleeping_goes_through_the_override_and_back_to_the_real_clock(void **st)
{
	(void)st;
	slept_ms = 0;
	goman_clock_override_sleep(fake_sleep);
	int64_t t0 = goman_mono_ms();
	goman_sleep_ms(3600000);
	goman_sleep_ms(250);
	/* an hour asked, none spent: the override took both */
	assert_true(goman_mono_ms() - t0 < 1000);
	assert_int_equal(slept_ms, 3600250);
	goman_clock_override_sleep(NULL);
	t0 = goman_mono_ms();
	goman_sleep_ms(20);
	assert_true(goman_mono_ms() - t0 >= 19);
	assert_int_equal(slept_ms, 3600250);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(durations_in_every_unit_add_up),
		cmocka_unit_test(sleeping_goes_through_the_override_and_back_to_the_real_clock),
		cmocka_unit_test(durations_nan_inf_and_huge_are_rejected),
		cmocka_unit_test(durations_fanout_took_read_the_same),
		cmocka_unit_test(rfc3339_round_trips_and_clamps_what_it_cannot_say),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
