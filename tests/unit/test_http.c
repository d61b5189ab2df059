/*
 * test_http.c - the libcurl multi event loop against a loopback HTTP server started here
 * (a small python3 http.server script: threaded, HTTP/1.1 keep-alive).
 */
#include "unit.h"
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>
#include "goman/http.h"

static const char server_py[] =
	"import sys, time, threading, urllib.parse\n"
	"from http.server import ThreadingHTTPServer, BaseHTTPRequestHandler\n"
	"lock = threading.Lock(); cur = [0]; mx = [0]\n"
	"class H(BaseHTTPRequestHandler):\n"
	"    protocol_version = 'HTTP/1.1'\n"
	"    def log_message(self, *a): pass\n"
	"    def reply(self, code, body, extra=()):\n"
	"        self.send_response(code)\n"
	"        self.send_header('Content-Length', str(len(body)))\n"
	"        self.send_header('X-Client-Port', str(self.client_address[1]))\n"
	"        for k, v in extra: self.send_header(k, v)\n"
	"        self.end_headers()\n"
	"        if self.command != 'HEAD': self.wfile.write(body)\n"
	"    def any(self):\n"
	"        u = urllib.parse.urlparse(self.path); q = urllib.parse.parse_qs(u.query)\n"
	"        n = int(self.headers.get('Content-Length') or 0)\n"
	"        data = self.rfile.read(n) if n else b''\n"
	"        if u.path == '/echo':\n"
	"            ct = self.headers.get('Content-Type') or '-'\n"
	"            self.reply(200, self.command.encode() + b' ' + ct.encode() + b'\\n' + data,\n"
	"                       [('X-Echo-Test', self.headers.get('X-Test') or '-')])\n"
	"        elif u.path == '/sleep':\n"
	"            time.sleep(int(q['ms'][0]) / 1000.0); self.reply(200, b'slept')\n"
	"        elif u.path == '/conc':\n"
	"            with lock: cur[0] += 1; mx[0] = max(mx[0], cur[0])\n"
	"            time.sleep(0.3)\n"
	"            with lock: cur[0] -= 1; m = mx[0]\n"
	"            self.reply(200, str(m).encode())\n"
	"        elif u.path == '/big':\n"
	"            self.reply(200, b'x' * (1 << 20))\n"
	"        else:\n"
	"            self.reply(404, b'<Error>nope</Error>')\n"
	"    do_GET = do_POST = do_PUT = do_HEAD = do_DELETE = any\n"
	"s = ThreadingHTTPServer(('127.0.0.1', 0), H)\n"
	"import os; os.write(3, b'%d\\n' % s.server_address[1]); os.close(3)\n"
	"s.serve_forever()\n";

static pid_t server_pid;
static char base[64];

static int server_up(void **state)
{
	(void)state;
	int p[2];
	if (pipe(p) != 0)
		return -1;
	server_pid = fork();
	if (server_pid == 0) {
		/* the port comes back on fd 3: stdout may carry other chatter (pyenv shims);
		 * clients hanging up (timeouts, aborts) make the server print tracebacks */
		close(p[0]);
		if (p[1] != 3) {
			dup2(p[1], 3);
			close(p[1]);
		}
		const char *log = getenv("HTTP_TEST_SERVER_LOG");
		int devnull = open(log ? log : "/dev/null", O_WRONLY | O_CREAT | O_APPEND, 0600);
		if (devnull >= 0) {
			dup2(devnull, 1);
			dup2(devnull, 2);
			close(devnull);
		}
		execlp("python3", "python3", "-c", server_py, (char *)NULL);
		_exit(127);
	}
	close(p[1]);
	char buf[32] = {0};
	ssize_t n = read(p[0], buf, sizeof(buf) - 1);
	close(p[0]);
	if (n <= 0)
		return -1;
	buf[strcspn(buf, "\n")] = '\0';
	snprintf(base, sizeof(base), "http://127.0.0.1:%s", buf);
	return 0;
}

static int server_down(void **state)
{
	(void)state;
	if (server_pid > 0) {
		kill(server_pid, SIGTERM);
		waitpid(server_pid, NULL, 0);
	}
	return 0;
}

static char *url(const char *path)
{
	static char u[256];
	snprintf(u, sizeof(u), "%s%s", base, path);
	return u;
}

