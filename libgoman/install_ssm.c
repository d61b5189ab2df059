/*
 * install_ssm.c - goman-install over SSM Run Command (AWS-RunShellScript).
 *
 * Sending: install nodes first wait until SSM knows their instance (install_ssm_reg.c: one
 * DescribeInstanceInformation a round for all of them), then join the group of their kind
 * (first server, joining servers, agents: one command text each); the nodes of one check
 * answer go out together. Without the check (an endpoint that lacks it), a group is sent when
 * it holds 50 instance IDs (the SendCommand limit) or batch_window_ms after its first node
 * came (first server and the verification at once). The command text is the script (a
 * quoted here-document) and its non-secret flags; the node reads the token from Parameter
 * Store itself (--token-ssm-param), and the first server puts its kubeconfig there itself
 * (--kubeconfig-ssm-param: gm_inst_script_args). Instances are always named by
 * InstanceIds: the ID-less forms would reach every instance of the region.
 * InvalidInstanceId (the SSM agent has not registered yet) is not a failure until the
 * node's delivery deadline: the IDs the error names (all of them when it names none) go
 * back to their group after a growing back-off, or at the age at which an earlier instance
 * was seen to register (learned_reg_ms) when that is later; the others are re-sent at once,
 * together. Retries due in the same loop round share one SendCommand.
 * Polling, with ListCommandInvocations (Details): one List per command tells which
 * invocations ended and carries their output cut at 2,500 characters; the command text
 * prints only the last progress and GOMAN_RESULT lines (the log stays on the node), so an
 * install is done from it (ended_in_list); a cut output, the verification and kubectl
 * actions get a GetCommandInvocation for the whole output. A
 * command's first List waits for the fastest install seen in its group; then all commands
 * share one pace (one List every poll_ms / 4, the likeliest news first: pick_command), none
 * asked twice within poll_ms, and agents' and joiners' commands wait while the first server
 * installs. Without List (moto): GetCommandInvocation per (command, instance), first after
 * first_poll_ms, then every next_poll_ms; InvocationDoesNotExist means not yet visible;
 * other errors (throttling that outlived libgoman's retries) back off x2 up to 4 x poll_ms.
 * Slots: every SSM call of the installer takes one of `concurrency` slots (goman-install
 * caps it at the SSM breaker's MaxConcurrent, so no call parks inside libgoman, where a poll
 * submitted from a finishing call's callback would take the freed slot before a parked
 * SendCommand: that starved sends for seconds). pump() fills free slots: queued
 * SendCommands first, then a due registration check, then due polls.
 * Success is the invocation's Status and ResponseCode; GOMAN_RESULT is parsed from
 * StandardOutputContent when present (install.c).
 *
 * Ownership: batches in flight (SI(in)->batches) and waiting for a slot (SI(in)->sendq) are freed
 * with the installer.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>
#include "goman/aws.h"
#include "goman/clock.h"
#include "goman/http.h"
#include "goman/log.h"
#include "install_int.h"
#include "install_ssm_reg.h"
#include "bytes_int.h"

/* ListCommandInvocations with Details: "Output" is cut at this many characters */
#define GM_SSM_LIST_OUTPUT_CAP 2500

/* a node's SSM state (n->tp) */
struct ssm_node {
	char command_id[64];
	int64_t t_send, deliver_until, exec_until;
	int64_t retry_ms; /* back-off of the next SendCommand retry / failed poll */
	long timer;
	int polls, sends, rejects; /* rejects: InvalidInstanceId answers */
	bool queued;               /* in a group or the poll queue */
	bool last_poll;            /* past its deadline, asked once more before it fails */
};

/* the installer's (in->tp) */
struct ssm_inst {
	struct gm_inode *group[GM_K_MAX];
	int group_n[GM_K_MAX];
	long group_timer[GM_K_MAX];
	struct gm_inode *pollq_head, **pollq_tail;
	/* per group (kind): the fastest and slowest install seen (send -> done) */
	int64_t fast_ms[GM_K_MAX], slow_ms[GM_K_MAX];
	enum { LIST_TRY = 0, LIST_OK, LIST_NO } list; /* ListCommandInvocations answers? */
	bool probing;           /* the first List is in flight: the others wait for its answer */
	struct ssm_cmd *cmds;   /* every command polled as a whole (freed with the installer) */
	unsigned long lists;    /* ListCommandInvocations calls */
	int64_t learned_reg_ms; /* shortest arrival -> accepted of a node SSM first did not
				 * know (InvalidInstanceId): when young instances register */
	unsigned long sends, polls;
	int calls;                /* SendCommand + GetCommandInvocation in flight */
	struct gm_batch *batches; /* SendCommands in flight (freed with the installer) */
	struct gm_batch *sendq;   /* SendCommands waiting for a slot (sent before polls) */
	struct gm_ssm_reg reg;    /* install nodes wait there until SSM knows them */
	int64_t next_list_at;     /* the List pace: no List before this (mono ms) */
	long list_timer;
};

static struct ssm_node *SN(const struct gm_inode *n)
{
	return n->tp;
}

static struct ssm_inst *SI(const struct gm_install *in)
{
	return in->tp;
}

/* A command polled as a whole: one ListCommandInvocations for all its instances; the
 * nodes whose invocation ended leave it for one GetCommandInvocation each (the output). */
struct ssm_cmd {
	struct ssm_cmd *next; /* SI(in)->cmds */
	struct gm_install *in;
	char id[64];
	enum gm_kind kind;
	int n, left; /* nodes[i] NULL once it left */
	struct gm_inode *nodes[GM_SSM_MAX_IDS];
	int64_t t_send, retry_ms;
	int64_t t_asked; /* its last List (t_send before the first) */
	long timer;
	bool due; /* its poll is due and waits for a slot */
	int polls;
};

