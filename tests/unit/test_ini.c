/*
 * test_ini.c - the ~/.aws/config INI dialect: sections, comments, nested sub-sections,
 * continuation lines, whitespace, CRLF, missing files.
 */
#include "unit.h"
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include "goman/ini.h"

static struct goman_ini *parse_ok(const char *text)
{
	struct goman_err err = GOMAN_ERR_INIT;
	goman_err_clear(&err);
	struct goman_ini *ini = goman_ini_parse(text, &err);
	assert_non_null(ini);
	return ini;
}

static void sections_and_keys_are_read_with_whitespace_trimmed(void **state)
{
	struct goman_ini *ini = parse_ok("[default]\n"
					 "region=us-east-1\n"
					 "  \n"
					 "[ profile   dev ]\n"
					 "\tREGION   =   eu-west-1   \n"
					 "output: json\n");
	assert_string_equal(goman_ini_get(ini, "default", "region"), "us-east-1");
	/* inner whitespace of a header folds; keys are case-insensitive */
	assert_string_equal(goman_ini_get(ini, "profile dev", "region"), "eu-west-1");
	assert_string_equal(goman_ini_get(ini, "profile dev", "Region"), "eu-west-1");
	assert_string_equal(goman_ini_get(ini, "profile dev", "output"), "json");
	assert_null(goman_ini_get(ini, "dev", "region"));
	assert_null(goman_ini_get(ini, "default", "output"));
	assert_string_equal(goman_ini_section(ini, 0), "default");
	assert_string_equal(goman_ini_section(ini, 1), "profile dev");
	assert_null(goman_ini_section(ini, 2));
	goman_ini_free(ini);
}

static void comments_full_line_and_inline_are_dropped(void **state)
{
	struct goman_ini *ini = parse_ok("# top comment\n"
					 "; another\n"
					 "[a] # header comment\n"
					 "k1 = v1 # inline\n"
					 "k2 = v2 ; inline too\n"
					 "k3 = pass#word\n"
					 "  # indented comment\n"
					 "k4 = https://h:8080/x\n");
	assert_string_equal(goman_ini_get(ini, "a", "k1"), "v1");
	assert_string_equal(goman_ini_get(ini, "a", "k2"), "v2");
	/* '#' not preceded by whitespace is data */
	assert_string_equal(goman_ini_get(ini, "a", "k3"), "pass#word");
	/* first delimiter wins: the URL keeps its colons */
	assert_string_equal(goman_ini_get(ini, "a", "k4"), "https://h:8080/x");
	goman_ini_free(ini);
}

static void nested_sub_sections_become_dotted_keys(void **state)
{
	struct goman_ini *ini = parse_ok("[profile dev]\n"
					 "s3 =\n"
					 "  addressing_style = path\n"
					 "  Endpoint_URL = http://127.0.0.1:9000\n"
					 "region = us-west-2\n"
					 "[services local]\n"
					 "ec2 =\n"
					 "\tendpoint_url = http://localhost:5000\n"
					 "sts =\n"
					 "  endpoint_url = http://localhost:5001\n");
	assert_string_equal(goman_ini_get(ini, "profile dev", "s3.addressing_style"), "path");
	assert_string_equal(goman_ini_get(ini, "profile dev", "s3.endpoint_url"),
			    "http://127.0.0.1:9000");
	/* an unindented key after the sub-section is back at the top level */
	assert_string_equal(goman_ini_get(ini, "profile dev", "region"), "us-west-2");
	assert_string_equal(goman_ini_get(ini, "services local", "ec2.endpoint_url"),
			    "http://localhost:5000");
	assert_string_equal(goman_ini_get(ini, "services local", "sts.endpoint_url"),
			    "http://localhost:5001");
	assert_null(goman_ini_get(ini, "profile dev", "addressing_style"));
	goman_ini_free(ini);
}

