/*
 * test_error.c - struct goman_err is fully defined after every constructor (libgoman/error.c):
 * whatever the memory held before, nothing of it survives into a record.
 */
#include <string.h>
#include "unit.h"
#include "goman/error.h"

static void garbage(struct goman_err *e)
{
	memset(e, 0xa5, sizeof(*e));
}

static void err_set_defines_every_field_over_garbage(void **st)
{
	(void)st;
	struct goman_err e;
	garbage(&e);
	goman_err_set(&e, GOMAN_EINVAL, GOMAN_CLASS_BAD_INPUT, "BadInput", "line %d", 3);
	assert_int_equal(e.rc, GOMAN_EINVAL);
	assert_int_equal(e.cls, GOMAN_CLASS_BAD_INPUT);
	assert_false(e.retryable);
	assert_int_equal(e.http_status, 0);
	assert_int_equal(e.retry_after_ms, -1);
	assert_string_equal(e.code, "BadInput");
	assert_string_equal(e.message, "line 3");
	assert_string_equal(e.request_id, "");
}

static void err_set_with_null_code_leaves_an_empty_code(void **st)
{
	(void)st;
	struct goman_err e;
	garbage(&e);
	goman_err_set(&e, GOMAN_EIO, GOMAN_CLASS_NONE, NULL, "x");
	assert_string_equal(e.code, "");
	assert_int_equal(e.http_status, 0);
	assert_int_equal(e.retry_after_ms, -1);
}

static void err_clear_and_the_initialiser_agree(void **st)
{
	(void)st;
	struct goman_err init = GOMAN_ERR_INIT, cleared;
	garbage(&cleared);
	goman_err_clear(&cleared);
	const struct goman_err *both[] = {&init, &cleared};
	for (int i = 0; i < 2; i++) {
		assert_int_equal(both[i]->rc, GOMAN_OK);
		assert_int_equal(both[i]->cls, GOMAN_CLASS_NONE);
		assert_false(both[i]->retryable);
		assert_int_equal(both[i]->http_status, 0);
		assert_int_equal(both[i]->retry_after_ms, -1);
		assert_string_equal(both[i]->code, "");
		assert_string_equal(both[i]->message, "");
		assert_string_equal(both[i]->request_id, "");
	}
}

/* A credential, auth or configuration error exits 78: after usage (64) and lost output (74),
 * before everything a single record can cause. */
static void credentials_and_auth_exit_78_after_usage_and_output(void **st)
{
	(void)st;
	struct goman_err e = GOMAN_ERR_INIT;
	struct goman_outcome o = {0};
	goman_outcome_add(&o, NULL);
	assert_int_equal(goman_exit_code(&o), GOMAN_EXIT_OK);
	goman_err_set(&e, GOMAN_ETRANSPORT, GOMAN_CLASS_TRANSIENT, "", "reset");
	e.retryable = true;
	goman_outcome_add(&o, &e);
	goman_err_set(&e, GOMAN_EINVAL, GOMAN_CLASS_BAD_INPUT, "BadInput", "bad line");
	goman_outcome_add(&o, &e);
	goman_err_set(&e, GOMAN_ESERVICE, GOMAN_CLASS_CLIENT, "InvalidAMIID.Malformed", "x");
	goman_outcome_add(&o, &e);
	assert_int_equal(goman_exit_code(&o), GOMAN_EXIT_DATAERR);
	goman_err_set(&e, GOMAN_ECREDS, GOMAN_CLASS_AUTH, "NoCredentials", "no credentials");
	goman_outcome_add(&o, &e);
	assert_int_equal(o.config_errors, 1);
	assert_int_equal(goman_exit_code(&o), GOMAN_EXIT_CONFIG);
	o.output_errors = 1;
	assert_int_equal(goman_exit_code(&o), GOMAN_EXIT_IOERR);
	o.usage_errors = 1;
	assert_int_equal(goman_exit_code(&o), GOMAN_EXIT_USAGE);

	/* the service refusing the signature or the key is configuration too, whatever the rc */
	const char *auth[] = {"AuthFailure", "SignatureDoesNotMatch", "InvalidClientTokenId"};
	for (int i = 0; i < 3; i++) {
		struct goman_outcome a = {0};
		goman_err_set(&e, GOMAN_ESERVICE, GOMAN_CLASS_NONE, auth[i], "refused");
		e.http_status = 403;
		goman_err_classify(&e, "ec2", "DescribeInstances");
		assert_int_equal(e.cls, GOMAN_CLASS_AUTH);
		goman_outcome_add(&a, &e);
		assert_int_equal(goman_exit_code(&a), GOMAN_EXIT_CONFIG);
	}
	/* a region missing or malformed in the environment or profile */
	struct goman_outcome r = {0};
	goman_err_set(&e, GOMAN_ECONFIG, GOMAN_CLASS_BAD_INPUT, "InvalidRegion", "AWS_REGION");
	goman_outcome_add(&r, &e);
	assert_int_equal(goman_exit_code(&r), GOMAN_EXIT_CONFIG);
	assert_string_equal(goman_strerror(GOMAN_ECONFIG), "bad configuration");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(err_set_defines_every_field_over_garbage),
		cmocka_unit_test(err_set_with_null_code_leaves_an_empty_code),
		cmocka_unit_test(err_clear_and_the_initialiser_agree),
		cmocka_unit_test(credentials_and_auth_exit_78_after_usage_and_output),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
