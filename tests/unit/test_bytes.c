/* bytes.c: hex both ways, SHA-256 hex against a known digest, FNV-1a against its published
 * test values, the out-of-memory error's fields */
#include "unit.h"

#include "bytes_int.h"

#include <string.h>

#include <goman/error.h>

static void hex_encode_gives_lowercase_digits_and_a_nul(void **st)
{
	(void)st;
	char out[9];
	memset(out, 'x', sizeof(out));
	gm_hex_encode("\x00\x9f\xAB\xff", 4, out);
	assert_string_equal(out, "009fabff");
}

static void hex_value_reads_both_cases_and_refuses_the_rest(void **st)
{
	(void)st;
	assert_int_equal(gm_hex_value('0'), 0);
	assert_int_equal(gm_hex_value('a'), 10);
	assert_int_equal(gm_hex_value('F'), 15);
	assert_int_equal(gm_hex_value('g'), -1);
	assert_int_equal(gm_hex_value(' '), -1);
}

static void sha256_hex_of_abc_is_the_fips_digest(void **st)
{
	(void)st;
	char out[65];
	assert_int_equal(gm_sha256_hex("abc", 3, out), 0);
	assert_string_equal(out,
			    "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	assert_int_equal(gm_sha256_hex("", 0, out), 0);
	assert_string_equal(out,
			    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

static void fnv1a_matches_the_published_64_bit_values(void **st)
{
	(void)st;
	assert_true(gm_fnv1a("", 0) == UINT64_C(0xcbf29ce484222325));
	assert_true(gm_fnv1a("a", 1) == UINT64_C(0xaf63dc4c8601ec8c));
	assert_true(gm_fnv1a("foobar", 6) == UINT64_C(0x85944171f73967e8));
}

static void oom_error_is_enomem_and_returns_minus_one(void **st)
{
	(void)st;
	struct goman_err e = GOMAN_ERR_INIT;
	assert_int_equal(gm_err_oom(&e), -1);
	assert_int_equal(e.rc, GOMAN_ENOMEM);
	assert_string_equal(e.message, "out of memory");
	assert_false(e.retryable);
	assert_int_equal(gm_err_oom(NULL), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(hex_encode_gives_lowercase_digits_and_a_nul),
		cmocka_unit_test(hex_value_reads_both_cases_and_refuses_the_rest),
		cmocka_unit_test(sha256_hex_of_abc_is_the_fips_digest),
		cmocka_unit_test(fnv1a_matches_the_published_64_bit_values),
		cmocka_unit_test(oom_error_is_enomem_and_returns_minus_one),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
