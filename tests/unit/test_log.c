/*
 * test_log.c - the default log sink (libgoman/log.c): what a message carries from outside
 * cannot drive the terminal or forge another log line.
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include "unit.h"
#include "goman/log.h"

static void control_bytes_in_a_message_are_shown_as_question_marks(void **st)
{
	(void)st;
	int p[2];
	assert_int_equal(pipe(p), 0);
	int saved = dup(2);
	assert_true(saved >= 0);
	assert_int_equal(dup2(p[1], 2), 2);
	goman_log(GOMAN_LOG_WARN, "T", "a\x1b[31mb\r\n[X] forged\tc\x7f");
	assert_int_equal(dup2(saved, 2), 2);
	close(saved);
	close(p[1]);
	char buf[256];
	ssize_t n = read(p[0], buf, sizeof(buf) - 1);
	close(p[0]);
	assert_true(n > 0);
	buf[n] = '\0';
	assert_string_equal(buf, "[T] a?[31mb??[X] forged\tc?\n");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(control_bytes_in_a_message_are_shown_as_question_marks),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
