/*
 * install.c - the goman-install scheduler (see goman/install.h): node parts, ordering
 * without barriers, the finished records, the verification and the `cluster` event.
 *
 * A record arrives → a node. Its part: the first server (role server, index 0) starts at
 * once; every other node needs the server URL (--server-url, or the first server's private
 * IP as soon as its record arrived) and, with wait_server, the first server's success.
 * Nothing else waits: there is no phase barrier. Ready nodes go to the transport
 * (install_ssm.c groups them into SendCommands; install_proc.c runs ssh/sh children up to
 * the concurrency). --cluster-init for the first server: --servers N decides (N > 1);
 * without it, any other server record already seen, or an input still open, means yes
 * (embedded etcd serves one server as well, and later servers can still join); an input
 * that ended with a single server means no (sqlite).
 * After the input ended and every node is done, the first server is asked for
 * `k3s kubectl get nodes` (a GM_K_VERIFY pseudo node through the same transport) and the
 * `cluster` event goes out with the Ready count.
 *
 * Transports sit behind struct gm_inst_ops (install_int.h): the scheduler picks one at
 * creation, starts nodes through it and hands it node_done() as in->done.
 *
 * Ownership: see install_int.h. Errors: per node, as error records through emit.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>
#include <openssl/crypto.h>
#include "goman/addr.h"
#include "goman/aws.h"
#include "goman/clock.h"
#include "goman/http.h"
#include "goman/jsonl.h"
#include "goman/k8s_names.h"
#include "goman/log.h"
#include "install_int.h"
#include "bytes_int.h"

static const char *const via_names[] = {"ssm", "ssh", "local"};

/* ---- output parsing ------------------------------------------------------------------ */

/* Calls fn for each node row of `kubectl get nodes` output (NAME STATUS ROLES AGE VERSION;
 * the header row and other text are skipped) and returns the number of rows. */
static int node_rows(const char *out, void (*fn)(const char *name, const char *status, void *ud),
		     void *ud)
{
	int rows = 0;
	for (const char *l = out; l && *l;) {
		const char *e = strchr(l, '\n');
		size_t n = e ? (size_t)(e - l) : strlen(l);
		char row[512];
		if (n >= sizeof(row))
			n = sizeof(row) - 1;
		memcpy(row, l, n);
		row[n] = '\0';
		char name[256], status[64];
		if (sscanf(row, "%255s %63s", name, status) == 2 && strcmp(name, "NAME") &&
		    strstr(row, " v") && strncmp(row, "GOMAN_", 6)) {
			rows++;
			fn(name, status, ud);
		}
		l = e ? e + 1 : NULL;
	}
	return rows;
}

static void count_row(const char *name, const char *status, void *ud)
{
	(void)name;
	if (!strcmp(status, "Ready"))
		(*(int *)ud)++;
}

int goman_install_count_ready(const char *out)
{
	int ready = 0;
	return node_rows(out, count_row, &ready) ? ready : -1;
}

struct ready_q {
	const char *name;
	bool ready;
};

static void find_row(const char *name, const char *status, void *ud)
{
	struct ready_q *q = ud;
	if (!strcmp(name, q->name) && !strcmp(status, "Ready"))
		q->ready = true;
}

static void add_row_not_ready(const char *name, const char *status, void *ud)
{
	cJSON *arr = ud;
	const cJSON *e;
	if (!strcmp(status, "Ready"))
		return;
	cJSON_ArrayForEach (e, arr)
		if (!strcmp(e->valuestring, name))
			return;
	cJSON_AddItemToArray(arr, cJSON_CreateString(name));
}

bool goman_install_node_ready(const char *out, const char *name)
{
	struct ready_q q = {name ? name : "", false};
	node_rows(out, find_row, &q);
	return q.ready;
}

/* ---- script arguments ------------------------------------------------------------------- */

/* ---- node names, labels, taints, releases --------------------------------------------- */

static bool alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

static bool lower_alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

const char *goman_install_label_why(const char *k, const char *v)
{
	if (!k || !v)
		return "is missing";
	const char *why = goman_k8s_label_key_why(k, strlen(k));
	if (why)
		return why;
	if (!goman_k8s_label_value_ok(v, strlen(v)))
		return "has a value that is not empty or 1-63 of A-Z a-z 0-9 - _ . starting and "
		       "ending alphanumeric";
	return NULL;
}

const char *goman_install_taint_why(const char *t)
{
	if (!t)
		return "is missing";
	const char *colon = strrchr(t, ':');
	if (!colon)
		return "must be key=value:Effect or key:Effect";
	const char *eff = colon + 1;
	if (strcmp(eff, "NoSchedule") && strcmp(eff, "PreferNoSchedule") &&
	    strcmp(eff, "NoExecute"))
		return "has an Effect that is not NoSchedule, PreferNoSchedule or NoExecute";
	const char *eq = memchr(t, '=', (size_t)(colon - t));
	size_t kn = (size_t)((eq ? eq : colon) - t);
	if (goman_k8s_key_why(t, kn))
		return "has a key that is not [prefix/]name as a label key";
	if (eq && !goman_k8s_label_value_ok(eq + 1, (size_t)(colon - eq - 1)))
		return "has a value that is not empty or a label value (1-63 of A-Z a-z 0-9 - _ .)";
	return NULL;
}

bool goman_install_node_name_ok(const char *name)
{
	return name && goman_k8s_dns_subdomain_ok(name, strlen(name));
}

static const char *digits(const char *s)
{
	const char *p = s;
	while (*p >= '0' && *p <= '9' && p - s < 9)
		p++;
	return p > s && !(*p >= '0' && *p <= '9') ? p : NULL;
}

bool goman_install_version_ok(const char *v)
{
	const char *p;
	if (!v || v[0] != 'v' || !(p = digits(v + 1)) || *p != '.' || !(p = digits(p + 1)) ||
	    *p != '.' || !(p = digits(p + 1)))
		return false;
	if (*p == '-') { /* a pre-release: -rc1 */
		const char *q = ++p;
		while (alnum(*p) || *p == '.')
			p++;
		if (p == q || p - q > 32)
			return false;
	}
	return !strncmp(p, "+k3s", 4) && (p = digits(p + 4)) && !*p;
}

