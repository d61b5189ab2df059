/*
 * goman/http.h - a single-threaded event loop over libcurl multi: many requests in flight,
 * keep-alive reuse through one connection cache, connect/total timeouts, and timers
 * (retry back-off waits without blocking the other requests).
 *
 * Ownership: goman_http_new() returns a loop freed by goman_http_free() (NULL ok; in-flight
 * requests are cancelled and their callbacks are NOT called). A submitted request copies
 * everything it needs from struct goman_http_req (the caller may reuse it at once). The
 * struct goman_http_resp handed to the done callback is owned by the loop and valid only
 * during the callback; take what you need (goman_http_resp_take_body()).
 * TLS verification is always on, except for loopback endpoints (127.0.0.0/8, ::1,
 * localhost) where it is not needed.
 * Errors: submit returns -1 with err; transport errors reach the callback in resp->err.
 */
#ifndef GOMAN_HTTP_H
#define GOMAN_HTTP_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "goman/error.h"
#include "goman/kv.h"

struct goman_http;

struct goman_http_opts {
	long connect_timeout_ms;   /* default 5000 */
	long timeout_ms;           /* whole request, default 30000 */
	long max_host_connections; /* 0 = libcurl default */
	/* longest reply body the loop buffers (requests without on_chunk); 0 = from
	 * GOMAN_MAX_REPLY_BYTES, else 64 MiB. Past it: EPARSE, class client, ReplyTooLarge. */
	long long max_body_bytes;
};

struct goman_http_resp {
	long status;              /* 0 when no HTTP answer */
	struct goman_kvs headers; /* response headers, names as received */
	char *body;               /* NUL-terminated, body_len bytes (may hold NULs) */
	size_t body_len;
	int64_t ms;           /* wall time of the request */
	struct goman_err err; /* rc OK, or ETRANSPORT / ETIMEOUT with curl's message */
};

/* Streaming body consumer: called with each chunk as it arrives (the body is then NOT
 * accumulated in resp->body). Return non-zero to abort the transfer. */
typedef int (*goman_http_chunk_fn)(const char *data, size_t len, long status, void *ud);
typedef void (*goman_http_done_fn)(struct goman_http_resp *resp, void *ud);
typedef void (*goman_timer_fn)(void *ud);

struct goman_http_req {
	const char *method;
	const char *url;
	const struct goman_kvs *headers; /* sent as given, in order */
	const void *body;
	size_t body_len;
	long timeout_ms;              /* 0 = loop default */
	long connect_timeout_ms;      /* 0 = loop default */
	goman_http_chunk_fn on_chunk; /* optional */
	goman_http_done_fn on_done;   /* required */
	void *ud;
};

struct goman_http *goman_http_new(const struct goman_http_opts *opts /* NULL = defaults */,
				  struct goman_err *err);
void goman_http_free(struct goman_http *h);

/* Queues a request; it starts on the next goman_http_run(). Returns a request id > 0. */
long goman_http_submit(struct goman_http *h, const struct goman_http_req *req,
		       struct goman_err *err);
/* Calls fn(ud) once after delay_ms from within goman_http_run(). Returns a timer id > 0. */
long goman_http_timer(struct goman_http *h, int64_t delay_ms, goman_timer_fn fn, void *ud);
void goman_http_timer_cancel(struct goman_http *h, long timer_id);

/*
 * Runs the loop: waits on sockets and timers and calls callbacks, until nothing is pending
 * (returns 0) or max_wait_ms passed (returns the number of pending requests + timers).
 * max_wait_ms < 0 waits until idle. Callbacks may submit more requests and timers.
 * extra_fd >= 0 is also watched for readability (e.g. stdin): the loop returns early
 * with the value -2 when it becomes readable, so a command can interleave input.
 */
int goman_http_run(struct goman_http *h, int64_t max_wait_ms, int extra_fd);
/* Requests + timers still pending. */
size_t goman_http_pending(const struct goman_http *h);

/* One blocking request on its own loop: convenience for simple callers and tests.
 * resp is caller-owned; free with goman_http_resp_clear(). */
int goman_http_perform(struct goman_http *h, const struct goman_http_req *req,
		       struct goman_http_resp *resp, struct goman_err *err);
void goman_http_resp_clear(struct goman_http_resp *r);
/* Moves the body out of resp (caller frees); resp->body becomes NULL. */
char *goman_http_resp_take_body(struct goman_http_resp *r, size_t *len);

/* True when the URL's host is loopback. */
bool goman_url_is_loopback(const char *url);

#endif
