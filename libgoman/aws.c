/*
 * aws.c - the one generic AWS call path (see goman/aws.h).
 *
 * A call becomes an op: the protocol file builds the unsigned request once (aws_query.c,
 * aws_json.c, aws_s3.c). Every attempt first takes the current credentials from the chain
 * (before the guard: fetching them may itself be a call through this client), then goes
 * breaker -> rate limiter -> send through the
 * client's guard (guard.c): admit() asks goman_guard_before() (CircuitOpen ends the call;
 * MaxConcurrent parks the op in a wait queue that the next finished attempt of the same
 * (service, region, endpoint) wakes; with no adaptive-mode send token yet the op parks the
 * same way, with the guard's wait as its timer, and asks again), then
 * attempt_send() signs a copy of the headers with those credentials and a fresh date and
 * submits on the shared loop. The reply streams through attempt_chunk (XML straight into
 * expat, JSON and S3 bytes buffered); attempt_done parses it, fills the one error type,
 * classifies it with goman_err_classify(), emits the api_call event, and hands the outcome
 * to goman_guard_after(), which feeds breaker, quota and limiter and decides the retry with
 * the policy (call->retry_policy, else the configured one). Two decisions stay here: an
 * ExpiredToken answer refreshes the credentials once and goes again, and eventual-
 * consistency codes are only retried when the call asked (eventual_deadline_ms > 0), as
 * goman/aws.h has always promised. Waits are loop timers, never sleeps, so other calls keep
 * moving.
 *
 * The credential chain's own calls: the client installs gm_aws_creds_call() as its chain's
 * caller hook, so AssumeRole (signed with the source credentials the chain hands over),
 * AssumeRoleWithWebIdentity (unsigned, no credential lookup) and the SSO portal and SSO-OIDC
 * (unsigned REST-JSON, an optional bearer header) run as ops of this client, on its loop and
 * through its guard. The chain asks from inside an op's admit(): the hook runs the loop until
 * its own op is done, and other ops that want credentials meanwhile get the current ones, or
 * wait a moment (GM_CREDS_BUSY_CODE) while there are none. A bare chain
 * (goman_credchain_new, creds_client.c) gets a client of this kind on first need
 * (gm_aws_new_on_chain).
 *
 * Config: opts->config when given; NULL means the guard loads the effective config itself
 * (goman_config_init + goman_config_load: GOMAN_* env > AWS_RETRY_MODE/AWS_MAX_ATTEMPTS >
 * config file > profile > defaults), so a command without flags gets the same settings as
 * its --show-config prints. A bad config file makes goman_aws_new() fail (EINVAL).
 *
 * Ownership: struct goman_aws owns its credential chain, endpoint cache, guard, the loop when
 * it made it, and every op in flight (freed with the client; their callbacks are not called).
 * Errors: submit returns -1 with err for calls that cannot start (bad input, no
 * credentials); everything later, a breaker refusing the first attempt included, arrives in
 * the done callback's result.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <cjson/cJSON.h>
#include "goman/aws.h"
#include "goman/s3.h"
#include "goman/aws_error.h"
#include "goman/clock.h"
#include "goman/config.h"
#include "goman/creds.h"
#include "goman/guard.h"
#include "goman/log.h"
#include "goman/sigv4.h"
#include "aws_int.h"
#include "buf_int.h"
#include "bytes_int.h"
#include "creds_int.h"

/* a parked op also re-asks on its own after the guard's wait_ms, or this long when the
 * guard names none: a wake-up is never lost, and the loop sees the op as pending */
#define ADMIT_POLL_MS 500
/* an op whose credentials the chain is fetching for another op asks again this often */
#define CREDS_BUSY_POLL_MS 20

struct endpoint {
	char *service, *region, *url;
};

struct aws_op;

struct goman_aws {
	struct goman_credchain *cc;
	bool own_cc;              /* false for the client a bare chain makes for its own calls */
	struct goman_creds creds; /* explicit credentials (opts->creds), else unused */
	bool explicit_creds;
	char *region;
	struct goman_http *http;
	bool own_http;
	struct endpoint *eps;
	size_t neps;
	struct aws_op *ops; /* in flight */
	struct goman_guard *guard;
	struct aws_op *waiters, **waiters_tail; /* parked (MaxConcurrent, send token), FIFO */
	int64_t max_reply;                      /* bytes of one reply; 0 = no cap */
};

enum { MODE_UNDECIDED, MODE_XML, MODE_BUF };

struct aws_op {
	struct aws_op *prev, *next;
	struct goman_aws *a;
	char service[16], action[128], region[64], sign_region[64];
	struct gm_aws_req req;
	goman_aws_done_fn done;
	void *ud;
	const char *endpoint; /* base URL: the breaker's key (borrowed from the client's cache) */
	char policy[32];      /* call->retry_policy copied: the ticket points here */
	struct goman_guard_ticket t;
	struct aws_op *wnext; /* wait queue */
	bool waiting;
	int64_t start_ms;
	bool creds_refreshed;
	bool unsigned_req;             /* the credential chain's unsigned calls */
	struct goman_creds *sign_with; /* the chain's AssumeRole: its source credentials */
	long http_id, timer_id;
	struct goman_aws_result res;
	/* per attempt */
	int mode;
	struct gm_xml *xml;
	struct gm_buf body;
	struct goman_err parse_err;
	bool err_data; /* res.data is this attempt's JSON error body */
	int64_t reply_bytes;
	bool too_large; /* the reply passed max_reply: the transfer was stopped */
};

void gm_aws_req_clear(struct gm_aws_req *r)
{
	if (!r)
		return;
	free(r->url);
	free(r->body);
	goman_kvs_clear(&r->headers);
	memset(r, 0, sizeof(*r));
}

/* ---- client ------------------------------------------------------------------------ */