bool goman_install_channel_ok(const char *c)
{
	size_t n = c ? strlen(c) : 0;
	if (n < 1 || n > 64 || !lower_alnum(c[0]))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!lower_alnum(c[i]) && c[i] != '.' && c[i] != '-')
			return false;
	return true;
}

/* Why the record's "labels" and "taints" cannot reach K3s, or NULL (then every key and
 * value is a string of the Kubernetes rules: shell- and unit-safe as they are). */
static const char *labels_taints_why(const cJSON *rec, char *buf, size_t len)
{
	const cJSON *l = cJSON_GetObjectItemCaseSensitive(rec, "labels");
	const cJSON *t = cJSON_GetObjectItemCaseSensitive(rec, "taints");
	const cJSON *e;
	if (l && !cJSON_IsNull(l)) {
		if (!cJSON_IsObject(l))
			return "\"labels\" must be an object of strings";
		cJSON_ArrayForEach (e, l) {
			if (!cJSON_IsString(e))
				return "\"labels\" must be an object of strings";
			const char *why = goman_install_label_why(e->string, e->valuestring);
			if (why) {
				/* the key is shown only when it is well-formed (it reaches a log line) */
				if (goman_k8s_key_why(e->string, strlen(e->string)))
					snprintf(buf, len, "a label key %s", why);
				else
					snprintf(buf, len, "label '%.80s' %s", e->string, why);
				return buf;
			}
		}
	}
	if (t && !cJSON_IsNull(t)) {
		if (!cJSON_IsArray(t))
			return "\"taints\" must be an array of \"key=value:Effect\" strings";
		cJSON_ArrayForEach (e, t) {
			if (!cJSON_IsString(e))
				return "\"taints\" must be an array of \"key=value:Effect\" "
				       "strings";
			const char *why = goman_install_taint_why(e->valuestring);
			if (why) {
				snprintf(buf, len, "a taint %s", why);
				return buf;
			}
		}
	}
	return NULL;
}

/* ---- records ------------------------------------------------------------------------ */

static void add_time_at(cJSON *rec, const char *key, int64_t epoch_ms)
{
	char ts[40];
	cJSON *t = cJSON_GetObjectItemCaseSensitive(rec, "t");
	if (!cJSON_IsObject(t)) {
		cJSON_DeleteItemFromObjectCaseSensitive(rec, "t");
		t = cJSON_AddObjectToObject(rec, "t");
	}
	if (!t)
		return;
	cJSON_DeleteItemFromObjectCaseSensitive(t, key);
	cJSON_AddStringToObject(t, key, goman_rfc3339(epoch_ms, ts, sizeof(ts)));
}

static void add_time(cJSON *rec, const char *key)
{
	add_time_at(rec, key, goman_now_ms());
}

static void set_bool(cJSON *o, const char *k, bool v)
{
	cJSON_DeleteItemFromObjectCaseSensitive(o, k);
	cJSON_AddBoolToObject(o, k, v);
}

static const char *mode_name(const struct gm_install *in, const struct gm_inode *n)
{
	if (n->kind == GM_K_ACTION)
		return gm_inst_action_names[in->o.action];
	if (n->kind == GM_K_FIRST)
		return in->cluster_init ? "cluster-init" : "first-server";
	return n->kind == GM_K_JOIN ? "join-server" : "agent";
}

/* The finished record: the input plus "install" (and the error under it on failure). */
static cJSON *finish_record(struct gm_install *in, struct gm_inode *n, const struct goman_err *e,
			    const cJSON *result)
{
	cJSON *rec;
	bool ok = !e || e->rc == GOMAN_OK;
	if (ok) {
		rec = cJSON_Duplicate(n->rec, 1);
		if (rec) {
			cJSON_DeleteItemFromObjectCaseSensitive(rec, "install");
			cJSON *st = cJSON_AddObjectToObject(rec, "install");
			if (st)
				cJSON_AddTrueToObject(st, "ok");
		}
	} else {
		rec = goman_jsonl_error_record(n->rec, "install", e, 0);
	}
	if (!rec)
		return NULL;
	cJSON *st = cJSON_GetObjectItemCaseSensitive(rec, "install");
	int64_t now = goman_mono_ms();
	if (st) {
		int64_t start = n->t_start ? n->t_start : now;
		cJSON_AddNumberToObject(st, "ms", (double)(now - start));
		cJSON_AddNumberToObject(st, "wait_ms", (double)(start - n->t_arrive));
		cJSON_AddStringToObject(st, "via", via_names[in->o.via]);
		cJSON_AddStringToObject(st, "mode", mode_name(in, n));
		const cJSON *v = cJSON_GetObjectItemCaseSensitive(result, "version");
		if (cJSON_IsString(v))
			cJSON_AddStringToObject(st, "k3s_version", v->valuestring);
		else if (in->o.k3s_version)
			cJSON_AddStringToObject(st, "k3s_version", in->o.k3s_version);
		const cJSON *sk = cJSON_GetObjectItemCaseSensitive(result, "skipped");
		cJSON_AddBoolToObject(st, "skipped", cJSON_IsTrue(sk));
		const cJSON *rok = cJSON_GetObjectItemCaseSensitive(result, "ok");
		cJSON_AddBoolToObject(st, "verified", cJSON_IsTrue(rok) && ok);
		if (n->progress >= 0)
			cJSON_AddNumberToObject(st, "progress", n->progress);
		if (n->kind != GM_K_FIRST && gm_inst_server_url(in, n)[0])
			cJSON_AddStringToObject(st, "server_url", gm_inst_server_url(in, n));
		if (in->ops->annotate)
			in->ops->annotate(n, st);
		const cJSON *kc = cJSON_GetObjectItemCaseSensitive(result, "kubeconfig");
		if (cJSON_IsString(kc))
			cJSON_AddStringToObject(st, "kubeconfig", kc->valuestring);
		const cJSON *cs = cJSON_GetObjectItemCaseSensitive(result, "checksum");
		if (cJSON_IsString(cs))
			cJSON_AddStringToObject(st, "checksum", cs->valuestring);
		const cJSON *lt = cJSON_GetObjectItemCaseSensitive(result, "log_tail");
		if (!ok && cJSON_IsString(lt))
			cJSON_AddStringToObject(st, "log_tail", lt->valuestring);
	}
	/* when this node's install began (sent / started), next to upstream's t.running: a
	 * pipeline's records show that installing overlapped provisioning */
	if (n->t_start_wall)
		add_time_at(rec, "install_start", n->t_start_wall);
	add_time(rec, "installed");
	if (ok) {
		const cJSON *prev = cJSON_GetObjectItemCaseSensitive(rec, "ok");
		set_bool(rec, "ok", !cJSON_IsFalse(prev));
	}
	return rec;
}