struct gm_batch {
	struct gm_batch *next;
	struct gm_install *in;
	enum gm_kind kind;
	int n;
	struct gm_inode *nodes[GM_SSM_MAX_IDS];
};

static void enqueue(struct gm_install *in, struct gm_inode *n, int64_t window);
static void schedule_poll(struct gm_install *in, struct gm_inode *n, int64_t delay);
static void pump(struct gm_install *in);
static void flush(struct gm_install *in, enum gm_kind k);
static int64_t first_poll_ms(const struct gm_install *in, enum gm_kind k);
static void reg_ready(struct gm_inode *n, bool checked);
static void reg_after(struct gm_install *in);
static void learn(struct gm_install *in, enum gm_kind k, int64_t took);
static int64_t next_poll_ms(const struct gm_install *in, enum gm_kind k);
static void watch_command(struct gm_install *in, const struct gm_batch *bt, const char *cid,
			  int64_t now);
static bool pump_command(struct gm_install *in);

static void fail(struct gm_install *in, struct gm_inode *n, enum goman_rc rc, enum goman_class cls,
		 const char *code, const char *msg)
{
	struct goman_err e = GOMAN_ERR_INIT;
	goman_err_set(&e, rc, cls, code, "%s", msg);
	in->done(in, n, &e, 0);
}

/* The shell text for a batch: each instance's own flags (node name, labels, taints) chosen
 * by the instance ID the SSM agent gives the command (AWS_SSM_INSTANCE_ID), so nodes that
 * differ in them still share one SendCommand; then the script as a here-document and the
 * flags of the kind. */
static char *command_text(struct gm_install *in, const struct gm_batch *bt)
{
	struct gm_buf b = {0};
	const struct gm_inode *n = bt->nodes[0];
	if (n->kind == GM_K_VERIFY)
		return gm_inst_verify_cmd(in);
	if (n->kind == GM_K_ACTION)
		return gm_inst_action_cmd(in, n);
	gm_buf_adds(&b, "case \"${AWS_SSM_INSTANCE_ID:-}\" in\n");
	for (int i = 0; i < bt->n; i++) {
		char **nargs = gm_inst_node_args(bt->nodes[i]);
		gm_buf_quote(&b, bt->nodes[i]->iid);
		gm_buf_adds(&b, ") set --");
		for (size_t j = 0; nargs && nargs[j]; j++) {
			gm_buf_adds(&b, " ");
			gm_buf_quote(&b, nargs[j]);
		}
		gm_buf_adds(&b, " ;;\n");
		gm_inst_argv_free(nargs);
	}
	gm_buf_adds(&b,
		    "*) echo 'GOMAN_RESULT {\"ok\":false,\"class\":\"bad_input\",\"code\":"
		    "\"NoInstanceId\",\"exit\":64,\"message\":\"AWS_SSM_INSTANCE_ID is not this "
		    "command'\"'\"'s instance\"}'; exit 64 ;;\nesac\n");
	gm_buf_adds(&b, "f=$(mktemp /tmp/goman-k3s-install.XXXXXX) || exit 30\n"
			"cat >\"$f\" <<'GOMAN_K3S_INSTALL_EOF'\n");
	gm_buf_add(&b, in->script, in->script_len);
	if (in->script_len && in->script[in->script_len - 1] != '\n')
		gm_buf_adds(&b, "\n");
	/* the node keeps the installer's log; the command prints only the last progress and
	 * the GOMAN_RESULT line (so List's Details output, cut at 2,500 characters, holds
	 * the result), or the log's tail when the installer printed no result */
	gm_buf_adds(
		&b,
		"GOMAN_K3S_INSTALL_EOF\n"
		"log=${GOMAN_INSTALL_LOG:-/var/log/goman-k3s-install.log}\n"
		"(umask 077 && : >\"$log\") || log=$(mktemp /tmp/goman-k3s-install-log.XXXXXX)\n"
		"sh \"$f\"");
	char **args = gm_inst_script_args(in, n);
	for (size_t i = 0; args && args[i]; i++) {
		gm_buf_adds(&b, " ");
		gm_buf_quote(&b, args[i]);
	}
	gm_inst_argv_free(args);
	gm_buf_adds(&b, " \"$@\" >\"$log\" 2>&1\nrc=$?\nrm -f \"$f\"\n"
			"grep -q '^GOMAN_RESULT ' \"$log\" || tail -c 2000 \"$log\"\n"
			"grep '^GOMAN_PROGRESS ' \"$log\" | tail -n 1\n"
			"grep '^GOMAN_RESULT ' \"$log\" | tail -n 1\n"
			"exit $rc\n");
	return b.p;
}

static void batch_unlink(struct gm_install *in, struct gm_batch *bt)
{
	for (struct gm_batch **p = &SI(in)->batches; *p; p = &(*p)->next)
		if (*p == bt) {
			*p = bt->next;
			return;
		}
}

static void group_fire(void *ud);

/* A node's delivery retry is due: it goes with whatever else of its kind is waiting (and
 * with the other retries due in this loop round: a zero timer flushes them together). */
static void retry_send_fire(void *ud)
{
	struct gm_inode *n = ud;
	struct gm_install *in = n->in;
	SN(n)->timer = 0;
	enqueue(in, n, -1);
	if (!SN(n)->queued)
		return; /* a full group went out at once */
	if (SI(in)->group_timer[n->kind])
		goman_http_timer_cancel(in->o.http, SI(in)->group_timer[n->kind]);
	SI(in)->group_timer[n->kind] = goman_http_timer(in->o.http, 0, group_fire, n);
	if (SI(in)->group_timer[n->kind] <= 0) {
		SI(in)->group_timer[n->kind] = 0;
		flush(in, n->kind);
	}
}