struct goman_aws *goman_aws_new(const struct goman_aws_opts *opts, struct goman_err *err)
{
	struct goman_aws_opts none = {0};
	if (!opts)
		opts = &none;
	struct goman_aws *a = calloc(1, sizeof(*a));
	if (!a) {
		gm_err_oom(err);
		return NULL;
	}
	a->waiters_tail = &a->waiters;
	a->cc = gm_credchain_new(opts->profile, err);
	if (!a->cc)
		goto fail;
	a->own_cc = true;
	/* the chain's own calls (STS, SSO) go through this client, its loop and guard */
	gm_credchain_set_caller(a->cc, gm_aws_creds_call, a, NULL);
	if (opts->creds) {
		if (goman_creds_copy(&a->creds, opts->creds) != 0) {
			gm_err_oom(err);
			goto fail;
		}
		a->explicit_creds = true;
		gm_secrets_held();
	}
	if (opts->http) {
		a->http = opts->http;
	} else {
		a->http = goman_http_new(NULL, err);
		if (!a->http)
			goto fail;
		a->own_http = true;
	}
	struct goman_guard_opts go = {.config = opts->config};
	if (!(a->guard = goman_guard_new(&go, err)))
		goto fail;
	a->max_reply = goman_guard_config(a->guard)->max_reply_bytes;
	if (!a->explicit_creds) {
		/* resolve once now (loop and guard ready: a role or SSO profile calls through
		 * them), so a missing setup fails here and not per call */
		struct goman_creds c = {0};
		int rc = goman_credchain_get(a->cc, &c, err);
		goman_creds_clear(&c);
		if (rc != 0)
			goto fail;
	}
	if (opts->region && *opts->region)
		a->region = strdup(opts->region);
	else if (!(a->region = goman_credchain_region(a->cc, err)))
		goto fail;
	if (!a->region) {
		gm_err_oom(err);
		goto fail;
	}
	if (goman_region_check(a->region, "the region", err) != 0)
		goto fail;
	return a;
fail:
	goman_aws_free(a);
	return NULL;
}

struct goman_aws *gm_aws_new_on_chain(struct goman_credchain *cc, struct goman_err *err)
{
	struct goman_aws *a = calloc(1, sizeof(*a));
	if (!a) {
		gm_err_oom(err);
		return NULL;
	}
	a->waiters_tail = &a->waiters;
	a->cc = cc;
	/* every call it makes names its region; this one is never used for a host */
	if (!(a->region = strdup("us-east-1"))) {
		gm_err_oom(err);
		goto fail;
	}
	if (!(a->http = goman_http_new(NULL, err)))
		goto fail;
	a->own_http = true;
	struct goman_guard_opts go = {0};
	if (!(a->guard = goman_guard_new(&go, err)))
		goto fail;
	a->max_reply = goman_guard_config(a->guard)->max_reply_bytes;
	return a;
fail:
	goman_aws_free(a);
	return NULL;
}

static void op_free(struct aws_op *op);

void goman_aws_free(struct goman_aws *a)
{
	if (!a)
		return;
	while (a->ops) {
		struct aws_op *op = a->ops;
		a->ops = op->next;
		if (op->http_id > 0)
			gm_http_cancel(a->http, op->http_id);
		if (op->timer_id > 0)
			goman_http_timer_cancel(a->http, op->timer_id);
		op_free(op);
	}
	goman_guard_free(a->guard);
	if (a->own_http)
		goman_http_free(a->http);
	for (size_t i = 0; i < a->neps; i++) {
		free(a->eps[i].service);
		free(a->eps[i].region);
		free(a->eps[i].url);
	}
	free(a->eps);
	free(a->region);
	goman_creds_clear(&a->creds);
	if (a->own_cc)
		goman_credchain_free(a->cc);
	free(a);
}

struct goman_http *goman_aws_http(struct goman_aws *a)
{
	return a ? a->http : NULL;
}

const char *goman_aws_region(const struct goman_aws *a)
{
	return a ? a->region : NULL;
}

/* Endpoint base URL for (service, region), resolved once. Borrowed. */
static const char *endpoint_for(struct goman_aws *a, const char *service, const char *region)
{
	for (size_t i = 0; i < a->neps; i++)
		if (!strcmp(a->eps[i].service, service) && !strcmp(a->eps[i].region, region))
			return a->eps[i].url;
	struct endpoint *e = realloc(a->eps, (a->neps + 1) * sizeof(*e));
	if (!e)
		return NULL;
	a->eps = e;
	e = &a->eps[a->neps];
	e->service = strdup(service);
	e->region = strdup(region);
	e->url = goman_credchain_endpoint(a->cc, service, region);
	if (!e->service || !e->region || !e->url) {
		free(e->service);
		free(e->region);
		free(e->url);
		return NULL;
	}
	/* a trailing slash would double the path's first one */
	size_t n = strlen(e->url);
	while (n > 0 && e->url[n - 1] == '/')
		e->url[--n] = '\0';
	a->neps++;
	return e->url;
}

/* ---- op lifecycle ------------------------------------------------------------------ */

static void attempt_reset(struct aws_op *op)
{
	gm_xml_free(op->xml);
	op->xml = NULL;
	free(op->body.p);
	op->body = (struct gm_buf){0};
	op->mode = MODE_UNDECIDED;
	op->reply_bytes = 0;
	op->too_large = false;
	goman_err_clear(&op->parse_err);
}

static void op_free(struct aws_op *op)
{
	if (!op)
		return;
	attempt_reset(op);
	gm_aws_req_clear(&op->req);
	goman_aws_result_clear(&op->res);
	if (op->sign_with) {
		goman_creds_clear(op->sign_with);
		free(op->sign_with);
	}
	free(op);
}