/* The record of an action: the input plus "drain":{ok,action,ms} (the error under it). */
static cJSON *action_record(struct gm_install *in, struct gm_inode *n, const struct goman_err *e)
{
	cJSON *rec;
	bool ok = !e || e->rc == GOMAN_OK;
	if (ok) {
		rec = cJSON_Duplicate(n->rec, 1);
		if (rec) {
			cJSON_DeleteItemFromObjectCaseSensitive(rec, "drain");
			cJSON *st = cJSON_AddObjectToObject(rec, "drain");
			if (st)
				cJSON_AddTrueToObject(st, "ok");
			const cJSON *prev = cJSON_GetObjectItemCaseSensitive(rec, "ok");
			set_bool(rec, "ok", !cJSON_IsFalse(prev));
		}
	} else {
		rec = goman_jsonl_error_record(n->rec, "drain", e, 0);
	}
	cJSON *st = rec ? cJSON_GetObjectItemCaseSensitive(rec, "drain") : NULL;
	if (st) {
		int64_t now = goman_mono_ms();
		cJSON_AddStringToObject(st, "action", gm_inst_action_names[in->o.action]);
		cJSON_AddNumberToObject(st, "ms", (double)(now - (n->t_start ? n->t_start : now)));
		cJSON_AddStringToObject(st, "via", via_names[in->o.via]);
		if (in->ops->annotate)
			in->ops->annotate(n, st);
	}
	return rec;
}

/* kubectl's last line (its error) for the message of a failed action */
static void action_error(struct goman_err *e, const struct gm_install *in, const struct gm_inode *n,
			 int exit_code)
{
	char last[200] = "";
	for (const char *l = n->out.p; l && *l;) {
		const char *nl = strchr(l, '\n');
		size_t len = nl ? (size_t)(nl - l) : strlen(l);
		if (len) {
			if (len >= sizeof(last))
				len = sizeof(last) - 1;
			memcpy(last, l, len);
			last[len] = '\0';
		}
		l = nl ? nl + 1 : NULL;
	}
	for (char *p = last; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = ' ';
	static const char *const codes[] = {"", "CordonFailed", "DrainFailed", "UncordonFailed",
					    "DeleteFailed"};
	goman_err_set(e, GOMAN_ECHILD, GOMAN_CLASS_START, codes[in->o.action],
		      "kubectl %s %s exited with %d%s%s", gm_inst_action_names[in->o.action],
		      n->name, exit_code, last[0] ? ": " : "", last);
	e->retryable = false;
}

static void emit(struct gm_install *in, const cJSON *rec)
{
	if (rec && in->o.emit)
		in->o.emit(rec, in->o.ud);
}

static void maybe_finish(struct gm_install *in);
static void node_done(struct gm_install *in, struct gm_inode *n, const struct goman_err *e,
		      int exit_code);
static void dispatch(struct gm_install *in, struct gm_inode *n);
static void release_waiting(struct gm_install *in);

/* "not_ready": every node installed by this run that the table does not show Ready (absent
 * from it too), then the table's other rows that are not Ready, each name once. */
static void add_not_ready(struct gm_install *in, cJSON *ev, const char *out)
{
	cJSON *arr = cJSON_AddArrayToObject(ev, "not_ready");
	if (!arr)
		return;
	for (struct gm_inode *m = in->nodes; m; m = m->next)
		if (m->ok && !goman_install_node_ready(out, m->name))
			cJSON_AddItemToArray(arr, cJSON_CreateString(m->name));
	node_rows(out, add_row_not_ready, arr);
}

/* "a, b, c" of a not_ready array (malloc'd), NULL when empty */
static char *not_ready_text(const cJSON *arr)
{
	struct gm_buf b = {0};
	const cJSON *e;
	cJSON_ArrayForEach (e, arr) {
		if (b.len)
			gm_buf_adds(&b, ", ");
		gm_buf_adds(&b, e->valuestring);
	}
	return b.p;
}

/* The verification ended: the `cluster` event with the Ready count and the names of the
 * nodes that are not Ready; without a node table the cluster is "not verified", which is
 * not the same as "not Ready". */
static void verify_done(struct gm_install *in, struct gm_inode *n, const struct goman_err *err)
{
	int ready = err->rc == GOMAN_OK && n->out.p ? goman_install_count_ready(n->out.p) : -1;
	cJSON *ev = cJSON_CreateObject();
	char *names = NULL;
	if (ev) {
		cJSON_AddStringToObject(ev, "cluster", in->cluster);
		cJSON_AddStringToObject(ev, "phase", "ready");
		cJSON_AddNumberToObject(ev, "nodes_ready", ready < 0 ? 0 : ready);
		if (ready >= 0) {
			add_not_ready(in, ev, n->out.p);
			names = not_ready_text(cJSON_GetObjectItemCaseSensitive(ev, "not_ready"));
		}
		cJSON_AddNumberToObject(ev, "nodes", in->nodes_total);
		cJSON_AddNumberToObject(ev, "nodes_ok", in->nodes_ok);
		cJSON_AddBoolToObject(ev, "verified", ready >= 0);
		cJSON_AddStringToObject(ev, "via", via_names[in->o.via]);
		cJSON_AddNumberToObject(ev, "ms", (double)(goman_mono_ms() - in->t0));
		goman_event("cluster", ev);
	}
	if (ready < 0)
		goman_log(GOMAN_LOG_INFO, "INSTALL", "cluster %s: not verified (%s)", in->cluster,
			  err->rc ? err->message : "no node table in the output");
	else
		goman_log(GOMAN_LOG_INFO, "INSTALL", "cluster %s ready: %d of %d nodes Ready%s%s",
			  in->cluster, ready, in->nodes_ok, names ? "; not Ready: " : "",
			  names ? names : "");
	free(names);
	in->verified_done = true;
	maybe_finish(in);
}

/* Error for a node whose script failed: class/code from GOMAN_RESULT when present. */
static void script_error(struct goman_err *e, const cJSON *result, int exit_code)
{
	const cJSON *cls = cJSON_GetObjectItemCaseSensitive(result, "class");
	const cJSON *code = cJSON_GetObjectItemCaseSensitive(result, "code");
	const cJSON *msg = cJSON_GetObjectItemCaseSensitive(result, "message");
	enum goman_class c =
		cJSON_IsString(cls) ? goman_class_from_name(cls->valuestring) : GOMAN_CLASS_START;
	if (c == GOMAN_CLASS_NONE)
		c = GOMAN_CLASS_START;
	goman_err_set(e, GOMAN_ECHILD, c, cJSON_IsString(code) ? code->valuestring : "ScriptFailed",
		      "%s", cJSON_IsString(msg) ? msg->valuestring : "install script failed");
	if (!cJSON_IsString(msg))
		snprintf(e->message, sizeof(e->message), "install script exited with %d",
			 exit_code);
	e->retryable = false;
}

static void node_done(struct gm_install *in, struct gm_inode *n, const struct goman_err *e,
		      int exit_code)
{
	if (n->state == GM_N_DONE)
		return;
	if (in->ops->slots && n->state == GM_N_RUNNING)
		in->running--;
	int progress = -1;
	cJSON *result = n->out.p ? goman_install_parse_output(n->out.p, &progress) : NULL;
	if (progress >= 0)
		n->progress = progress;
	struct goman_err err = GOMAN_ERR_INIT;
	goman_err_clear(&err);
	if (e && e->rc != GOMAN_OK)
		err = *e;
	else if (exit_code != 0)
		script_error(&err, result, exit_code);
	n->state = GM_N_DONE;
	if (n->kind == GM_K_VERIFY) {
		cJSON_Delete(result);
		verify_done(in, n, &err);
		return;
	}
	cJSON *rec;
	if (n->kind == GM_K_ACTION) {
		if (e && e->rc != GOMAN_OK)
			err = *e;
		else if (exit_code != 0)
			action_error(&err, in, n, exit_code);
		else
			goman_err_clear(&err);
		rec = action_record(in, n, err.rc ? &err : NULL);
	} else {
		if (err.rc == GOMAN_OK && result &&
		    !cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(result, "ok")))
			script_error(&err, result, exit_code ? exit_code : 1);
		rec = finish_record(in, n, err.rc ? &err : NULL, result);
	}
	if (err.rc == GOMAN_OK) {
		in->nodes_ok++;
		n->ok = true;
		if (n == in->first)
			in->first_ok = true;
		if (n->kind == GM_K_ACTION)
			goman_log(GOMAN_LOG_INFO, "INSTALL", "%s: %s done", n->name,
				  mode_name(in, n));
		else
			goman_log(GOMAN_LOG_INFO, "INSTALL", "%s: installed (%s)%s", n->name,
				  mode_name(in, n), result ? "" : ", not verified");
	} else {
		goman_log(GOMAN_LOG_WARN, "INSTALL", "%s: failed: %s%s%s", n->name,
			  err.code[0] ? err.code : goman_strerror(err.rc),
			  err.message[0] ? ": " : "", err.message);
	}
	goman_outcome_add(&in->oc, err.rc ? &err : NULL);
	in->nodes_done++;
	emit(in, rec);
	cJSON_Delete(rec);
	cJSON_Delete(result);
	gm_buf_free(&n->out);
	if (n == in->first && in->o.wait_server)
		release_waiting(in);
	/* a proc slot is free: start the next ready node */
	while (in->ready_head && in->running < in->o.concurrency) {
		struct gm_inode *r = in->ready_head;
		in->ready_head = r->qnext;
		if (!in->ready_head)
			in->ready_tail = &in->ready_head;
		r->qnext = NULL;
		dispatch(in, r);
	}
	maybe_finish(in);
}

