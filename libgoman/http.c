/*
 * http.c - the single-threaded event loop over libcurl multi (see goman/http.h).
 *
 * One CURLM holds every transfer, so its connection cache gives keep-alive reuse across
 * requests; a CURLSH shares the DNS cache and TLS sessions between the easy handles. Timers
 * live in a small unsorted list (a command has few), and goman_http_run() waits with
 * curl_multi_poll() for at most the nearest timer, so back-off never blocks the others.
 *
 * Ownership: the loop owns every in-flight request (struct http_req: its easy handle, its
 * copies of URL, headers and body, and the response being filled). The response handed to
 * a done callback is freed by the loop right after the callback returns, except what the
 * callback took (goman_http_resp_take_body()).
 * Errors: submit returns -1 with err; transport errors come back in resp->err (ETRANSPORT,
 * or ETIMEOUT for curl's timeout) with curl's error-buffer text.
 */
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <curl/curl.h>
#include "goman/clock.h"
#include "goman/http.h"
#include "aws_int.h"
#include "bytes_int.h"

struct http_req {
	struct http_req *prev, *next;
	struct goman_http *h;
	long id;
	CURL *easy;
	struct curl_slist *hdrs;
	char *body; /* our copy of the request body */
	goman_http_chunk_fn on_chunk;
	goman_http_done_fn on_done;
	void *ud;
	struct goman_http_resp resp;
	size_t body_cap;
	int64_t start_ms;
	int consumer_abort; /* on_chunk asked to stop */
	int oom;
	int too_large; /* the buffered body passed max_body_bytes */
	char errbuf[CURL_ERROR_SIZE];
};

struct http_timer {
	long id;
	int64_t due_ms;
	goman_timer_fn fn;
	void *ud;
};

struct goman_http {
	CURLM *multi;
	CURLSH *share;
	struct goman_http_opts opts;
	struct http_req *reqs; /* in flight */
	size_t nreqs;
	struct http_timer *timers;
	size_t ntimers, timers_cap;
	long next_id;
};

static int curl_global_done;

struct goman_http *goman_http_new(const struct goman_http_opts *opts, struct goman_err *err)
{
	if (!curl_global_done) {
		/* not thread-safe by nature; libgoman is single-threaded by design */
		if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
			goman_err_set(err, GOMAN_ETRANSPORT, GOMAN_CLASS_NONE, "CurlInit",
				      "curl_global_init failed");
			return NULL;
		}
		curl_global_done = 1;
	}
	struct goman_http *h = calloc(1, sizeof(*h));
	if (!h)
		goto oom;
	if (opts)
		h->opts = *opts;
	if (h->opts.connect_timeout_ms <= 0)
		h->opts.connect_timeout_ms = 5000;
	if (h->opts.timeout_ms <= 0)
		h->opts.timeout_ms = 30000;
	if (h->opts.max_body_bytes <= 0) {
		const char *v = getenv("GOMAN_MAX_REPLY_BYTES");
		char *end;
		long long n = v && *v ? strtoll(v, &end, 10) : -1;
		h->opts.max_body_bytes = n >= 0 && v && !*end ? n : (64LL << 20);
	}
	h->next_id = 1;
	h->multi = curl_multi_init();
	h->share = curl_share_init();
	if (!h->multi || !h->share)
		goto oom;
	curl_share_setopt(h->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
	curl_share_setopt(h->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
	if (h->opts.max_host_connections > 0)
		curl_multi_setopt(h->multi, CURLMOPT_MAX_HOST_CONNECTIONS,
				  h->opts.max_host_connections);
	return h;
oom:
	goman_http_free(h);
	gm_err_oom(err);
	return NULL;
}

static void resp_free_parts(struct goman_http_resp *r)
{
	goman_kvs_clear(&r->headers);
	free(r->body);
	r->body = NULL;
	r->body_len = 0;
}

static void req_free(struct http_req *q)
{
	if (!q)
		return;
	if (q->easy)
		curl_easy_cleanup(q->easy);
	curl_slist_free_all(q->hdrs);
	free(q->body);
	resp_free_parts(&q->resp);
	free(q);
}

static void req_unlink(struct goman_http *h, struct http_req *q)
{
	if (q->prev)
		q->prev->next = q->next;
	else
		h->reqs = q->next;
	if (q->next)
		q->next->prev = q->prev;
	q->prev = q->next = NULL;
	h->nreqs--;
}

void goman_http_free(struct goman_http *h)
{
	if (!h)
		return;
	while (h->reqs) {
		struct http_req *q = h->reqs;
		req_unlink(h, q);
		curl_multi_remove_handle(h->multi, q->easy);
		req_free(q);
	}
	free(h->timers);
	if (h->multi)
		curl_multi_cleanup(h->multi);
	if (h->share)
		curl_share_cleanup(h->share);
	free(h);
}

bool gm_header_value_ok(const char *v)
{
	/* a CR or LF would end the header early and start one of the caller's choosing */
	for (const unsigned char *p = (const unsigned char *)v; p && *p; p++)
		if ((*p < 0x20 && *p != '\t') || *p == 0x7f)
			return false;
	return true;
}

bool goman_url_is_loopback(const char *url)
{
	bool lo = false;
	CURLU *u = curl_url();
	char *host = NULL;
	if (!u || !url)
		goto out;
	if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK)
		goto out;
	if (curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK || !host)
		goto out;
	if (strcasecmp(host, "localhost") == 0 || strcmp(host, "[::1]") == 0 ||
	    strcmp(host, "::1") == 0) {
		lo = true;
	} else if (strncmp(host, "127.", 4) == 0) {
		/* only a dotted quad counts: "127.example.com" is not loopback */
		lo = strspn(host, "0123456789.") == strlen(host);
	}
out:
	curl_free(host);
	curl_url_cleanup(u);
	return lo;
}