/* Back off and send again, or fail once the delivery deadline passed. */
static void retry_send(struct gm_install *in, struct gm_inode *n, const struct goman_err *e)
{
	int64_t now = goman_mono_ms();
	if (now >= SN(n)->deliver_until) {
		struct goman_err te = *e;
		te.cls = GOMAN_CLASS_TIMEOUT;
		snprintf(te.message, sizeof(te.message),
			 "not delivered within the delivery timeout (%lld ms): %.400s",
			 (long long)in->o.delivery_timeout_ms, e->message);
		in->done(in, n, &te, 0);
		return;
	}
	if (SN(n)->retry_ms <= 0)
		SN(n)->retry_ms = in->o.poll_ms / 4 > 0 ? in->o.poll_ms / 4 : 1;
	else
		SN(n)->retry_ms = SN(n)->retry_ms * 3 / 2 + 1;
	if (SN(n)->retry_ms > in->o.poll_ms)
		SN(n)->retry_ms = in->o.poll_ms;
	int64_t d = SN(n)->retry_ms;
	/* Not yet registered: once some instance was seen to register, aim at the age at
	 * which it did instead of asking again every back-off step (each ask is a call). */
	if (!strcmp(e->code, "InvalidInstanceId") && SI(in)->learned_reg_ms > 0 &&
	    n->t_arrive + SI(in)->learned_reg_ms - now > d)
		d = n->t_arrive + SI(in)->learned_reg_ms - now;
	if (now + d > SN(n)->deliver_until)
		d = SN(n)->deliver_until - now;
	goman_log(GOMAN_LOG_DEBUG, "INSTALL", "%s: send again in %lld ms (%s)", n->name,
		  (long long)d, e->code[0] ? e->code : goman_strerror(e->rc));
	SN(n)->timer = goman_http_timer(in->o.http, d, retry_send_fire, n);
}

static void send_done(struct goman_aws_result *res, void *ud)
{
	struct gm_batch *bt = ud;
	struct gm_install *in = bt->in;
	batch_unlink(in, bt);
	int64_t now = goman_mono_ms();
	SI(in)->sends++;
	SI(in)->calls--;
	if (res->err.rc == GOMAN_OK) {
		const char *cid = goman_json_path_str(res->data, "Command.CommandId");
		for (int i = 0; i < bt->n; i++) {
			struct gm_inode *n = bt->nodes[i];
			if (!cid) {
				fail(in, n, GOMAN_EPARSE, GOMAN_CLASS_TRANSIENT, "BadReply",
				     "SendCommand: no CommandId in the reply");
				continue;
			}
			snprintf(SN(n)->command_id, sizeof(SN(n)->command_id), "%s", cid);
			if (SN(n)->rejects > 0 && (SI(in)->learned_reg_ms <= 0 ||
						   now - n->t_arrive < SI(in)->learned_reg_ms))
				SI(in)->learned_reg_ms = now - n->t_arrive;
			SN(n)->t_send = now;
			SN(n)->sends++;
			goman_log(GOMAN_LOG_DEBUG, "INSTALL",
				  "%s: sent %lld ms after its start (try %d)", n->name,
				  (long long)(now - n->t_start), SN(n)->sends);
			SN(n)->retry_ms = 0;
			SN(n)->exec_until = now + in->o.timeout_ms + in->o.delivery_timeout_ms +
					    2 * in->o.poll_ms;
			if (SI(in)->list == LIST_NO)
				schedule_poll(in, n, first_poll_ms(in, n->kind));
		}
		if (cid && SI(in)->list != LIST_NO)
			watch_command(in, bt, cid, now);
		if (cid)
			goman_log(GOMAN_LOG_DEBUG, "INSTALL", "SendCommand %s: %d instance(s)", cid,
				  bt->n);
		free(bt);
		pump(in);
		return;
	}
	const struct goman_err *e = &res->err;
	if (!strcmp(e->code, "InvalidInstanceId")) {
		int named = 0;
		for (int i = 0; i < bt->n; i++)
			if (bt->nodes[i]->iid[0] && strstr(e->message, bt->nodes[i]->iid))
				named++;
		/* the registered ones go again together, in one call, at once */
		for (int i = 0; i < bt->n; i++) {
			struct gm_inode *n = bt->nodes[i];
			bool young = !named || (n->iid[0] && strstr(e->message, n->iid));
			if (young) {
				SN(n)->rejects++;
				retry_send(in, n, e);
			} else
				enqueue(in, n, -1);
		}
		flush(in, bt->kind);
		free(bt);
		pump(in);
		return;
	}
	for (int i = 0; i < bt->n; i++) {
		struct gm_inode *n = bt->nodes[i];
		if (e->retryable || e->cls == GOMAN_CLASS_THROTTLING ||
		    e->cls == GOMAN_CLASS_TRANSIENT || e->cls == GOMAN_CLASS_TIMEOUT)
			retry_send(in, n, e);
		else
			in->done(in, n, e, 0);
	}
	free(bt);
	pump(in);
}

/* The group of a kind becomes batches of at most 50 IDs, queued for pump(): a SendCommand
 * goes before any poll, so a node that is ready to start never waits behind polls. */