static void test_get_captures_status_headers_and_body(void **state)
{
	struct goman_http *h = goman_http_new(NULL, NULL);
	struct goman_kvs hs = {0};
	goman_kvs_add(&hs, "X-Test", "hello");
	struct goman_http_req req = {.method = "GET", .url = url("/echo"), .headers = &hs};
	struct goman_http_resp r;
	struct goman_err err = GOMAN_ERR_INIT;
	assert_int_equal(goman_http_perform(h, &req, &r, &err), 0);
	assert_int_equal(r.status, 200);
	assert_string_equal(r.body, "GET -\n");
	assert_int_equal(r.body_len, 6);
	assert_string_equal(goman_kvs_get(&r.headers, "x-echo-test"), "hello");
	assert_non_null(goman_kvs_get(&r.headers, "Content-Length"));
	goman_http_resp_clear(&r);
	goman_kvs_clear(&hs);
	goman_http_free(h);
}

static void test_post_sends_binary_body_and_no_default_content_type(void **state)
{
	struct goman_http *h = goman_http_new(NULL, NULL);
	static const char body[] = {'a', '\0', 'b', '\n', 'c'};
	struct goman_http_req req = {
		.method = "PUT", .url = url("/echo"), .body = body, .body_len = sizeof(body)};
	struct goman_http_resp r;
	assert_int_equal(goman_http_perform(h, &req, &r, NULL), 0);
	assert_int_equal(r.status, 200);
	/* "PUT -\n" then the 5 body bytes, NUL included; curl added no Content-Type */
	assert_int_equal(r.body_len, 6 + sizeof(body));
	assert_memory_equal(r.body, "PUT -\n", 6);
	assert_memory_equal(r.body + 6, body, sizeof(body));
	goman_http_resp_clear(&r);
	goman_http_free(h);
}

static void test_http_error_status_is_not_a_transport_error(void **state)
{
	struct goman_http_req req = {.url = url("/missing")};
	struct goman_http_resp r;
	/* NULL loop: perform makes its own */
	assert_int_equal(goman_http_perform(NULL, &req, &r, NULL), 0);
	assert_int_equal(r.status, 404);
	assert_int_equal(r.err.rc, GOMAN_OK);
	assert_string_equal(r.body, "<Error>nope</Error>");
	goman_http_resp_clear(&r);
}

static void test_head_returns_headers_without_body(void **state)
{
	struct goman_http_req req = {.method = "HEAD", .url = url("/echo")};
	struct goman_http_resp r;
	assert_int_equal(goman_http_perform(NULL, &req, &r, NULL), 0);
	assert_int_equal(r.status, 200);
	assert_int_equal(r.body_len, 0);
	goman_http_resp_clear(&r);
}

struct counter {
	int done;
	long max_conc;
};

static void conc_done(struct goman_http_resp *r, void *ud)
{
	struct counter *c = ud;
	assert_int_equal(r->status, 200);
	long m = strtol(r->body, NULL, 10);
	if (m > c->max_conc)
		c->max_conc = m;
	c->done++;
}

static void test_many_requests_are_in_flight_at_once(void **state)
{
	struct goman_http *h = goman_http_new(NULL, NULL);
	struct counter c = {0};
	for (int i = 0; i < 8; i++) {
		struct goman_http_req req = {.url = url("/conc"), .on_done = conc_done, .ud = &c};
		assert_true(goman_http_submit(h, &req, NULL) > 0);
	}
	assert_int_equal(goman_http_pending(h), 8);
	assert_int_equal(goman_http_run(h, -1, -1), 0);
	assert_int_equal(c.done, 8);
	/* the server saw several requests at the same time: they did not go one by one */
	assert_true(c.max_conc >= 4);
	assert_int_equal(goman_http_pending(h), 0);
	goman_http_free(h);
}

static void test_sequential_requests_reuse_the_connection(void **state)
{
	struct goman_http *h = goman_http_new(NULL, NULL);
	char ports[3][16];
	for (int i = 0; i < 3; i++) {
		struct goman_http_req req = {.url = url("/echo")};
		struct goman_http_resp r;
		assert_int_equal(goman_http_perform(h, &req, &r, NULL), 0);
		const char *p = goman_kvs_get(&r.headers, "X-Client-Port");
		assert_non_null(p);
		snprintf(ports[i], sizeof(ports[i]), "%s", p);
		goman_http_resp_clear(&r);
	}
	assert_string_equal(ports[0], ports[1]);
	assert_string_equal(ports[1], ports[2]);
	goman_http_free(h);
}

