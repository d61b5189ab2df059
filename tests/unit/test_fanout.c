/*
 * test_fanout.c - goman-fanout's engine (libgoman/fanout*.c): the --halt parser, the -j auto AIMD,
 * the halt rule, exit codes, and whole runs through goman_fanout_run() with real children
 * (input and output are temporary files, so nothing here depends on pipe timing).
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <cjson/cJSON.h>
#include "unit.h"
#include "goman/fanout.h"
#include "fanout_int.h"

static void test_halt_spec_forms(void **state)
{
	enum goman_fanout_halt h;
	unsigned long n;
	bool pct;
	assert_int_equal(goman_fanout_parse_halt("now", &h, &n, &pct), 0);
	assert_int_equal(h, GOMAN_FANOUT_HALT_NOW);
	assert_int_equal(n, 1);
	assert_false(pct);
	assert_int_equal(goman_fanout_parse_halt("soon,fail=10%", &h, &n, &pct), 0);
	assert_int_equal(h, GOMAN_FANOUT_HALT_SOON);
	assert_int_equal(n, 10);
	assert_true(pct);
	assert_int_equal(goman_fanout_parse_halt("now,fail=3", &h, &n, &pct), 0);
	assert_int_equal(h, GOMAN_FANOUT_HALT_NOW);
	assert_int_equal(n, 3);
	assert_false(pct);
	assert_int_equal(goman_fanout_parse_halt("fail=2", &h, &n, &pct), 0);
	assert_int_equal(h, GOMAN_FANOUT_HALT_SOON);
	assert_int_equal(n, 2);
}

static void test_halt_spec_rejects_malformed(void **state)
{
	enum goman_fanout_halt h;
	unsigned long n;
	bool pct;
	const char *bad[] = {"",
			     "later",
			     "now,",
			     "now,fail=",
			     "now,fail=0",
			     "soon,fail=101%",
			     "soon,fail=x",
			     "nowfail=1",
			     "soon,succeed=1",
			     "fail=-1"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(goman_fanout_parse_halt(bad[i], &h, &n, &pct), -1);
}

static void test_halt_percent_waits_for_enough_jobs(void **state)
{
	/* fail=10%: judged from 10 finished jobs on */
	assert_false(gm_halt_due(10, true, 1, 1));
	assert_false(gm_halt_due(10, true, 1, 9));
	assert_true(gm_halt_due(10, true, 1, 10));
	assert_false(gm_halt_due(10, true, 1, 11));
	assert_true(gm_halt_due(10, true, 2, 20));
	assert_false(gm_halt_due(10, true, 0, 100));
	/* counts */
	assert_false(gm_halt_due(3, false, 2, 2));
	assert_true(gm_halt_due(3, false, 3, 50));
}

static void test_aimd_halves_once_per_congestion_event(void **state)
{
	struct gm_aimd a;
	gm_aimd_init(&a, 8, 16);
	assert_int_equal(gm_aimd_slots(&a), 8);
	assert_true(gm_aimd_throttle(&a, 100, 200));
	assert_int_equal(gm_aimd_slots(&a), 4);
	/* a job started before that cut saw the old concurrency: no second cut */
	assert_false(gm_aimd_throttle(&a, 150, 210));
	assert_int_equal(gm_aimd_slots(&a), 4);
	assert_true(gm_aimd_throttle(&a, 250, 300));
	assert_int_equal(gm_aimd_slots(&a), 2);
	assert_true(gm_aimd_throttle(&a, 350, 400));
	assert_true(gm_aimd_throttle(&a, 450, 500));
	assert_int_equal(gm_aimd_slots(&a), 1); /* never below one */
}

static void test_aimd_grows_one_slot_per_window_of_successes(void **state)
{
	struct gm_aimd a;
	gm_aimd_init(&a, 4, 6);
	for (int i = 0; i < 4; i++)
		gm_aimd_ok(&a);
	assert_int_equal(gm_aimd_slots(&a), 4); /* c += 1/c: 4.92 after four */
	gm_aimd_ok(&a);
	assert_int_equal(gm_aimd_slots(&a), 5);
	for (int i = 0; i < 100; i++)
		gm_aimd_ok(&a);
	assert_int_equal(gm_aimd_slots(&a), 6); /* the bound */
	gm_aimd_init(&a, 50, 6);
	assert_int_equal(gm_aimd_slots(&a), 6); /* start is clamped too */
}