static void flush(struct gm_install *in, enum gm_kind k)
{
	if (SI(in)->group_timer[k]) {
		goman_http_timer_cancel(in->o.http, SI(in)->group_timer[k]);
		SI(in)->group_timer[k] = 0;
	}
	while (SI(in)->group[k]) {
		struct gm_batch *bt = calloc(1, sizeof(*bt));
		if (!bt) {
			struct goman_err err = GOMAN_ERR_INIT;
			gm_err_oom(&err);
			struct gm_inode *n = SI(in)->group[k];
			SI(in)->group[k] = n->qnext;
			n->qnext = NULL;
			SN(n)->queued = false;
			SI(in)->group_n[k]--;
			in->done(in, n, &err, 0);
			continue;
		}
		bt->in = in;
		bt->kind = k;
		/* an action's text names its node: one per SendCommand; the script's flags are
		 * shared, so only nodes joining the same server URL go together */
		const char *url = gm_inst_server_url(in, SI(in)->group[k]);
		for (struct gm_inode **p = &SI(in)->group[k];
		     *p && bt->n < (k == GM_K_ACTION ? 1 : GM_SSM_MAX_IDS);) {
			struct gm_inode *n = *p;
			if (strcmp(gm_inst_server_url(in, n), url)) {
				p = &n->qnext;
				continue;
			}
			*p = n->qnext;
			n->qnext = NULL;
			SN(n)->queued = false;
			SI(in)->group_n[k]--;
			bt->nodes[bt->n++] = n;
		}
		struct gm_batch **p = &SI(in)->sendq;
		while (*p)
			p = &(*p)->next;
		*p = bt;
	}
	pump(in);
}

/* One SendCommand for a batch. Returns after submitting it, or after failing its nodes. */
static void submit_batch(struct gm_install *in, struct gm_batch *bt)
{
	enum gm_kind k = bt->kind;
	cJSON *req = cJSON_CreateObject();
	char *text = command_text(in, bt);
	cJSON *ids = req ? cJSON_AddArrayToObject(req, "InstanceIds") : NULL;
	cJSON *params = req ? cJSON_CreateObject() : NULL;
	bool ok = text && ids && params;
	for (int i = 0; ok && i < bt->n; i++)
		ok = cJSON_AddItemToArray(ids, cJSON_CreateString(bt->nodes[i]->iid));
	if (ok) {
		char num[32];
		cJSON *cmds = cJSON_AddArrayToObject(params, "commands");
		cJSON *et = cJSON_AddArrayToObject(params, "executionTimeout");
		snprintf(num, sizeof(num), "%lld", (long long)((in->o.timeout_ms + 999) / 1000));
		ok = cmds && et && cJSON_AddItemToArray(cmds, cJSON_CreateString(text)) &&
		     cJSON_AddItemToArray(et, cJSON_CreateString(num));
		cJSON_AddStringToObject(req, "DocumentName", "AWS-RunShellScript");
		cJSON_AddItemToObject(req, "Parameters", params);
		params = NULL;
		int64_t dt = (in->o.delivery_timeout_ms + 999) / 1000;
		cJSON_AddNumberToObject(req, "TimeoutSeconds", (double)(dt < 30 ? 30 : dt));
		char comment[100];
		static const char *const kn[] = {"first-server", "join-server", "agent", "verify",
						 "kubectl"};
		snprintf(comment, sizeof(comment), "goman install %s %s", in->cluster, kn[k]);
		cJSON_AddStringToObject(req, "Comment", comment);
	}
	cJSON_Delete(params);
	free(text);
	struct goman_err err = GOMAN_ERR_INIT;
	goman_err_clear(&err);
	if (ok) {
		struct goman_aws_call call = {
			.service = "ssm", .action = "SendCommand", .json = req};
		bt->next = SI(in)->batches;
		SI(in)->batches = bt;
		SI(in)->calls++;
		if (gm_inst_aws_submit(in->o.aws, &call, send_done, bt, &err) != 0) {
			SI(in)->calls--;
			batch_unlink(in, bt);
			ok = false;
		}
	} else {
		gm_err_oom(&err);
	}
	cJSON_Delete(req);
	if (!ok) {
		for (int i = 0; i < bt->n; i++)
			in->done(in, bt->nodes[i], &err, 0);
		free(bt);
	}
}

static void group_fire(void *ud)
{
	struct gm_install *in = ((struct gm_inode *)ud)->in;
	enum gm_kind k = ((struct gm_inode *)ud)->kind;
	SI(in)->group_timer[k] = 0;
	flush(in, k);
}

static void enqueue(struct gm_install *in, struct gm_inode *n, int64_t window)
{
	enum gm_kind k = n->kind;
	if (SN(n)->queued)
		return;
	SN(n)->queued = true;
	n->qnext = NULL;
	struct gm_inode **p = &SI(in)->group[k];
	while (*p)
		p = &(*p)->qnext;
	*p = n;
	SI(in)->group_n[k]++;
	if (SI(in)->group_n[k] >= GM_SSM_MAX_IDS || window == 0) {
		flush(in, k);
		return;
	}
	if (window < 0) /* the caller flushes */
		return;
	if (!SI(in)->group_timer[k])
		SI(in)->group_timer[k] = goman_http_timer(in->o.http, window, group_fire, n);
}

static int ssm_start(struct gm_install *in, struct gm_inode *n, struct goman_err *err)
{
	if (!in->tp) {
		if (!(in->tp = calloc(1, sizeof(struct ssm_inst))))
			return gm_err_oom(err);
		SI(in)->pollq_tail = &SI(in)->pollq_head;
		gm_ssm_reg_init(&SI(in)->reg, in, reg_ready, reg_after);
	}
	if (!n->tp && !(n->tp = calloc(1, sizeof(struct ssm_node))))
		return gm_err_oom(err);
	if (!n->iid[0])
		return goman_err_set(err, GOMAN_EINVAL, GOMAN_CLASS_BAD_INPUT, "BadInput", "%s",
				     "no instance_id");
	SN(n)->deliver_until = goman_mono_ms() + in->o.delivery_timeout_ms;
	/* the verification and kubectl actions run on the first server, which SSM knows */
	if (n->kind == GM_K_VERIFY || n->kind == GM_K_ACTION)
		enqueue(in, n, 0);
	else
		gm_ssm_reg_add(&SI(in)->reg, n, n->kind == GM_K_FIRST ? 0 : in->o.batch_window_ms);
	return 0;
}