static int body_append(struct http_req *q, const char *data, size_t len)
{
	struct goman_http_resp *r = &q->resp;
	if (r->body_len + len + 1 > q->body_cap) {
		size_t cap = q->body_cap ? q->body_cap : 4096;
		while (cap < r->body_len + len + 1)
			cap *= 2;
		char *b = realloc(r->body, cap);
		if (!b)
			return -1;
		r->body = b;
		q->body_cap = cap;
	}
	memcpy(r->body + r->body_len, data, len);
	r->body_len += len;
	r->body[r->body_len] = '\0';
	return 0;
}

static size_t write_cb(char *data, size_t size, size_t nmemb, void *ud)
{
	struct http_req *q = ud;
	size_t len = size * nmemb;
	if (q->on_chunk) {
		long status = 0;
		curl_easy_getinfo(q->easy, CURLINFO_RESPONSE_CODE, &status);
		if (q->on_chunk(data, len, status, q->ud) != 0) {
			q->consumer_abort = 1;
			return 0; /* curl stops with CURLE_WRITE_ERROR */
		}
		return len;
	}
	/* 0 (GOMAN_MAX_REPLY_BYTES=0) is no cap, as for the AWS calls */
	long long cap = q->h->opts.max_body_bytes;
	if (cap > 0 &&
	    (len > (unsigned long long)cap || q->resp.body_len > (unsigned long long)cap - len)) {
		q->too_large = 1;
		return 0;
	}
	if (body_append(q, data, len) != 0) {
		q->oom = 1;
		return 0;
	}
	return len;
}

static size_t header_cb(char *data, size_t size, size_t nmemb, void *ud)
{
	struct http_req *q = ud;
	size_t len = size * nmemb;
	/* a new status line (100 Continue, then the real one) starts a fresh header set */
	if (len >= 5 && memcmp(data, "HTTP/", 5) == 0) {
		goman_kvs_clear(&q->resp.headers);
		return len;
	}
	const char *colon = memchr(data, ':', len);
	if (!colon)
		return len; /* the blank line ending the headers, or junk */
	size_t nlen = (size_t)(colon - data);
	const char *v = colon + 1, *end = data + len;
	while (v < end && (*v == ' ' || *v == '\t'))
		v++;
	while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' ' || end[-1] == '\t'))
		end--;
	if (goman_kvs_addn(&q->resp.headers, data, nlen, v, (size_t)(end - v)) != 0) {
		q->oom = 1;
		return 0;
	}
	return len;
}

static int add_header(struct http_req *q, const char *line)
{
	struct curl_slist *n = curl_slist_append(q->hdrs, line);
	if (!n)
		return -1;
	q->hdrs = n;
	return 0;
}