static void op_unlink(struct aws_op *op)
{
	struct goman_aws *a = op->a;
	if (op->prev)
		op->prev->next = op->next;
	else if (a->ops == op)
		a->ops = op->next;
	if (op->next)
		op->next->prev = op->prev;
	op->prev = op->next = NULL;
}

static void op_finish(struct aws_op *op, const struct goman_err *err)
{
	op_unlink(op);
	op->res.err = *err;
	op->res.attempts = op->t.attempt;
	op->res.ms = goman_mono_ms() - op->start_ms;
	if (err->rc != GOMAN_OK) {
		/* a JSON service's error body stays when it is this error's (DynamoDB puts the
		 * item of a failed condition there); nothing else outlives a failure */
		if (!(op->err_data && err->rc == GOMAN_ESERVICE)) {
			cJSON_Delete(op->res.data);
			op->res.data = NULL;
		}
		free(op->res.raw);
		op->res.raw = NULL;
		op->res.raw_len = 0;
	}
	op->done(&op->res, op->ud);
	op_free(op);
}

/* ---- one attempt ------------------------------------------------------------------- */

static void attempt_done(struct goman_http_resp *resp, void *ud);

static int attempt_chunk(const char *data, size_t len, long status, void *ud)
{
	struct aws_op *op = ud;
	/* a reply is held whole (JSON, S3 bytes) or converted whole (XML): past the cap the
	 * transfer stops, rather than memory growing with whatever the peer sends */
	int64_t cap = op->a->max_reply;
	if (cap > 0 && (len > (size_t)cap || op->reply_bytes > cap - (int64_t)len)) {
		op->too_large = true;
		return 1;
	}
	op->reply_bytes += (int64_t)len;
	if (op->mode == MODE_UNDECIDED) {
		bool xml;
		if (op->req.reply == GM_REPLY_XML)
			xml = true;
		else if (op->req.reply == GM_REPLY_JSON)
			xml = false;
		else /* S3: errors are XML; success is raw bytes or an XML document */
			xml = status >= 300 || (!op->req.raw_reply && len > 0 && data[0] == '<');
		op->mode = xml ? MODE_XML : MODE_BUF;
		if (xml && !(op->xml = gm_xml_new()))
			gm_err_oom(&op->parse_err);
	}
	if (op->mode == MODE_XML) {
		/* after a parse error the rest is drained, not parsed: the connection stays usable */
		if (op->xml && op->parse_err.rc == GOMAN_OK)
			gm_xml_feed(op->xml, data, len, &op->parse_err);
		/* keep the start of the document for error messages of unparsable replies */
		if (op->body.len < 512)
			gm_buf_add(&op->body, data, len < 512 ? len : 512);
	} else {
		gm_buf_add(&op->body, data, len);
		if (op->body.oom)
			return 1;
	}
	return 0;
}

static void wake_waiter(struct goman_aws *a, const struct aws_op *done);

/* The credentials for this attempt: 0 (c filled; left empty for unsigned calls), 1 the
 * chain is busy fetching them further up this stack (ask again soon), -1 with err. */
static int attempt_creds(struct aws_op *op, struct goman_creds *c, struct goman_err *err)
{
	struct goman_aws *a = op->a;
	const struct goman_creds *fixed = op->sign_with       ? op->sign_with
					  : a->explicit_creds ? &a->creds
							      : NULL;
	if (op->unsigned_req)
		return 0;
	if (fixed)
		return goman_creds_copy(c, fixed) == 0 ? 0 : gm_err_oom(err);
	if (goman_credchain_get(a->cc, c, err) == 0)
		return 0;
	return err && !strcmp(err->code, GM_CREDS_BUSY_CODE) ? 1 : -1;
}

/* Signs a fresh copy of the headers with c (taken just before the guard admitted the
 * attempt) and submits it. 0, or -1 with err (signing or submit failed: nothing is in
 * flight and the admission is given back). c is wiped here. */
static int attempt_send(struct aws_op *op, struct goman_creds *cp, struct goman_err *err)
{
	struct goman_aws *a = op->a;
	struct goman_creds c = *cp;
	struct goman_kvs hdrs = {0};
	struct goman_sigv4_out sout = {0};
	int rc = -1;
	memset(cp, 0, sizeof(*cp));
	attempt_reset(op);
	op->http_id = op->timer_id = 0;
	if (goman_kvs_copy(&hdrs, &op->req.headers) != 0) {
		gm_err_oom(err);
		goto out;
	}
	struct goman_sigv4_params p = {
		.method = op->req.method,
		.url = op->req.url,
		.body = op->req.body,
		.body_len = op->req.body_len,
		.service = op->service,
		.region = op->sign_region,
		.s3 = op->req.s3,
		.normalize = -1,
	};
	if (!op->unsigned_req && goman_sigv4_sign(&p, &c, &hdrs, false, &sout, err) != 0)
		goto out;
	struct goman_http_req hr = {
		.method = op->req.method,
		.url = op->req.url,
		.headers = &hdrs,
		.body = op->req.body,
		.body_len = op->req.body_len,
		.on_chunk = attempt_chunk,
		.on_done = attempt_done,
		.ud = op,
	};
	op->http_id = goman_http_submit(a->http, &hr, err);
	if (op->http_id > 0)
		rc = 0;
out:
	goman_sigv4_out_clear(&sout);
	goman_kvs_clear(&hdrs);
	goman_creds_clear(&c);
	if (rc != 0) {
		op->http_id = 0;
		goman_guard_abandon(a->guard, &op->t);
		wake_waiter(a, op);
		goman_err_classify(err, op->service, op->action);
	}
	return rc;
}