static void test_total_timeout_is_reported_as_etimeout(void **state)
{
	struct goman_http_req req = {.url = url("/sleep?ms=3000"), .timeout_ms = 200};
	struct goman_http_resp r;
	struct goman_err err = GOMAN_ERR_INIT;
	assert_int_equal(goman_http_perform(NULL, &req, &r, &err), -1);
	assert_int_equal(err.rc, GOMAN_ETIMEOUT);
	assert_int_equal(r.err.rc, GOMAN_ETIMEOUT);
	assert_true(err.message[0] != '\0');
	assert_int_equal(r.status, 0);
	goman_http_resp_clear(&r);
}

static void test_refused_connection_is_a_transport_error(void **state)
{
	/* port 1 on loopback: nobody listens there */
	struct goman_http_req req = {.url = "http://127.0.0.1:1/"};
	struct goman_http_resp r;
	struct goman_err err = GOMAN_ERR_INIT;
	assert_int_equal(goman_http_perform(NULL, &req, &r, &err), -1);
	assert_int_equal(err.rc, GOMAN_ETRANSPORT);
	assert_int_equal(err.cls, GOMAN_CLASS_TRANSIENT);
	assert_true(err.retryable);
	goman_http_resp_clear(&r);
}

struct chunks {
	size_t bytes;
	int calls;
	int abort_after;
	int done;
	struct goman_http_resp last;
};

static int on_chunk(const char *data, size_t len, long status, void *ud)
{
	struct chunks *c = ud;
	(void)data;
	assert_int_equal(status, 200);
	c->bytes += len;
	c->calls++;
	return c->abort_after && c->calls >= c->abort_after;
}

static void chunk_done(struct goman_http_resp *r, void *ud)
{
	struct chunks *c = ud;
	c->done = 1;
	c->last.err = r->err;
	c->last.body = r->body;
	c->last.status = r->status;
}

static void test_chunk_callback_streams_the_body(void **state)
{
	struct goman_http *h = goman_http_new(NULL, NULL);
	struct chunks c = {0};
	struct goman_http_req req = {
		.url = url("/big"), .on_chunk = on_chunk, .on_done = chunk_done, .ud = &c};
	assert_true(goman_http_submit(h, &req, NULL) > 0);
	goman_http_run(h, -1, -1);
	assert_int_equal(c.done, 1);
	assert_int_equal(c.bytes, 1 << 20);
	assert_true(c.calls > 1);
	assert_null(c.last.body); /* not accumulated */
	assert_int_equal(c.last.err.rc, GOMAN_OK);

	struct chunks a = {.abort_after = 1};
	req.ud = &a;
	assert_true(goman_http_submit(h, &req, NULL) > 0);
	goman_http_run(h, -1, -1);
	assert_int_equal(a.done, 1);
	assert_int_equal(a.calls, 1);
	assert_int_not_equal(a.last.err.rc, GOMAN_OK);
	goman_http_free(h);
}

struct tlog {
	char order[8];
	int n;
	struct goman_http *h;
	int req_done;
};

static void t_a(void *ud)
{
	struct tlog *t = ud;
	t->order[t->n++] = 'a';
}
static void t_b(void *ud)
{
	struct tlog *t = ud;
	t->order[t->n++] = 'b';
}
static void t_c(void *ud)
{
	struct tlog *t = ud;
	t->order[t->n++] = 'c';
}
static void t_req_done(struct goman_http_resp *r, void *ud)
{
	struct tlog *t = ud;
	(void)r;
	t->order[t->n++] = 'R';
	t->req_done = 1;
}

static void test_timers_fire_in_order_while_a_request_is_in_flight(void **state)
{
	struct goman_http *h = goman_http_new(NULL, NULL);
	struct tlog t = {.h = h};
	struct goman_http_req req = {.url = url("/sleep?ms=400"), .on_done = t_req_done, .ud = &t};
	assert_true(goman_http_submit(h, &req, NULL) > 0);
	goman_http_timer(h, 150, t_b, &t);
	goman_http_timer(h, 20, t_a, &t);
	long cid = goman_http_timer(h, 100, t_c, &t);
	goman_http_timer_cancel(h, cid);
	assert_int_equal(goman_http_pending(h), 3);
	assert_int_equal(goman_http_run(h, -1, -1), 0);
	/* a and b fired before the slow request ended; c was cancelled */
	assert_int_equal(t.n, 3);
	assert_memory_equal(t.order, "abR", 3);
	goman_http_free(h);
}