/* The registration check handed a node on: checked ones go with the others of that answer
 * (reg_after flushes); without the check, as they arrive (first server at once). */
static void reg_ready(struct gm_inode *n, bool checked)
{
	struct gm_install *in = n->in;
	if (n->state == GM_N_DONE)
		return;
	if (checked)
		enqueue(in, n, -1);
	else
		enqueue(in, n, n->kind == GM_K_FIRST ? 0 : in->o.batch_window_ms);
}

static void reg_after(struct gm_install *in)
{
	for (int k = 0; k < GM_K_MAX; k++)
		if (SI(in)->group[k] && !SI(in)->group_timer[k])
			flush(in, k);
	pump(in);
}

static void ssm_input_done(struct gm_install *in)
{
	if (!in->tp)
		return;
	for (int k = 0; k < GM_K_MAX; k++)
		if (SI(in)->group[k])
			flush(in, k);
}

/* ---- polling --------------------------------------------------------------------------- */

static void submit_poll(struct gm_install *in, struct gm_inode *n);

/* The due poll most likely to find its command ended: the one sent longest ago (installs
 * take about the same time). Unlinked from the poll queue; NULL when none is due. */
static struct gm_inode *pick_poll(struct gm_install *in)
{
	struct gm_inode **best = NULL;
	for (struct gm_inode **p = &SI(in)->pollq_head; *p; p = &(*p)->qnext)
		if (!best || SN(*p)->t_send < SN(*best)->t_send)
			best = p;
	if (!best)
		return NULL;
	struct gm_inode *n = *best;
	*best = n->qnext;
	if (!*best)
		SI(in)->pollq_tail = best;
	n->qnext = NULL;
	SN(n)->queued = false;
	return n;
}

/* Fills the free SSM slots (--concurrency, at most the SSM breaker's MaxConcurrent: then
 * nothing parks inside libgoman, where a poll submitted from a callback would take a freed
 * slot before a parked SendCommand): queued SendCommands first, then due polls, most
 * likely finished first. */
static void pump(struct gm_install *in)
{
	while (SI(in)->calls + SI(in)->reg.inflight < in->o.concurrency) {
		if (SI(in)->sendq) {
			struct gm_batch *bt = SI(in)->sendq;
			SI(in)->sendq = bt->next;
			bt->next = NULL;
			submit_batch(in, bt);
			continue;
		}
		if (gm_ssm_reg_due(&SI(in)->reg)) {
			gm_ssm_reg_submit(&SI(in)->reg);
			continue;
		}
		struct gm_inode *n = pick_poll(in);
		if (!n) {
			if (!pump_command(in))
				return;
			continue;
		}
		if (n->state != GM_N_DONE)
			submit_poll(in, n);
	}
}

static void poll_fire(void *ud)
{
	struct gm_inode *n = ud;
	struct gm_install *in = n->in;
	SN(n)->timer = 0;
	if (n->state == GM_N_DONE)
		return;
	SN(n)->queued = true;
	n->qnext = NULL;
	*SI(in)->pollq_tail = n;
	SI(in)->pollq_tail = &n->qnext;
	pump(in);
}

static void schedule_poll(struct gm_install *in, struct gm_inode *n, int64_t delay)
{
	int64_t now = goman_mono_ms();
	if (now >= SN(n)->exec_until) {
		/* one last question before the verdict: a command's List poll or the switch to
		 * per-invocation polls may land on the deadline without this node asked yet */
		if (SN(n)->last_poll) {
			fail(in, n, GOMAN_ETIMEOUT, GOMAN_CLASS_TIMEOUT, "ExecutionTimeout",
			     "no final status within the execution and delivery timeouts");
			return;
		}
		SN(n)->last_poll = true;
		delay = 0;
	}
	if (now + delay > SN(n)->exec_until)
		delay = SN(n)->exec_until - now;
	SN(n)->timer = goman_http_timer(in->o.http, delay, poll_fire, n);
}

static bool status_pending(const char *s)
{
	return !strcmp(s, "Pending") || !strcmp(s, "InProgress") || !strcmp(s, "Delayed");
}

/* An invocation ended with Status st: the node is done (its output, when given, is kept
 * for install.c to read GOMAN_RESULT from). */
static void invocation_ended(struct gm_install *in, struct gm_inode *n, const char *st,
			     const cJSON *rcj, const char *out)
{
	if (out) {
		gm_buf_free(&n->out);
		gm_buf_adds(&n->out, out);
	}
	/* an exit status (-1 when SSM has none): anything else is clamped before the cast */
	int rc = -1;
	if (cJSON_IsNumber(rcj) && rcj->valuedouble >= -1)
		rc = rcj->valuedouble <= 255 ? (int)rcj->valuedouble : 255;
	int64_t took = goman_mono_ms() - SN(n)->t_send;
	if (!strcmp(st, "Success")) {
		learn(in, n->kind, took);
		in->done(in, n, NULL, rc > 0 ? rc : 0);
	} else if (!strcmp(st, "Failed")) {
		in->done(in, n, NULL, rc > 0 ? rc : 1);
	} else {
		bool timed = strstr(st, "TimedOut") != NULL;
		char msg[160];
		snprintf(msg, sizeof(msg), "SSM command ended %s", st);
		fail(in, n, timed ? GOMAN_ETIMEOUT : GOMAN_ESERVICE,
		     timed ? GOMAN_CLASS_TIMEOUT : GOMAN_CLASS_CLIENT, st, msg);
	}
}