static const char *status_code_name(long status)
{
	switch (status) {
	case 400: return "BadRequest";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "NotFound";
	case 409: return "Conflict";
	case 429: return "TooManyRequests";
	case 500: return "InternalError";
	case 502: return "BadGateway";
	case 503: return "ServiceUnavailable";
	case 504: return "GatewayTimeout";
	default: return "HttpError";
	}
}

/* Parses the finished reply into op->res (data/raw) or err. */
static void parse_reply(struct aws_op *op, struct goman_http_resp *resp, struct goman_err *err)
{
	long status = resp->status;
	cJSON *data = NULL;
	char root[96] = "";
	if (op->mode == MODE_XML && op->xml) {
		snprintf(root, sizeof(root), "%s", gm_xml_root(op->xml));
		if (op->parse_err.rc == GOMAN_OK)
			data = gm_xml_finish(op->xml, &op->parse_err);
	}
	if (status >= 300) {
		goman_err_set(err, GOMAN_ESERVICE, GOMAN_CLASS_NONE, "", "HTTP %ld", status);
		err->http_status = (int)status;
		if (op->mode == MODE_XML) {
			goman_aws_error_xml(root, data, err);
		} else {
			/* JSON, or XML from a JSON service (emulators, front ends on auth
			 * failures). A JSON error body is kept for the caller, as the SDKs do
			 * (ReturnValuesOnConditionCheckFailure=ALL_OLD answers "Item" there) */
			cJSON *doc = NULL;
			goman_aws_error_parse(op->body.p, op->body.len, &resp->headers, err, &doc);
			op->res.data = doc;
			op->err_data = doc != NULL;
		}
		if (!err->code[0])
			snprintf(err->code, sizeof(err->code), "%s", status_code_name(status));
		if (!err->message[0] || strncmp(err->message, "HTTP ", 5) == 0) {
			if (op->body.len)
				snprintf(err->message, sizeof(err->message), "HTTP %ld: %.200s",
					 status, op->body.p);
		}
		cJSON_Delete(data);
		return;
	}
	if (op->parse_err.rc != GOMAN_OK) {
		*err = op->parse_err;
		err->http_status = (int)status;
		cJSON_Delete(data);
		return;
	}
	if (op->mode == MODE_XML) {
		op->res.data = data;
		return;
	}
	if (op->req.reply == GM_REPLY_JSON) {
		if (op->body.len == 0) {
			op->res.data = cJSON_CreateObject();
		} else {
			op->res.data = cJSON_ParseWithLength(op->body.p, op->body.len);
			if (!cJSON_IsObject(op->res.data)) {
				cJSON_Delete(op->res.data);
				op->res.data = NULL;
				goman_err_set(err, GOMAN_EPARSE, GOMAN_CLASS_NONE, "ParseError",
					      "%s reply is not a JSON object", op->action);
				err->http_status = (int)status;
			}
		}
		return;
	}
	/* S3 object bytes (or an empty success) */
	op->res.data = cJSON_CreateObject();
	if (op->body.len || op->req.raw_reply) {
		op->res.raw = op->body.p ? op->body.p : calloc(1, 1);
		op->res.raw_len = op->body.len;
		op->body = (struct gm_buf){0};
	}
}

static const char *outcome_name(const struct goman_err *e)
{
	if (e->rc == GOMAN_OK)
		return "ok";
	switch (e->cls) {
	case GOMAN_CLASS_THROTTLING: return "throttled";
	case GOMAN_CLASS_TRANSIENT:
	case GOMAN_CLASS_TIMEOUT: return "transient";
	case GOMAN_CLASS_AUTH: return "auth";
	case GOMAN_CLASS_CIRCUIT_OPEN: return "circuit_open";
	default: return "client";
	}
}

static void emit_api_call(struct aws_op *op, int attempt, int64_t ms, long status,
			  const struct goman_err *e)
{
	cJSON *ev = cJSON_CreateObject();
	if (!ev)
		return;
	cJSON_AddStringToObject(ev, "service", op->service);
	cJSON_AddStringToObject(ev, "region", op->region);
	cJSON_AddStringToObject(ev, "action", op->action);
	cJSON_AddNumberToObject(ev, "attempt", attempt);
	cJSON_AddNumberToObject(ev, "ms", (double)ms);
	cJSON_AddStringToObject(ev, "outcome", outcome_name(e));
	cJSON_AddNumberToObject(ev, "http_status", (double)status);
	if (e->rc != GOMAN_OK && e->code[0])
		cJSON_AddStringToObject(ev, "code", e->code);
	if (e->rc != GOMAN_OK && e->cls == GOMAN_CLASS_TIMEOUT)
		cJSON_AddStringToObject(ev, "class", "timeout");
	if (e->rc == GOMAN_ECIRCUIT && e->retry_after_ms >= 0)
		cJSON_AddNumberToObject(ev, "retry_after_ms", (double)e->retry_after_ms);
	goman_event("api_call", ev);
}

static bool expired_token(const char *code)
{
	return !strcmp(code, "ExpiredToken") || !strcmp(code, "ExpiredTokenException");
}

/* ---- admission: breaker -> rate limiter -> send ------------------------------------ */

static bool same_target(const struct aws_op *x, const struct aws_op *y)
{
	return x->endpoint == y->endpoint && !strcmp(x->service, y->service) &&
	       !strcmp(x->region, y->region);
}

static void waiter_remove(struct aws_op *op)
{
	struct goman_aws *a = op->a;
	if (!op->waiting)
		return;
	struct aws_op **pp = &a->waiters;
	while (*pp && *pp != op)
		pp = &(*pp)->wnext;
	if (*pp)
		*pp = op->wnext;
	a->waiters_tail = &a->waiters;
	while (*a->waiters_tail)
		a->waiters_tail = &(*a->waiters_tail)->wnext;
	op->wnext = NULL;
	op->waiting = false;
}

static void admit_fire(void *ud);

