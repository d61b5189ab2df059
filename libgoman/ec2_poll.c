/*
 * ec2_poll.c - the pending-set poller of goman/ec2.h: one paginated DescribeInstances a
 * round for every instance still pending (plus one DescribeInstanceStatus for status-ok),
 * each instance handed out the moment it reaches its target, the interval adapting to how
 * many are still pending.
 *
 * Ownership: the poller owns its pending array (each entry its last summary) and its filter
 * copy; a round in flight owns its describe result until round_end. A poller freed while a
 * round is in flight is marked dead and freed by that round. Errors reach on_done.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>
#include "goman/aws.h"
#include "goman/clock.h"
#include "goman/ec2.h"
#include "goman/http.h"
#include "goman/log.h"
#include "bytes_int.h"
#include "ec2_int.h"

/* ---- poller --------------------------------------------------------------------------- */

const char *goman_ec2_wait_name(enum goman_ec2_wait w)
{
	switch (w) {
	case GOMAN_EC2_WAIT_RUNNING: return "running";
	case GOMAN_EC2_WAIT_STATUS_OK: return "status-ok";
	case GOMAN_EC2_WAIT_STOPPED: return "stopped";
	case GOMAN_EC2_WAIT_TERMINATED: return "terminated";
	}
	return "?";
}

int goman_ec2_wait_parse(const char *s, enum goman_ec2_wait *out)
{
	for (int w = GOMAN_EC2_WAIT_RUNNING; w <= GOMAN_EC2_WAIT_TERMINATED; w++)
		if (s && !strcmp(s, goman_ec2_wait_name((enum goman_ec2_wait)w))) {
			*out = (enum goman_ec2_wait)w;
			return 0;
		}
	return -1;
}

struct pend {
	char id[32];
	int64_t deadline;
	double share;
	bool in_round; /* was pending when the current round started */
	bool running;  /* status-ok: reached running, waiting for the status checks */
	struct goman_ec2_instance last; /* the last summary seen */
};

struct goman_ec2_poller {
	struct goman_aws *aws;
	struct goman_ec2_poller_opts o;
	struct goman_kvs filters;
	struct pend *v;
	size_t n, cap;
	long timer;
	bool in_flight;
	bool started;
	bool dead; /* freed by its owner while a round was in flight: the round frees it */
	int rounds, calls, failed_rounds;
	int round_calls;
};

int64_t goman_ec2_poll_interval(const struct goman_ec2_poller_opts *o, size_t pending)
{
	int64_t lo = o->min_interval_ms, hi = o->max_interval_ms;
	int64_t v = lo + o->per_pending_ms * (int64_t)pending;
	if (v > hi)
		v = hi;
	if (v < lo)
		v = lo;
	return v;
}

struct goman_ec2_poller *goman_ec2_poller_new(struct goman_aws *aws,
					      const struct goman_ec2_poller_opts *opts,
					      struct goman_err *err)
{
	struct goman_ec2_poller *p = calloc(1, sizeof(*p));
	if (!p) {
		gm_err_oom(err);
		return NULL;
	}
	p->aws = aws;
	p->o = *opts;
	if (p->o.min_interval_ms <= 0)
		p->o.min_interval_ms = 2000;
	if (p->o.max_interval_ms < p->o.min_interval_ms)
		p->o.max_interval_ms = p->o.min_interval_ms > 15000 ? p->o.min_interval_ms : 15000;
	/* no growth unless asked: a record waits for the next round, and at real scale
	 * a grown interval held records back by up to max_interval (bench/57) */
	if (p->o.per_pending_ms < 0)
		p->o.per_pending_ms = 0;
	if (p->o.first_delay_ms <= 0)
		p->o.first_delay_ms = p->o.min_interval_ms;
	if (p->o.eventual_deadline_ms <= 0)
		p->o.eventual_deadline_ms = 60000;
	if (p->o.give_up_rounds <= 0)
		p->o.give_up_rounds = 3;
	if (opts->filters && goman_kvs_copy(&p->filters, opts->filters) != 0) {
		goman_kvs_clear(&p->filters);
		free(p);
		gm_err_oom(err);
		return NULL;
	}
	p->o.filters = opts->filters ? &p->filters : NULL;
	return p;
}