static void poll_done(struct goman_aws_result *res, void *ud)
{
	struct gm_inode *n = ud;
	struct gm_install *in = n->in;
	SI(in)->calls--;
	SI(in)->polls++;
	SN(n)->polls++;
	const struct goman_err *e = &res->err;
	if (n->state == GM_N_DONE) {
		pump(in);
		return;
	}
	goman_log(GOMAN_LOG_DEBUG, "INSTALL", "%s: poll %d at %lld ms after the send: %s", n->name,
		  SN(n)->polls, (long long)(goman_mono_ms() - SN(n)->t_send),
		  e->rc ? e->code
			: (goman_json_path_str(res->data, "Status")
				   ? goman_json_path_str(res->data, "Status")
				   : "?"));
	if (e->rc != GOMAN_OK) {
		if (!strcmp(e->code, "InvocationDoesNotExist")) {
			schedule_poll(in, n, next_poll_ms(in, n->kind));
		} else if (e->retryable || e->cls == GOMAN_CLASS_THROTTLING ||
			   e->cls == GOMAN_CLASS_TRANSIENT || e->cls == GOMAN_CLASS_TIMEOUT) {
			SN(n)->retry_ms = gm_inst_poll_backoff(in, SN(n)->retry_ms);
			schedule_poll(in, n, SN(n)->retry_ms);
		} else {
			in->done(in, n, e, 0);
		}
		pump(in);
		return;
	}
	SN(n)->retry_ms = 0;
	const char *st = goman_json_path_str(res->data, "Status");
	if (!st)
		st = "";
	if (status_pending(st) || !*st) {
		schedule_poll(in, n, next_poll_ms(in, n->kind));
		pump(in);
		return;
	}
	const char *out = goman_json_path_str(res->data, "StandardOutputContent");
	invocation_ended(in, n, st, cJSON_GetObjectItemCaseSensitive(res->data, "ResponseCode"),
			 out);
	pump(in);
}

static void submit_poll(struct gm_install *in, struct gm_inode *n)
{
	cJSON *req = cJSON_CreateObject();
	struct goman_err err = GOMAN_ERR_INIT;
	goman_err_clear(&err);
	if (!req || !cJSON_AddStringToObject(req, "CommandId", SN(n)->command_id) ||
	    !cJSON_AddStringToObject(req, "InstanceId", n->iid)) {
		cJSON_Delete(req);
		fail(in, n, GOMAN_ENOMEM, GOMAN_CLASS_NONE, "", "out of memory");
		return;
	}
	struct goman_aws_call call = {
		.service = "ssm", .action = "GetCommandInvocation", .json = req};
	SI(in)->calls++;
	if (gm_inst_aws_submit(in->o.aws, &call, poll_done, n, &err) != 0) {
		SI(in)->calls--;
		in->done(in, n, &err, 0);
	}
	cJSON_Delete(req);
}

/* ---- poll spacing ---------------------------------------------------------------------- */

static void learn(struct gm_install *in, enum gm_kind k, int64_t took)
{
	if (k == GM_K_VERIFY || k == GM_K_ACTION)
		return;
	if (SI(in)->fast_ms[k] <= 0 || took < SI(in)->fast_ms[k])
		SI(in)->fast_ms[k] = took;
	if (took > SI(in)->slow_ms[k])
		SI(in)->slow_ms[k] = took;
}

/* The first poll of a command: near the end of the fastest install seen in its group; a
 * group with none yet takes 3/4 of the fastest of any group, else --poll-floor. Never
 * sooner than --poll-interval; the verification and kubectl actions at --poll-interval. */
static int64_t first_poll_ms(const struct gm_install *in, enum gm_kind k)
{
	if (k == GM_K_VERIFY || k == GM_K_ACTION)
		return in->o.poll_ms;
	int64_t f = SI(in)->fast_ms[k];
	for (int g = 0; f <= 0 && g < GM_K_VERIFY; g++)
		if (SI(in)->fast_ms[g] > 0 && (f <= 0 || SI(in)->fast_ms[g] * 3 / 4 < f))
			f = SI(in)->fast_ms[g] * 3 / 4;
	if (f <= 0)
		f = in->o.poll_floor_ms;
	/* a command has ended by its execution timeout: no first poll waits past it */
	if (f > in->o.timeout_ms)
		f = in->o.timeout_ms;
	return f > in->o.poll_ms ? f : in->o.poll_ms;
}

/* Later polls: a quarter of the group's spread (slowest - fastest install seen), so the
 * polls of one command cover its spread in about four steps; never closer than
 * --poll-interval. */
static int64_t next_poll_ms(const struct gm_install *in, enum gm_kind k)
{
	int64_t spread = k < GM_K_VERIFY && SI(in)->fast_ms[k] > 0
				 ? (SI(in)->slow_ms[k] - SI(in)->fast_ms[k]) / 4
				 : 0;
	return spread > in->o.poll_ms ? spread : in->o.poll_ms;
}

/* ---- one poll per command: ListCommandInvocations --------------------------------------- */

/* A node leaves its command's List polls: its own GetCommandInvocation is due in delay. */
static void leave_command(struct ssm_cmd *c, int i, int64_t delay)
{
	struct gm_inode *n = c->nodes[i];
	c->nodes[i] = NULL;
	c->left--;
	if (n->state != GM_N_DONE)
		schedule_poll(c->in, n, delay);
}

static void command_fire(void *ud)
{
	struct ssm_cmd *c = ud;
	c->timer = 0;
	c->due = true;
	pump(c->in);
}

static void schedule_command(struct ssm_cmd *c, int64_t delay)
{
	struct gm_install *in = c->in;
	int64_t now = goman_mono_ms();
	/* past a node's execution deadline, or without List: each node polls on its own */
	for (int i = 0; i < c->n; i++)
		if (c->nodes[i] && (SI(in)->list == LIST_NO || c->nodes[i]->state == GM_N_DONE ||
				    now >= SN(c->nodes[i])->exec_until))
			leave_command(c, i, SI(in)->list == LIST_NO ? delay : 0);
	/* a command is polled by its nodes' earliest deadline at the latest */
	for (int i = 0; i < c->n; i++)
		if (c->nodes[i] && now + delay > SN(c->nodes[i])->exec_until)
			delay = SN(c->nodes[i])->exec_until > now
					? SN(c->nodes[i])->exec_until - now
					: 0;
	if (c->left > 0)
		c->timer = goman_http_timer(in->o.http, delay, command_fire, c);
}