/* An attempt of `done`'s (service, region, endpoint) ended: the first op parked behind
 * MaxConcurrent for the same target asks again on the next loop round (a zero timer, so
 * the wake-up never runs inside another op's callback). */
static void wake_waiter(struct goman_aws *a, const struct aws_op *done)
{
	for (struct aws_op *w = a->waiters; w; w = w->wnext) {
		if (!same_target(w, done))
			continue;
		waiter_remove(w);
		if (w->timer_id > 0)
			goman_http_timer_cancel(a->http, w->timer_id);
		w->timer_id = goman_http_timer(a->http, 0, admit_fire, w);
		return;
	}
}

static void park(struct aws_op *op)
{
	struct goman_aws *a = op->a;
	op->waiting = true;
	op->wnext = NULL;
	*a->waiters_tail = op;
	a->waiters_tail = &op->wnext;
}

/* Asks the guard for the next attempt. Admitted: sends now. Not yet (MaxConcurrent, or no
 * adaptive send token): parks the op until an attempt of its target ends or the guard's
 * wait has passed, whichever comes first, and asks again. The limiter reserves nothing, so
 * each ask is priced at the send rate of its own moment and a recovering rate applies at
 * once to every parked op.
 * Returns 0 (in flight, or parked), or -1 with err: the call is over (CircuitOpen, or the
 * attempt could not be sent). */
static int admit(struct aws_op *op, struct goman_err *err)
{
	struct goman_aws *a = op->a;
	int64_t wait = 0;
	struct goman_creds c = {0};
	op->timer_id = 0;
	/* credentials before the guard: fetching them may call STS or SSO through this client,
	 * and that call must not wait behind an admission this op would already hold */
	int cr = attempt_creds(op, &c, err);
	if (cr < 0) {
		goman_err_classify(err, op->service, op->action);
		return -1;
	}
	int g = cr == 1 ? 1
			: goman_guard_before(a->guard, &op->t, op->service, op->region,
					     op->endpoint, &wait, err);
	if (g < 0) {
		goman_creds_clear(&c);
		if (err->rc == GOMAN_ECIRCUIT) /* the refused attempt is still an api_call */
			emit_api_call(op, op->t.attempt + 1, 0, 0, err);
		return -1;
	}
	if (g == 1) {
		goman_creds_clear(&c);
		if (cr == 1)
			wait = CREDS_BUSY_POLL_MS;
		else
			park(op);
		op->timer_id =
			goman_http_timer(a->http, wait > 0 ? wait : ADMIT_POLL_MS, admit_fire, op);
		if (op->timer_id <= 0) {
			waiter_remove(op);
			return gm_err_oom(err);
		}
		return 0;
	}
	return attempt_send(op, &c, err);
}

static void admit_fire(void *ud)
{
	struct aws_op *op = ud;
	struct goman_err err = GOMAN_ERR_INIT;
	goman_err_clear(&err);
	op->timer_id = 0;
	waiter_remove(op);
	if (admit(op, &err) != 0)
		op_finish(op, &err);
}

/* a breaker refused the first attempt inside goman_aws_submit(): the result is delivered
 * from the loop like every other, never from inside submit */
static void refused_fire(void *ud)
{
	struct aws_op *op = ud;
	struct goman_err err = op->res.err;
	op->timer_id = 0;
	op_finish(op, &err);
}

static void retry_event(struct aws_op *op, const struct goman_err *err, int64_t delay,
			const char *reason)
{
	cJSON *ev = cJSON_CreateObject();
	if (!ev)
		return;
	cJSON_AddStringToObject(ev, "service", op->service);
	cJSON_AddStringToObject(ev, "region", op->region);
	cJSON_AddStringToObject(ev, "action", op->action);
	cJSON_AddNumberToObject(ev, "attempt", op->t.attempt);
	cJSON_AddNumberToObject(ev, "delay_ms", (double)delay);
	cJSON_AddStringToObject(ev, "reason", reason);
	if (err->code[0])
		cJSON_AddStringToObject(ev, "code", err->code);
	goman_event("retry", ev);
}

