/*
 * test_batch.c - the batching and bisection engine (libgoman/batch.c) with a fake executor:
 * bad IDs are isolated with the bisection's minimum number of calls, every good ID gets its
 * action exactly once, concurrency is never exceeded, non-ID failures are not bisected.
 */
#include "unit.h"
#include <stdio.h>
#include <string.h>
#include "goman/batch.h"
#include "goman/log.h"
#include <cjson/cJSON.h>

#define MAXN 512

struct fake {
	/* setup */
	const char *bad[16];
	size_t nbad;
	const char *bad_code;
	const char *fail_all_code; /* every call fails with this (not bisectable) */
	bool queued;               /* finish calls later, from drain() */
	/* observations */
	int calls;
	int actioned[MAXN]; /* successful actions per item index */
	int reported[MAXN];
	int inflight, max_inflight;
	size_t max_ids;
	struct goman_batch_call *queue[MAXN];
	size_t nq;
	struct goman_batch_item items[MAXN];
};

static int id_index(const char *id)
{
	unsigned i;
	if (sscanf(id, "i-%x", &i) != 1)
		return -1;
	return (int)i;
}

static bool is_bad(const struct fake *f, const char *id)
{
	for (size_t k = 0; k < f->nbad; k++)
		if (!strcmp(f->bad[k], id))
			return true;
	return false;
}

/* Plays EC2: the call succeeds for every ID, or is refused for all when one is bad. */
static void finish(struct fake *f, struct goman_batch_call *c)
{
	struct goman_err e = GOMAN_ERR_INIT;
	goman_err_clear(&e);
	if (f->fail_all_code) {
		goman_err_set(&e, GOMAN_ESERVICE, GOMAN_CLASS_THROTTLING, f->fail_all_code,
			      "slow down");
		e.retryable = true;
	}
	for (size_t i = 0; i < c->n && e.rc == GOMAN_OK; i++)
		if (is_bad(f, c->ids[i])) {
			goman_err_set(&e, GOMAN_ESERVICE, GOMAN_CLASS_CLIENT, f->bad_code,
				      "The instance ID '%s' does not exist", c->ids[i]);
			e.retryable = true; /* as the eventual table would say */
		}
	if (e.rc == GOMAN_OK)
		for (size_t i = 0; i < c->n; i++) {
			int k = id_index(c->ids[i]);
			if (k >= 0 && k < MAXN)
				f->actioned[k]++;
			goman_batch_call_state(c, i, "running", "stopping");
		}
	f->inflight--;
	goman_batch_call_done(c, &e);
}

static int fake_exec(struct goman_batch_call *c, void *ud, struct goman_err *err)
{
	(void)err;
	struct fake *f = ud;
	f->calls++;
	if (c->n > f->max_ids)
		f->max_ids = c->n;
	if (++f->inflight > f->max_inflight)
		f->max_inflight = f->inflight;
	if (f->queued)
		f->queue[f->nq++] = c;
	else
		finish(f, c);
	return 0;
}

static void on_item(const struct goman_batch_item *it, void *ud)
{
	struct fake *f = ud;
	int k = (int)(intptr_t)it->ud;
	f->reported[k]++;
	f->items[k] = *it;
}

/* Finishes queued calls oldest first until none is left. */
static void drain(struct fake *f)
{
	while (f->nq) {
		struct goman_batch_call *c = f->queue[0];
		memmove(f->queue, f->queue + 1, (f->nq - 1) * sizeof(f->queue[0]));
		f->nq--;
		finish(f, c);
	}
}

static char ids[MAXN][24];

static void make_ids(size_t n)
{
	for (size_t i = 0; i < n; i++)
		snprintf(ids[i], sizeof(ids[i]), "i-%017zx", i);
}

