/*
 * install_ssm_reg.c - which instances SSM can reach yet. An instance is "running" 3-10 s
 * before its SSM agent registers; a SendCommand naming it before then fails as a whole
 * (InvalidInstanceId) and costs a call from SendCommand's small bucket (20, 5 a second).
 * So a node waits here, and one DescribeInstanceInformation (Filters InstanceIds, up to
 * 50 IDs: one page) asks about every waiting node at once; those listed Online go on to
 * SendCommand together. A check goes out a batch window after the first node arrives,
 * then every batch window (--poll-interval without one) while any node waits; more than
 * 50 waiting take one call each 50, back to back.
 *
 * The check is an optimisation, never a gate: an endpoint without the action (moto 5.2
 * has none) or one that refuses it for other reasons than throttling turns it off, and
 * every waiting node goes straight to SendCommand (whose InvalidInstanceId retries and
 * delivery deadline are install_ssm.c's). A node still unlisted at its delivery deadline
 * is handed on the same way, so its failure is SendCommand's honest answer.
 *
 * Ownership and errors: install_ssm_reg.h.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>
#include "goman/aws.h"
#include "goman/clock.h"
#include "goman/http.h"
#include "goman/log.h"
#include "bytes_int.h"
#include "install_ssm_reg.h"

gm_inst_submit_fn gm_inst_aws_submit = goman_aws_submit;

void gm_ssm_reg_init(struct gm_ssm_reg *r, struct gm_install *in, gm_ssm_reg_ready_fn ready,
		     gm_ssm_reg_after_fn after)
{
	memset(r, 0, sizeof(*r));
	r->in = in;
	r->ready = ready;
	r->after = after;
	r->tail = &r->head;
}

/* The spacing of the checks: the batch window (a registered node then waits at most about
 * as long as one arriving registered), or --poll-interval without one. */
static int64_t round_ms(const struct gm_install *in)
{
	return in->o.batch_window_ms > 0 ? in->o.batch_window_ms : in->o.poll_ms;
}

static void round_fire(void *ud)
{
	struct gm_ssm_reg *r = ud;
	r->timer = 0;
	r->due = true;
	r->after(r->in);
}

/* The next check in delay ms, unless one is already due or sooner. */
static void schedule_round(struct gm_ssm_reg *r, int64_t delay)
{
	if (r->due || r->timer)
		return;
	if (delay < 0)
		delay = 0;
	r->timer = goman_http_timer(r->in->o.http, delay, round_fire, r);
	if (r->timer <= 0) {
		r->timer = 0;
		r->due = true;
	}
}

static void unlink_node(struct gm_ssm_reg *r, struct gm_inode **p)
{
	struct gm_inode *n = *p;
	*p = n->qnext;
	if (!*p)
		r->tail = p;
	n->qnext = NULL;
	r->waiting--;
}

/* The check is off for good: every waiting node goes on to SendCommand. */
static void turn_off(struct gm_ssm_reg *r, const struct goman_err *e)
{
	r->mode = GM_REG_OFF;
	goman_log(GOMAN_LOG_INFO, "INSTALL",
		  "DescribeInstanceInformation unavailable (%s): sending without the check",
		  e->code[0] ? e->code : goman_strerror(e->rc));
	if (r->timer) {
		goman_http_timer_cancel(r->in->o.http, r->timer);
		r->timer = 0;
	}
	r->due = false;
	while (r->head) {
		struct gm_inode *n = r->head;
		unlink_node(r, &r->head);
		r->ready(n, false);
	}
}

void gm_ssm_reg_add(struct gm_ssm_reg *r, struct gm_inode *n, int64_t window)
{
	if (r->mode == GM_REG_OFF) {
		r->ready(n, false);
		return;
	}
	n->qnext = NULL;
	*r->tail = n;
	r->tail = &n->qnext;
	r->waiting++;
	/* nodes arriving close together share a check; never sooner than a round after the
	 * last one (a check a round, whatever the arrivals) */
	int64_t now = goman_mono_ms();
	int64_t at = now + window;
	if (r->last_round && r->last_round + round_ms(r->in) > at)
		at = r->last_round + round_ms(r->in);
	schedule_round(r, at - now);
}

bool gm_ssm_reg_due(const struct gm_ssm_reg *r)
{
	return r->due && !r->inflight && r->head;
}

/* Nodes past their delivery deadline go on (SendCommand answers for them); nodes that
 * ended meanwhile (the run was interrupted) leave. */
static void hand_on_expired(struct gm_ssm_reg *r, int64_t now)
{
	for (struct gm_inode **p = &r->head; *p;) {
		struct gm_inode *n = *p;
		bool done = n->state == GM_N_DONE;
		if (!done && now - n->t_start < r->in->o.delivery_timeout_ms) {
			p = &n->qnext;
			continue;
		}
		unlink_node(r, p);
		if (!done)
			r->ready(n, false);
	}
}

struct reg_call {
	struct gm_ssm_reg *r;
	int n;
	struct gm_inode *nodes[GM_SSM_MAX_IDS]; /* asked about (borrowed) */
};

/* Takes n off the wait list; false when it is no longer there. */
static bool unlink_waiting(struct gm_ssm_reg *r, const struct gm_inode *n)
{
	for (struct gm_inode **p = &r->head; *p; p = &(*p)->qnext)
		if (*p == n) {
			unlink_node(r, p);
			return true;
		}
	return false;
}