static void indented_line_after_a_value_continues_it(void **state)
{
	struct goman_ini *ini = parse_ok("[x]\nk = first\n   second\nj = 1\n");
	assert_string_equal(goman_ini_get(ini, "x", "k"), "first\nsecond");
	assert_string_equal(goman_ini_get(ini, "x", "j"), "1");
	goman_ini_free(ini);
}

static void crlf_bom_and_no_final_newline_are_accepted(void **state)
{
	struct goman_ini *ini = parse_ok("\xEF\xBB\xBF[default]\r\nregion = ap-south-1\r\nk=v");
	assert_string_equal(goman_ini_get(ini, "default", "region"), "ap-south-1");
	assert_string_equal(goman_ini_get(ini, "default", "k"), "v");
	goman_ini_free(ini);
}

static void stray_lines_are_ignored_not_fatal(void **state)
{
	struct goman_ini *ini = parse_ok("orphan = before any section\n"
					 "[ok]\n"
					 "no delimiter here\n"
					 "= empty key\n"
					 "good = yes\n"
					 "[broken header\n"
					 "lost = 1\n"
					 "[ok]\n"
					 "again = merged\n"
					 "good = replaced\n");
	assert_string_equal(goman_ini_get(ini, "ok", "good"), "replaced");
	assert_string_equal(goman_ini_get(ini, "ok", "again"), "merged");
	assert_null(goman_ini_get(ini, "ok", "orphan"));
	assert_null(goman_ini_get(ini, "ok", "lost"));
	assert_null(goman_ini_section(ini, 1)); /* the repeated [ok] merged */
	const char *v = NULL;
	assert_string_equal(goman_ini_key(ini, "ok", 0, &v), "good");
	assert_string_equal(v, "replaced");
	assert_string_equal(goman_ini_key(ini, "ok", 1, &v), "again");
	assert_null(goman_ini_key(ini, "ok", 2, &v));
	assert_null(goman_ini_key(ini, "nope", 0, &v));
	goman_ini_free(ini);
}

static void empty_value_and_empty_text_are_fine(void **state)
{
	struct goman_ini *ini = parse_ok("[e]\nk =\n");
	assert_string_equal(goman_ini_get(ini, "e", "k"), "");
	goman_ini_free(ini);
	ini = parse_ok("");
	assert_null(goman_ini_section(ini, 0));
	assert_null(goman_ini_get(ini, "e", "k"));
	goman_ini_free(ini);
	goman_ini_free(NULL);
}

static void load_reads_a_file_and_missing_file_is_enotfound(void **state)
{
	char path[] = "/tmp/goman-ini-XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	const char *text = "[profile p]\nregion = sa-east-1\n";
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	struct goman_err err = GOMAN_ERR_INIT;
	goman_err_clear(&err);
	struct goman_ini *ini = goman_ini_load(path, &err);
	assert_non_null(ini);
	assert_string_equal(goman_ini_get(ini, "profile p", "region"), "sa-east-1");
	goman_ini_free(ini);
	unlink(path);

	goman_err_clear(&err);
	assert_null(goman_ini_load(path, &err));
	assert_int_equal(err.rc, GOMAN_ENOTFOUND);
	goman_err_clear(&err);
	assert_null(goman_ini_load("/tmp", &err)); /* a directory is not a file */
	assert_int_not_equal(err.rc, GOMAN_OK);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(sections_and_keys_are_read_with_whitespace_trimmed),
		cmocka_unit_test(comments_full_line_and_inline_are_dropped),
		cmocka_unit_test(nested_sub_sections_become_dotted_keys),
		cmocka_unit_test(indented_line_after_a_value_continues_it),
		cmocka_unit_test(crlf_bom_and_no_final_newline_are_accepted),
		cmocka_unit_test(stray_lines_are_ignored_not_fatal),
		cmocka_unit_test(empty_value_and_empty_text_are_fine),
		cmocka_unit_test(load_reads_a_file_and_missing_file_is_enotfound),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