static void pend_remove(struct goman_ec2_poller *p, size_t i)
{
	goman_ec2_instance_clear(&p->v[i].last);
	p->v[i] = p->v[p->n - 1];
	p->n--;
}

void goman_ec2_poller_free(struct goman_ec2_poller *p)
{
	if (!p)
		return;
	if (p->timer && p->aws)
		goman_http_timer_cancel(goman_aws_http(p->aws), p->timer);
	p->timer = 0;
	if (p->in_flight && !p->dead) {
		/* the round's describe still points at p: it frees p when it ends (or the
		 * client drops it unrun when the client is freed first) */
		p->dead = true;
		return;
	}
	while (p->n)
		pend_remove(p, p->n - 1);
	free(p->v);
	goman_kvs_clear(&p->filters);
	free(p);
}

size_t goman_ec2_poller_pending(const struct goman_ec2_poller *p)
{
	return p->n;
}

void goman_ec2_poller_stats(const struct goman_ec2_poller *p, int *rounds, int *calls)
{
	if (rounds)
		*rounds = p->rounds;
	if (calls)
		*calls = p->calls;
}

static void round_fire(void *ud);

static void schedule(struct goman_ec2_poller *p)
{
	if (!p->aws || p->in_flight || p->timer || !p->n)
		return;
	int64_t d = p->started ? goman_ec2_poll_interval(&p->o, p->n) : p->o.first_delay_ms;
	p->started = true;
	p->timer = goman_http_timer(goman_aws_http(p->aws), d, round_fire, p);
}

int goman_ec2_poller_add(struct goman_ec2_poller *p, const char *instance_id,
			 int64_t deadline_mono_ms, struct goman_err *err)
{
	for (size_t i = 0; i < p->n; i++)
		if (!strcmp(p->v[i].id, instance_id))
			return 0;
	if (p->n == p->cap) {
		size_t cap = p->cap ? p->cap * 2 : 32;
		struct pend *v = realloc(p->v, cap * sizeof(*v));
		if (!v)
			return gm_err_oom(err);
		p->v = v;
		p->cap = cap;
	}
	struct pend *e = &p->v[p->n++];
	memset(e, 0, sizeof(*e));
	gm_ec2_copy(e->id, sizeof(e->id), instance_id);
	e->deadline = deadline_mono_ms;
	e->last.launch_index = -1;
	schedule(p);
	return 0;
}

/* A finished instance, held until the pending array is consistent again so callbacks may
 * add instances. */
struct fin {
	char id[32];
	struct goman_ec2_instance inst;
	struct goman_err err;
	bool failed;
	double share;
};

static bool state_is_final_bad(enum goman_ec2_wait t, const char *state)
{
	if (t == GOMAN_EC2_WAIT_TERMINATED)
		return false;
	return !strcmp(state, "terminated") || !strcmp(state, "shutting-down");
}

static bool state_reached(enum goman_ec2_wait t, const char *state)
{
	switch (t) {
	case GOMAN_EC2_WAIT_RUNNING:
	case GOMAN_EC2_WAIT_STATUS_OK: return !strcmp(state, "running");
	case GOMAN_EC2_WAIT_STOPPED: return !strcmp(state, "stopped");
	case GOMAN_EC2_WAIT_TERMINATED: return !strcmp(state, "terminated");
	}
	return false;
}

static void deliver(struct goman_ec2_poller *p, struct fin *f, size_t nf)
{
	for (size_t i = 0; i < nf; i++) {
		p->o.on_done(f[i].id, &f[i].inst, f[i].failed ? &f[i].err : NULL, f[i].share,
			     p->o.ud);
		goman_ec2_instance_clear(&f[i].inst);
	}
	free(f);
}

/*
 * One round's result: every pending instance that was in the round gets its share of the
 * round's calls; those that reached the target (or a state they cannot leave, or their
 * deadline) are taken out and reported. round_err (may be NULL) is the round's call error.
 */
