/*
 * test_metrics.c - KPIs computed on a recorded stream match values worked out by hand
 * (tests/fixtures/metrics/demo-stream.jsonl; the arithmetic is in the comments).
 */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <cjson/cJSON.h>
#include "unit.h"
#include "goman/metrics.h"

static struct goman_metrics *load_demo(void)
{
	FILE *f = fopen("tests/fixtures/metrics/demo-stream.jsonl", "r");
	assert_non_null(f);
	struct goman_metrics *m = goman_metrics_new(NULL);
	char line[4096];
	while (fgets(line, sizeof(line), f)) {
		cJSON *j = cJSON_Parse(line);
		assert_non_null(j);
		goman_metrics_feed(m, j);
		cJSON_Delete(j);
	}
	fclose(f);
	return m;
}

static double num(const cJSON *o, const char *k)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
	assert_true(cJSON_IsNumber(v));
	return v->valuedouble;
}

static void test_cluster_kpis_match_hand_computed_values(void **state)
{
	struct goman_metrics *m = load_demo();
	cJSON *j = goman_metrics_json(m);
	const cJSON *c = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "clusters"), 0);
	assert_string_equal(cJSON_GetObjectItem(c, "cluster")->valuestring, "demo");
	/* agent-0 appears twice: the later record replaces the earlier one */
	assert_int_equal((int)num(c, "nodes"), 3);
	assert_int_equal((int)num(c, "nodes_ok"), 2);
	/* first launch 10:00:00 → ready event 10:01:30 */
	assert_int_equal((int)num(c, "creation_ms"), 90000);
	/* first install start: server 10:01:10 - 40 s = 10:00:30; last end 10:01:20 */
	assert_int_equal((int)num(c, "installation_ms"), 50000);
	/* last install 10:01:20 → ready 10:01:30 */
	assert_int_equal((int)num(c, "configuration_ms"), 10000);
	assert_true(fabs(num(c, "success_pct") - 66.67) < 0.01);
	/* busy 30+40 + 40+30 + 35 = 175 s over 90 s x min(3 slots, 3 nodes) */
	assert_true(fabs(num(c, "parallel_efficiency_pct") - 64.81) < 0.01);
	/* critical path: server 30+40 = 70 s, agent-0 max(40, 30)+30 = 70 s */
	assert_int_equal((int)num(c, "critical_path_ms"), 70000);
	assert_true(fabs(num(c, "schedule_efficiency_pct") - 77.78) < 0.01);
	cJSON_Delete(j);
	goman_metrics_free(m);
}

static void test_health_counts_retries_idempotency_and_breakers(void **state)
{
	struct goman_metrics *m = load_demo();
	cJSON *j = goman_metrics_json(m);
	const cJSON *h = cJSON_GetObjectItem(j, "health");
	assert_int_equal((int)num(h, "api_calls"), 4);
	assert_int_equal((int)num(h, "retries"), 1);
	assert_true(fabs(num(h, "retry_pct") - 25.0) < 0.001);
	assert_true(fabs(num(cJSON_GetObjectItem(h, "idempotency"), "hit_pct") - 50.0) < 0.001);
	assert_string_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(h, "breakers"), "ec2/us-east-1")
				    ->valuestring,
			    "open");
	/* 4 calls over the span of event times, 10:00:00 to 10:01:30 */
	assert_true(fabs(num(h, "throughput_ops_per_min") - 4 * 60.0 / 90.0) < 0.01);
	cJSON_Delete(j);
	goman_metrics_free(m);
}

static void test_latency_quantiles_are_within_two_percent(void **state)
{
	struct goman_metrics *m = goman_metrics_new(NULL);
	/* 1..1000 ms: exact p50 = 500, p95 = 950, p99 = 990 */
	for (int i = 1; i <= 1000; i++) {
		char line[256];
		snprintf(line, sizeof(line),
			 "{\"event\":\"api_call\",\"service\":\"ssm\",\"action\":\"SendCommand\","
			 "\"ms\":%d,\"outcome\":\"ok\"}",
			 i);
		cJSON *e = cJSON_Parse(line);
		goman_metrics_feed(m, e);
		cJSON_Delete(e);
	}
	cJSON *j = goman_metrics_json(m);
	const cJSON *l = cJSON_GetArrayItem(
		cJSON_GetObjectItem(cJSON_GetObjectItem(j, "health"), "latency"), 0);
	assert_true(fabs(num(l, "p50_ms") - 500) / 500 < 0.02);
	assert_true(fabs(num(l, "p95_ms") - 950) / 950 < 0.02);
	assert_true(fabs(num(l, "p99_ms") - 990) / 990 < 0.02);
	assert_int_equal((int)num(l, "max_ms"), 1000);
	cJSON_Delete(j);
	goman_metrics_free(m);
}