/* ---- scheduling ---------------------------------------------------------------------- */

static void fail_node(struct gm_install *in, struct gm_inode *n, enum goman_class cls,
		      const char *code, const char *msg)
{
	struct goman_err e = GOMAN_ERR_INIT;
	goman_err_set(&e, GOMAN_EINVAL, cls, code, "%s", msg);
	node_done(in, n, &e, 0);
}

static void decide_cluster_init(struct gm_install *in)
{
	if (in->cluster_init_decided)
		return;
	in->cluster_init_decided = true;
	if (in->o.servers > 0)
		in->cluster_init = in->o.servers > 1;
	else
		in->cluster_init = in->servers_seen > 1 || !in->input_done;
}

static void dispatch(struct gm_install *in, struct gm_inode *n)
{
	if (n->state != GM_N_WAIT && n->state != GM_N_READY)
		return;
	if (n->kind == GM_K_FIRST)
		decide_cluster_init(in);
	if (in->ops->slots && in->running >= in->o.concurrency) {
		if (n->state != GM_N_READY) {
			n->state = GM_N_READY;
			*in->ready_tail = n;
			in->ready_tail = &n->qnext;
		}
		return;
	}
	n->state = GM_N_RUNNING;
	n->t_start = goman_mono_ms();
	n->t_start_wall = goman_now_ms();
	if (n->kind == GM_K_ACTION)
		goman_log(GOMAN_LOG_INFO, "INSTALL", "%s: %s (kubectl on the first server)",
			  n->name, mode_name(in, n));
	else if (n->kind != GM_K_VERIFY)
		goman_log(GOMAN_LOG_INFO, "INSTALL", "%s: starting (%s%s%s)", n->name,
			  mode_name(in, n), n->kind == GM_K_FIRST ? "" : ", server ",
			  n->kind == GM_K_FIRST ? "" : gm_inst_server_url(in, n));
	if (in->ops->slots)
		in->running++;
	struct goman_err e = GOMAN_ERR_INIT;
	goman_err_clear(&e);
	if (in->ops->start(in, n, &e) != 0)
		node_done(in, n, &e, 0);
}

/* Can this (non-first) node start now? */
static bool can_start(const struct gm_install *in, const struct gm_inode *n)
{
	if (n->kind == GM_K_FIRST)
		return true;
	if (!gm_inst_server_url(in, n)[0])
		return false;
	if (in->o.wait_server && in->first)
		return in->first->state == GM_N_DONE;
	if (in->o.wait_server && !in->first && !in->o.server_url)
		return false;
	return true;
}