GOMAN_TESTABLE void gm_ec2_poller_apply(struct goman_ec2_poller *p,
					const struct goman_ec2_instances *found, int calls,
					const struct goman_err *round_err)
{
	size_t in_round = 0;
	for (size_t i = 0; i < p->n; i++)
		if (p->v[i].in_round)
			in_round++;
	p->rounds++;
	p->calls += calls;
	struct fin *f = calloc(p->n ? p->n : 1, sizeof(*f));
	size_t nf = 0;
	if (!f)
		return;
	int64_t now = goman_mono_ms();
	bool give_up = false;
	if (round_err && round_err->rc != GOMAN_OK) {
		p->failed_rounds++;
		give_up = p->failed_rounds >= p->o.give_up_rounds;
		goman_log(give_up ? GOMAN_LOG_WARN : GOMAN_LOG_INFO, "PROVISION",
			  "describe round failed (%s)%s",
			  round_err->code[0] ? round_err->code : goman_strerror(round_err->rc),
			  give_up ? ", giving up" : ", will retry");
	} else {
		p->failed_rounds = 0;
	}
	for (size_t i = 0; i < p->n;) {
		struct pend *e = &p->v[i];
		if (e->in_round && in_round)
			e->share += (double)calls / (double)in_round;
		e->in_round = false;
		const struct goman_ec2_instance *in = NULL;
		for (size_t j = 0; found && j < found->n; j++)
			if (!strcmp(found->v[j].instance_id, e->id)) {
				in = &found->v[j];
				break;
			}
		if (in)
			goman_ec2_instance_copy(&e->last, in);
		struct fin *x = &f[nf];
		bool done = false;
		goman_err_clear(&x->err);
		if (give_up) {
			x->err = *round_err;
			x->failed = true;
			done = true;
		} else if (in && state_is_final_bad(p->o.target, in->state)) {
			goman_err_set(&x->err, GOMAN_ESERVICE, GOMAN_CLASS_CLIENT,
				      in->state_reason[0] ? in->state_reason : "InstanceTerminated",
				      "instance %s went %s while waiting for %s", e->id, in->state,
				      goman_ec2_wait_name(p->o.target));
			/* capacity shortfalls are worth another try later */
			if (strstr(x->err.code, "InsufficientInstanceCapacity"))
				x->err.retryable = true;
			x->failed = true;
			done = true;
		} else if (in && state_reached(p->o.target, in->state)) {
			if (p->o.target == GOMAN_EC2_WAIT_STATUS_OK) {
				e->running = true;
				done = !strcmp(e->last.status, "ok");
			} else {
				done = true;
			}
		}
		if (!done && e->deadline > 0 && now >= e->deadline) {
			goman_err_set(&x->err, GOMAN_ETIMEOUT, GOMAN_CLASS_TIMEOUT, "Timeout",
				      "instance %s still %s after the wait deadline", e->id,
				      e->last.state[0] ? e->last.state : "unseen");
			x->err.retryable = true;
			x->failed = true;
			done = true;
		}
		if (!done) {
			i++;
			continue;
		}
		gm_ec2_copy(x->id, sizeof(x->id), e->id);
		x->share = e->share;
		memset(&x->inst, 0, sizeof(x->inst));
		x->inst.launch_index = -1;
		goman_ec2_instance_copy(&x->inst, &e->last);
		if (!x->inst.instance_id[0])
			gm_ec2_copy(x->inst.instance_id, sizeof(x->inst.instance_id), e->id);
		nf++;
		pend_remove(p, i);
	}
	deliver(p, f, nf);
}

/* A round begins: every instance pending now is in it (its calls are shared by them). */
GOMAN_TESTABLE void gm_ec2_poller_mark(struct goman_ec2_poller *p)
{
	for (size_t i = 0; i < p->n; i++)
		p->v[i].in_round = true;
}

struct round_ctx {
	struct goman_ec2_poller *p;
	struct goman_ec2_instances found;
	int calls;
};

