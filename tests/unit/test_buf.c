/*
 * test_buf.c - the shared byte buffer: growth, formatting, shifting, shell quoting, take.
 */
#include <string.h>
#include "unit.h"
#include "buf_int.h"

static void test_adds_and_printf_grow_past_the_first_block(void **state)
{
	struct gm_buf b = {0};
	for (int i = 0; i < 1000; i++)
		gm_buf_printf(&b, "%04d,", i);
	assert_int_equal(b.len, 5000);
	assert_memory_equal(b.p + 4995, "0999,", 6); /* NUL-terminated */
	gm_buf_free(&b);
	assert_null(b.p);
	assert_int_equal(b.len, 0);
}

static void test_shift_drops_a_prefix_and_keeps_the_rest_terminated(void **state)
{
	struct gm_buf b = {0};
	gm_buf_adds(&b, "line one\nline two");
	gm_buf_shift(&b, 9);
	assert_string_equal(b.p, "line two");
	gm_buf_shift(&b, 100);
	assert_int_equal(b.len, 0);
	assert_string_equal(b.p, "");
	gm_buf_free(&b);
}

static void test_quote_survives_single_quotes_for_sh(void **state)
{
	struct gm_buf b = {0};
	gm_buf_quote(&b, "it's a 'test'");
	assert_string_equal(b.p, "'it'\\''s a '\\''test'\\'''");
	gm_buf_free(&b);
}

static void test_a_buffer_on_the_stack_moves_to_the_heap_only_when_outgrown(void **state)
{
	char arr[8];
	struct gm_buf b = GM_BUF_ON(arr);
	gm_buf_adds(&b, "abc");
	gm_buf_addc(&b, 'd');
	assert_ptr_equal(b.p, arr);
	assert_string_equal(arr, "abcd");
	char *copy = gm_buf_take(&b); /* the caller's array is copied, never handed over */
	assert_ptr_not_equal(copy, arr);
	assert_string_equal(copy, "abcd");
	free(copy);

	b = (struct gm_buf)GM_BUF_ON(arr);
	gm_buf_adds(&b, "0123456");
	assert_ptr_equal(b.p, arr);
	gm_buf_adds(&b, "789"); /* 11 bytes: past the array */
	assert_ptr_not_equal(b.p, arr);
	assert_string_equal(b.p, "0123456789");
	gm_buf_free(&b); /* frees the heap copy (ASan: no leak, no bad free) */

	b = (struct gm_buf)GM_BUF_ON(arr);
	char *empty = gm_buf_take(&b);
	assert_string_equal(empty, "");
	free(empty);
}

static void test_take_hands_over_the_text_or_an_empty_string(void **state)
{
	struct gm_buf b = {0};
	char *empty = gm_buf_take(&b);
	assert_string_equal(empty, "");
	free(empty);
	gm_buf_add(&b, "abc", 3);
	char *s = gm_buf_take(&b);
	assert_string_equal(s, "abc");
	assert_null(b.p);
	free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_adds_and_printf_grow_past_the_first_block),
		cmocka_unit_test(test_shift_drops_a_prefix_and_keeps_the_rest_terminated),
		cmocka_unit_test(test_quote_survives_single_quotes_for_sh),
		cmocka_unit_test(test_a_buffer_on_the_stack_moves_to_the_heap_only_when_outgrown),
		cmocka_unit_test(test_take_hands_over_the_text_or_an_empty_string),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