static void test_exit_code_first_match_wins(void **state)
{
	struct goman_fanout_stats st;
	memset(&st, 0, sizeof(st));
	assert_int_equal(goman_fanout_exit_code(&st), 0);
	st.failed = 1;
	assert_int_equal(goman_fanout_exit_code(&st), 1);
	st.halted = true;
	assert_int_equal(goman_fanout_exit_code(&st), 75);
	st.bad_lines = 1;
	assert_int_equal(goman_fanout_exit_code(&st), 65);
}

/* ---- whole runs ---------------------------------------------------------------------- */

static int file_with(const char *text)
{
	FILE *f = tmpfile();
	assert_non_null(f);
	int fd = dup(fileno(f));
	fclose(f);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
	return fd;
}

/* Runs argv over input; returns the output (caller frees). */
static char *run_fanout(struct goman_fanout_opts *o, char **argv, const char *input,
			struct goman_fanout_stats *st)
{
	int in = file_with(input), out = file_with("");
	o->argv = argv;
	o->in_fd = in;
	o->out_fd = out;
	struct goman_err err = GOMAN_ERR_INIT;
	assert_int_equal(goman_fanout_run(o, st, &err), 0);
	off_t n = lseek(out, 0, SEEK_END);
	char *buf = calloc(1, (size_t)n + 1);
	assert_non_null(buf);
	assert_int_equal(pread(out, buf, (size_t)n, 0), n);
	close(in);
	close(out);
	return buf;
}

static void test_run_keep_order_returns_input_order(void **state)
{
	char input[4096] = "";
	size_t len = 0;
	for (int i = 0; i < 50; i++)
		len += (size_t)snprintf(input + len, sizeof(input) - len, "{\"i\":%d}\n", i);
	struct goman_fanout_opts o;
	goman_fanout_opts_init(&o);
	o.jobs = 6;
	o.keep_order = true;
	struct goman_fanout_stats st;
	char *argv[] = {"cat", NULL};
	char *out = run_fanout(&o, argv, input, &st);
	assert_string_equal(out, input);
	assert_int_equal(st.jobs, 50);
	assert_int_equal(st.ok, 50);
	assert_int_equal(st.lines_out, 50);
	assert_int_equal(goman_fanout_exit_code(&st), 0);
	free(out);
}

static void test_run_failed_job_record_keeps_input_fields(void **state)
{
	struct goman_fanout_opts o;
	goman_fanout_opts_init(&o);
	o.jobs = 1;
	struct goman_fanout_stats st;
	char *argv[] = {"sh", "-c", "cat >/dev/null; exit 7", NULL};
	char *out = run_fanout(&o, argv, "{\"name\":\"n1\",\"keep\":[1,2]}\n", &st);
	cJSON *rec = cJSON_Parse(out);
	assert_non_null(rec);
	assert_string_equal(cJSON_GetObjectItem(rec, "name")->valuestring, "n1");
	assert_true(cJSON_IsArray(cJSON_GetObjectItem(rec, "keep")));
	assert_true(cJSON_IsFalse(cJSON_GetObjectItem(rec, "ok")));
	cJSON *fo = cJSON_GetObjectItem(rec, "fanout");
	assert_int_equal(cJSON_GetObjectItem(fo, "exit")->valueint, 7);
	assert_string_equal(
		cJSON_GetObjectItem(cJSON_GetObjectItem(fo, "error"), "code")->valuestring,
		"JobFailed");
	assert_int_equal(st.failed, 1);
	assert_int_equal(goman_fanout_exit_code(&st), 1);
	cJSON_Delete(rec);
	free(out);
}

static void test_run_batch_gives_each_job_its_lines(void **state)
{
	struct goman_fanout_opts o;
	goman_fanout_opts_init(&o);
	o.jobs = 2;
	o.batch = 4;
	o.keep_order = true;
	struct goman_fanout_stats st;
	char *argv[] = {"sh", "-c", "printf '{\"n\":%d}\\n' $(wc -l)", NULL};
	char *out = run_fanout(&o, argv, "{}\n{}\n{}\n{}\n{}\n{}\n", &st);
	assert_string_equal(out, "{\"n\":4}\n{\"n\":2}\n");
	assert_int_equal(st.jobs, 2);
	free(out);
}