static void attempt_done(struct goman_http_resp *resp, void *ud)
{
	struct aws_op *op = ud;
	struct goman_aws *a = op->a;
	struct goman_err err = GOMAN_ERR_INIT;
	goman_err_clear(&err);
	op->http_id = 0;
	cJSON_Delete(op->res.data);
	op->res.data = NULL;
	op->err_data = false;
	free(op->res.raw);
	op->res.raw = NULL;
	op->res.raw_len = 0;
	if (op->too_large) {
		/* not retried: the same request would bring the same reply */
		goman_err_set(&err, GOMAN_EPARSE, GOMAN_CLASS_CLIENT, "ReplyTooLarge",
			      "%s %s: the reply is longer than %lld bytes (max_reply_bytes, "
			      "GOMAN_MAX_REPLY_BYTES)",
			      op->service, op->action, (long long)a->max_reply);
		err.http_status = (int)resp->status;
	} else if (resp->err.rc != GOMAN_OK) {
		err = resp->err;
		if (op->body.oom)
			goman_err_set(&err, GOMAN_ENOMEM, GOMAN_CLASS_NONE, "",
				      "out of memory reading reply");
	} else {
		parse_reply(op, resp, &err);
	}
	if (err.rc == GOMAN_ESERVICE && !err.request_id[0]) {
		const char *rid = goman_kvs_get(&resp->headers, "x-amzn-RequestId");
		if (!rid)
			rid = goman_kvs_get(&resp->headers, "x-amz-request-id");
		if (rid)
			snprintf(err.request_id, sizeof(err.request_id), "%s", rid);
	}
	if (err.rc != GOMAN_OK) {
		/* server hints: x-amz-retry-after (ms), else Retry-After (s) */
		const char *ra = goman_kvs_get(&resp->headers, "x-amz-retry-after");
		char *end;
		long long v;
		/* a hint from the peer: anything past a day is a day (and never overflows) */
		const long long day_ms = 86400000;
		if (ra && (v = strtoll(ra, &end, 10)) >= 0 && end != ra) {
			err.retry_after_ms = v < day_ms ? v : day_ms;
		} else if ((ra = goman_kvs_get(&resp->headers, "Retry-After")) &&
			   (v = strtoll(ra, &end, 10)) >= 0 && end != ra) {
			err.retry_after_ms = v < day_ms / 1000 ? v * 1000 : day_ms;
		}
	}
	goman_err_classify(&err, op->service, op->action);
	op->res.http_status = (int)resp->status;
	goman_kvs_clear(&op->res.headers);
	op->res.headers = resp->headers; /* moved: the loop frees what is left in resp */
	memset(&resp->headers, 0, sizeof(resp->headers));
	emit_api_call(op, op->t.attempt, resp->ms, resp->status, &err);
	int64_t delay = 0;
	int again = goman_guard_after(a->guard, &op->t, &err, op->service, op->action, &delay);
	wake_waiter(a, op); /* this attempt's MaxConcurrent slot is free */
	const char *reason = "retry";
	if (again == 1) {
		reason = err.rc == GOMAN_ESERVICE &&
					 goman_is_eventual(op->service, op->action, err.code)
				 ? "eventual"
				 : outcome_name(&err);
	} else if (err.rc == GOMAN_ESERVICE && expired_token(err.code) && !a->explicit_creds &&
		   !op->sign_with && !op->unsigned_req && !op->creds_refreshed) {
		/* credentials expired under us: fetch new ones once and go again at once (the
		 * guard saw an auth error, which it never retries) */
		op->creds_refreshed = true;
		goman_credchain_invalidate(a->cc);
		again = 1;
		delay = 0;
		reason = "expired_credentials";
		retry_event(op, &err, delay, reason);
	}
	if (again != 1) {
		op_finish(op, &err);
		return;
	}
	char st[24] = "";
	if (err.http_status)
		snprintf(st, sizeof(st), ", HTTP %d", err.http_status);
	goman_log(GOMAN_LOG_INFO, "RETRY",
		  "%s %s attempt %d failed (%s%s, %s), retrying in %lld ms", op->service,
		  op->action, op->t.attempt, err.code[0] ? err.code : goman_strerror(err.rc), st,
		  reason, (long long)delay);
	/* re-admitted (breaker, limiter) and re-signed when the timer fires */
	op->timer_id = goman_http_timer(a->http, delay, admit_fire, op);
	if (op->timer_id <= 0) {
		gm_err_oom(&err);
		op_finish(op, &err);
	}
}

/* ---- submit ------------------------------------------------------------------------ */

static bool known_service(const char *s)
{
	return gm_query_version(s) || gm_json_service(s, NULL, NULL) || !strcmp(s, "s3");
}

static int bad_input(struct goman_err *err, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static int bad_input(struct goman_err *err, const char *fmt, ...)
{
	char msg[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return goman_err_set(err, GOMAN_EINVAL, GOMAN_CLASS_BAD_INPUT, "BadInput", "%s", msg);
}

/* HTTP tokens (RFC 9110): methods and header names */
static bool http_token(const char *s)
{
	if (!s || !*s)
		return false;
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c <= 0x20 || c >= 0x7f || strchr("\"(),/:;<=>?@[\\]{}", c))
			return false;
	}
	return true;
}

/* An action is an API operation name; it goes into X-Amz-Target and the query form */
static bool action_ok(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n >= sizeof(((struct aws_op *)0)->action))
		return false;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		      (*s >= '0' && *s <= '9') || *s == '_' || *s == '-' || *s == '.'))
			return false;
	return true;
}

/* A call the client already knows to be wrong never reaches the wire: sent, the service
 * answers an error (or a 500) for it, and that answer feeds the breaker every other
 * command shares. Fields of another protocol are refused rather than silently dropped. */
static int check_call(const struct goman_aws_call *c, struct goman_err *err)
{
	bool query = gm_query_version(c->service) != NULL;
	bool json = gm_json_service(c->service, NULL, NULL);
	bool s3 = !query && !json;
	if (!action_ok(c->action))
		return bad_input(
			err, "%s action must be an operation name (letters, digits, '_', '-', '.')",
			c->service);
	if (c->region && *c->region && goman_region_check(c->region, "\"region\"", err) != 0)
		return -1;
	if (c->params && !query)
		return bad_input(
			err, "\"params\" is for the query services (ec2, sts, iam); %s takes %s",
			c->service, json ? "\"input\"" : "bucket, key, headers and body");
	if ((c->version && *c->version) && !query)
		return bad_input(err,
				 "\"version\" is for the query services (ec2, sts, iam), not %s",
				 c->service);
	if (c->json && !json)
		return bad_input(
			err, "\"input\" is for the JSON services (ssm, dynamodb); %s takes %s",
			c->service, query ? "\"params\"" : "bucket, key, headers and body");
	if (!s3) {
		const char *f = c->method                ? "method"
				: c->bucket              ? "bucket"
				: c->key                 ? "key"
				: c->query               ? "query"
				: c->headers             ? "headers"
				: c->body || c->body_len ? "body"
							 : NULL;
		if (f)
			return bad_input(err, "\"%s\" is for s3 only, not %s", f, c->service);
		return 0;
	}
	if (c->method && !http_token(c->method))
		return bad_input(err, "\"method\" must be an HTTP method name");
	for (const char *q = c->query; q && *q; q++)
		if ((unsigned char)*q <= 0x20 || (unsigned char)*q >= 0x7f || *q == '#')
			return bad_input(err,
					 "\"query\" must be an encoded query string (no spaces, "
					 "control bytes or '#')");
	for (size_t i = 0; c->headers && i < c->headers->n; i++) {
		if (!http_token(c->headers->v[i].name))
			return bad_input(err, "header name \"%.64s\" is not an HTTP token",
					 c->headers->v[i].name);
		if (!gm_header_value_ok(c->headers->v[i].value))
			return bad_input(
				err,
				"header %.64s: control bytes (CR, LF, NUL) are not allowed "
				"in a value",
				c->headers->v[i].name);
	}
	return 0;
}