static struct goman_batch *run(struct fake *f, size_t n, size_t bs, size_t conc)
{
	struct goman_err err = GOMAN_ERR_INIT;
	struct goman_batch_opts o = {.batch_size = bs,
				     .concurrency = conc,
				     .action = "stop",
				     .exec = fake_exec,
				     .exec_ud = f,
				     .on_item = on_item,
				     .item_ud = f};
	make_ids(n);
	if (!f->bad_code)
		f->bad_code = "InvalidInstanceID.NotFound";
	struct goman_batch *b = goman_batch_new(&o, &err);
	assert_non_null(b);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(goman_batch_add(b, ids[i], (void *)(intptr_t)i, &err), 0);
	assert_int_equal(goman_batch_start(b, &err), 0);
	drain(f);
	assert_true(goman_batch_finished(b));
	return b;
}

/* The bisection's call count for ids[lo..lo+n): 1, plus both halves when refused. */
static int expected_calls(const struct fake *f, size_t lo, size_t n)
{
	bool bad = false;
	for (size_t i = lo; i < lo + n; i++)
		bad = bad || is_bad(f, ids[i]);
	if (!bad || n == 1)
		return 1;
	return 1 + expected_calls(f, lo, n / 2) + expected_calls(f, lo + n / 2, n - n / 2);
}

static void all_good_ids_get_one_call_per_batch(void **state)
{
	(void)state;
	struct fake f = {0};
	struct goman_batch *b = run(&f, 100, 10, 3);
	struct goman_batch_stats st;
	goman_batch_stats(b, &st);
	assert_int_equal(f.calls, 10);
	assert_int_equal(st.batches, 10);
	assert_int_equal(st.bisections, 0);
	assert_int_equal(st.ok, 100);
	for (int i = 0; i < 100; i++) {
		assert_int_equal(f.actioned[i], 1);
		assert_int_equal(f.reported[i], 1);
		assert_true(f.items[i].ok);
		assert_int_equal(f.items[i].batch, i / 10 + 1);
		assert_int_equal(f.items[i].calls, 1);
		assert_string_equal(f.items[i].previous_state, "running");
		assert_string_equal(f.items[i].state, "stopping");
	}
	goman_batch_free(b);
}

static void one_bad_id_in_16_is_isolated_in_9_calls(void **state)
{
	(void)state;
	struct fake f = {0};
	make_ids(16);
	f.bad[f.nbad++] = ids[11];
	struct goman_batch *b = run(&f, 16, 16, 1);
	/* 16 → 8+8 → 4+4 → 2+2 → 1+1: 1 + 2*log2(16) */
	assert_int_equal(f.calls, 9);
	for (int i = 0; i < 16; i++) {
		assert_int_equal(f.reported[i], 1);
		assert_int_equal(f.actioned[i], i == 11 ? 0 : 1);
		assert_int_equal(f.items[i].ok, i != 11);
	}
	assert_string_equal(f.items[11].err.code, "InvalidInstanceID.NotFound");
	assert_false(f.items[11].err.retryable);
	assert_int_equal(f.items[11].calls, 5);
	struct goman_batch_stats st;
	goman_batch_stats(b, &st);
	assert_int_equal(st.bisections, 4);
	assert_int_equal(st.isolated, 1);
	goman_batch_free(b);
}

static void four_bad_in_200_leave_196_done_exactly_once(void **state)
{
	(void)state;
	struct fake f = {0};
	make_ids(200);
	f.bad[f.nbad++] = ids[3];
	f.bad[f.nbad++] = ids[57];
	f.bad[f.nbad++] = ids[58];  /* two in one batch */
	f.bad[f.nbad++] = ids[199]; /* the last one */
	struct goman_batch *b = run(&f, 200, 10, 4);
	int want = 0;
	for (size_t lo = 0; lo < 200; lo += 10)
		want += expected_calls(&f, lo, 10);
	assert_int_equal(f.calls, want);
	int ok = 0;
	for (int i = 0; i < 200; i++) {
		assert_int_equal(f.reported[i], 1);
		bool bad = is_bad(&f, ids[i]);
		assert_int_equal(f.actioned[i], bad ? 0 : 1);
		assert_int_equal(f.items[i].ok, !bad);
		ok += f.items[i].ok;
	}
	assert_int_equal(ok, 196);
	assert_true(f.max_ids <= 10);
	goman_batch_free(b);
}