static void release_waiting(struct gm_install *in)
{
	bool first_failed =
		in->o.wait_server && in->first && in->first->state == GM_N_DONE && !in->first_ok;
	for (struct gm_inode *n = in->nodes; n; n = n->next) {
		if (n->state != GM_N_WAIT || n->kind == GM_K_FIRST)
			continue;
		if (first_failed) {
			fail_node(in, n, GOMAN_CLASS_START, "ServerFailed",
				  "the first server failed to install (--wait-server)");
			continue;
		}
		if (can_start(in, n))
			dispatch(in, n);
	}
}

static void maybe_finish(struct gm_install *in)
{
	if (in->finished || !in->input_done || in->nodes_done < in->nodes_total)
		return;
	if (!in->verified_done && in->o.verify && in->first && in->nodes_ok > 0 && !in->verify &&
	    in->first_ok) {
		struct gm_inode *v = calloc(1, sizeof(*v));
		if (v) {
			*v = *in->first;
			v->next = NULL;
			v->qnext = NULL;
			v->rec = NULL;
			memset(&v->out, 0, sizeof(v->out));
			v->kind = GM_K_VERIFY;
			v->state = GM_N_WAIT;
			v->tp = NULL;
			v->ok = false;
			snprintf(v->name, sizeof(v->name), "%.100s (verify)", in->first->name);
			v->t_arrive = goman_mono_ms();
			in->verify = v;
			goman_log(GOMAN_LOG_INFO, "INSTALL", "verifying cluster %s from %s",
				  in->cluster, in->first->name);
			dispatch(in, v);
			return;
		}
	}
	if (in->verify && !in->verified_done)
		return;
	in->finished = true;
}

static void first_fire(void *ud)
{
	struct gm_install *in = ud;
	in->first_timer = 0;
	dispatch(in, in->first);
}

static const char *rec_str(const cJSON *rec, const char *k)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(rec, k);
	return cJSON_IsString(v) ? v->valuestring : NULL;
}

static int bad_record(struct gm_install *in, cJSON *rec, long line, const char *code,
		      const char *fmt, const char *arg)
{
	struct goman_err e = GOMAN_ERR_INIT;
	goman_err_set(&e, GOMAN_EINVAL, GOMAN_CLASS_BAD_INPUT, code, fmt, arg);
	cJSON *out = goman_jsonl_error_record(rec, "install", &e, line);
	goman_log(GOMAN_LOG_WARN, "INSTALL", "line %ld: %s", line, e.message);
	/* a record that is valid JSON but not a node is an input error of the contract */
	in->oc.bad_lines++;
	emit(in, out);
	cJSON_Delete(out);
	cJSON_Delete(rec);
	return 0;
}

/* Names and IDs reach log lines and SSM text: printable, without control characters. */
static bool printable(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return false;
	return true;
}

static bool valid_cluster(const char *s)
{
	size_t n = strlen(s);
	if (n < 1 || n > 40 || s[0] < 'a' || s[0] > 'z')
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-'))
			return false;
	return true;
}

/* First sight of the cluster: the token (SSM: make sure it exists; ssh/local: its value). */
static void cluster_known(struct gm_install *in)
{
	if (in->o.action != GOMAN_ACTION_INSTALL)
		return; /* kubectl on a running server: no token, no air-gap */
	if (!in->token_param[0])
		snprintf(in->token_param, sizeof(in->token_param), "/goman/%s/token", in->cluster);
	snprintf(in->airgap_param, sizeof(in->airgap_param), "/goman/%s/airgap", in->cluster);
	if (in->o.via == GOMAN_VIA_SSM && gm_inst_airgap(in)) {
		/* before any SendCommand: the nodes read the URLs from here */
		char *line = gm_inst_airgap_line(in);
		int rc = line ? goman_secret_put(in->o.aws, in->airgap_param, line,
						 "goman air-gap URLs (presigned)", &in->token_err)
			      : gm_err_oom(&in->token_err);
		if (line) {
			OPENSSL_cleanse(line, strlen(line));
			free(line);
		}
		if (rc != 0) {
			in->token_failed = true;
			goman_log(GOMAN_LOG_ERROR, "INSTALL", "air-gap URLs %s: %s",
				  in->airgap_param, in->token_err.message);
			return;
		}
	}
	if (in->token) /* given by the caller (ssh/local --token-file; unit tests) */
		return;
	if (!in->o.aws) {
		goman_err_set(&in->token_err, GOMAN_ECREDS, GOMAN_CLASS_CLIENT, "NoToken",
			      "no cluster token: give --token-file or an AWS endpoint for %s",
			      in->token_param);
		in->token_failed = true;
		return;
	}
	bool created = false;
	if (goman_token_ensure(in->o.aws, in->token_param, in->o.via != GOMAN_VIA_SSM, &in->token,
			       &created, &in->token_err) != 0) {
		in->token_failed = true;
		goman_log(GOMAN_LOG_ERROR, "INSTALL", "cluster token %s: %s", in->token_param,
			  in->token_err.message);
	}
}

/* An action runs where the first server is: its instance (ssm), its address (ssh), here. */
static void action_host(struct gm_install *in, struct gm_inode *n)
{
	snprintf(n->iid, sizeof(n->iid), "%s", in->server_iid);
	snprintf(n->host, sizeof(n->host), "%s", in->server_host);
}

static int add_action(struct gm_install *in, struct gm_inode *n, bool first_server)
{
	n->kind = GM_K_ACTION;
	bool was_known = in->server_known;
	if (!in->server_known && first_server &&
	    !cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(n->rec, "ok"))) {
		if (in->o.via == GOMAN_VIA_SSM && n->iid[0]) {
			snprintf(in->server_iid, sizeof(in->server_iid), "%s", n->iid);
			in->server_known = true;
		} else if (in->o.via == GOMAN_VIA_SSH && n->host[0] && goman_addr_ok(n->host)) {
			snprintf(in->server_host, sizeof(in->server_host), "%s", n->host);
			in->server_known = true;
		}
		if (in->server_known)
			goman_log(GOMAN_LOG_INFO, "INSTALL", "kubectl runs on %s (%s)", n->name,
				  in->server_iid[0] ? in->server_iid : in->server_host);
	}
	if (cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(n->rec, "ok"))) {
		fail_node(in, n, GOMAN_CLASS_CLIENT, "NotProvisioned",
			  "the input record failed upstream (\"ok\":false)");
		return 0;
	}
	if (!in->server_known)
		return 0; /* waits for the first server's record */
	/* in arrival order: those that waited for the server, then this one */
	for (struct gm_inode *w = was_known ? n : in->nodes; w; w = w->next)
		if (w->state == GM_N_WAIT && w->kind == GM_K_ACTION) {
			action_host(in, w);
			dispatch(in, w);
		}
	return 0;
}