static int build_headers(struct http_req *q, const struct goman_kvs *hs)
{
	int have_expect = 0, have_ctype = 0;
	for (size_t i = 0; hs && i < hs->n; i++) {
		const char *n = hs->v[i].name, *v = hs->v[i].value;
		/* the last line of defence: a CR/LF would put a header of its own on the wire */
		if (!*n || strpbrk(n, ":\r\n") || !gm_header_value_ok(v))
			return 1;
		size_t need = strlen(n) + strlen(v) + 3;
		char *line = malloc(need);
		if (!line)
			return -1;
		/* "Name:" alone would tell curl to drop the header; "Name;" sends it empty */
		if (*v)
			snprintf(line, need, "%s: %s", n, v);
		else
			snprintf(line, need, "%s;", n);
		int rc = add_header(q, line);
		free(line);
		if (rc)
			return -1;
		have_expect |= strcasecmp(n, "Expect") == 0;
		have_ctype |= strcasecmp(n, "Content-Type") == 0;
	}
	/* no 100-continue round trip; no form content type curl would add unsigned */
	if (!have_expect && add_header(q, "Expect:") != 0)
		return -1;
	if (!have_ctype && add_header(q, "Content-Type:") != 0)
		return -1;
	return 0;
}

long goman_http_submit(struct goman_http *h, const struct goman_http_req *req,
		       struct goman_err *err)
{
	if (!h || !req || !req->url || !req->on_done) {
		goman_err_set(err, GOMAN_EINVAL, GOMAN_CLASS_CLIENT, "",
			      "http submit: missing url or callback");
		return -1;
	}
	const char *method = req->method ? req->method : "GET";
	struct http_req *q = calloc(1, sizeof(*q));
	if (!q)
		goto oom;
	q->h = h;
	q->on_chunk = req->on_chunk;
	q->on_done = req->on_done;
	q->ud = req->ud;
	goman_err_clear(&q->resp.err);
	q->easy = curl_easy_init();
	if (!q->easy)
		goto oom;
	int hrc = build_headers(q, req->headers);
	if (hrc > 0 || strcspn(method, "\r\n \t") != strlen(method) || !*method) {
		goman_err_set(err, GOMAN_EINVAL, GOMAN_CLASS_BAD_INPUT, "BadInput",
			      "http submit: control bytes in the method or a header");
		req_free(q);
		return -1;
	}
	if (hrc != 0)
		goto oom;
	CURL *e = q->easy;
	curl_easy_setopt(e, CURLOPT_PRIVATE, q);
	curl_easy_setopt(e, CURLOPT_SHARE, h->share);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, q->errbuf);
	if (curl_easy_setopt(e, CURLOPT_URL, req->url) != CURLE_OK) {
		goman_err_set(err, GOMAN_EINVAL, GOMAN_CLASS_CLIENT, "", "bad URL '%s'", req->url);
		req_free(q);
		return -1;
	}
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, q->hdrs);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, write_cb);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, q);
	curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, header_cb);
	curl_easy_setopt(e, CURLOPT_HEADERDATA, q);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS,
			 req->connect_timeout_ms > 0 ? req->connect_timeout_ms
						     : h->opts.connect_timeout_ms);
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS,
			 req->timeout_ms > 0 ? req->timeout_ms : h->opts.timeout_ms);
	/* verification stays on; only loopback endpoints (local emulators, fixtures) skip it */
	if (goman_url_is_loopback(req->url)) {
		curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 0L);
		curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 0L);
		/* unverified TLS through a proxy would hand the signed request to whoever
		 * answers there: relaxed verification always means a direct connection */
		curl_easy_setopt(e, CURLOPT_NOPROXY, "*");
		curl_easy_setopt(e, CURLOPT_PROXY, "");
	}
	if (strcmp(method, "HEAD") == 0) {
		curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
	} else if (strcmp(method, "GET") == 0 && req->body_len == 0) {
		curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
	} else {
		/* POSTFIELDS with an explicit size works for any method and any bytes */
		q->body = malloc(req->body_len + 1);
		if (!q->body)
			goto oom;
		if (req->body_len)
			memcpy(q->body, req->body, req->body_len);
		curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
		curl_easy_setopt(e, CURLOPT_POSTFIELDS, q->body);
		if (strcmp(method, "POST") != 0)
			curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
	}
	q->id = h->next_id++;
	q->start_ms = goman_mono_ms();
	if (curl_multi_add_handle(h->multi, e) != CURLM_OK)
		goto oom;
	q->next = h->reqs;
	if (h->reqs)
		h->reqs->prev = q;
	h->reqs = q;
	h->nreqs++;
	return q->id;