static void watch_command(struct gm_install *in, const struct gm_batch *bt, const char *cid,
			  int64_t now)
{
	struct ssm_cmd *c = calloc(1, sizeof(*c));
	if (!c) { /* polled node by node instead */
		for (int i = 0; i < bt->n; i++)
			schedule_poll(in, bt->nodes[i], first_poll_ms(in, bt->kind));
		return;
	}
	c->in = in;
	c->kind = bt->kind;
	c->t_send = c->t_asked = now;
	snprintf(c->id, sizeof(c->id), "%s", cid);
	for (int i = 0; i < bt->n; i++)
		if (bt->nodes[i]->state != GM_N_DONE)
			c->nodes[c->n++] = bt->nodes[i];
	c->left = c->n;
	c->next = SI(in)->cmds;
	SI(in)->cmds = c;
	schedule_command(c, first_poll_ms(in, c->kind));
}

static bool unknown_action(const struct goman_err *e)
{
	static const char *const codes[] = {"UnknownOperationException", "InvalidAction",
					    "UnknownOperation", "NotImplemented"};
	for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++)
		if (!strcmp(e->code, codes[i]))
			return true;
	return false;
}

/* List failed: before it ever answered, anything but throttling means the endpoint does
 * not have it (moto 5.2 answers 500): every command polls node by node from now on. */
static void list_failed(struct ssm_cmd *c, const struct goman_err *e)
{
	struct gm_install *in = c->in;
	bool throttled = e->cls == GOMAN_CLASS_THROTTLING;
	if (unknown_action(e) || (SI(in)->list == LIST_TRY && !throttled)) {
		SI(in)->list = LIST_NO;
		goman_log(GOMAN_LOG_INFO, "INSTALL",
			  "ListCommandInvocations unavailable (%s): polling each invocation",
			  e->code[0] ? e->code : goman_strerror(e->rc));
		/* the other commands turn to their nodes' own polls when theirs is due */
		schedule_command(c, 0);
		return;
	}
	c->retry_ms = gm_inst_poll_backoff(in, c->retry_ms);
	schedule_command(c, c->retry_ms);
}

/* The install's output as List's Details give it (Output cut at 2,500 characters): enough
 * when it is shorter than that and holds the GOMAN_RESULT line, which goman's command
 * text prints last with nothing but the last GOMAN_PROGRESS before it (the log stays on
 * the node). Then the node is done without a GetCommandInvocation; otherwise, and for
 * the verification and kubectl actions, whose output is theirs, it gets one. */
static bool ended_in_list(struct ssm_cmd *c, int i, const char *st, const cJSON *inv)
{
	struct gm_inode *n = c->nodes[i];
	if (c->kind != GM_K_FIRST && c->kind != GM_K_JOIN && c->kind != GM_K_AGENT)
		return false;
	const cJSON *plugin =
		cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(inv, "CommandPlugins"), 0);
	const char *out = goman_json_path_str(plugin, "Output");
	if (!out || strlen(out) >= GM_SSM_LIST_OUTPUT_CAP)
		return false;
	cJSON *result = goman_install_parse_output(out, NULL);
	cJSON_Delete(result);
	if (!result)
		return false;
	c->nodes[i] = NULL;
	c->left--;
	if (n->state != GM_N_DONE)
		invocation_ended(c->in, n, st,
				 cJSON_GetObjectItemCaseSensitive(plugin, "ResponseCode"), out);
	return true;
}

static void list_done(struct goman_aws_result *res, void *ud)
{
	struct ssm_cmd *c = ud;
	struct gm_install *in = c->in;
	SI(in)->calls--;
	SI(in)->lists++;
	SI(in)->probing = false;
	c->polls++;
	if (res->err.rc != GOMAN_OK) {
		list_failed(c, &res->err);
		pump(in);
		return;
	}
	SI(in)->list = LIST_OK;
	c->retry_ms = 0;
	const cJSON *inv;
	int ended = 0;
	cJSON_ArrayForEach (inv,
			    cJSON_GetObjectItemCaseSensitive(res->data, "CommandInvocations")) {
		const char *iid = goman_json_path_str(inv, "InstanceId");
		const char *st = goman_json_path_str(inv, "Status");
		for (int i = 0; iid && st && *st && !status_pending(st) && i < c->n; i++)
			if (c->nodes[i] && !strcmp(c->nodes[i]->iid, iid)) {
				ended++;
				if (!ended_in_list(c, i, st, inv))
					leave_command(c, i, 0);
			}
	}
	goman_log(GOMAN_LOG_DEBUG, "INSTALL", "command %s: poll %d, %d ended, %d running", c->id,
		  c->polls, ended, c->left);
	/* news: installs end in waves (agents just after the first server), so the next
	 * List goes at once; only a List that found nothing waits for the pace */
	if (ended > 0)
		SI(in)->next_list_at = goman_mono_ms();
	if (c->left > 0)
		schedule_command(c, in->o.poll_ms);
	pump(in);
}

/* A joining server's or agent's install ends after it joined, which needs the first
 * server up: while this run's first server installs, their commands are not polled (an
 * early failure among them shows once it ended). */
static bool command_held(const struct gm_install *in, const struct ssm_cmd *c)
{
	return (c->kind == GM_K_JOIN || c->kind == GM_K_AGENT) && in->first &&
	       in->first->state != GM_N_DONE;
}