static void test_run_returns_pending_count_when_max_wait_passes(void **state)
{
	struct goman_http *h = goman_http_new(NULL, NULL);
	struct tlog t = {.h = h};
	goman_http_timer(h, 5000, t_a, &t);
	assert_int_equal(goman_http_run(h, 50, -1), 1);
	assert_int_equal(t.n, 0);
	goman_http_free(h); /* pending timer dropped without firing */
}

static void test_extra_fd_readable_interrupts_the_loop(void **state)
{
	struct goman_http *h = goman_http_new(NULL, NULL);
	struct tlog t = {.h = h};
	int p[2];
	assert_int_equal(pipe(p), 0);
	struct goman_http_req req = {.url = url("/sleep?ms=300"), .on_done = t_req_done, .ud = &t};
	assert_true(goman_http_submit(h, &req, NULL) > 0);
	assert_int_equal(goman_http_run(h, 50, p[0]), 1); /* nothing to read yet */
	assert_int_equal(write(p[1], "x\n", 2), 2);
	assert_int_equal(goman_http_run(h, -1, p[0]), -2);
	assert_int_equal(t.req_done, 0);
	char b[2];
	assert_int_equal(read(p[0], b, 2), 2);
	close(p[1]); /* EOF is readable news too */
	assert_int_equal(goman_http_run(h, -1, p[0]), -2);
	close(p[0]);
	assert_int_equal(goman_http_run(h, -1, -1), 0);
	assert_int_equal(t.req_done, 1);
	goman_http_free(h);
}

static void test_free_cancels_in_flight_without_callbacks(void **state)
{
	struct goman_http *h = goman_http_new(NULL, NULL);
	struct tlog t = {.h = h};
	struct goman_http_req req = {.url = url("/sleep?ms=300"), .on_done = t_req_done, .ud = &t};
	assert_true(goman_http_submit(h, &req, NULL) > 0);
	goman_http_run(h, 20, -1);
	goman_http_free(h);
	assert_int_equal(t.req_done, 0);
}

static void test_submit_rejects_missing_callback(void **state)
{
	struct goman_http *h = goman_http_new(NULL, NULL);
	struct goman_http_req req = {.url = url("/echo")};
	struct goman_err err = GOMAN_ERR_INIT;
	assert_int_equal(goman_http_submit(h, &req, &err), -1);
	assert_int_equal(err.rc, GOMAN_EINVAL);
	goman_http_free(h);
}

static void test_loopback_detection(void **state)
{
	assert_true(goman_url_is_loopback("http://127.0.0.1:5000/"));
	assert_true(goman_url_is_loopback("https://127.1.2.3/x"));
	assert_true(goman_url_is_loopback("http://localhost/"));
	assert_true(goman_url_is_loopback("http://[::1]:8080/"));
	assert_false(goman_url_is_loopback("https://127.example.com/"));
	assert_false(goman_url_is_loopback("https://ec2.us-east-1.amazonaws.com/"));
	assert_false(goman_url_is_loopback("https://10.0.0.1/"));
	assert_false(goman_url_is_loopback("not a url"));
	assert_false(goman_url_is_loopback(NULL));
}

static void proxy_done(struct goman_http_resp *r, void *ud);

static void test_buffered_reply_longer_than_the_cap_is_reply_too_large(void **state)
{
	struct goman_err err = GOMAN_ERR_INIT;
	goman_err_clear(&err);
	struct goman_http_opts o = {.max_body_bytes = 1000};
	struct goman_http *h = goman_http_new(&o, &err);
	assert_non_null(h);
	struct goman_http_req rq = {.method = "GET", .url = url("/big")};
	struct goman_http_resp resp;
	assert_int_equal(goman_http_perform(h, &rq, &resp, &err), -1);
	assert_string_equal(resp.err.code, "ReplyTooLarge");
	assert_int_equal(resp.err.cls, GOMAN_CLASS_CLIENT);
	assert_true(resp.body_len <= 1000);
	goman_http_resp_clear(&resp);
	/* under the cap (the default here) the same reply is whole */
	goman_http_free(h);
	h = goman_http_new(NULL, &err);
	assert_int_equal(goman_http_perform(h, &rq, &resp, &err), 0);
	assert_int_equal(resp.body_len, 1 << 20);
	goman_http_resp_clear(&resp);
	goman_http_free(h);
}