oom:
	req_free(q);
	gm_err_oom(err);
	return -1;
}

long goman_http_timer(struct goman_http *h, int64_t delay_ms, goman_timer_fn fn, void *ud)
{
	if (!h || !fn)
		return -1;
	if (h->ntimers == h->timers_cap) {
		size_t cap = h->timers_cap ? h->timers_cap * 2 : 16;
		struct http_timer *t = realloc(h->timers, cap * sizeof(*t));
		if (!t)
			return -1;
		h->timers = t;
		h->timers_cap = cap;
	}
	struct http_timer *t = &h->timers[h->ntimers++];
	t->id = h->next_id++;
	t->due_ms = goman_mono_ms() + (delay_ms > 0 ? delay_ms : 0);
	t->fn = fn;
	t->ud = ud;
	return t->id;
}

void goman_http_timer_cancel(struct goman_http *h, long timer_id)
{
	for (size_t i = 0; h && i < h->ntimers; i++) {
		if (h->timers[i].id == timer_id) {
			h->timers[i] = h->timers[--h->ntimers];
			return;
		}
	}
}

size_t goman_http_pending(const struct goman_http *h)
{
	return h ? h->nreqs + h->ntimers : 0;
}

/* Fires every timer that is due (timers added by a callback wait for the next round, so a
 * zero-delay timer loop cannot starve the sockets). Returns how many fired. */
static int fire_timers(struct goman_http *h)
{
	int fired = 0;
	int64_t now = goman_mono_ms();
	long limit = h->next_id; /* ids given out before this round */
	for (size_t i = 0; i < h->ntimers;) {
		struct http_timer t = h->timers[i];
		if (t.id < limit && t.due_ms <= now) {
			h->timers[i] = h->timers[--h->ntimers];
			t.fn(t.ud);
			fired++;
			i = 0; /* the list may have changed under us */
			continue;
		}
		i++;
	}
	return fired;
}

static int64_t nearest_timer(const struct goman_http *h)
{
	int64_t best = -1;
	for (size_t i = 0; i < h->ntimers; i++)
		if (best < 0 || h->timers[i].due_ms < best)
			best = h->timers[i].due_ms;
	return best;
}

static void finish(struct goman_http *h, CURL *easy, CURLcode rc)
{
	struct http_req *q = NULL;
	curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&q);
	if (!q)
		return;
	req_unlink(h, q);
	curl_multi_remove_handle(h->multi, easy);
	struct goman_http_resp *r = &q->resp;
	curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &r->status);
	r->ms = goman_mono_ms() - q->start_ms;
	if (!r->body && !q->on_chunk) {
		/* an empty body is "" so callers never special-case NULL */
		r->body = calloc(1, 1);
		q->body_cap = 1;
	}
	if (q->oom) {
		goman_err_set(&r->err, GOMAN_ENOMEM, GOMAN_CLASS_NONE, "",
			      "out of memory reading reply");
	} else if (q->too_large) {
		goman_err_set(&r->err, GOMAN_EPARSE, GOMAN_CLASS_CLIENT, "ReplyTooLarge",
			      "the reply is longer than %lld bytes (GOMAN_MAX_REPLY_BYTES)",
			      h->opts.max_body_bytes);
	} else if (q->consumer_abort) {
		goman_err_set(&r->err, GOMAN_ETRANSPORT, GOMAN_CLASS_TRANSIENT, "Aborted",
			      "transfer aborted by the body consumer");
	} else if (rc == CURLE_OPERATION_TIMEDOUT) {
		goman_err_set(&r->err, GOMAN_ETIMEOUT, GOMAN_CLASS_TIMEOUT, "Timeout", "%s",
			      q->errbuf[0] ? q->errbuf : curl_easy_strerror(rc));
	} else if (rc != CURLE_OK) {
		goman_err_set(&r->err, GOMAN_ETRANSPORT, GOMAN_CLASS_TRANSIENT, "Transport", "%s",
			      q->errbuf[0] ? q->errbuf : curl_easy_strerror(rc));
	}
	r->err.http_status = (int)r->status;
	q->on_done(r, q->ud);
	req_free(q);
}