static void queued_calls_never_exceed_the_concurrency(void **state)
{
	(void)state;
	struct fake f = {.queued = true};
	make_ids(120);
	f.bad[f.nbad++] = ids[5];
	f.bad[f.nbad++] = ids[77];
	struct goman_batch *b = run(&f, 120, 5, 3);
	assert_int_equal(f.max_inflight, 3);
	for (int i = 0; i < 120; i++)
		assert_int_equal(f.reported[i], 1);
	struct goman_batch_stats st;
	goman_batch_stats(b, &st);
	assert_int_equal(st.ok, 118);
	assert_int_equal(st.failed, 2);
	assert_int_equal(st.isolated, 2);
	goman_batch_free(b);
}

static void throttled_batch_fails_whole_without_bisection(void **state)
{
	(void)state;
	struct fake f = {.fail_all_code = "RequestLimitExceeded"};
	struct goman_batch *b = run(&f, 20, 10, 2);
	assert_int_equal(f.calls, 2);
	for (int i = 0; i < 20; i++) {
		assert_false(f.items[i].ok);
		assert_string_equal(f.items[i].err.code, "RequestLimitExceeded");
		assert_true(f.items[i].err.retryable); /* exit 75, not 1 */
	}
	struct goman_batch_stats st;
	goman_batch_stats(b, &st);
	assert_int_equal(st.bisections, 0);
	goman_batch_free(b);
}

static void every_id_bad_takes_2n_minus_1_calls(void **state)
{
	(void)state;
	struct fake f = {.bad_code = "IncorrectInstanceState"};
	make_ids(8);
	for (int i = 0; i < 8; i++)
		f.bad[f.nbad++] = ids[i];
	struct goman_batch *b = run(&f, 8, 8, 2);
	assert_int_equal(f.calls, 15); /* full binary tree over 8 leaves */
	for (int i = 0; i < 8; i++)
		assert_string_equal(f.items[i].err.code, "IncorrectInstanceState");
	goman_batch_free(b);
}

static void batch_size_over_1000_is_refused(void **state)
{
	(void)state;
	struct fake f = {0};
	struct goman_err err = GOMAN_ERR_INIT;
	struct goman_batch_opts o = {.batch_size = 1001,
				     .exec = fake_exec,
				     .exec_ud = &f,
				     .on_item = on_item,
				     .item_ud = &f};
	assert_null(goman_batch_new(&o, &err));
	assert_int_equal(err.rc, GOMAN_EINVAL);
}

static void only_id_codes_are_bisectable(void **state)
{
	(void)state;
	struct goman_err e = GOMAN_ERR_INIT;
	goman_err_set(&e, GOMAN_ESERVICE, GOMAN_CLASS_CLIENT, "InvalidInstanceID.Malformed", "x");
	assert_true(goman_batch_bisectable(&e));
	goman_err_set(&e, GOMAN_ESERVICE, GOMAN_CLASS_CLIENT, "OperationNotPermitted", "x");
	assert_true(goman_batch_bisectable(&e));
	goman_err_set(&e, GOMAN_ESERVICE, GOMAN_CLASS_AUTH, "AuthFailure", "x");
	assert_false(goman_batch_bisectable(&e));
	goman_err_set(&e, GOMAN_ETIMEOUT, GOMAN_CLASS_TIMEOUT, "", "x");
	assert_false(goman_batch_bisectable(&e));
	assert_false(goman_batch_bisectable(NULL));
}

static void verbs_parse_by_name(void **state)
{
	(void)state;
	enum goman_batch_verb v;
	assert_int_equal(goman_batch_verb_parse("terminate", &v), 0);
	assert_int_equal(v, GOMAN_BATCH_TERMINATE);
	assert_string_equal(goman_batch_verb_name(GOMAN_BATCH_WAIT), "wait");
	assert_int_equal(goman_batch_verb_parse("destroy", &v), -1);
}

static char *record_text(const char *in, const char *prev, const char *state,
			 const struct goman_err *e, long line)
{
	cJSON *i = in ? cJSON_Parse(in) : NULL;
	cJSON *o = goman_batch_record(i, "stop", prev, state, 3, 412, e, line);
	assert_non_null(o);
	char *t = cJSON_PrintUnformatted(o);
	cJSON_Delete(i);
	cJSON_Delete(o);
	return t;
}