static void test_control_bytes_in_a_header_or_method_are_refused_before_sending(void **state)
{
	struct goman_err err = GOMAN_ERR_INIT;
	goman_err_clear(&err);
	struct goman_http *h = goman_http_new(NULL, &err);
	assert_non_null(h);
	struct goman_kvs hs = {0};
	assert_int_equal(goman_kvs_add(&hs, "X-A", "b\r\nX-Injected: yes"), 0);
	int done = 0;
	struct goman_http_req rq = {.method = "GET",
				    .url = url("/echo"),
				    .headers = &hs,
				    .on_done = proxy_done,
				    .ud = &done};
	assert_int_equal(goman_http_submit(h, &rq, &err), -1);
	assert_int_equal(err.cls, GOMAN_CLASS_BAD_INPUT);
	goman_kvs_clear(&hs);
	rq.headers = NULL;
	rq.method = "GET\r\nX-Injected: yes";
	goman_err_clear(&err);
	assert_int_equal(goman_http_submit(h, &rq, &err), -1);
	assert_int_equal(err.cls, GOMAN_CLASS_BAD_INPUT);
	assert_int_equal(goman_http_pending(h), 0);
	goman_http_free(h);
}

static void proxy_done(struct goman_http_resp *r, void *ud)
{
	*(int *)ud = 1;
	(void)r;
}

static void test_loopback_endpoints_never_go_through_a_proxy(void **state)
{
	/* a "proxy" that only counts: with unverified TLS, whoever answers at the proxy
	 * would get the signed request */
	int ls = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	assert_true(ls >= 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t al = sizeof(a);
	assert_int_equal(bind(ls, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(ls, 8), 0);
	assert_int_equal(getsockname(ls, (struct sockaddr *)&a, &al), 0);
	char proxy[64];
	snprintf(proxy, sizeof(proxy), "http://127.0.0.1:%d", ntohs(a.sin_port));
	const char *names[] = {"https_proxy", "HTTPS_PROXY", "http_proxy", "ALL_PROXY",
			       "all_proxy"};
	for (size_t i = 0; i < 5; i++)
		setenv(names[i], proxy, 1);
	unsetenv("no_proxy");
	unsetenv("NO_PROXY");
	struct goman_err err = GOMAN_ERR_INIT;
	goman_err_clear(&err);
	struct goman_http *h = goman_http_new(NULL, &err);
	assert_non_null(h);
	/* https to the plain-HTTP test server: the handshake fails, which is fine; what
	 * matters is where the connection went */
	char https[96];
	snprintf(https, sizeof(https), "https%s/echo", base + 4);
	const char *urls[] = {https, url("/echo")};
	for (size_t i = 0; i < 2; i++) {
		int done = 0;
		struct goman_http_req rq = {.method = "GET",
					    .url = urls[i],
					    .on_done = proxy_done,
					    .ud = &done,
					    .timeout_ms = 3000};
		assert_true(goman_http_submit(h, &rq, &err) > 0);
		while (!done)
			goman_http_run(h, 100, -1);
	}
	goman_http_free(h);
	for (size_t i = 0; i < 5; i++)
		unsetenv(names[i]);
	int c = accept(ls, NULL, NULL);
	if (c >= 0)
		close(c);
	assert_int_equal(c, -1);
	close(ls);
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_get_captures_status_headers_and_body),
		cmocka_unit_test(test_post_sends_binary_body_and_no_default_content_type),
		cmocka_unit_test(test_http_error_status_is_not_a_transport_error),
		cmocka_unit_test(test_head_returns_headers_without_body),
		cmocka_unit_test(test_many_requests_are_in_flight_at_once),
		cmocka_unit_test(test_sequential_requests_reuse_the_connection),
		cmocka_unit_test(test_total_timeout_is_reported_as_etimeout),
		cmocka_unit_test(test_refused_connection_is_a_transport_error),
		cmocka_unit_test(test_chunk_callback_streams_the_body),
		cmocka_unit_test(test_timers_fire_in_order_while_a_request_is_in_flight),
		cmocka_unit_test(test_run_returns_pending_count_when_max_wait_passes),
		cmocka_unit_test(test_extra_fd_readable_interrupts_the_loop),
		cmocka_unit_test(test_free_cancels_in_flight_without_callbacks),
		cmocka_unit_test(test_submit_rejects_missing_callback),
		cmocka_unit_test(test_loopback_detection),
		cmocka_unit_test(test_loopback_endpoints_never_go_through_a_proxy),
		cmocka_unit_test(test_buffered_reply_longer_than_the_cap_is_reply_too_large),
		cmocka_unit_test(
			test_control_bytes_in_a_header_or_method_are_refused_before_sending),
	};
	return cmocka_run_group_tests(tests, server_up, server_down);
}