static void drain(struct goman_http *h)
{
	CURLMsg *m;
	int left;
	while ((m = curl_multi_info_read(h->multi, &left)))
		if (m->msg == CURLMSG_DONE)
			finish(h, m->easy_handle, m->data.result);
}

static int fd_ready(int fd)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	/* POLLHUP counts: EOF on a pipe is news the command must read */
	return poll(&p, 1, 0) > 0 && (p.revents & (POLLIN | POLLHUP | POLLERR | POLLNVAL));
}

static int run_loop(struct goman_http *h, int64_t max_wait_ms, int extra_fd, const int *stop)
{
	int64_t start = goman_mono_ms();
	for (;;) {
		int running = 0;
		fire_timers(h);
		curl_multi_perform(h->multi, &running);
		drain(h);
		if (stop && *stop)
			return 0;
		if (h->nreqs == 0 && h->ntimers == 0)
			return 0;
		if (extra_fd >= 0 && fd_ready(extra_fd))
			return -2;
		int64_t now = goman_mono_ms();
		int64_t wait = 1000;
		if (max_wait_ms >= 0) {
			int64_t left = start + max_wait_ms - now;
			if (left <= 0)
				return (int)goman_http_pending(h);
			if (left < wait)
				wait = left;
		}
		int64_t t = nearest_timer(h);
		if (t >= 0) {
			t -= now;
			if (t < 0)
				t = 0;
			if (t < wait)
				wait = t;
		}
		struct curl_waitfd wfd = {.fd = extra_fd, .events = CURL_WAIT_POLLIN, .revents = 0};
		int nfds = 0;
		curl_multi_poll(h->multi, extra_fd >= 0 ? &wfd : NULL, extra_fd >= 0 ? 1 : 0,
				(int)wait, &nfds);
	}
}

int goman_http_run(struct goman_http *h, int64_t max_wait_ms, int extra_fd)
{
	if (!h)
		return 0;
	return run_loop(h, max_wait_ms, extra_fd, NULL);
}

void gm_http_run_until(struct goman_http *h, const int *flag)
{
	while (h && !*flag && goman_http_pending(h) > 0)
		run_loop(h, -1, -1, flag);
}

void gm_http_cancel(struct goman_http *h, long id)
{
	for (struct http_req *q = h ? h->reqs : NULL; q; q = q->next) {
		if (q->id == id) {
			req_unlink(h, q);
			curl_multi_remove_handle(h->multi, q->easy);
			req_free(q);
			return;
		}
	}
}

struct perform_ctx {
	struct goman_http_resp *out;
	int done;
};

static void perform_done(struct goman_http_resp *r, void *ud)
{
	struct perform_ctx *c = ud;
	*c->out = *r;
	/* the loop frees what stays in r: hand over the owned parts */
	memset(&r->headers, 0, sizeof(r->headers));
	r->body = NULL;
	r->body_len = 0;
	c->done = 1;
}

int goman_http_perform(struct goman_http *h, const struct goman_http_req *req,
		       struct goman_http_resp *resp, struct goman_err *err)
{
	struct goman_http *own = NULL;
	memset(resp, 0, sizeof(*resp));
	goman_err_clear(&resp->err);
	if (!h) {
		h = own = goman_http_new(NULL, err);
		if (!h)
			return -1;
	}
	struct perform_ctx c = {.out = resp, .done = 0};
	struct goman_http_req r = *req;
	r.on_done = perform_done;
	r.ud = &c;
	if (goman_http_submit(h, &r, err) < 0) {
		goman_http_free(own);
		return -1;
	}
	while (!c.done)
		run_loop(h, -1, -1, &c.done);
	goman_http_free(own);
	if (resp->err.rc != GOMAN_OK) {
		if (err)
			*err = resp->err;
		return -1;
	}
	return 0;
}

void goman_http_resp_clear(struct goman_http_resp *r)
{
	if (!r)
		return;
	resp_free_parts(r);
	memset(r, 0, sizeof(*r));
}

char *goman_http_resp_take_body(struct goman_http_resp *r, size_t *len)
{
	if (!r)
		return NULL;
	char *b = r->body;
	if (len)
		*len = r->body_len;
	r->body = NULL;
	r->body_len = 0;
	return b;
}
