/*
 * test_ini.c - the ~/.aws/config INI dialect: sections, comments, nested sub-sections,
 * continuation lines, whitespace, CRLF, missing files.
 */
#include "unit.h"
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "goman/ini.h"
#include "buf_int.h"

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

static double cpu_seconds(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void many_sections_keys_and_lines_parse_in_linear_time(void **state)
{
	/* 100 000 profiles, a section of 100 000 keys, a value of 100 000 lines: a quadratic
	 * reader needs minutes of CPU for each (16 s for the profiles alone), a linear one well
	 * under a second for all three */
	struct gm_buf b = {0};
	for (int i = 0; i < 100000; i++)
		gm_buf_printf(&b, "[profile p%d]\nregion = r%d\n", i, i);
	gm_buf_printf(&b, "[big]\n");
	for (int i = 0; i < 100000; i++)
		gm_buf_printf(&b, "k%d = v%d\n", i, i);
	gm_buf_printf(&b, "[long]\nv = first\n");
	for (int i = 0; i < 100000; i++)
		gm_buf_printf(&b, "  line%d\n", i);
	char *text = gm_buf_take(&b);
	assert_non_null(text);
	double t0 = cpu_seconds();
	struct goman_ini *ini = parse_ok(text);
	double spent = cpu_seconds() - t0;
	assert_string_equal(goman_ini_get(ini, "profile p99999", "region"), "r99999");
	assert_string_equal(goman_ini_get(ini, "profile p0", "region"), "r0");
	assert_string_equal(goman_ini_get(ini, "big", "K77777"), "v77777");
	const char *v = goman_ini_get(ini, "long", "v");
	assert_non_null(v);
	assert_non_null(strstr(v, "first\nline0\nline1\n"));
	assert_int_equal(strlen(strrchr(v, '\n')), strlen("\nline99999"));
	if (spent > 3.0)
		fail_msg("parsing took %.2f s of CPU", spent);
	goman_ini_free(ini);
	free(text);
}

static void config_larger_than_the_cap_is_refused_and_the_cap_is_configurable(void **state)
{
	char path[] = "/tmp/goman-ini-XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	char line[64];
	size_t total = 0;
	assert_int_equal(write(fd, "[default]\n", 10), 10);
	total += 10;
	for (int i = 0; total < 5000; i++) {
		int n = snprintf(line, sizeof(line), "key%d = value%d\n", i, i);
		assert_int_equal(write(fd, line, (size_t)n), n);
		total += (size_t)n;
	}
	close(fd);
	struct goman_err err;
	char cap[32];
	snprintf(cap, sizeof(cap), "%zu", total - 1);
	setenv("GOMAN_MAX_CONFIG_BYTES", cap, 1);
	goman_err_clear(&err);
	assert_null(goman_ini_load(path, &err));
	assert_string_equal(err.code, "ConfigTooLarge");
	assert_non_null(strstr(err.message, "GOMAN_MAX_CONFIG_BYTES"));
	/* exactly at the cap is fine */
	snprintf(cap, sizeof(cap), "%zu", total);
	setenv("GOMAN_MAX_CONFIG_BYTES", cap, 1);
	goman_err_clear(&err);
	struct goman_ini *ini = goman_ini_load(path, &err);
	assert_non_null(ini);
	assert_string_equal(goman_ini_get(ini, "default", "key0"), "value0");
	goman_ini_free(ini);
	/* the default (4 MiB) holds it; a value that is not a byte count falls back to it */
	setenv("GOMAN_MAX_CONFIG_BYTES", "lots", 1);
	goman_err_clear(&err);
	ini = goman_ini_load(path, &err);
	assert_non_null(ini);
	goman_ini_free(ini);
	unsetenv("GOMAN_MAX_CONFIG_BYTES");
	unlink(path);
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
		cmocka_unit_test(many_sections_keys_and_lines_parse_in_linear_time),
		cmocka_unit_test(config_larger_than_the_cap_is_refused_and_the_cap_is_configurable),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