static void record_keeps_input_and_puts_results_under_batch(void **state)
{
	(void)state;
	char *t = record_text("{\"instance_id\":\"i-1\",\"state\":\"mine\",\"n\":7}", "running",
			      "stopping", NULL, 0);
	assert_string_equal(
		t, "{\"instance_id\":\"i-1\",\"state\":\"mine\",\"n\":7,\"batch\":{"
		   "\"action\":\"stop\",\"previous_state\":\"running\",\"state\":\"stopping\","
		   "\"batch\":3,\"ms\":412,\"ok\":true},\"ok\":true}");
	cJSON_free(t);
}

static void record_replaces_an_earlier_batch_result_and_keeps_ok_false(void **state)
{
	(void)state;
	char *t = record_text("{\"instance_id\":\"i-1\",\"batch\":{\"action\":\"start\",\"x\":1},"
			      "\"ok\":false}",
			      "", "", NULL, 0);
	assert_string_equal(t,
			    "{\"instance_id\":\"i-1\",\"ok\":false,\"batch\":{\"action\":\"stop\","
			    "\"batch\":3,\"ms\":412,\"ok\":true}}");
	cJSON_free(t);
}

static void record_of_a_failure_is_the_error_record_under_batch(void **state)
{
	(void)state;
	struct goman_err e = GOMAN_ERR_INIT;
	goman_err_clear(&e);
	goman_err_set(&e, GOMAN_ESERVICE, GOMAN_CLASS_CLIENT, "InvalidInstanceID.NotFound",
		      "The instance ID 'i-dead' does not exist");
	e.http_status = 400;
	char *t = record_text("{\"instance_id\":\"i-dead\",\"n\":1}", "", "", &e, 0);
	cJSON *o = cJSON_Parse(t);
	assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(o, "instance_id")), "i-dead");
	assert_true(cJSON_IsFalse(cJSON_GetObjectItem(o, "ok")));
	cJSON *b = cJSON_GetObjectItem(o, "batch");
	assert_true(cJSON_IsFalse(cJSON_GetObjectItem(b, "ok")));
	assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(b, "action")), "stop");
	assert_int_equal(cJSON_GetObjectItem(b, "batch")->valueint, 3);
	assert_string_equal(
		cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetObjectItem(b, "error"), "code")),
		"InvalidInstanceID.NotFound");
	assert_null(cJSON_GetObjectItem(b, "state"));
	cJSON_Delete(o);
	cJSON_free(t);
	/* a bad line: no input object, the line number in the error */
	goman_err_set(&e, GOMAN_EINVAL, GOMAN_CLASS_BAD_INPUT, "BadInput", "not JSON");
	t = record_text(NULL, NULL, NULL, &e, 9);
	o = cJSON_Parse(t);
	b = cJSON_GetObjectItem(o, "batch");
	assert_int_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(b, "error"), "line")->valueint, 9);
	cJSON_Delete(o);
	cJSON_free(t);
}

int main(void)
{
	goman_log_set_level(GOMAN_LOG_WARN);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(all_good_ids_get_one_call_per_batch),
		cmocka_unit_test(one_bad_id_in_16_is_isolated_in_9_calls),
		cmocka_unit_test(four_bad_in_200_leave_196_done_exactly_once),
		cmocka_unit_test(queued_calls_never_exceed_the_concurrency),
		cmocka_unit_test(throttled_batch_fails_whole_without_bisection),
		cmocka_unit_test(every_id_bad_takes_2n_minus_1_calls),
		cmocka_unit_test(batch_size_over_1000_is_refused),
		cmocka_unit_test(only_id_codes_are_bisectable),
		cmocka_unit_test(verbs_parse_by_name),
		cmocka_unit_test(record_keeps_input_and_puts_results_under_batch),
		cmocka_unit_test(record_replaces_an_earlier_batch_result_and_keeps_ok_false),
		cmocka_unit_test(record_of_a_failure_is_the_error_record_under_batch),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