/* The asked nodes SSM listed Online go on; the others wait for the next round. */
static int take_online(struct gm_ssm_reg *r, const struct reg_call *rc, const cJSON *data)
{
	int online = 0;
	const cJSON *info;
	cJSON_ArrayForEach (info,
			    cJSON_GetObjectItemCaseSensitive(data, "InstanceInformationList")) {
		const char *iid = goman_json_path_str(info, "InstanceId");
		const char *ping = goman_json_path_str(info, "PingStatus");
		if (!iid || !ping || strcmp(ping, "Online"))
			continue;
		for (int i = 0; i < rc->n; i++) {
			struct gm_inode *n = rc->nodes[i];
			if (!n || strcmp(n->iid, iid) || !unlink_waiting(r, n))
				continue;
			r->ready(n, true);
			online++;
			break;
		}
	}
	return online;
}

static void check_done(struct goman_aws_result *res, void *ud)
{
	struct reg_call *rc = ud;
	struct gm_ssm_reg *r = rc->r;
	struct gm_install *in = r->in;
	r->inflight = false;
	r->calls++;
	const struct goman_err *e = &res->err;
	if (e->rc != GOMAN_OK) {
		bool throttled = e->cls == GOMAN_CLASS_THROTTLING;
		/* before it ever answered, anything but throttling means the endpoint has no
		 * such action (moto answers 500); after, only a lasting refusal turns it off.
		 * An ID SSM does not know yet, if it answers so here instead of leaving the ID
		 * out, makes the check useless: SendCommand asks instead */
		bool off = r->mode == GM_REG_TRY ? !throttled : !throttled && !e->retryable;
		if (off || !strcmp(e->code, "InvalidInstanceId")) {
			turn_off(r, e);
		} else {
			r->retry_ms = gm_inst_poll_backoff(in, r->retry_ms);
			schedule_round(r, r->retry_ms);
			hand_on_expired(r, goman_mono_ms());
		}
		free(rc);
		r->after(in);
		return;
	}
	r->mode = GM_REG_ON;
	r->retry_ms = 0;
	int online = take_online(r, rc, res->data);
	goman_log(GOMAN_LOG_DEBUG, "INSTALL", "registration check: %d of %d asked online, %d wait",
		  online, rc->n, r->waiting);
	hand_on_expired(r, goman_mono_ms());
	free(rc);
	/* more than 50 waited: the ones this round has not asked yet go next, at once */
	if (r->waiting > 0)
		schedule_round(r, r->round_left > 0 ? 0 : round_ms(in));
	r->after(in);
}

void gm_ssm_reg_submit(struct gm_ssm_reg *r)
{
	struct gm_install *in = r->in;
	r->due = false;
	hand_on_expired(r, goman_mono_ms());
	if (!r->head)
		return;
	struct reg_call *rc = calloc(1, sizeof(*rc));
	cJSON *req = cJSON_CreateObject();
	cJSON *flt = req ? cJSON_AddArrayToObject(req, "Filters") : NULL;
	cJSON *f = cJSON_CreateObject();
	bool ok = rc && flt && f && cJSON_AddItemToArray(flt, f);
	if (!ok)
		cJSON_Delete(f);
	cJSON *vals = ok ? cJSON_AddArrayToObject(f, "Values") : NULL;
	ok = ok && vals && cJSON_AddStringToObject(f, "Key", "InstanceIds") &&
	     cJSON_AddNumberToObject(req, "MaxResults", GM_SSM_MAX_IDS);
	if (rc)
		rc->r = r;
	if (r->round_left <= 0)
		r->round_left = r->waiting;
	/* the oldest first; asked ones move to the tail, so the next call of a round asks
	 * the next 50 */
	while (ok && rc->n < GM_SSM_MAX_IDS && r->head && r->round_left > 0) {
		struct gm_inode *n = r->head;
		ok = cJSON_AddItemToArray(vals, cJSON_CreateString(n->iid));
		unlink_node(r, &r->head);
		n->qnext = NULL;
		*r->tail = n;
		r->tail = &n->qnext;
		r->waiting++;
		r->round_left--;
		rc->nodes[rc->n++] = n;
	}
	struct goman_err err = GOMAN_ERR_INIT;
	goman_err_clear(&err);
	if (ok) {
		/* the first check is a probe of one attempt: an endpoint without the action
		 * then costs one failure on the SSM breaker, which the next answer resets */
		struct goman_aws_call call = {.service = "ssm",
					      .action = "DescribeInstanceInformation",
					      .json = req,
					      .retry_policy =
						      r->mode == GM_REG_TRY ? "once" : NULL};
		r->inflight = true;
		r->last_round = goman_mono_ms();
		if (gm_inst_aws_submit(in->o.aws, &call, check_done, rc, &err) == 0) {
			cJSON_Delete(req);
			return;
		}
		r->inflight = false;
	} else {
		gm_err_oom(&err);
	}
	cJSON_Delete(req);
	free(rc);
	turn_off(r, &err);
}

void gm_ssm_reg_clear(struct gm_ssm_reg *r)
{
	if (r->timer)
		goman_http_timer_cancel(r->in->o.http, r->timer);
	r->timer = 0;
	r->head = NULL;
	r->tail = &r->head;
	r->waiting = 0;
}