/* Why a record is not a node this run can take (buf holds the text), or NULL. */
static const char *record_why(const struct gm_install *in, const cJSON *rec, char *buf, size_t len)
{
	const char *cluster = rec_str(rec, "cluster");
	const char *role = rec_str(rec, "role");
	const char *name = rec_str(rec, "name");
	const cJSON *idx = cJSON_GetObjectItemCaseSensitive(rec, "index");
	if (!in->cluster[0] && !cluster)
		return "record has no \"cluster\"";
	if (cluster && !valid_cluster(cluster))
		return snprintf(buf, len, "bad cluster name '%s'", cluster), buf;
	if (cluster && in->cluster[0] && strcmp(cluster, in->cluster))
		return snprintf(buf, len, "record of another cluster '%s'", cluster), buf;
	if (!role || (strcmp(role, "server") && strcmp(role, "agent")))
		return "\"role\" must be server or agent";
	if (!cJSON_IsNumber(idx))
		return "record has no \"index\"";
	/* compared before any cast: a double out of int's range has no defined conversion */
	if (!(idx->valuedouble >= 0 && idx->valuedouble <= GM_INST_MAX_INDEX) ||
	    idx->valuedouble != (double)(int)idx->valuedouble)
		return "\"index\" must be a whole number from 0 to 99999";
	const char *iid = rec_str(rec, "instance_id");
	const char *pip = rec_str(rec, "private_ip");
	const char *pub_ip = rec_str(rec, "public_ip");
	if ((name && !printable(name)) || (iid && !printable(iid)))
		return "\"name\" and \"instance_id\" may not hold control characters";
	/* the name is the Kubernetes node name (--node-name; what kubectl drain names) */
	if (name && !goman_install_node_name_ok(name))
		return "\"name\" is not a Kubernetes node name (lower case a-z 0-9 - ., at "
		       "most 253)";
	bool acting = in->o.action != GOMAN_ACTION_INSTALL;
	const char *lt = acting ? NULL : labels_taints_why(rec, buf, len);
	if (lt)
		return lt;
	/* an address reaches the node's unit, an ssh host and shell text: IP or DNS name only */
	if (pip && !goman_addr_ok(pip))
		return "\"private_ip\" is not an IP address or host name (goman(7) ADDRESSES)";
	if (pub_ip && !goman_addr_ok(pub_ip))
		return "\"public_ip\" is not an IP address or host name (goman(7) ADDRESSES)";
	const cJSON *su = cJSON_GetObjectItemCaseSensitive(rec, "server_url");
	if (su && !cJSON_IsNull(su) &&
	    (!cJSON_IsString(su) || !goman_server_url_ok(su->valuestring) ||
	     strlen(su->valuestring) >= sizeof(((struct gm_inode *)0)->server_url)))
		return "\"server_url\" is not https://ADDR:PORT (goman(7) ADDRESSES)";
	if (!acting && in->o.via == GOMAN_VIA_SSM && !iid &&
	    !cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(rec, "ok")))
		return "record has no \"instance_id\"";
	if (!acting && in->o.via == GOMAN_VIA_SSH && !(in->o.ssh_public_ip ? pub_ip : pip) &&
	    !cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(rec, "ok")))
		return snprintf(buf, len, "record has no \"%s\"",
				in->o.ssh_public_ip ? "public_ip" : "private_ip"),
		       buf;
	return NULL;
}

int goman_install_add(struct goman_install *pub, cJSON *rec, long line, struct goman_err *err)
{
	struct gm_install *in = (struct gm_install *)pub;
	if (!in || !rec) {
		cJSON_Delete(rec);
		return goman_err_set(err, GOMAN_EINVAL, GOMAN_CLASS_BAD_INPUT, "BadInput",
				     "no record");
	}
	char why[300];
	const char *bad = record_why(in, rec, why, sizeof(why));
	if (bad)
		return bad_record(in, rec, line, "BadInput", "%s", bad);
	const char *cluster = rec_str(rec, "cluster");
	const char *role = rec_str(rec, "role");
	const char *name = rec_str(rec, "name");
	int index = (int)cJSON_GetObjectItemCaseSensitive(rec, "index")->valuedouble;
	const char *iid = rec_str(rec, "instance_id");
	const char *pip = rec_str(rec, "private_ip");
	const char *pub_ip = rec_str(rec, "public_ip");
	bool acting = in->o.action != GOMAN_ACTION_INSTALL;
	if (!in->cluster[0]) {
		snprintf(in->cluster, sizeof(in->cluster), "%s", cluster);
		cluster_known(in);
	}
	struct gm_inode *n = calloc(1, sizeof(*n));
	if (!n) {
		cJSON_Delete(rec);
		return gm_err_oom(err);
	}
	n->in = in;
	n->rec = rec;
	n->line = line;
	n->progress = -1;
	n->t_arrive = goman_mono_ms();
	snprintf(n->role, sizeof(n->role), "%s", role);
	if (name)
		snprintf(n->name, sizeof(n->name), "%s", name);
	else
		snprintf(n->name, sizeof(n->name), "%s-%s-%d", in->cluster, role, index);
	snprintf(n->iid, sizeof(n->iid), "%s", iid ? iid : "");
	snprintf(n->ip, sizeof(n->ip), "%s", pip ? pip : "");
	const char *surl = rec_str(rec, "server_url");
	snprintf(n->server_url, sizeof(n->server_url), "%s", surl ? surl : "");
	snprintf(n->host, sizeof(n->host), "%s",
		 (in->o.ssh_public_ip ? pub_ip : pip) ? (in->o.ssh_public_ip ? pub_ip : pip) : "");
	*in->tail = n;
	in->tail = &n->next;
	in->nodes_total++;
	bool is_server = !strcmp(role, "server");
	if (is_server)
		in->servers_seen++;
	if (acting)
		return add_action(in, n, is_server && index == 0);
	if (cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(rec, "ok"))) {
		/* upstream failed this node: it is passed on failed, not installed */
		n->kind = is_server ? GM_K_JOIN : GM_K_AGENT;
		fail_node(in, n, GOMAN_CLASS_CLIENT, "NotProvisioned",
			  "the input record failed upstream (\"ok\":false)");
		return 0;
	}
	if (in->token_failed) {
		n->kind = is_server ? GM_K_JOIN : GM_K_AGENT;
		node_done(in, n, &in->token_err, 0);
		return 0;
	}
	if (is_server && index == 0 && !in->o.server_url) {
		if (in->first) {
			n->kind = GM_K_JOIN;
			fail_node(in, n, GOMAN_CLASS_BAD_INPUT, "BadInput",
				  "a second server with index 0");
			return 0;
		}
		n->kind = GM_K_FIRST;
		in->first = n;
		if (!n->ip[0] && in->o.via == GOMAN_VIA_LOCAL)
			snprintf(n->ip, sizeof(n->ip), "127.0.0.1");
		if (n->ip[0] &&
		    goman_server_url(in->server_url, sizeof(in->server_url), n->ip, 6443) != 0)
			in->server_url[0] = '\0';
		/* start from the loop, after the caller read all input that is already there:
		 * the --cluster-init decision then sees every server record (and EOF) that came
		 * with it, at no cost in time */
		in->first_timer = goman_http_timer(in->o.http, 0, first_fire, in);
		if (in->first_timer <= 0)
			dispatch(in, n);
		if (in->server_url[0])
			release_waiting(in);
		return 0;
	}
	n->kind = is_server ? GM_K_JOIN : GM_K_AGENT;
	if (can_start(in, n))
		dispatch(in, n);
	return 0;
}

