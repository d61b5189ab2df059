/*
 * test_jsonl.c - the JSON-lines reader/writer and the error record shapes (libgoman/jsonl.c).
 * Input reaches the reader through a pipe, as it does in the commands.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/wait.h>
#include <string.h>
#include <unistd.h>
#include <cjson/cJSON.h>
#include "unit.h"
#include "goman/jsonl.h"
#include "goman/log.h"
#include "jsonl_int.h"

/* Pipe whose write end got `data` and was closed; returns the read end. */
static int pipe_with(const char *data, size_t len)
{
	int p[2];
	assert_int_equal(pipe(p), 0);
	/* large inputs would block a single write: write from a child */
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(p[0]);
		while (len) {
			ssize_t w = write(p[1], data, len);
			if (w <= 0)
				_exit(1);
			data += w;
			len -= (size_t)w;
		}
		_exit(0);
	}
	close(p[1]);
	return p[0];
}

static int pipe_str(const char *s)
{
	return pipe_with(s, strlen(s));
}

static void reap(void)
{
	while (waitpid(-1, NULL, 0) > 0)
		;
}

static void expect_record(struct goman_jsonl_reader *r, const char *key, int value, long line)
{
	struct goman_err e = GOMAN_ERR_INIT;
	cJSON *j = NULL;
	assert_int_equal(goman_jsonl_next(r, &j, &e), GOMAN_JSONL_RECORD);
	cJSON *v = cJSON_GetObjectItem(j, key);
	assert_non_null(v);
	assert_int_equal(v->valueint, value);
	assert_int_equal(goman_jsonl_lineno(r), line);
	cJSON_Delete(j);
}

static void expect_bad(struct goman_jsonl_reader *r, long line, const char *msg_part)
{
	struct goman_err e = GOMAN_ERR_INIT;
	cJSON *j = (cJSON *)1;
	assert_int_equal(goman_jsonl_next(r, &j, &e), GOMAN_JSONL_BAD);
	assert_null(j);
	assert_string_equal(e.code, "BadInput");
	assert_int_equal(e.cls, GOMAN_CLASS_BAD_INPUT);
	assert_int_equal(goman_jsonl_lineno(r), line);
	assert_non_null(strstr(e.message, msg_part));
}

static void expect_eof(struct goman_jsonl_reader *r)
{
	struct goman_err e = GOMAN_ERR_INIT;
	cJSON *j = NULL;
	assert_int_equal(goman_jsonl_next(r, &j, &e), GOMAN_JSONL_EOF);
	assert_int_equal(goman_jsonl_next(r, &j, &e), GOMAN_JSONL_EOF);
}

static void test_reads_records_with_line_numbers_skipping_empty_lines(void **s)
{
	int fd = pipe_str("{\"a\":1}\n\n{\"a\":2}\n   \n");
	struct goman_jsonl_reader *r = goman_jsonl_reader_new(fd, 0);
	expect_record(r, "a", 1, 1);
	expect_record(r, "a", 2, 3);
	/* a whitespace-only line is not empty: it is bad JSON */
	expect_bad(r, 4, "not valid JSON");
	expect_eof(r);
	goman_jsonl_reader_free(r);
	close(fd);
	reap();
}

static void test_crlf_line_endings_are_accepted_and_stripped_from_raw(void **s)
{
	int fd = pipe_str("{\"a\":1}\r\n\r\n{\"a\":2}\r\n");
	struct goman_jsonl_reader *r = goman_jsonl_reader_new(fd, 0);
	expect_record(r, "a", 1, 1);
	size_t len;
	const char *raw = goman_jsonl_raw(r, &len);
	assert_int_equal(len, 7);
	assert_string_equal(raw, "{\"a\":1}");
	expect_record(r, "a", 2, 3);
	expect_eof(r);
	goman_jsonl_reader_free(r);
	close(fd);
	reap();
}

static void test_last_line_without_newline_is_read(void **s)
{
	int fd = pipe_str("{\"a\":1}\n{\"a\":2}");
	struct goman_jsonl_reader *r = goman_jsonl_reader_new(fd, 0);
	expect_record(r, "a", 1, 1);
	expect_record(r, "a", 2, 2);
	expect_eof(r);
	goman_jsonl_reader_free(r);
	close(fd);
	reap();
}