static void test_check_reports_each_breached_target(void **state)
{
	struct goman_metrics *m = load_demo();
	struct goman_targets t;
	goman_targets_default(&t);
	int n = -1;
	char *lines = goman_metrics_check(m, &t, &n);
	/* success 66.7 % <= 99, efficiency 64.8 % <= 80, retry 25 % >= 5, ec2 breaker open */
	assert_int_equal(n, 4);
	assert_non_null(strstr(lines, "success rate"));
	assert_non_null(strstr(lines, "parallel efficiency"));
	assert_non_null(strstr(lines, "retry rate"));
	assert_non_null(strstr(lines, "breaker ec2/us-east-1 is open"));
	free(lines);
	/* loosened targets: no breach, no text */
	t.success_pct = 50, t.efficiency_pct = 50, t.retry_pct = 30, t.breaker_open_alert = 0;
	lines = goman_metrics_check(m, &t, &n);
	assert_int_equal(n, 0);
	assert_null(lines);
	/* a tight creation target trips */
	t.creation_ms = 60000;
	lines = goman_metrics_check(m, &t, &n);
	assert_int_equal(n, 1);
	assert_non_null(strstr(lines, "creation time"));
	free(lines);
	goman_metrics_free(m);
}

static void test_memory_does_not_grow_with_repeated_records(void **state)
{
	struct goman_metrics *m = goman_metrics_new(NULL);
	cJSON *rec = cJSON_Parse(
		"{\"cluster\":\"c\",\"name\":\"c-agent-0\",\"role\":\"agent\",\"ok\":true}");
	for (int i = 0; i < 100000; i++)
		goman_metrics_feed(m, rec);
	cJSON *j = goman_metrics_json(m);
	assert_int_equal(
		(int)num(cJSON_GetArrayItem(cJSON_GetObjectItem(j, "clusters"), 0), "nodes"), 1);
	cJSON_Delete(j);
	cJSON_Delete(rec);
	goman_metrics_free(m);
}

static struct goman_metrics *feed_lines(const char *const *lines, size_t n)
{
	struct goman_metrics *m = goman_metrics_new(NULL);
	for (size_t i = 0; i < n; i++) {
		cJSON *j = cJSON_Parse(lines[i]);
		assert_non_null(j);
		goman_metrics_feed(m, j);
		cJSON_Delete(j);
	}
	return m;
}

static void test_infinite_latency_is_not_used_in_arithmetic(void **state)
{
	/* cJSON reads 1e999 as infinity */
	static const char *const lines[] = {
		"{\"event\":\"api_call\",\"service\":\"ec2\",\"action\":\"X\",\"ms\":1e999}",
		"{\"event\":\"api_call\",\"service\":\"ec2\",\"action\":\"X\",\"ms\":-1e999}",
		"{\"event\":\"api_call\",\"service\":\"ec2\",\"action\":\"X\",\"ms\":1e308}",
		"{\"event\":\"api_call\",\"service\":\"ec2\",\"action\":\"X\",\"ms\":1e308}",
	};
	struct goman_metrics *m = feed_lines(lines, 4);
	cJSON *j = goman_metrics_json(m);
	const cJSON *s = cJSON_GetArrayItem(
		cJSON_GetObjectItem(cJSON_GetObjectItem(j, "health"), "latency"), 0);
	assert_int_equal((int)num(s, "count"), 4);
	assert_true(isfinite(num(s, "max_ms")));
	assert_true(isfinite(num(s, "p99_ms")));
	char *prom = goman_metrics_prom(m);
	assert_null(strstr(prom, "inf"));
	assert_null(strstr(prom, "nan"));
	free(prom);
	cJSON_Delete(j);
	goman_metrics_free(m);
}

static void test_huge_provision_and_install_times_saturate(void **state)
{
	static const char *const lines[] = {
		"{\"cluster\":\"c\",\"name\":\"s\",\"role\":\"server\",\"ok\":true,"
		"\"provision\":{\"ms\":9e18},\"install\":{\"ms\":9e18},"
		"\"t\":{\"launched\":\"2026-01-01T10:00:00Z\",\"installed\":\"2026-01-01T10:01:"
		"00Z\"}}",
		"{\"cluster\":\"c\",\"name\":\"a\",\"role\":\"agent\",\"ok\":true,"
		"\"provision\":{\"ms\":1e300},\"install\":{\"ms\":9e18}}",
		"{\"event\":\"cluster\",\"cluster\":\"c\",\"phase\":\"ready\","
		"\"ts\":\"2026-01-01T10:02:00Z\",\"nodes_ready\":1e300}",
	};
	struct goman_metrics *m = feed_lines(lines, 3);
	cJSON *j = goman_metrics_json(m);
	const cJSON *c = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "clusters"), 0);
	assert_int_equal((int)num(c, "creation_ms"), 120000);
	/* spans are clipped to the run: the server provisions over all 120 s and installs over
	 * the first 60 s, the agent has no times; 2 slots: (60 x 2 + 60 x 1) / (120 x 2) */
	assert_true(fabs(num(c, "parallel_efficiency_pct") - 75.0) < 0.01);
	/* the critical path is a sum of clamped durations: huge, but positive */
	assert_true(num(c, "critical_path_ms") >= 9e15);
	assert_true(num(c, "nodes_ready") >= 0);
	cJSON_Delete(j);
	goman_metrics_free(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cluster_kpis_match_hand_computed_values),
		cmocka_unit_test(test_health_counts_retries_idempotency_and_breakers),
		cmocka_unit_test(test_latency_quantiles_are_within_two_percent),
		cmocka_unit_test(test_check_reports_each_breached_target),
		cmocka_unit_test(test_memory_does_not_grow_with_repeated_records),
		cmocka_unit_test(test_infinite_latency_is_not_used_in_arithmetic),
		cmocka_unit_test(test_huge_provision_and_install_times_saturate),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
