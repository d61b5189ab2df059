/*
 * test_error.c - struct goman_err is fully defined after every constructor (libgoman/error.c):
 * whatever the memory held before, nothing of it survives into a record. The
 * classification table, the eventual-consistency table and the exit-code mapping are
 * checked row by row.
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

/* One row per entry of error.c's table and per HTTP status fallback: what a reply with this
 * service, status and code is, and whether the call path may retry it. */
static const struct {
	const char *service, *action;
	int status;
	const char *code;
	enum goman_class cls;
	bool retryable;
} class_rows[] = {
	{"ec2", "DescribeInstances", 400, "Throttling", GOMAN_CLASS_THROTTLING, true},
	{"dynamodb", "PutItem", 400, "ThrottlingException", GOMAN_CLASS_THROTTLING, true},
	{"ec2", "RunInstances", 503, "RequestLimitExceeded", GOMAN_CLASS_THROTTLING, true},
	{"dynamodb", "Query", 400, "ProvisionedThroughputExceededException", GOMAN_CLASS_THROTTLING,
	 true},
	{"dynamodb", "TransactWriteItems", 400, "TransactionInProgressException",
	 GOMAN_CLASS_THROTTLING, true},
	{"s3", "PutObject", 503, "SlowDown", GOMAN_CLASS_THROTTLING, true},
	{"ssm", "SendCommand", 400, "TooManyRequestsException", GOMAN_CLASS_THROTTLING, true},
	{"ec2", "CreateTags", 400, "PriorRequestNotComplete", GOMAN_CLASS_THROTTLING, true},
	{"ec2", "DescribeInstances", 500, "InternalError", GOMAN_CLASS_TRANSIENT, true},
	{"ssm", "GetParameter", 500, "InternalServerError", GOMAN_CLASS_TRANSIENT, true},
	{"s3", "GetObject", 400, "RequestTimeout", GOMAN_CLASS_TRANSIENT, true},
	{"ec2", "RunInstances", 503, "Unavailable", GOMAN_CLASS_TRANSIENT, true},
	/* capacity: a 500-class code that another try in the same zone will not fix */
	{"ec2", "RunInstances", 500, "InsufficientInstanceCapacity", GOMAN_CLASS_CLIENT, false},
	{"ec2", "DescribeInstances", 401, "AuthFailure", GOMAN_CLASS_AUTH, false},
	{"s3", "GetObject", 403, "SignatureDoesNotMatch", GOMAN_CLASS_AUTH, false},
	{"sts", "GetCallerIdentity", 403, "InvalidClientTokenId", GOMAN_CLASS_AUTH, false},
	{"sts", "GetCallerIdentity", 400, "ExpiredToken", GOMAN_CLASS_AUTH, false},
	{"s3", "GetObject", 403, "AccessDenied", GOMAN_CLASS_AUTH, false},
	{"ec2", "TerminateInstances", 403, "UnauthorizedOperation", GOMAN_CLASS_AUTH, false},
	/* eventual consistency: a client error that means "not yet" is retried */
	{"ec2", "DescribeInstances", 400, "InvalidInstanceID.NotFound", GOMAN_CLASS_CLIENT, true},
	{"ssm", "SendCommand", 400, "InvalidInstanceId", GOMAN_CLASS_CLIENT, true},
	{"ssm", "DescribeInstanceInformation", 400, "InvalidInstanceId", GOMAN_CLASS_CLIENT, false},
	{"ssm", "GetCommandInvocation", 400, "InvocationDoesNotExist", GOMAN_CLASS_CLIENT, true},
	{"s3", "GetObject", 404, "InvalidInstanceID.NotFound", GOMAN_CLASS_CLIENT, false},
	/* codes the table does not know fall back to the HTTP status */
	{"ec2", "X", 429, "Whatever", GOMAN_CLASS_THROTTLING, true},
	{"ec2", "X", 500, "", GOMAN_CLASS_TRANSIENT, true},
	{"ec2", "X", 502, NULL, GOMAN_CLASS_TRANSIENT, true},
	{"ec2", "X", 504, "Whatever", GOMAN_CLASS_TRANSIENT, true},
	{"ec2", "X", 599, "Whatever", GOMAN_CLASS_TRANSIENT, true},
	{"ec2", "X", 401, "Whatever", GOMAN_CLASS_AUTH, false},
	{"ec2", "X", 403, "", GOMAN_CLASS_AUTH, false},
	{"ec2", "X", 400, "InvalidParameterValue", GOMAN_CLASS_CLIENT, false},
	{"ec2", "X", 404, "", GOMAN_CLASS_CLIENT, false},
	{"ec2", "X", 0, "", GOMAN_CLASS_NONE, false},
	{NULL, NULL, 301, "Whatever", GOMAN_CLASS_NONE, false},
};