static void test_overlong_line_is_one_bad_record_then_reading_resumes(void **s)
{
	/* 100 KB line against a 1000-byte cap, between two good lines; a small cap also
	 * forces the over-long line to arrive over many reads */
	size_t big = 100 * 1024;
	char *data = malloc(big + 64);
	size_t n = 0;
	n += (size_t)snprintf(data + n, 64, "{\"a\":1}\n{\"x\":\"");
	memset(data + n, 'x', big);
	n += big;
	n += (size_t)snprintf(data + n, 64, "\"}\n{\"a\":3}\n");
	int fd = pipe_with(data, n);
	struct goman_jsonl_reader *r = goman_jsonl_reader_new(fd, 1000);
	expect_record(r, "a", 1, 1);
	expect_bad(r, 2, "longer than the byte limit");
	size_t rawlen;
	const char *raw = goman_jsonl_raw(r, &rawlen);
	assert_true(rawlen > 0 && rawlen <= 1000);
	assert_memory_equal(raw, "{\"x\":\"xxx", 9);
	expect_record(r, "a", 3, 3);
	expect_eof(r);
	goman_jsonl_reader_free(r);
	close(fd);
	reap();
	free(data);
}

static void test_line_of_exactly_the_cap_is_accepted_one_more_byte_is_not(void **s)
{
	/* {"x":"...."} of exactly 20 bytes, then 21 bytes */
	int fd = pipe_str("{\"x\":\"aaaaaaaaaaaa\"}\n{\"x\":\"aaaaaaaaaaaaa\"}\n{\"a\":5}\n");
	struct goman_jsonl_reader *r = goman_jsonl_reader_new(fd, 20);
	struct goman_err e = GOMAN_ERR_INIT;
	cJSON *j = NULL;
	assert_int_equal(goman_jsonl_next(r, &j, &e), GOMAN_JSONL_RECORD);
	cJSON_Delete(j);
	expect_bad(r, 2, "longer than the byte limit");
	expect_record(r, "a", 5, 3);
	expect_eof(r);
	goman_jsonl_reader_free(r);
	close(fd);
	reap();
}

static void test_bad_utf8_is_bad_input_with_offset(void **s)
{
	/* invalid continuation, overlong '/', a UTF-16 surrogate, then valid multibyte text */
	int fd = pipe_str("{\"a\":\"\xc3\x28\"}\n{\"a\":\"\xc0\xaf\"}\n{\"a\":\"\xed\xa0\x80\"}\n"
			  "{\"a\":1,\"t\":\"h\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"}\n");
	struct goman_jsonl_reader *r = goman_jsonl_reader_new(fd, 0);
	expect_bad(r, 1, "not valid UTF-8 at byte offset 6");
	expect_bad(r, 2, "not valid UTF-8");
	expect_bad(r, 3, "not valid UTF-8");
	expect_record(r, "a", 1, 4);
	expect_eof(r);
	goman_jsonl_reader_free(r);
	close(fd);
	reap();
}

static void test_nul_escape_in_a_string_is_bad_input_not_a_cut_value(void **s)
{
	/* "prod\u0000x" must not become "prod"; an escaped backslash before u0000 is text */
	int fd = pipe_str("{\"cluster\":\"prod\\u0000x\",\"a\":1}\n"
			  "{\"k\\u0000\":1}\n"
			  "{\"a\":2,\"t\":\"\\\\u0000 \\u0001\"}\n");
	struct goman_jsonl_reader *r = goman_jsonl_reader_new(fd, 0);
	expect_bad(r, 1, "NUL (\\u0000) in a string at byte offset 16");
	expect_bad(r, 2, "NUL");
	expect_record(r, "a", 2, 3);
	expect_eof(r);
	goman_jsonl_reader_free(r);
	close(fd);
	reap();
}

static void test_utf8_validator_edges(void **s)
{
	const unsigned char ok[] = "\xf4\x8f\xbf\xbf"; /* U+10FFFF */
	assert_int_equal(gm_utf8_invalid_at(ok, 4), 4);
	const unsigned char big[] = "\xf4\x90\x80\x80"; /* above U+10FFFF */
	assert_int_equal(gm_utf8_invalid_at(big, 4), 0);
	const unsigned char cut[] = "ab\xe2\x82"; /* truncated sequence */
	assert_int_equal(gm_utf8_invalid_at(cut, 4), 2);
}