/* The first server, the verification and kubectl actions gate the run: before any other. */
static bool command_urgent(const struct ssm_cmd *c)
{
	return c->kind == GM_K_FIRST || c->kind == GM_K_VERIFY || c->kind == GM_K_ACTION;
}

static void list_pace_fire(void *ud)
{
	struct gm_install *in = ud;
	SI(in)->list_timer = 0;
	pump(in);
}

/* The due command to poll now (NULL: none may go yet). Commands share one pace: one List
 * every --poll-interval / 4 across all of them, so a run's polls grow with its duration,
 * not with its commands, and a List that found ended invocations lets the next go at once
 * (list_done). The one asked is the command with the most nodes left times the longest
 * time since it was last asked (the likeliest news); one command is asked at most once a
 * --poll-interval (schedule_command). */
static struct ssm_cmd *pick_command(struct gm_install *in, int64_t now)
{
	struct ssm_cmd *c = NULL;
	int64_t best = -1;
	for (struct ssm_cmd *o = SI(in)->cmds; o; o = o->next) {
		if (!o->due || command_held(in, o))
			continue;
		if (command_urgent(o))
			return o;
		int64_t score = (int64_t)o->left * (now - o->t_asked + 1);
		if (score > best) {
			best = score;
			c = o;
		}
	}
	if (c && now < SI(in)->next_list_at) {
		if (!SI(in)->list_timer)
			SI(in)->list_timer = goman_http_timer(
				in->o.http, SI(in)->next_list_at - now, list_pace_fire, in);
		return NULL;
	}
	if (c) {
		int64_t gap = in->o.poll_ms / 4;
		SI(in)->next_list_at = now + (gap > 0 ? gap : 1);
	}
	return c;
}

/* Submits the due command poll most likely to find news; false when none may go (or the
 * first List is still out: an endpoint without it answers 5xx, and one probe at a time
 * keeps those under the breaker's FailureThreshold). */
static bool pump_command(struct gm_install *in)
{
	if (SI(in)->probing)
		return false;
	int64_t now = goman_mono_ms();
	struct ssm_cmd *c = pick_command(in, now);
	if (!c)
		return false;
	c->due = false;
	c->t_asked = now;
	if (SI(in)->list == LIST_NO)
		schedule_command(c, 0);
	if (c->left <= 0)
		return true;
	cJSON *req = cJSON_CreateObject();
	struct goman_err err = GOMAN_ERR_INIT;
	goman_err_clear(&err);
	if (!req || !cJSON_AddStringToObject(req, "CommandId", c->id) ||
	    !cJSON_AddNumberToObject(req, "MaxResults", GM_SSM_MAX_IDS) ||
	    !cJSON_AddBoolToObject(req, "Details", 1)) {
		cJSON_Delete(req);
		gm_err_oom(&err);
		list_failed(c, &err);
		return true;
	}
	/* one attempt: an endpoint without the action (moto answers 500) then costs one
	 * failure on the SSM breaker (FailureThreshold 2), which the next answer resets */
	struct goman_aws_call call = {.service = "ssm",
				      .action = "ListCommandInvocations",
				      .json = req,
				      .retry_policy = "once"};
	SI(in)->calls++;
	SI(in)->probing = SI(in)->list == LIST_TRY;
	if (gm_inst_aws_submit(in->o.aws, &call, list_done, c, &err) != 0) {
		SI(in)->calls--;
		SI(in)->probing = false;
		list_failed(c, &err);
	}
	cJSON_Delete(req);
	return true;
}

static void ssm_annotate(const struct gm_inode *n, cJSON *st)
{
	if (n->tp && SN(n)->command_id[0])
		cJSON_AddStringToObject(st, "command_id", SN(n)->command_id);
}

static void ssm_free(struct gm_install *in)
{
	if (!in->tp)
		return;
	for (int k = 0; k < GM_K_MAX; k++)
		if (SI(in)->group_timer[k])
			goman_http_timer_cancel(in->o.http, SI(in)->group_timer[k]);
	gm_ssm_reg_clear(&SI(in)->reg);
	if (SI(in)->list_timer)
		goman_http_timer_cancel(in->o.http, SI(in)->list_timer);
	for (struct gm_inode *n = in->nodes; n; n = n->next)
		if (n->tp && SN(n)->timer)
			goman_http_timer_cancel(in->o.http, SN(n)->timer);
	if (in->verify && in->verify->tp && SN(in->verify)->timer)
		goman_http_timer_cancel(in->o.http, SN(in->verify)->timer);
	for (struct gm_batch *b = SI(in)->batches, *next; b; b = next) {
		next = b->next;
		free(b);
	}
	for (struct gm_batch *b = SI(in)->sendq, *next; b; b = next) {
		next = b->next;
		free(b);
	}
	for (struct ssm_cmd *c = SI(in)->cmds, *next; c; c = next) {
		next = c->next;
		if (c->timer)
			goman_http_timer_cancel(in->o.http, c->timer);
		free(c);
	}
	goman_log(GOMAN_LOG_DEBUG, "INSTALL",
		  "SSM calls: %lu DescribeInstanceInformation, %lu SendCommand, "
		  "%lu ListCommandInvocations, %lu GetCommandInvocation",
		  SI(in)->reg.calls, SI(in)->sends, SI(in)->lists, SI(in)->polls);
	free(in->tp);
	in->tp = NULL;
}

bool gm_inst_ssm_sends_waiting(const struct gm_install *in)
{
	return in->tp && SI(in)->sendq;
}

bool gm_inst_ssm_polls_waiting(const struct gm_install *in)
{
	return in->tp && SI(in)->pollq_head;
}

const struct gm_inst_ops gm_inst_ssm_ops = {
	.start = ssm_start,
	.input_done = ssm_input_done,
	.annotate = ssm_annotate,
	.free = ssm_free,
};