static void classification_table_row_by_row(void **st)
{
	(void)st;
	for (size_t i = 0; i < sizeof(class_rows) / sizeof(class_rows[0]); i++) {
		struct goman_err e = GOMAN_ERR_INIT;
		goman_err_set(&e, GOMAN_ESERVICE, GOMAN_CLASS_NONE, class_rows[i].code, "x");
		e.http_status = class_rows[i].status;
		goman_err_classify(&e, class_rows[i].service, class_rows[i].action);
		if (e.cls != class_rows[i].cls || e.retryable != class_rows[i].retryable)
			fail_msg("row %zu (%s %s %d %s): class %s retryable %d", i,
				 class_rows[i].service ? class_rows[i].service : "-",
				 class_rows[i].action ? class_rows[i].action : "-",
				 class_rows[i].status,
				 class_rows[i].code ? class_rows[i].code : "-",
				 goman_class_name(e.cls), e.retryable);
	}
}

/* Errors that are not service replies take their class from the rc alone. */
static void classification_by_rc_row_by_row(void **st)
{
	(void)st;
	static const struct {
		enum goman_rc rc;
		enum goman_class given, cls;
		bool retryable;
	} rows[] = {
		{GOMAN_OK, GOMAN_CLASS_CLIENT, GOMAN_CLASS_NONE, false},
		{GOMAN_ETRANSPORT, GOMAN_CLASS_NONE, GOMAN_CLASS_TRANSIENT, true},
		{GOMAN_ETIMEOUT, GOMAN_CLASS_NONE, GOMAN_CLASS_TIMEOUT, true},
		{GOMAN_ECIRCUIT, GOMAN_CLASS_NONE, GOMAN_CLASS_CIRCUIT_OPEN, false},
		{GOMAN_EINVAL, GOMAN_CLASS_NONE, GOMAN_CLASS_CLIENT, false},
		{GOMAN_EINVAL, GOMAN_CLASS_BAD_INPUT, GOMAN_CLASS_BAD_INPUT, false},
		{GOMAN_ECREDS, GOMAN_CLASS_AUTH, GOMAN_CLASS_AUTH, false},
		{GOMAN_EPARSE, GOMAN_CLASS_NONE, GOMAN_CLASS_CLIENT, false},
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		struct goman_err e = GOMAN_ERR_INIT;
		goman_err_set(&e, rows[i].rc, rows[i].given, "", "x");
		goman_err_classify(&e, "ec2", "DescribeInstances");
		if (e.cls != rows[i].cls || e.retryable != rows[i].retryable)
			fail_msg("row %zu (%s): class %s retryable %d", i,
				 goman_strerror(rows[i].rc), goman_class_name(e.cls), e.retryable);
	}
}

/* One finished record of each kind alone, then mixed: the exit code is the most serious
 * kind seen, in goman(7)'s order usage > output > config > data > unavailable > tempfail
 * > failed > ok. */