static void test_non_object_json_is_bad(void **s)
{
	int fd = pipe_str("[1,2]\n\"str\"\n42\nnull\n{\"a\":1} trailing\n{\"a\":1}\n");
	struct goman_jsonl_reader *r = goman_jsonl_reader_new(fd, 0);
	expect_bad(r, 1, "not a JSON object");
	expect_bad(r, 2, "not a JSON object");
	expect_bad(r, 3, "not a JSON object");
	expect_bad(r, 4, "not a JSON object");
	expect_bad(r, 5, "not valid JSON");
	expect_record(r, "a", 1, 6);
	expect_eof(r);
	goman_jsonl_reader_free(r);
	close(fd);
	reap();
}

static void test_line_split_across_reads_on_nonblocking_pipe(void **s)
{
	int p[2];
	assert_int_equal(pipe(p), 0);
	fcntl(p[0], F_SETFL, fcntl(p[0], F_GETFL) | O_NONBLOCK);
	struct goman_jsonl_reader *r = goman_jsonl_reader_new(p[0], 0);
	struct goman_err e = GOMAN_ERR_INIT;
	cJSON *j = NULL;
	assert_int_equal(goman_jsonl_next(r, &j, &e), GOMAN_JSONL_AGAIN);
	assert_int_equal(write(p[1], "{\"a\":", 5), 5);
	assert_int_equal(goman_jsonl_next(r, &j, &e), GOMAN_JSONL_AGAIN);
	assert_false(goman_jsonl_buffered(r));
	assert_int_equal(write(p[1], "7}\n{\"a\":8}\n{\"a\"", 15), 15);
	expect_record(r, "a", 7, 1);
	assert_true(goman_jsonl_buffered(r)); /* second line already in the buffer */
	expect_record(r, "a", 8, 2);
	assert_int_equal(goman_jsonl_next(r, &j, &e), GOMAN_JSONL_AGAIN);
	assert_int_equal(write(p[1], ":9}", 3), 3);
	close(p[1]);
	expect_record(r, "a", 9, 3);
	expect_eof(r);
	goman_jsonl_reader_free(r);
	close(p[0]);
}

static void test_read_error_is_ioerr(void **s)
{
	struct goman_jsonl_reader *r = goman_jsonl_reader_new(-1, 0);
	struct goman_err e = GOMAN_ERR_INIT;
	cJSON *j = NULL;
	assert_int_equal(goman_jsonl_next(r, &j, &e), GOMAN_JSONL_IOERR);
	assert_int_equal(e.rc, GOMAN_EIO);
	goman_jsonl_reader_free(r);
	goman_jsonl_reader_free(NULL);
}

static void test_next_raw_hands_out_text_without_parsing(void **s)
{
	int fd = pipe_str("not json\n{\"a\":1}\n");
	struct goman_jsonl_reader *r = goman_jsonl_reader_new(fd, 0);
	struct goman_err e = GOMAN_ERR_INIT;
	const char *line;
	size_t len;
	assert_int_equal(goman_jsonl_next_raw(r, &line, &len, &e), GOMAN_JSONL_RECORD);
	assert_int_equal(len, 8);
	assert_string_equal(line, "not json");
	assert_int_equal(goman_jsonl_next_raw(r, &line, &len, &e), GOMAN_JSONL_RECORD);
	assert_string_equal(line, "{\"a\":1}");
	assert_int_equal(goman_jsonl_next_raw(r, &line, &len, &e), GOMAN_JSONL_EOF);
	goman_jsonl_reader_free(r);
	close(fd);
	reap();
}

/* Reads everything from fd into buf (NUL-terminated). */
static size_t slurp(int fd, char *buf, size_t cap)
{
	size_t n = 0;
	ssize_t g;
	while (n + 1 < cap && (g = read(fd, buf + n, cap - 1 - n)) > 0)
		n += (size_t)g;
	buf[n] = '\0';
	return n;
}

static void test_writer_emits_one_compact_line(void **s)
{
	int p[2];
	assert_int_equal(pipe(p), 0);
	cJSON *o = cJSON_Parse("{ \"a\" : [1, 2], \"b\": \"x\\ny\" }");
	struct goman_err e = GOMAN_ERR_INIT;
	assert_int_equal(goman_jsonl_write(p[1], o, &e), 0);
	assert_int_equal(goman_jsonl_write_raw(p[1], "{}", 2, &e), 0);
	close(p[1]);
	char buf[256];
	slurp(p[0], buf, sizeof(buf));
	assert_string_equal(buf, "{\"a\":[1,2],\"b\":\"x\\ny\"}\n{}\n");
	close(p[0]);
	cJSON_Delete(o);
}