void goman_install_input_done(struct goman_install *pub)
{
	struct gm_install *in = (struct gm_install *)pub;
	if (!in || in->input_done)
		return;
	in->input_done = true;
	for (struct gm_inode *n = in->nodes; n; n = n->next)
		if (n->state == GM_N_WAIT && n->kind == GM_K_ACTION && !in->server_known)
			fail_node(in, n, GOMAN_CLASS_CLIENT, "NoServer",
				  in->o.via == GOMAN_VIA_SSM
					  ? "no first server record with an instance_id (role "
					    "server, "
					    "index 0) and no --server-instance"
					  : "no first server record with an address (role server, "
					    "index 0) and no --server-address or --server-url");
		else if (n->state == GM_N_WAIT && n->kind != GM_K_FIRST && n->kind != GM_K_ACTION &&
			 !gm_inst_server_url(in, n)[0])
			fail_node(in, n, GOMAN_CLASS_CLIENT, "NoServer",
				  in->first ? "the first server has no private_ip"
					    : "no first server (role server, index 0) in the input "
					      "and no --server-url");
	if (in->ops->input_done)
		in->ops->input_done(in);
	maybe_finish(in);
}

bool goman_install_finished(const struct goman_install *pub)
{
	const struct gm_install *in = (const struct gm_install *)pub;
	return !in || in->finished;
}

const struct goman_outcome *goman_install_outcome(const struct goman_install *pub)
{
	return &((const struct gm_install *)pub)->oc;
}

/* ---- life cycle ---------------------------------------------------------------------- */

static char *dup_opt(const char *s)
{
	return s ? strdup(s) : NULL;
}

static char *read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	struct gm_buf b = {0};
	char chunk[8192];
	size_t n;
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		gm_buf_add(&b, chunk, n);
	int bad = ferror(f);
	fclose(f);
	if (bad) {
		gm_buf_free(&b);
		return NULL;
	}
	*len = b.len;
	return b.p ? b.p : strdup("");
}

/* Where kubectl runs when the options say it (else the first server's record will). */
static int action_server(struct gm_install *in, struct goman_err *err)
{
	const struct goman_install_opts *o = &in->o;
	in->o.verify = false;
	if (o->via == GOMAN_VIA_LOCAL) {
		in->server_known = true;
		return 0;
	}
	if (o->via == GOMAN_VIA_SSM && o->server_instance) {
		const char *p = o->server_instance;
		bool ok = !strncmp(p, "i-", 2) && strlen(p) < sizeof(in->server_iid) && p[2];
		for (p += 2; ok && *p; p++)
			ok = alnum(*p);
		if (!ok)
			return goman_err_set(err, GOMAN_EINVAL, GOMAN_CLASS_BAD_INPUT, "BadInput",
					     "%s",
					     "--server-instance must be an instance ID (i-...)");
		snprintf(in->server_iid, sizeof(in->server_iid), "%s", o->server_instance);
		in->server_known = true;
	}
	if (o->via == GOMAN_VIA_SSH) {
		char host[256] = "";
		if (o->server_address) {
			snprintf(host, sizeof(host), "%s", o->server_address);
		} else if (in->server_url[0]) {
			/* https://ADDR:PORT, checked: the address between them, without brackets */
			const char *a = in->server_url + 8, *c = strrchr(a, ':');
			if (*a == '[')
				a++, c--;
			snprintf(host, sizeof(host), "%.*s", (int)(c - a), a);
		}
		if (host[0] && !goman_addr_ok(host))
			return goman_err_set(err, GOMAN_EINVAL, GOMAN_CLASS_BAD_INPUT, "BadInput",
					     "%s",
					     "--server-address is not an IP address or host name "
					     "(goman(7) ADDRESSES)");
		if (host[0]) {
			snprintf(in->server_host, sizeof(in->server_host), "%s", host);
			in->server_known = true;
		}
	}
	return 0;
}

/* The option strings the installer copies at creation and frees at the end: one list, so a
 * field added here is both copied and freed. */
#define OWNED_MAX 24
static size_t owned_strings(struct goman_install_opts *o, const char **out[OWNED_MAX])
{
	const char **all[] = {&o->script_path,
			      &o->region,
			      &o->k3s_version,
			      &o->channel,
			      &o->mirror,
			      &o->tls_san,
			      &o->airgap_binary_url,
			      &o->airgap_checksum_url,
			      &o->server_url,
			      &o->prefix,
			      &o->ssh_bin,
			      &o->ssh_user,
			      &o->ssh_key,
			      &o->ssh_config,
			      &o->cluster,
			      &o->token_param,
			      &o->server_address,
			      &o->server_instance};
	_Static_assert(sizeof(all) / sizeof(all[0]) <= OWNED_MAX, "raise OWNED_MAX");
	memcpy(out, all, sizeof(all));
	return sizeof(all) / sizeof(all[0]);
}

