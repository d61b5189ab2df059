/*
 * test_idem_rec.c - a stored idempotency record is input: its numbers saturate instead of
 * overflowing a cast, and an owner pid that no process can have proves nothing
 * (libgoman/idem_record.c, gm_idem_rec_from_json and gm_idem_owner_dead).
 */
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <cjson/cJSON.h>
#include "unit.h"
#include "idem_int.h"

static void rec_from(const char *json, struct gm_idem_rec *r)
{
	cJSON *o = cJSON_Parse(json);
	assert_non_null(o);
	assert_int_equal(gm_idem_rec_from_json(o, r), 0);
	cJSON_Delete(o);
}

static void free_rec(struct gm_idem_rec *r)
{
	cJSON_Delete(r->identity);
	cJSON_Delete(r->result);
	cJSON_Delete(r->error);
}

static void stored_numbers_beyond_int64_saturate(void **st)
{
	(void)st;
	struct gm_idem_rec r;
	rec_from("{\"id\":\"k\",\"status\":\"COMPLETED\",\"payload_hash\":\"h\","
		 "\"expires_at\":1e300,\"lease_expires\":-1e300,"
		 "\"started_at\":9223372036854775807,\"owner_pid_start\":1e19}",
		 &r);
	assert_true(r.expires_at == INT64_MAX);
	assert_true(r.lease_expires == INT64_MIN);
	assert_true(r.started_at == INT64_MAX);
	assert_true(r.owner_pid_start == LLONG_MAX);
	free_rec(&r);
	rec_from("{\"id\":\"k\",\"status\":\"COMPLETED\",\"payload_hash\":\"h\","
		 "\"expires_at\":1790000000000.9,\"lease_expires\":-5}",
		 &r);
	assert_true(r.expires_at == 1790000000000LL);
	assert_true(r.lease_expires == -5);
	free_rec(&r);
}

static void owner_pid_beyond_pid_t_is_not_judged_dead(void **st)
{
	(void)st;
	char host[256] = "";
	if (gethostname(host, sizeof(host) - 1) != 0)
		snprintf(host, sizeof(host), "localhost");
	/* 2^32 + 999999 would be pid 999999 once cast: no such process, so "dead" */
	char json[600];
	snprintf(json, sizeof(json),
		 "{\"id\":\"k\",\"status\":\"INPROGRESS\",\"payload_hash\":\"h\","
		 "\"owner_host\":\"%s\",\"owner_pid\":4295967295}",
		 host);
	struct gm_idem_rec r;
	rec_from(json, &r);
	assert_true(r.owner_pid > INT_MAX);
	assert_false(gm_idem_owner_dead(&r));
	free_rec(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(stored_numbers_beyond_int64_saturate),
		cmocka_unit_test(owner_pid_beyond_pid_t_is_not_judged_dead),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