static void test_writer_large_line_arrives_whole(void **s)
{
	/* bigger than the pipe buffer: partial writes must be continued */
	int p[2];
	assert_int_equal(pipe(p), 0);
	size_t big = 200 * 1024;
	char *line = malloc(big);
	memset(line, 'z', big);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(p[0]);
		_exit(goman_jsonl_write_raw(p[1], line, big, NULL) == 0 ? 0 : 1);
	}
	close(p[1]);
	char *buf = malloc(big + 16);
	size_t n = slurp(p[0], buf, big + 16);
	assert_int_equal(n, big + 1);
	assert_int_equal(buf[big], '\n');
	int st;
	waitpid(pid, &st, 0);
	assert_int_equal(WEXITSTATUS(st), 0);
	close(p[0]);
	free(buf);
	free(line);
}

static void test_write_to_closed_fd_fails_with_eio(void **s)
{
	struct goman_err e = GOMAN_ERR_INIT;
	assert_int_equal(goman_jsonl_write_raw(-1, "{}", 2, &e), -1);
	assert_int_equal(e.rc, GOMAN_EIO);
}

static void test_writer_replaces_invalid_utf8_in_keys_and_values(void **s)
{
	int p[2];
	assert_int_equal(pipe(p), 0);
	cJSON *o = cJSON_CreateObject();
	/* a lone continuation byte, a cut 3-byte sequence, an overlong '/', a surrogate */
	cJSON_AddStringToObject(o, "k\x80",
				"a\xe2\x82"
				"b\xc0\xaf\xed\xa0\x80\xc3\xa9");
	struct goman_err e = GOMAN_ERR_INIT;
	assert_int_equal(goman_jsonl_write(p[1], o, &e), 0);
	assert_int_equal(goman_jsonl_write_raw(p[1], "{\"x\":\"\xff\0\"}", 10, &e), 0);
	close(p[1]);
	char buf[256];
	size_t n = slurp(p[0], buf, sizeof(buf) - 1);
	buf[n] = '\0';
	close(p[0]);
#define R "\xef\xbf\xbd"
	assert_string_equal(buf, "{\"k" R "\":\"a" R R "b" R R R R R "\xc3\xa9\"}\n"
				 "{\"x\":\"" R R "\"}\n");
#undef R
	assert_int_equal(gm_utf8_invalid_at((const unsigned char *)buf, n), n);
	cJSON_Delete(o);
}

static void test_event_lines_go_out_as_valid_utf8_too(void **s)
{
	char path[] = "/tmp/goman-test-events-XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	setenv("GOMAN_EVENTS", path, 1);
	goman_events_init("test");
	cJSON *ev = cJSON_CreateObject();
	cJSON_AddStringToObject(ev, "message", "cut \xe2\x82");
	assert_int_equal(goman_event("api_call", ev), 0);
	goman_events_init("test"); /* closes the events file */
	unsetenv("GOMAN_EVENTS");
	char buf[512];
	size_t n = slurp(fd, buf, sizeof(buf) - 1);
	buf[n] = '\0';
	close(fd);
	unlink(path);
	assert_non_null(strstr(buf, "\"message\":\"cut \xef\xbf\xbd\xef\xbf\xbd\"}\n"));
	assert_int_equal(gm_utf8_invalid_at((const unsigned char *)buf, n), n);
}

