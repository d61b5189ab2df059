/* test_config.c - defaults, profiles, the precedence chain (flags > GOMAN_* > AWS_* > file >
 * profile > defaults), policy expansion, errors and --show-config output. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "unit.h"
#include "goman/config.h"

static char dir[] = "/tmp/goman-cfg-XXXXXX";
static char file[300];

static int setup(void **st)
{
	if (!mkdtemp(dir))
		return -1;
	snprintf(file, sizeof(file), "%s/config", dir);
	setenv("GOMAN_CONFIG", file, 1);
	return 0;
}

static int teardown(void **st)
{
	unlink(file);
	rmdir(dir);
	return 0;
}

static void clean_env(void)
{
	unsetenv("GOMAN_ENV");
	unsetenv("GOMAN_PROFILE");
	unsetenv("GOMAN_CONCURRENCY");
	unsetenv("GOMAN_RETRY_POLICY");
	unsetenv("GOMAN_BREAKER_RECOVERY_MS");
	unsetenv("GOMAN_BREAKER_EC2_RECOVERY_MS");
	unsetenv("AWS_RETRY_MODE");
	unsetenv("AWS_MAX_ATTEMPTS");
	unlink(file);
}

static void write_file(const char *text)
{
	FILE *f = fopen(file, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static void get(const struct goman_config *c, const char *key, const char *want,
		enum goman_src wsrc)
{
	char buf[256];
	enum goman_src s;
	assert_int_equal(goman_config_get(c, key, buf, sizeof(buf), &s), 0);
	assert_string_equal(buf, want);
	assert_int_equal(s, wsrc);
}

static void defaults_without_profile_are_the_seeds(void **st)
{
	clean_env();
	struct goman_config c;
	goman_config_init(&c);
	assert_int_equal(goman_config_load(&c, NULL), 0);
	get(&c, "concurrency", "3", GOMAN_SRC_DEFAULT);
	get(&c, "batch_size", "10", GOMAN_SRC_DEFAULT);
	get(&c, "retry.policy", "default", GOMAN_SRC_DEFAULT);
	get(&c, "idempotency_ttl_ms", "7200000", GOMAN_SRC_DEFAULT);
	const struct goman_breaker_params *b = goman_config_breaker(&c, "ec2");
	assert_int_equal(b->failure_threshold, 5);
	assert_int_equal(b->recovery_ms, 45000);
	assert_int_equal(b->max_concurrent, 8);
	b = goman_config_breaker(&c, "s3");
	assert_int_equal(b->failure_threshold, 3);
	assert_int_equal(b->recovery_ms, 10000);
	assert_int_equal(b->max_concurrent, 15);
	b = goman_config_breaker(&c, "ssm");
	assert_int_equal(b->failure_threshold, 2);
	assert_int_equal(b->recovery_ms, 60000);
	assert_int_equal(b->max_concurrent, 3);
	assert_int_equal(c.quota_capacity, 500);
	assert_int_equal(c.retry.max_retries, 3);
}

static void profiles_set_the_seeds_numbers(void **st)
{
	clean_env();
	struct goman_config c;
	goman_config_init(&c);
	setenv("GOMAN_ENV", "production", 1);
	assert_int_equal(goman_config_load(&c, NULL), 0);
	get(&c, "concurrency", "5", GOMAN_SRC_PROFILE);
	get(&c, "breaker.ssm.failure_threshold", "5", GOMAN_SRC_PROFILE);
	get(&c, "batch_size", "15", GOMAN_SRC_PROFILE);
	get(&c, "retry.policy", "critical", GOMAN_SRC_PROFILE);
	assert_int_equal(c.retry.max_retries, 7);
	assert_int_equal(c.retry.deadline_ms, 1200000);
	assert_string_equal(c.retry.name, "critical");
	goman_config_init(&c);
	setenv("GOMAN_ENV", "high-volume", 1);
	assert_int_equal(goman_config_load(&c, NULL), 0);
	get(&c, "concurrency", "10", GOMAN_SRC_PROFILE);
	get(&c, "breaker.ec2.max_concurrent", "20", GOMAN_SRC_PROFILE);
	get(&c, "batch_size", "25", GOMAN_SRC_PROFILE);
	get(&c, "idempotency_ttl_ms", "14400000", GOMAN_SRC_PROFILE);
	goman_config_init(&c);
	setenv("GOMAN_ENV", "staging", 1);
	assert_int_equal(goman_config_load(&c, NULL), 0);
	get(&c, "retry.policy", "aws", GOMAN_SRC_PROFILE);
	assert_int_equal(c.retry.base_ms, 500);
	assert_int_equal(c.retry.cap_ms, 64000);
	goman_config_init(&c);
	setenv("GOMAN_ENV", "development", 1);
	assert_int_equal(goman_config_load(&c, NULL), 0);
	get(&c, "concurrency", "2", GOMAN_SRC_PROFILE);
	get(&c, "breaker.ec2.failure_threshold", "2", GOMAN_SRC_PROFILE);
	get(&c, "batch_size", "5", GOMAN_SRC_PROFILE);
	clean_env();
}

static void precedence_flag_env_aws_file_profile_default(void **st)
{
	clean_env();
	write_file("[goman]\nprofile = production\nconcurrency = 7\n"
		   "[retry]\nmode = legacy\nmax_retries = 9\nbase_ms = 250\n"
		   "[breaker]\nrecovery_ms = 1234\n[breaker ec2]\nrecovery_ms = 999\n");
	struct goman_config c;
	goman_config_init(&c);
	assert_int_equal(goman_config_load(&c, NULL), 0);
	get(&c, "concurrency", "7", GOMAN_SRC_FILE); /* file > profile */
	get(&c, "batch_size", "15", GOMAN_SRC_PROFILE);
	get(&c, "retry.base_ms", "250", GOMAN_SRC_FILE);      /* explicit field > policy */
	get(&c, "retry.cap_ms", "120000", GOMAN_SRC_PROFILE); /* critical, via the profile */
	get(&c, "breaker.s3.recovery_ms", "1234", GOMAN_SRC_FILE);
	get(&c, "breaker.ec2.recovery_ms", "999", GOMAN_SRC_FILE);
	get(&c, "retry.mode", "legacy", GOMAN_SRC_FILE);

	setenv("AWS_RETRY_MODE", "adaptive", 1);
	setenv("AWS_MAX_ATTEMPTS", "4", 1);
	goman_config_init(&c);
	assert_int_equal(goman_config_load(&c, NULL), 0);
	get(&c, "retry.mode", "adaptive", GOMAN_SRC_AWS_ENV); /* AWS env > file */
	get(&c, "retry.max_retries", "3", GOMAN_SRC_AWS_ENV);

	setenv("GOMAN_CONCURRENCY", "11", 1);
	setenv("GOMAN_RETRY_MAX_RETRIES", "1", 1);
	setenv("GOMAN_BREAKER_EC2_RECOVERY_MS", "50", 1);
	goman_config_init(&c);
	assert_int_equal(goman_config_set(&c, "concurrency", "12", GOMAN_SRC_FLAG, NULL), 0);
	assert_int_equal(goman_config_load(&c, NULL), 0);
	get(&c, "concurrency", "12", GOMAN_SRC_FLAG);     /* flag > env */
	get(&c, "retry.max_retries", "1", GOMAN_SRC_ENV); /* GOMAN_* > AWS_* */
	get(&c, "breaker.ec2.recovery_ms", "50", GOMAN_SRC_ENV);
	unsetenv("GOMAN_RETRY_MAX_RETRIES");
	clean_env();
}