static void exit_code_mapping_row_by_row(void **st)
{
	(void)st;
	static const struct {
		enum goman_rc rc;
		enum goman_class cls;
		bool retryable;
		int exit;
	} rows[] = {
		{GOMAN_OK, GOMAN_CLASS_NONE, false, GOMAN_EXIT_OK},
		{GOMAN_ESERVICE, GOMAN_CLASS_CLIENT, false, GOMAN_EXIT_FAILED},
		{GOMAN_ESERVICE, GOMAN_CLASS_THROTTLING, true, GOMAN_EXIT_TEMPFAIL},
		{GOMAN_ETRANSPORT, GOMAN_CLASS_TRANSIENT, true, GOMAN_EXIT_TEMPFAIL},
		{GOMAN_EQUOTA, GOMAN_CLASS_NONE, false, GOMAN_EXIT_TEMPFAIL},
		{GOMAN_ECIRCUIT, GOMAN_CLASS_NONE, false, GOMAN_EXIT_UNAVAILABLE},
		{GOMAN_ESERVICE, GOMAN_CLASS_CIRCUIT_OPEN, false, GOMAN_EXIT_UNAVAILABLE},
		{GOMAN_EINVAL, GOMAN_CLASS_BAD_INPUT, false, GOMAN_EXIT_DATAERR},
		{GOMAN_ESERVICE, GOMAN_CLASS_AUTH, false, GOMAN_EXIT_CONFIG},
		{GOMAN_ECREDS, GOMAN_CLASS_NONE, false, GOMAN_EXIT_CONFIG},
		{GOMAN_ECONFIG, GOMAN_CLASS_BAD_INPUT, false, GOMAN_EXIT_CONFIG},
	};
	size_t n = sizeof(rows) / sizeof(rows[0]);
	for (size_t i = 0; i < n; i++) {
		struct goman_err e = GOMAN_ERR_INIT;
		goman_err_set(&e, rows[i].rc, rows[i].cls, "", "x");
		e.retryable = rows[i].retryable;
		struct goman_outcome alone = {0};
		goman_outcome_add(&alone, rows[i].rc == GOMAN_OK ? NULL : &e);
		if (goman_exit_code(&alone) != rows[i].exit)
			fail_msg("row %zu alone: exit %d, want %d", i, goman_exit_code(&alone),
				 rows[i].exit);
	}
	/* rows later in this list are more serious: adding one raises the exit code to its */
	static const int order[] = {GOMAN_EXIT_OK,          GOMAN_EXIT_FAILED,  GOMAN_EXIT_TEMPFAIL,
				    GOMAN_EXIT_UNAVAILABLE, GOMAN_EXIT_DATAERR, GOMAN_EXIT_CONFIG};
	struct goman_outcome o = {0};
	for (size_t k = 0; k < sizeof(order) / sizeof(order[0]); k++) {
		for (size_t i = 0; i < n; i++) {
			if (rows[i].exit != order[k])
				continue;
			struct goman_err e = GOMAN_ERR_INIT;
			goman_err_set(&e, rows[i].rc, rows[i].cls, "", "x");
			e.retryable = rows[i].retryable;
			goman_outcome_add(&o, rows[i].rc == GOMAN_OK ? NULL : &e);
		}
		assert_int_equal(goman_exit_code(&o), order[k]);
	}
	o.output_errors = 1;
	assert_int_equal(goman_exit_code(&o), GOMAN_EXIT_IOERR);
	o.usage_errors = 1;
	assert_int_equal(goman_exit_code(&o), GOMAN_EXIT_USAGE);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(err_set_defines_every_field_over_garbage),
		cmocka_unit_test(err_set_with_null_code_leaves_an_empty_code),
		cmocka_unit_test(err_clear_and_the_initialiser_agree),
		cmocka_unit_test(credentials_and_auth_exit_78_after_usage_and_output),
		cmocka_unit_test(classification_table_row_by_row),
		cmocka_unit_test(classification_by_rc_row_by_row),
		cmocka_unit_test(exit_code_mapping_row_by_row),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