bool goman_aws_deadline_ok(const struct cJSON *v)
{
	/* checked before the cast: a double outside int64_t's range makes the cast undefined */
	return cJSON_IsNumber(v) && isfinite(v->valuedouble) && v->valuedouble >= 0 &&
	       v->valuedouble <= (double)GOMAN_AWS_MAX_DEADLINE_MS;
}

/* a + b for deadlines from outside: never past INT64_MAX */
static int64_t add_sat(int64_t a, int64_t b)
{
	return b > 0 && a > INT64_MAX - b ? INT64_MAX : a + b;
}

static struct aws_op *op_new(struct goman_aws *a, const char *service, const char *action,
			     const char *region, goman_aws_done_fn done, void *ud,
			     struct goman_err *err);
static int op_start(struct aws_op *op, struct goman_err *err);

int goman_aws_submit(struct goman_aws *a, const struct goman_aws_call *call, goman_aws_done_fn done,
		     void *ud, struct goman_err *err)
{
	if (!a || !call || !done || !call->service || !call->action || !*call->action)
		return goman_err_set(err, GOMAN_EINVAL, GOMAN_CLASS_BAD_INPUT, "BadInput",
				     "a call needs a service and an action");
	if (!known_service(call->service))
		return goman_err_set(err, GOMAN_EINVAL, GOMAN_CLASS_BAD_INPUT, "BadInput",
				     "unknown service '%.32s' (ec2, ssm, s3, dynamodb, sts, iam)",
				     call->service);
	if (check_call(call, err) != 0)
		return -1;
	/* IAM is global: it signs for, and lives in, us-east-1 */
	const char *region = !strcmp(call->service, "iam")   ? "us-east-1"
			     : call->region && *call->region ? call->region
							     : a->region;
	struct aws_op *op = op_new(a, call->service, call->action, region, done, ud, err);
	if (!op)
		return -1;
	const char *ep = op->endpoint;
	int rc;
	if (gm_query_version(op->service))
		rc = gm_query_prepare(call, ep, &op->req, err);
	else if (gm_json_service(op->service, NULL, NULL))
		rc = gm_json_prepare(call, ep, &op->req, err);
	else /* path style off AWS's own hosts (emulators, proxies, loopback), as the SDKs do */
		rc = gm_s3_prepare(call, ep, op->region, !goman_s3_endpoint_is_aws(ep), &op->req,
				   err);
	if (rc != 0) {
		op_free(op);
		return -1;
	}
	if (call->retry_policy && *call->retry_policy) {
		snprintf(op->policy, sizeof(op->policy), "%s", call->retry_policy);
		op->t.policy = op->policy;
	}
	/* eventual-consistency codes are retried only when the call asks (goman/aws.h); -1
	 * keeps the guard from applying the configured default deadline to every call */
	op->t.eventual_deadline_ms = call->eventual_deadline_ms > 0
					     ? add_sat(op->start_ms, call->eventual_deadline_ms)
					     : -1;
	return op_start(op, err);
}

/* An op for (service, action, region) with its endpoint resolved; the caller builds its
 * request, then op_start(). NULL with err. */
static struct aws_op *op_new(struct goman_aws *a, const char *service, const char *action,
			     const char *region, goman_aws_done_fn done, void *ud,
			     struct goman_err *err)
{
	struct aws_op *op = calloc(1, sizeof(*op));
	if (!op) {
		gm_err_oom(err);
		return NULL;
	}
	op->a = a;
	op->done = done;
	op->ud = ud;
	goman_err_clear(&op->res.err);
	snprintf(op->service, sizeof(op->service), "%s", service);
	snprintf(op->action, sizeof(op->action), "%s", action);
	snprintf(op->region, sizeof(op->region), "%s", region);
	snprintf(op->sign_region, sizeof(op->sign_region), "%s", region);
	if (!(op->endpoint = endpoint_for(a, op->service, op->region))) {
		gm_err_oom(err);
		free(op);
		return NULL;
	}
	op->start_ms = goman_mono_ms();
	goman_guard_ticket_init(&op->t, 0); /* 0: the policy's deadline */
	op->t.eventual_deadline_ms = -1;
	return op;
}

/* Links the op and asks for its first attempt. 0 (in flight, parked, or refused with the
 * result on its way through the loop), or -1 with err (the op is freed). */
static int op_start(struct aws_op *op, struct goman_err *err)
{
	struct goman_aws *a = op->a;
	op->next = a->ops;
	if (a->ops)
		a->ops->prev = op;
	a->ops = op;
	struct goman_err aerr = GOMAN_ERR_INIT;
	goman_err_clear(&aerr);
	if (admit(op, &aerr) != 0) {
		if (aerr.rc == GOMAN_ECIRCUIT) {
			op->res.err = aerr;
			op->timer_id = goman_http_timer(a->http, 0, refused_fire, op);
			if (op->timer_id > 0)
				return 0;
			gm_err_oom(&aerr);
		}
		if (err)
			*err = aerr;
		op_unlink(op);
		op_free(op);
		return -1;
	}
	return 0;
}

struct call_ctx {
	struct goman_aws_result *out;
	int done;
};

