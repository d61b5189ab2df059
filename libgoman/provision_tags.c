/*
 * provision_tags.c - the pacing of goman-provision's CreateTags: a token bucket (rate per
 * second, burst) with a cap on calls in flight, so one launch of hundreds of nodes stays
 * within EC2's CreateTags bucket instead of being throttled and retried. A node seen
 * running is promoted ahead of those still booting, and a call's retries take tokens too
 * (they took them from EC2's bucket). The items are opaque here; the engine says how one
 * is sent and what a failed send does.
 *
 * Ownership: the queue array is the pacer's (gm_pace_clear); items are borrowed.
 * Errors: a send that fails goes to the fail callback; a push that finds no memory is -1.
 */
#include <stdlib.h>
#include <string.h>
#include "goman/clock.h"
#include "goman/error.h"
#include "goman/http.h"
#include "provision_int.h"

void gm_pace_init(struct gm_pace *p, struct goman_http *http, double rate, double burst,
		  int max_inflight, gm_pace_send_fn send, gm_pace_fail_fn fail, void *ctx)
{
	memset(p, 0, sizeof(*p));
	p->http = http;
	p->rate = rate > 0 ? rate : 10.0;
	p->burst = burst > 0 ? burst : 100.0;
	p->max_inflight = max_inflight > 0 ? max_inflight : 10;
	p->tokens = p->burst;
	p->at = goman_mono_ms();
	p->send = send;
	p->fail = fail;
	p->ctx = ctx;
}

int gm_pace_push(struct gm_pace *p, void *item)
{
	if (p->n == p->cap) {
		size_t cap = p->cap ? p->cap * 2 : 64;
		void **v = realloc(p->q, cap * sizeof(*v));
		if (!v)
			return -1;
		p->q = v;
		p->cap = cap;
	}
	p->q[p->n++] = item;
	return 0;
}

void gm_pace_promote(struct gm_pace *p, void *item)
{
	for (size_t i = p->urgent; i < p->n; i++)
		if (p->q[i] == item) {
			memmove(p->q + p->urgent + 1, p->q + p->urgent,
				(i - p->urgent) * sizeof(*p->q));
			p->q[p->urgent++] = item;
			return;
		}
}

static void pace_timer(void *ud)
{
	struct gm_pace *p = ud;
	p->timer = 0;
	gm_pace_pump(p);
}

void gm_pace_pump(struct gm_pace *p)
{
	int64_t now = goman_mono_ms();
	p->tokens += (double)(now - p->at) * p->rate / 1000.0;
	if (p->tokens > p->burst)
		p->tokens = p->burst;
	p->at = now;
	size_t sent = 0;
	while (sent < p->n && p->tokens >= 1.0 && p->inflight < p->max_inflight) {
		void *item = p->q[sent++];
		struct goman_err e = GOMAN_ERR_INIT;
		goman_err_clear(&e);
		p->tokens -= 1.0;
		if (p->send(item, p->ctx, &e) != 0)
			p->fail(item, p->ctx, &e);
		else
			p->inflight++;
	}
	if (sent) {
		memmove(p->q, p->q + sent, (p->n - sent) * sizeof(*p->q));
		p->n -= sent;
		p->urgent = p->urgent > sent ? p->urgent - sent : 0;
	}
	if (p->n && !p->timer && p->inflight < p->max_inflight) {
		int64_t wait = (int64_t)((1.0 - p->tokens) * 1000.0 / p->rate) + 1;
		p->timer = goman_http_timer(p->http, wait, pace_timer, p);
	}
}

void gm_pace_done(struct gm_pace *p, int attempts)
{
	p->inflight--;
	if (attempts > 1)
		p->tokens -= attempts - 1;
}

void gm_pace_clear(struct gm_pace *p)
{
	if (p->timer)
		goman_http_timer_cancel(p->http, p->timer);
	p->timer = 0;
	free(p->q);
	p->q = NULL;
	p->n = p->cap = p->urgent = 0;
}