static void a_policy_chosen_by_env_fills_fields_below_it(void **st)
{
	clean_env();
	write_file("[retry]\nbase_ms = 250\n");
	setenv("GOMAN_RETRY_POLICY", "high-frequency", 1);
	struct goman_config c;
	goman_config_init(&c);
	assert_int_equal(goman_config_load(&c, NULL), 0);
	assert_int_equal(c.retry.base_ms, 100); /* env policy > file field */
	assert_int_equal(c.retry.cap_ms, 2000);
	assert_true(c.retry.multiplier == 1.5);
	assert_int_equal(c.retry.max_retries, 2);
	clean_env();
}

static void bad_values_and_unknown_keys_are_clear_errors(void **st)
{
	clean_env();
	struct goman_config c;
	struct goman_err e = GOMAN_ERR_INIT;
	goman_config_init(&c);
	goman_err_clear(&e);
	assert_int_equal(goman_config_set(&c, "retry.base_ms", "soon", GOMAN_SRC_FLAG, &e), -1);
	assert_int_equal(e.rc, GOMAN_EINVAL);
	assert_non_null(strstr(e.message, "retry.base_ms"));
	assert_int_equal(goman_config_set(&c, "retry.bogus", "1", GOMAN_SRC_FLAG, &e), -1);
	assert_int_equal(goman_config_set(&c, "profile", "prod", GOMAN_SRC_FLAG, &e), -1);
	assert_int_equal(goman_config_set(&c, "retry.policy", "fast", GOMAN_SRC_FLAG, &e), -1);
	write_file("[breaker ec2]\nrecovery = 5\n");
	goman_config_init(&c);
	assert_int_equal(goman_config_load(&c, &e), -1);
	assert_non_null(strstr(e.message, file));
	setenv("AWS_MAX_ATTEMPTS", "0", 1);
	unlink(file);
	goman_config_init(&c);
	assert_int_equal(goman_config_load(&c, &e), -1);
	clean_env();
}