static void call_done(struct goman_aws_result *res, void *ud)
{
	struct call_ctx *c = ud;
	*c->out = *res;
	/* ownership moves to the caller's result */
	res->data = NULL;
	res->raw = NULL;
	res->raw_len = 0;
	memset(&res->headers, 0, sizeof(res->headers));
	c->done = 1;
}

int goman_aws_call(struct goman_aws *a, const struct goman_aws_call *call,
		   struct goman_aws_result *res)
{
	memset(res, 0, sizeof(*res));
	goman_err_clear(&res->err);
	struct call_ctx c = {.out = res, .done = 0};
	if (goman_aws_submit(a, call, call_done, &c, &res->err) != 0)
		return -1;
	gm_http_run_until(a->http, &c.done);
	return res->err.rc == GOMAN_OK ? 0 : -1;
}

void goman_aws_result_clear(struct goman_aws_result *r)
{
	if (!r)
		return;
	cJSON_Delete(r->data);
	free(r->raw);
	goman_kvs_clear(&r->headers);
	memset(r, 0, sizeof(*r));
	goman_err_clear(&r->err);
}

/* ---- the credential chain's calls -------------------------------------------------- */

/* REST-JSON request of the chain (SSO portal, SSO-OIDC): unsigned, JSON reply. */
static int rest_prepare(const struct gm_cc_call *c, const char *ep, struct gm_aws_req *r,
			struct goman_err *err)
{
	size_t n = strlen(ep) + strlen(c->path) + 1;
	snprintf(r->method, sizeof(r->method), "%s", c->method);
	r->reply = GM_REPLY_JSON;
	if (!(r->url = malloc(n)))
		return gm_err_oom(err);
	snprintf(r->url, n, "%s%s", ep, c->path);
	if (c->bearer_header && !gm_header_value_ok(c->bearer))
		/* a token with a line break would add headers of its own */
		return goman_err_set(err, GOMAN_ECREDS, GOMAN_CLASS_AUTH, "InvalidToken",
				     "%s: the token holds control bytes", c->action);
	if ((c->bearer_header && goman_kvs_add(&r->headers, c->bearer_header, c->bearer) < 0) ||
	    goman_kvs_add(&r->headers, "Accept", "application/json") < 0)
		return gm_err_oom(err);
	if (c->body) {
		r->body_len = strlen(c->body);
		if (!(r->body = strdup(c->body)) ||
		    goman_kvs_add(&r->headers, "Content-Type", "application/json") < 0)
			return gm_err_oom(err);
	}
	return 0;
}

int gm_aws_creds_call(void *ctx, const struct gm_cc_call *c, cJSON **reply, struct goman_err *err)
{
	struct goman_aws *a = ctx;
	struct goman_aws_result res;
	struct call_ctx cx = {.out = &res, .done = 0};
	*reply = NULL;
	memset(&res, 0, sizeof(res));
	struct aws_op *op = op_new(a, c->service, c->action, c->region, call_done, &cx, err);
	if (!op)
		return -1;
	op->unsigned_req = c->kind != GM_CC_QUERY_SIGNED;
	int rc;
	if (c->kind == GM_CC_REST_JSON) {
		rc = rest_prepare(c, op->endpoint, &op->req, err);
	} else {
		struct goman_aws_call q = {
			.service = c->service, .action = c->action, .params = c->params};
		rc = gm_query_prepare(&q, op->endpoint, &op->req, err);
	}
	if (rc == 0 && c->kind == GM_CC_QUERY_SIGNED &&
	    (!(op->sign_with = calloc(1, sizeof(*op->sign_with))) ||
	     goman_creds_copy(op->sign_with, c->creds) != 0))
		rc = gm_err_oom(err);
	if (rc != 0) {
		op_free(op);
		return -1;
	}
	/* the caller waits inside its own attempt: this loop runs the others meanwhile */
	if (op_start(op, err) != 0)
		return -1;
	gm_http_run_until(a->http, &cx.done);
	if (res.err.rc != GOMAN_OK) {
		/* REST services name the error in a header */
		const char *t = goman_kvs_get(&res.headers, "x-amzn-ErrorType");
		if (t && res.err.rc == GOMAN_ESERVICE && !cJSON_IsObject(res.data))
			snprintf(res.err.code, sizeof(res.err.code), "%.*s", (int)strcspn(t, ":"),
				 t);
		if (err)
			*err = res.err;
		goman_aws_result_clear(&res);
		return -1;
	}
	*reply = res.data;
	res.data = NULL;
	goman_aws_result_clear(&res);
	return 0;
}

/* ---- reading replies --------------------------------------------------------------- */

static const cJSON *path_get(const cJSON *obj, const char *dotted)
{
	const cJSON *cur = obj;
	const char *p = dotted;
	while (cur && p && *p) {
		size_t n = strcspn(p, ".");
		char seg[128];
		if (n >= sizeof(seg))
			return NULL;
		memcpy(seg, p, n);
		seg[n] = '\0';
		if (cJSON_IsArray(cur)) {
			/* numeric segments index arrays: "reservationSet.0.instancesSet" */
			char *end;
			long i = strtol(seg, &end, 10);
			if (end == seg || *end || i < 0)
				return NULL;
			cur = cJSON_GetArrayItem(cur, (int)i);
		} else {
			cur = cJSON_GetObjectItemCaseSensitive(cur, seg);
		}
		p = p[n] ? p + n + 1 : p + n;
	}
	return cur;
}

const char *goman_json_path_str(const struct cJSON *obj, const char *dotted)
{
	const cJSON *v = path_get(obj, dotted);
	return cJSON_IsString(v) ? v->valuestring : NULL;
}

struct cJSON *goman_json_path_array(const struct cJSON *obj, const char *dotted)
{
	const cJSON *v = path_get(obj, dotted);
	return cJSON_IsArray(v) ? (cJSON *)v : NULL;
}
