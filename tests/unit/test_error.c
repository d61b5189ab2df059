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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(err_set_defines_every_field_over_garbage),
		cmocka_unit_test(err_set_with_null_code_leaves_an_empty_code),
		cmocka_unit_test(err_clear_and_the_initialiser_agree),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