struct goman_install *goman_install_new(const struct goman_install_opts *o, struct goman_err *err)
{
	if (!o || !o->http || (!o->script_path && o->action == GOMAN_ACTION_INSTALL) ||
	    (o->via == GOMAN_VIA_SSM && !o->aws) || o->action < GOMAN_ACTION_INSTALL ||
	    o->action > GOMAN_ACTION_DELETE)
		return goman_err_set(err, GOMAN_EINVAL, GOMAN_CLASS_BAD_INPUT, "BadInput",
				     "install: missing loop, script or AWS client"),
		       NULL;
	struct gm_install *in = calloc(1, sizeof(*in));
	if (!in)
		return gm_err_oom(err), NULL;
	in->o = *o;
	in->tail = &in->nodes;
	in->ready_tail = &in->ready_head;
	in->ops = o->via == GOMAN_VIA_SSM ? &gm_inst_ssm_ops : &gm_inst_proc_ops;
	in->done = node_done;
	in->t0 = goman_mono_ms();
	const char **strs[OWNED_MAX];
	for (size_t i = 0, n = owned_strings(&in->o, strs); i < n; i++)
		*strs[i] = dup_opt(*strs[i]);
	in->o.token = NULL;
	if (o->token && !(in->token = strdup(o->token)))
		goto oom;
	if (in->o.concurrency < 1)
		in->o.concurrency = 3;
	if (in->o.poll_ms <= 0)
		in->o.poll_ms = 2000;
	if (in->o.poll_floor_ms <= 0)
		in->o.poll_floor_ms = 10000;
	if (in->o.batch_window_ms < 0)
		in->o.batch_window_ms = 0;
	if (in->o.timeout_ms <= 0)
		in->o.timeout_ms = 600000;
	if (in->o.delivery_timeout_ms <= 0)
		in->o.delivery_timeout_ms = 300000;
	if (in->o.verify_wait_ms <= 0)
		in->o.verify_wait_ms = 60000;
	if (in->o.drain_timeout_ms <= 0)
		in->o.drain_timeout_ms = 300000;
	/* kubectl drain ends by its own --timeout: the command gets a minute more */
	if ((in->o.action == GOMAN_ACTION_DRAIN || in->o.action == GOMAN_ACTION_DELETE) &&
	    in->o.drain_timeout_ms < GM_INST_MAX_MS - 60000 &&
	    in->o.timeout_ms < in->o.drain_timeout_ms + 60000)
		in->o.timeout_ms = in->o.drain_timeout_ms + 60000;
	/* durations reach deadline sums (now + timeout + delivery + 2 polls): capped where
	 * goman_parse_duration_ms() caps flags, so no sum can overflow */
	int64_t *durs[] = {&in->o.timeout_ms,      &in->o.delivery_timeout_ms,
			   &in->o.poll_ms,         &in->o.poll_floor_ms,
			   &in->o.batch_window_ms, &in->o.verify_wait_ms,
			   &in->o.drain_timeout_ms};
	for (size_t i = 0; i < sizeof(durs) / sizeof(*durs); i++)
		if (*durs[i] > GM_INST_MAX_MS)
			*durs[i] = GM_INST_MAX_MS;
	if (in->o.server_url) {
		if (!goman_server_url_ok(in->o.server_url)) {
			goman_install_free((struct goman_install *)in);
			return goman_err_set(err, GOMAN_EINVAL, GOMAN_CLASS_BAD_INPUT, "BadInput",
					     "%s",
					     "--server-url must be https://ADDR:PORT (goman(7) "
					     "ADDRESSES)"),
			       NULL;
		}
		snprintf(in->server_url, sizeof(in->server_url), "%s", in->o.server_url);
	}
	if (in->o.token_param)
		snprintf(in->token_param, sizeof(in->token_param), "%s", in->o.token_param);
	if (in->o.cluster) {
		if (!valid_cluster(in->o.cluster)) {
			goman_install_free((struct goman_install *)in);
			return goman_err_set(err, GOMAN_EINVAL, GOMAN_CLASS_BAD_INPUT, "BadInput",
					     "bad cluster name '%s'", o->cluster),
			       NULL;
		}
		snprintf(in->cluster, sizeof(in->cluster), "%s", in->o.cluster);
		cluster_known(in);
	}
	if (in->o.action != GOMAN_ACTION_INSTALL && action_server(in, err) != 0) {
		goman_install_free((struct goman_install *)in);
		return NULL;
	}
	if (in->o.via != GOMAN_VIA_LOCAL && in->o.action == GOMAN_ACTION_INSTALL) {
		in->script = read_file(in->o.script_path, &in->script_len);
		if (!in->script) {
			goman_err_set(err, GOMAN_EIO, GOMAN_CLASS_BAD_INPUT, "NoScript",
				      "cannot read the install script %s", o->script_path);
			goman_install_free((struct goman_install *)in);
			return NULL;
		}
	}
	return (struct goman_install *)in;
oom:
	goman_install_free((struct goman_install *)in);
	return gm_err_oom(err), NULL;
}

static void node_free(struct gm_inode *n)
{
	free(n->tp);
	cJSON_Delete(n->rec);
	gm_buf_free(&n->out);
	free(n);
}

void goman_install_free(struct goman_install *pub)
{
	struct gm_install *in = (struct gm_install *)pub;
	if (!in)
		return;
	if (in->first_timer)
		goman_http_timer_cancel(in->o.http, in->first_timer);
	in->ops->free(in);
	for (struct gm_inode *n = in->nodes, *next; n; n = next) {
		next = n->next;
		node_free(n);
	}
	if (in->verify)
		node_free(in->verify);
	/* presigned URLs hold the session token */
	if (in->o.airgap_binary_url)
		OPENSSL_cleanse((char *)in->o.airgap_binary_url, strlen(in->o.airgap_binary_url));
	if (in->o.airgap_checksum_url)
		OPENSSL_cleanse((char *)in->o.airgap_checksum_url,
				strlen(in->o.airgap_checksum_url));
	const char **strs[OWNED_MAX];
	for (size_t i = 0, n = owned_strings(&in->o, strs); i < n; i++)
		free((char *)*strs[i]);
	if (in->token) {
		OPENSSL_cleanse(in->token, strlen(in->token));
		free(in->token);
	}
	free(in->script);
	free(in);
}