static void round_end(struct goman_ec2_poller *p, struct goman_ec2_instances *found, int calls,
		      const struct goman_err *err)
{
	p->in_flight = false;
	if (p->dead) {
		goman_ec2_poller_free(p);
		return;
	}
	gm_ec2_poller_apply(p, found, calls, err);
	schedule(p);
}

static void status_done(struct goman_aws_result *res, void *ud)
{
	struct round_ctx *c = ud;
	c->calls += res->attempts > 0 ? res->attempts : 1;
	if (res->err.rc == GOMAN_OK) {
		const cJSON *set = goman_json_path_array(res->data, "instanceStatusSet");
		const cJSON *it;
		cJSON_ArrayForEach (it, set) {
			const char *id = goman_json_path_str(it, "instanceId");
			const char *is = goman_json_path_str(it, "instanceStatus.status");
			const char *ss = goman_json_path_str(it, "systemStatus.status");
			for (size_t j = 0; id && j < c->found.n; j++)
				if (!strcmp(c->found.v[j].instance_id, id))
					gm_ec2_copy(
						c->found.v[j].status, sizeof(c->found.v[j].status),
						is && ss && !strcmp(is, "ok") && !strcmp(ss, "ok")
							? "ok"
							: (is ? is : ""));
		}
	}
	/* a failed status call only delays these instances to the next round */
	round_end(c->p, &c->found, c->calls, NULL);
	goman_ec2_instances_clear(&c->found);
	free(c);
}

static void round_described(struct goman_ec2_instances *found, const struct goman_err *err,
			    const struct goman_ec2_describe_stats *st, void *ud)
{
	struct goman_ec2_poller *p = ud;
	if (p->dead || (err && err->rc != GOMAN_OK)) {
		round_end(p, found, st->calls, err);
		return;
	}
	if (p->o.target == GOMAN_EC2_WAIT_STATUS_OK) {
		/* one DescribeInstanceStatus for the running ones of this round */
		struct goman_kvs params = {0};
		size_t k = 0;
		struct round_ctx *c = calloc(1, sizeof(*c));
		if (c) {
			c->p = p;
			c->found = *found;
			memset(found, 0, sizeof(*found));
			c->calls = st->calls;
			for (size_t i = 0; i < c->found.n && k < GM_EC2_IDS_PER_CALL; i++) {
				if (strcmp(c->found.v[i].state, "running"))
					continue;
				char key[48];
				snprintf(key, sizeof(key), "InstanceId.%zu", ++k);
				goman_kvs_add(&params, key, c->found.v[i].instance_id);
			}
			struct goman_aws_call call = {.service = "ec2",
						      .action = "DescribeInstanceStatus",
						      .params = &params};
			struct goman_err e2 = GOMAN_ERR_INIT;
			goman_err_clear(&e2);
			if (k && goman_aws_submit(p->aws, &call, status_done, c, &e2) == 0) {
				goman_kvs_clear(&params);
				return;
			}
			goman_kvs_clear(&params);
			round_end(p, &c->found, c->calls, NULL);
			goman_ec2_instances_clear(&c->found);
			free(c);
			return;
		}
	}
	round_end(p, found, st->calls, NULL);
}

static void round_fire(void *ud)
{
	struct goman_ec2_poller *p = ud;
	p->timer = 0;
	if (!p->n)
		return;
	struct goman_err err = GOMAN_ERR_INIT;
	goman_err_clear(&err);
	char **ids = NULL;
	size_t nids = 0;
	if (!p->o.filters) {
		ids = calloc(p->n, sizeof(char *));
		if (!ids) {
			gm_err_oom(&err);
			gm_ec2_poller_apply(p, NULL, 0, &err);
			return;
		}
		for (size_t i = 0; i < p->n; i++)
			ids[nids++] = p->v[i].id;
	}
	gm_ec2_poller_mark(p);
	p->in_flight = true;
	int rc = goman_ec2_describe_submit(p->aws, p->o.filters, (const char *const *)ids, nids,
					   p->o.eventual_deadline_ms, round_described, p, &err);
	free(ids);
	if (rc != 0)
		round_end(p, NULL, 0, &err);
}