static void test_error_json_over_garbage_has_sane_numbers_and_printable_ids(void **s)
{
	struct goman_err e = GOMAN_ERR_INIT;
	memset(&e, 0xa5, sizeof(e));
	e.code[sizeof(e.code) - 1] = e.message[sizeof(e.message) - 1] = '\0';
	e.request_id[sizeof(e.request_id) - 1] = '\0';
	e.rc = GOMAN_ESERVICE;
	e.cls = GOMAN_CLASS_CLIENT;
	e.retryable = false;
	e.http_status = 539167343;
	e.retry_after_ms = INT64_C(7300000000000000000);
	cJSON *j = goman_error_json(&e, 0);
	assert_null(cJSON_GetObjectItem(j, "http_status"));
	assert_int_equal(cJSON_GetObjectItem(j, "retry_after_ms")->valuedouble, 86400000);
	const char *ids[] = {"code", "request_id"};
	for (int i = 0; i < 2; i++) {
		const char *v = cJSON_GetObjectItem(j, ids[i])->valuestring;
		assert_true(strlen(v) > 0);
		for (; *v; v++)
			assert_true(*v >= 0x20 && *v < 0x7f);
	}
	cJSON_Delete(j);
	/* out of range either way: no http_status, no retry_after_ms */
	goman_err_set(&e, GOMAN_ESERVICE, GOMAN_CLASS_CLIENT, "X\r\nY", "m");
	e.http_status = 99;
	e.retry_after_ms = -7;
	snprintf(e.request_id, sizeof(e.request_id), "ab\x01\x7f\xc3\xa9");
	j = goman_error_json(&e, 0);
	assert_null(cJSON_GetObjectItem(j, "http_status"));
	assert_null(cJSON_GetObjectItem(j, "retry_after_ms"));
	assert_string_equal(cJSON_GetObjectItem(j, "code")->valuestring, "X??Y");
	assert_string_equal(cJSON_GetObjectItem(j, "request_id")->valuestring, "ab????");
	cJSON_Delete(j);
	e.http_status = 600;
	j = goman_error_json(&e, 0);
	assert_null(cJSON_GetObjectItem(j, "http_status"));
	cJSON_Delete(j);
}

static void test_error_json_leaves_out_fields_that_do_not_apply(void **s)
{
	struct goman_err e = GOMAN_ERR_INIT;
	goman_err_clear(&e);
	goman_err_set(&e, GOMAN_EINVAL, GOMAN_CLASS_BAD_INPUT, "BadInput", "line 3: bad");
	cJSON *j = goman_error_json(&e, 3);
	char *txt = cJSON_PrintUnformatted(j);
	assert_string_equal(txt, "{\"code\":\"BadInput\",\"message\":\"line 3: bad\","
				 "\"class\":\"bad_input\",\"retryable\":false,\"line\":3}");
	cJSON_free(txt);
	cJSON_Delete(j);
}

static void test_error_json_carries_service_fields(void **s)
{
	struct goman_err e = GOMAN_ERR_INIT;
	goman_err_clear(&e);
	goman_err_set(&e, GOMAN_ESERVICE, GOMAN_CLASS_THROTTLING, "RequestLimitExceeded",
		      "Request limit exceeded.");
	e.http_status = 503;
	e.retry_after_ms = 1200;
	snprintf(e.request_id, sizeof(e.request_id), "req-1");
	cJSON *j = goman_error_json(&e, 0);
	char *txt = cJSON_PrintUnformatted(j);
	assert_string_equal(txt, "{\"code\":\"RequestLimitExceeded\",\"message\":\"Request limit "
				 "exceeded.\",\"class\":\"throttling\",\"retryable\":true,"
				 "\"http_status\":503,\"request_id\":\"req-1\","
				 "\"retry_after_ms\":1200}");
	cJSON_free(txt);
	cJSON_Delete(j);
}

static void test_error_record_keeps_input_fields_and_sets_ok_false(void **s)
{
	struct goman_err e = GOMAN_ERR_INIT;
	goman_err_clear(&e);
	goman_err_set(&e, GOMAN_ESERVICE, GOMAN_CLASS_AUTH, "AuthFailure", "no");
	e.http_status = 401;
	cJSON *in = cJSON_Parse("{\"url\":\"http://x/\",\"mine\":{\"k\":1},\"ok\":true}");
	cJSON *rec = goman_jsonl_error_record(in, NULL, &e, 0);
	char *txt = cJSON_PrintUnformatted(rec);
	assert_string_equal(txt, "{\"url\":\"http://x/\",\"mine\":{\"k\":1},\"ok\":false,"
				 "\"error\":{\"code\":\"AuthFailure\",\"message\":\"no\","
				 "\"class\":\"auth\",\"retryable\":false,\"http_status\":401}}");
	cJSON_free(txt);
	/* input untouched */
	assert_true(cJSON_IsTrue(cJSON_GetObjectItem(in, "ok")));
	assert_null(cJSON_GetObjectItem(in, "error"));
	cJSON_Delete(rec);
	cJSON_Delete(in);
}