struct seen_progress {
	int calls, last_calls;
	struct goman_fanout_progress last;
};

static void note_progress(const struct goman_fanout_progress *p, void *ctx)
{
	struct seen_progress *s = ctx;
	s->calls++;
	if (p->last) {
		s->last_calls++;
		s->last = *p;
	}
}

/* the engine draws nothing itself: it hands its counts to the caller's hook, with the
 * input's size when stdin is a file, and once more with last set when the run is over */
static void test_run_hands_progress_to_the_callers_hook(void **state)
{
	static const char input[] = "{\"i\":1}\n{\"i\":2}\n{\"i\":3}\n";
	struct goman_fanout_opts o;
	goman_fanout_opts_init(&o);
	o.jobs = 2;
	struct seen_progress seen = {0};
	o.progress = note_progress;
	o.progress_ctx = &seen;
	struct goman_fanout_stats st;
	char *argv[] = {"sh", "-c", "read l; [ \"$l\" != '{\"i\":2}' ]", NULL};
	char *out = run_fanout(&o, argv, input, &st);
	assert_int_equal(seen.last_calls, 1);
	assert_true(seen.calls >= 1);
	assert_int_equal(seen.last.done, 3);
	assert_int_equal(seen.last.failed, 1);
	assert_int_equal(seen.last.running, 0);
	assert_int_equal(seen.last.bytes_total, (long long)strlen(input));
	assert_int_equal(seen.last.bytes_in, (long long)strlen(input));
	free(out);
}

static bool throttling(const char *line)
{
	return gm_line_reports_throttling(line, strlen(line));
}

static void test_throttling_is_the_class_of_an_error_record_whatever_the_spacing(void **state)
{
	assert_true(throttling("{\"error\":{\"class\":\"throttling\"}}"));
	assert_true(throttling("{ \"error\" : { \"code\": \"Throttling\",\n"
			       "\t\"class\" : \"throttling\" } }"));
	assert_true(throttling("{\"error\":{\"class\":\"thrott\\u006cing\"}}"));
	assert_true(throttling(
		"{\"i\":1,\"install\":{\"ok\":false,\"error\":{\"class\":\"throttling\"}}}"));
	/* the length bounds the line: what follows is not part of it */
	assert_true(
		gm_line_reports_throttling("{\"error\":{\"class\":\"throttling\"}}garbage", 36));
}

static void test_throttling_is_not_a_mention_of_the_word(void **state)
{
	assert_false(throttling("{\"error\":{\"class\":\"transient\"},\"note\":\"throttling\"}"));
	assert_false(throttling("{\"msg\":\"\\\"class\\\":\\\"throttling\\\"\"}"));
	assert_false(throttling("{\"class\":\"throttling\"}"));
	assert_false(throttling("\"class\":\"throttling\""));
	assert_false(throttling("{\"error\":{\"class\":\"throttling\"}"));
	assert_false(throttling(""));
	assert_false(gm_line_reports_throttling("{\"error\":{\"class\":\"throttling\"}}", 20));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_halt_spec_forms),
		cmocka_unit_test(test_halt_spec_rejects_malformed),
		cmocka_unit_test(test_halt_percent_waits_for_enough_jobs),
		cmocka_unit_test(test_aimd_halves_once_per_congestion_event),
		cmocka_unit_test(test_aimd_grows_one_slot_per_window_of_successes),
		cmocka_unit_test(test_exit_code_first_match_wins),
		cmocka_unit_test(test_run_keep_order_returns_input_order),
		cmocka_unit_test(test_run_failed_job_record_keeps_input_fields),
		cmocka_unit_test(test_run_batch_gives_each_job_its_lines),
		cmocka_unit_test(test_run_hands_progress_to_the_callers_hook),
		cmocka_unit_test(
			test_throttling_is_the_class_of_an_error_record_whatever_the_spacing),
		cmocka_unit_test(test_throttling_is_not_a_mention_of_the_word),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