static void show_config_names_each_source(void **st)
{
	clean_env();
	setenv("GOMAN_ENV", "staging", 1);
	struct goman_config c;
	goman_config_init(&c);
	goman_config_set(&c, "batch_size", "3", GOMAN_SRC_FLAG, NULL);
	assert_int_equal(goman_config_load(&c, NULL), 0);
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	goman_config_print(&c, f);
	fclose(f);
	assert_non_null(strstr(buf, "batch_size"));
	assert_non_null(strstr(buf, "(flag)"));
	assert_non_null(strstr(buf, "(env)"));
	assert_non_null(strstr(buf, "(profile)"));
	assert_non_null(strstr(buf, "(default)"));
	assert_non_null(strstr(buf, "breaker.ssm.recovery_ms"));
	free(buf);
	clean_env();
}

static void service_names_round_trip_and_unknown_ones_are_other(void **st)
{
	(void)st;
	const char *names[] = {"ec2", "s3", "ssm", "dynamodb", "sts", "iam"};
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		assert_string_equal(goman_svc_name(goman_svc_from_name(names[i])), names[i]);
	assert_int_equal(goman_svc_from_name("nosuch"), GOMAN_SVC_OTHER);
	assert_int_equal(goman_svc_from_name(NULL), GOMAN_SVC_OTHER);
	assert_string_equal(goman_svc_name((enum goman_svc)GOMAN_SVC_MAX), "other");
	assert_string_equal(goman_svc_name((enum goman_svc) - 1), "other");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(defaults_without_profile_are_the_seeds),
		cmocka_unit_test(profiles_set_the_seeds_numbers),
		cmocka_unit_test(precedence_flag_env_aws_file_profile_default),
		cmocka_unit_test(a_policy_chosen_by_env_fills_fields_below_it),
		cmocka_unit_test(bad_values_and_unknown_keys_are_clear_errors),
		cmocka_unit_test(show_config_names_each_source),
		cmocka_unit_test(service_names_round_trip_and_unknown_ones_are_other),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