static void test_error_record_under_stage(void **s)
{
	struct goman_err e = GOMAN_ERR_INIT;
	goman_err_clear(&e);
	goman_err_set(&e, GOMAN_ETIMEOUT, GOMAN_CLASS_TIMEOUT, "Timeout", "took too long");
	cJSON *in = cJSON_Parse("{\"name\":\"demo-agent-1\",\"provision\":{\"ok\":true,\"ms\":5}}");
	cJSON *rec = goman_jsonl_error_record(in, "install", &e, 0);
	char *txt = cJSON_PrintUnformatted(rec);
	assert_string_equal(txt, "{\"name\":\"demo-agent-1\",\"provision\":{\"ok\":true,\"ms\":5},"
				 "\"install\":{\"ok\":false,\"error\":{\"code\":\"Timeout\","
				 "\"message\":\"took too long\",\"class\":\"timeout\","
				 "\"retryable\":true}},\"ok\":false}");
	cJSON_free(txt);
	cJSON_Delete(rec);
	/* an existing stage object keeps its other fields */
	cJSON *in2 = cJSON_Parse("{\"install\":{\"via\":\"ssm\",\"ok\":true}}");
	rec = goman_jsonl_error_record(in2, "install", &e, 0);
	cJSON *st = cJSON_GetObjectItem(rec, "install");
	assert_string_equal(cJSON_GetObjectItem(st, "via")->valuestring, "ssm");
	assert_true(cJSON_IsFalse(cJSON_GetObjectItem(st, "ok")));
	assert_non_null(cJSON_GetObjectItem(st, "error"));
	assert_true(cJSON_IsFalse(cJSON_GetObjectItem(rec, "ok")));
	cJSON_Delete(rec);
	cJSON_Delete(in2);
	cJSON_Delete(in);
}

static void test_error_record_without_input_is_an_object_with_line(void **s)
{
	struct goman_err e = GOMAN_ERR_INIT;
	goman_err_clear(&e);
	goman_err_set(&e, GOMAN_EINVAL, GOMAN_CLASS_BAD_INPUT, "BadInput", "line 9: not JSON");
	cJSON *rec = goman_jsonl_error_record(NULL, NULL, &e, 9);
	cJSON *err = cJSON_GetObjectItem(rec, "error");
	assert_int_equal(cJSON_GetObjectItem(err, "line")->valueint, 9);
	assert_string_equal(cJSON_GetObjectItem(err, "code")->valuestring, "BadInput");
	assert_true(cJSON_IsFalse(cJSON_GetObjectItem(rec, "ok")));
	cJSON_Delete(rec);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_reads_records_with_line_numbers_skipping_empty_lines),
		cmocka_unit_test(test_crlf_line_endings_are_accepted_and_stripped_from_raw),
		cmocka_unit_test(test_last_line_without_newline_is_read),
		cmocka_unit_test(test_overlong_line_is_one_bad_record_then_reading_resumes),
		cmocka_unit_test(test_line_of_exactly_the_cap_is_accepted_one_more_byte_is_not),
		cmocka_unit_test(test_bad_utf8_is_bad_input_with_offset),
		cmocka_unit_test(test_nul_escape_in_a_string_is_bad_input_not_a_cut_value),
		cmocka_unit_test(test_utf8_validator_edges),
		cmocka_unit_test(test_non_object_json_is_bad),
		cmocka_unit_test(test_line_split_across_reads_on_nonblocking_pipe),
		cmocka_unit_test(test_read_error_is_ioerr),
		cmocka_unit_test(test_next_raw_hands_out_text_without_parsing),
		cmocka_unit_test(test_writer_emits_one_compact_line),
		cmocka_unit_test(test_writer_large_line_arrives_whole),
		cmocka_unit_test(test_write_to_closed_fd_fails_with_eio),
		cmocka_unit_test(test_writer_replaces_invalid_utf8_in_keys_and_values),
		cmocka_unit_test(test_error_json_over_garbage_has_sane_numbers_and_printable_ids),
		cmocka_unit_test(test_event_lines_go_out_as_valid_utf8_too),
		cmocka_unit_test(test_error_json_leaves_out_fields_that_do_not_apply),
		cmocka_unit_test(test_error_json_carries_service_fields),
		cmocka_unit_test(test_error_record_keeps_input_fields_and_sets_ok_false),
		cmocka_unit_test(test_error_record_under_stage),
		cmocka_unit_test(test_error_record_without_input_is_an_object_with_line),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
