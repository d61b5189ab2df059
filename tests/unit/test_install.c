/*
 * test_install.c - the goman-install scheduler against a scripted SSM (the transport's
 * AWS submit is replaced): batching of <= 50 IDs, servers and agents in separate commands,
 * InvocationDoesNotExist as pending, InvalidInstanceId retried for the named IDs only;
 * and the parsing of GOMAN_PROGRESS/GOMAN_RESULT and `kubectl get nodes`.
 */
#include "unit.h"
#include <stdint.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>
#include <stdio.h>
#include <string.h>
#include <cjson/cJSON.h>
#include "goman/aws.h"
#include "goman/clock.h"
#include "goman/http.h"
#include "goman/install.h"
#include "install_int.h"

struct pending {
	goman_aws_done_fn done;
	void *ud;
	struct goman_aws_result res;
};

static struct goman_http *loop;
static int sends, polls, emitted, ok_records;
static int send_sizes[16];
static int dne_left;           /* InvocationDoesNotExist answers still to give */
static const char *young_id;   /* SendCommand naming it fails InvalidInstanceId, once */
static int inprog_left;        /* InProgress answers still to give */
static struct gm_install *cur; /* the installer under test */
static int in_flight, max_in_flight, polls_before_send; /* polls sent while a SendCommand waited */
static const char *poll_answer; /* when set: the GetCommandInvocation reply */
static char last_code[64], last_msg[256], last_name[128]; /* of the last error record */
static int bad_records;
static char *send_texts[16];        /* the command text of each SendCommand (first 16) */
static char *send_ids[16];          /* its InstanceIds, as JSON */
static cJSON *drain_objs;           /* the "drain" object of every emitted record */
static int lists;                   /* ListCommandInvocations calls */
static int lists_held;              /* of a command without the first server, while it installed */
static int checks;                  /* DescribeInstanceInformation calls */
static bool check_ok;               /* answer it (else: unknown, as moto 5.2) */
static const char *unregistered_id; /* left out of check answers while unregistered_left > 0 */
static int unregistered_left;
static int64_t last_check_ms, min_check_gap_ms; /* spacing of the checks */
static bool list_ok;            /* answer ListCommandInvocations (else: unknown, as moto 5.2) */
static const char *list_output; /* its Details Output for each ended invocation (NULL: none) */
static cJSON *cmd_ids;          /* CommandId -> its InstanceIds */

static void fire(void *ud)
{
	struct pending *p = ud;
	in_flight--;
	p->done(&p->res, p->ud);
	cJSON_Delete(p->res.data);
	free(p);
}

static int fake_submit(struct goman_aws *a, const struct goman_aws_call *call,
		       goman_aws_done_fn done, void *ud, struct goman_err *err)
{
	(void)a;
	(void)err;
	struct pending *p = calloc(1, sizeof(*p));
	p->done = done;
	p->ud = ud;
	goman_err_clear(&p->res.err);
	if (++in_flight > max_in_flight)
		max_in_flight = in_flight;
	if (strcmp(call->action, "SendCommand") && cur && gm_inst_ssm_sends_waiting(cur))
		polls_before_send++;
	if (!strcmp(call->action, "SendCommand")) {
		const cJSON *ids = cJSON_GetObjectItem(call->json, "InstanceIds");
		char *s = cJSON_PrintUnformatted(ids);
		if (young_id && strstr(s, young_id)) {
			goman_err_set(&p->res.err, GOMAN_ESERVICE, GOMAN_CLASS_CLIENT,
				      "InvalidInstanceId", "Instances [[%s]] not in a valid state",
				      young_id);
			young_id = NULL;
		} else {
			if (sends < 16) {
				send_sizes[sends] = cJSON_GetArraySize(ids);
				const cJSON *cmds = cJSON_GetObjectItem(
					cJSON_GetObjectItem(call->json, "Parameters"), "commands");
				const cJSON *c0 = cJSON_GetArrayItem(cmds, 0);
				send_texts[sends] =
					strdup(cJSON_IsString(c0) ? c0->valuestring : "");
				send_ids[sends] = strdup(s);
			}

			sends++;
			char cid[32];
			snprintf(cid, sizeof(cid), "c-%d", sends);
			p->res.data = cJSON_CreateObject();
			cJSON_AddStringToObject(cJSON_AddObjectToObject(p->res.data, "Command"),
						"CommandId", cid);
			if (!cmd_ids)
				cmd_ids = cJSON_CreateObject();
			cJSON_AddItemToObject(cmd_ids, cid, cJSON_Duplicate(ids, 1));
		}
		free(s);
	} else if (!strcmp(call->action, "DescribeInstanceInformation")) {
		int64_t now = goman_mono_ms();
		if (checks++ > 0 &&
		    (min_check_gap_ms < 0 || now - last_check_ms < min_check_gap_ms))
			min_check_gap_ms = now - last_check_ms;
		last_check_ms = now;
		if (!check_ok) {
			goman_err_set(&p->res.err, GOMAN_ESERVICE, GOMAN_CLASS_CLIENT,
				      "UnknownOperationException", "no such action");
		} else {
			/* every instance asked is Online, but the unregistered one for a while */
			const cJSON *vals = cJSON_GetObjectItem(
				cJSON_GetArrayItem(cJSON_GetObjectItem(call->json, "Filters"), 0),
				"Values");
			const cJSON *id;
			cJSON *list = cJSON_CreateArray();
			bool hid = false;
			cJSON_ArrayForEach (id, vals) {
				if (unregistered_id && unregistered_left > 0 &&
				    !strcmp(id->valuestring, unregistered_id)) {
					hid = true;
					continue;
				}
				cJSON *o = cJSON_CreateObject();
				cJSON_AddStringToObject(o, "InstanceId", id->valuestring);
				cJSON_AddStringToObject(o, "PingStatus", "Online");
				cJSON_AddItemToArray(list, o);
			}
			unregistered_left -= hid;
			p->res.data = cJSON_CreateObject();
			cJSON_AddItemToObject(p->res.data, "InstanceInformationList", list);
		}
	} else if (!strcmp(call->action, "ListCommandInvocations")) {
		lists++;
		const cJSON *lc = cJSON_GetObjectItem(call->json, "CommandId");
		const cJSON *lids =
			cJSON_GetObjectItem(cmd_ids, cJSON_IsString(lc) ? lc->valuestring : "");
		char *ls = lids ? cJSON_PrintUnformatted(lids) : NULL;
		if (ls && !strstr(ls, "\"i-0\"") && cur && cur->first &&
		    cur->first->state != GM_N_DONE)
			lists_held++;
		free(ls);
		if (!list_ok) {
			goman_err_set(&p->res.err, GOMAN_ESERVICE, GOMAN_CLASS_CLIENT,
				      "UnknownOperationException", "no such action");
		} else {
			/* every instance of the command ended: one invocation each */
			const cJSON *cid = cJSON_GetObjectItem(call->json, "CommandId");
			const cJSON *ids = cJSON_GetObjectItem(cmd_ids, cid->valuestring), *id;
			cJSON *invs = cJSON_CreateArray();
			cJSON_ArrayForEach (id, ids) {
				cJSON *o = cJSON_CreateObject();
				cJSON_AddStringToObject(o, "InstanceId", id->valuestring);
				cJSON_AddStringToObject(o, "Status", "Success");
				if (list_output) {
					cJSON *pl = cJSON_AddArrayToObject(o, "CommandPlugins");
					cJSON *p0 = cJSON_CreateObject();
					cJSON_AddStringToObject(p0, "Output", list_output);
					cJSON_AddNumberToObject(p0, "ResponseCode", 0);
					cJSON_AddItemToArray(pl, p0);
				}
				cJSON_AddItemToArray(invs, o);
			}
			p->res.data = cJSON_CreateObject();
			cJSON_AddItemToObject(p->res.data, "CommandInvocations", invs);
		}
	} else {
		polls++;
		if (inprog_left > 0) {
			inprog_left--;
			p->res.data = cJSON_Parse("{\"Status\":\"InProgress\"}");
		} else if (dne_left > 0) {
			dne_left--;
			goman_err_set(&p->res.err, GOMAN_ESERVICE, GOMAN_CLASS_CLIENT,
				      "InvocationDoesNotExist", "not yet");
		} else if (poll_answer) {
			p->res.data = cJSON_Parse(poll_answer);
		} else {
			p->res.data = cJSON_Parse(
				"{\"Status\":\"Success\",\"ResponseCode\":0,"
				"\"StandardOutputContent\":\"GOMAN_PROGRESS 100 ready\\n"
				"GOMAN_RESULT {\\\"ok\\\":true,\\\"version\\\":\\\"v1\\\"}\\n\"}");
		}
	}
	goman_http_timer(loop, 1, fire, p);
	return 0;
}

static void on_emit(const cJSON *rec, void *ud)
{
	(void)ud;
	emitted++;
	const cJSON *dr = cJSON_GetObjectItem(rec, "drain");
	if (dr && drain_objs)
		cJSON_AddItemToArray(drain_objs, cJSON_Duplicate(dr, 1));
	const cJSON *st = cJSON_GetObjectItem(rec, "install");
	if (!st)
		st = dr;
	if (cJSON_IsTrue(cJSON_GetObjectItem(st, "ok")))
		ok_records++;
	const cJSON *e = cJSON_GetObjectItem(st, "error");
	if (e) {
		const cJSON *c = cJSON_GetObjectItem(e, "code"),
			    *m = cJSON_GetObjectItem(e, "message");
		const cJSON *nm = cJSON_GetObjectItem(rec, "name");
		snprintf(last_code, sizeof(last_code), "%s",
			 cJSON_IsString(c) ? c->valuestring : "");
		snprintf(last_msg, sizeof(last_msg), "%s", cJSON_IsString(m) ? m->valuestring : "");
		snprintf(last_name, sizeof(last_name), "%s",
			 cJSON_IsString(nm) ? nm->valuestring : "");
		bad_records += !strcmp(last_code, "BadInput");
	}
}

static struct goman_install *make(void)
{
	struct goman_err err = GOMAN_ERR_INIT;
	loop = goman_http_new(NULL, &err);
	gm_inst_aws_submit = fake_submit;
	sends = polls = emitted = ok_records = dne_left = inprog_left = 0;
	in_flight = max_in_flight = polls_before_send = 0;
	lists = lists_held = 0;
	list_ok = false;
	list_output = NULL;
	checks = 0;
	check_ok = false;
	unregistered_id = NULL;
	unregistered_left = 0;
	last_check_ms = 0;
	min_check_gap_ms = -1;
	cJSON_Delete(cmd_ids);
	cmd_ids = NULL;
	young_id = NULL;
	poll_answer = NULL;
	bad_records = 0;
	last_code[0] = last_msg[0] = last_name[0] = '\0';
	memset(send_sizes, 0, sizeof(send_sizes));
	for (int i = 0; i < 16; i++) {
		free(send_texts[i]);
		free(send_ids[i]);
		send_texts[i] = send_ids[i] = NULL;
	}
	cJSON_Delete(drain_objs);
	drain_objs = cJSON_CreateArray();
	struct goman_install_opts o = {.via = GOMAN_VIA_SSM,
				       .aws = (struct goman_aws *)1,
				       .http = loop,
				       .script_path = "scripts/k3s-install.sh",
				       .cluster = NULL,
				       .poll_ms = 5,
				       .poll_floor_ms = 5,
				       .batch_window_ms = 20,
				       .emit = on_emit,
				       .token = NULL};
	/* the token parameter is named up front, so no AWS call is made for it here */
	struct gm_install *in = (struct gm_install *)goman_install_new(&o, &err);
	assert_non_null(in);
	in->token = strdup("x"); /* skip the token call: cluster_known() sees a token */
	cur = in;
	return (struct goman_install *)in;
}

static void add(struct goman_install *in, const char *role, int idx, const char *iid)
{
	char buf[256];
	snprintf(buf, sizeof(buf),
		 "{\"cluster\":\"u\",\"role\":\"%s\",\"index\":%d,\"instance_id\":\"%s\","
		 "\"private_ip\":\"10.0.0.%d\"}",
		 role, idx, iid, idx + 1);
	struct goman_err err = GOMAN_ERR_INIT;
	assert_int_equal(goman_install_add(in, cJSON_Parse(buf), 1, &err), 0);
}

/* The first server i-0 and agents i-a0.. */
static void add_cluster(struct goman_install *in, int agents)
{
	char iid[32];
	add(in, "server", 0, "i-0");
	for (int i = 0; i < agents; i++) {
		snprintf(iid, sizeof(iid), "i-a%d", i);
		add(in, "agent", i, iid);
	}
}

/* Instance IDs over all SendCommands, each naming at most 50. */
static int ids_sent(void)
{
	int total = 0;
	for (int i = 0; i < sends; i++) {
		assert_true(send_sizes[i] <= 50);
		total += send_sizes[i];
	}
	return total;
}

static void run_to_end(struct goman_install *in)
{
	goman_install_input_done(in);
	for (int i = 0; i < 2000 && !goman_install_finished(in); i++)
		goman_http_run(loop, 50, -1);
	assert_true(goman_install_finished(in));
	goman_install_free(in);
	cur = NULL;
	goman_http_free(loop);
}

static void test_120_nodes_share_sendcommands_of_at_most_50_ids(void **s)
{
	struct goman_install *in = make();
	add_cluster(in, 119);
	run_to_end(in);
	assert_int_equal(emitted, 120);
	assert_int_equal(ok_records, 120);
	/* verification is off by default here; first server alone, agents 50+50+19 */
	assert_int_equal(ids_sent(), 120);
	assert_int_equal(sends, 4);
}

static void test_one_list_per_command_then_output_only_for_ended_invocations(void **s)
{
	struct goman_install *in = make();
	list_ok = true;
	add_cluster(in, 49);
	run_to_end(in);
	assert_int_equal(ok_records, 50);
	/* the first server's command and the agents': one List each, one Get per node */
	assert_int_equal(lists, 2);
	assert_int_equal(polls, 50);
}

static void test_without_list_every_invocation_is_polled_on_its_own(void **s)
{
	struct goman_install *in = make();
	add(in, "server", 0, "i-0");
	add(in, "agent", 0, "i-a");
	add(in, "agent", 1, "i-b");
	run_to_end(in);
	assert_int_equal(ok_records, 3);
	assert_true(lists >= 1 && lists <= 2); /* the Lists in flight when the first failed */
	assert_int_equal(polls, 3);
}

static void test_nodes_are_sent_only_once_ssm_lists_them_online(void **s)
{
	struct goman_install *in = make();
	check_ok = true;
	unregistered_id = "i-late"; /* its agent registers after two checks */
	unregistered_left = 2;
	add(in, "server", 0, "i-0");
	add(in, "agent", 0, "i-a");
	add(in, "agent", 1, "i-late");
	add(in, "agent", 2, "i-b");
	run_to_end(in);
	assert_int_equal(ok_records, 4);
	/* no SendCommand named an instance SSM did not list: the late one went alone, last */
	assert_true(checks >= 3);
	assert_true(sends >= 2);
	for (int i = 0; i < sends - 1; i++)
		assert_null(strstr(send_ids[i], "i-late"));
	assert_string_equal(send_ids[sends - 1], "[\"i-late\"]");
	/* a check a round: never two closer than the batch window (20 ms here) */
	assert_true(min_check_gap_ms >= 19);
}

static void test_a_node_never_listed_goes_to_sendcommand_at_its_delivery_deadline(void **s)
{
	struct goman_install *in = make();
	((struct gm_install *)in)->o.delivery_timeout_ms = 60;
	check_ok = true;
	unregistered_id = "i-0"; /* never registers */
	unregistered_left = 1000000;
	young_id = "i-0";
	add(in, "server", 0, "i-0");
	run_to_end(in);
	assert_int_equal(emitted, 1);
	assert_int_equal(ok_records, 0);
	/* SSM's own answer decides: InvalidInstanceId past the deadline, class timeout */
	assert_string_equal(last_code, "InvalidInstanceId");
	assert_true(checks >= 2);
}

static void test_registered_nodes_of_one_check_share_one_sendcommand(void **s)
{
	struct goman_install *in = make();
	check_ok = true;
	add_cluster(in, 5);
	run_to_end(in);
	assert_int_equal(ok_records, 6);
	assert_int_equal(checks, 1);
	/* the first server alone (its flags differ), the five agents together */
	assert_int_equal(sends, 2);
	assert_int_equal(send_sizes[0] + send_sizes[1], 6);
	assert_true(send_sizes[0] == 5 || send_sizes[1] == 5);
}

static void test_more_than_50_waiting_are_asked_50_a_call(void **s)
{
	struct goman_install *in = make();
	check_ok = true;
	add_cluster(in, 119);
	run_to_end(in);
	assert_int_equal(ok_records, 120);
	assert_int_equal(checks, 3);
	assert_int_equal(ids_sent(), 120);
}

static void test_without_the_registration_check_nodes_go_straight_to_sendcommand(void **s)
{
	struct goman_install *in = make();
	add(in, "server", 0, "i-0");
	add(in, "agent", 0, "i-a");
	add(in, "agent", 1, "i-b");
	run_to_end(in);
	assert_int_equal(ok_records, 3);
	assert_int_equal(checks, 1); /* the probe: unknown, so never asked again */
	assert_true(sends >= 2);
}

static void test_agent_commands_are_not_polled_while_the_first_server_installs(void **s)
{
	struct goman_install *in = make();
	list_ok = true;
	check_ok = true;
	inprog_left = 6; /* the server's output poll says InProgress for a while */
	add(in, "server", 0, "i-0");
	add(in, "agent", 0, "i-a");
	add(in, "agent", 1, "i-b");
	run_to_end(in);
	assert_int_equal(ok_records, 3);
	assert_int_equal(lists_held, 0);
	assert_true(lists >= 2);
}

static void test_an_install_whose_list_output_holds_its_result_needs_no_get(void **s)
{
	struct goman_install *in = make();
	list_ok = true;
	list_output = "GOMAN_PROGRESS 100\nGOMAN_RESULT {\"ok\":true,\"version\":\"v1\"}\n";
	add(in, "server", 0, "i-0");
	add(in, "agent", 0, "i-a");
	add(in, "agent", 1, "i-b");
	run_to_end(in);
	assert_int_equal(ok_records, 3);
	assert_int_equal(polls, 0);
}

static void test_a_list_output_cut_at_2500_characters_is_fetched_whole(void **s)
{
	static char big[2600];
	struct goman_install *in = make();
	list_ok = true;
	memset(big, 'x', sizeof(big) - 1);
	memcpy(big, "GOMAN_RESULT {\"ok\":true}\n", 25); /* a result line, but the text is cut */
	list_output = big;
	add(in, "server", 0, "i-0");
	add(in, "agent", 0, "i-a");
	run_to_end(in);
	assert_int_equal(ok_records, 2);
	assert_int_equal(polls, 2);
}

/* Runs an SSM command text with sh as the node would (AWS_SSM_INSTANCE_ID set); returns
 * its exit status, its output in out. */
static int run_command_text(const char *text, const char *iid, const char *log, char *out,
			    size_t cap)
{
	char path[] = "/tmp/goman-unit-cmd.XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	FILE *f = fdopen(fd, "w");
	fputs(text, f);
	fclose(f);
	char cmd[512];
	snprintf(cmd, sizeof(cmd), "AWS_SSM_INSTANCE_ID=%s GOMAN_INSTALL_LOG=%s sh %s", iid, log,
		 path);
	FILE *p = popen(cmd, "r");
	assert_non_null(p);
	size_t n = fread(out, 1, cap - 1, p);
	out[n] = '\0';
	int st = pclose(p);
	unlink(path);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void test_the_command_prints_only_its_result_and_keeps_the_log_on_the_node(void **s)
{
	struct goman_install *in = make();
	struct gm_install *gi = (struct gm_install *)in;
	free(gi->script);
	gi->script = strdup("echo 'noise: downloading k3s'\necho 'GOMAN_PROGRESS 50'\n"
			    "echo 'GOMAN_PROGRESS 100'\necho 'GOMAN_RESULT {\"ok\":true}'\n"
			    "echo 'noise after' >&2\n");
	gi->script_len = strlen(gi->script);
	add(in, "server", 0, "i-0");
	run_to_end(in);
	assert_int_equal(sends, 1);
	char log[] = "/tmp/goman-unit-log.XXXXXX", out[4096];
	close(mkstemp(log));
	assert_int_equal(run_command_text(send_texts[0], "i-0", log, out, sizeof(out)), 0);
	assert_string_equal(out, "GOMAN_PROGRESS 100\nGOMAN_RESULT {\"ok\":true}\n");
	FILE *f = fopen(log, "r");
	size_t n = fread(out, 1, sizeof(out) - 1, f);
	out[n] = '\0';
	fclose(f);
	assert_non_null(strstr(out, "noise: downloading k3s"));
	assert_non_null(strstr(out, "noise after"));
	unlink(log);
}

static void test_a_command_whose_installer_printed_no_result_prints_the_logs_tail(void **s)
{
	struct goman_install *in = make();
	struct gm_install *gi = (struct gm_install *)in;
	free(gi->script);
	gi->script = strdup("echo 'curl: (6) Could not resolve host'\nexit 7\n");
	gi->script_len = strlen(gi->script);
	add(in, "server", 0, "i-0");
	run_to_end(in);
	char log[] = "/tmp/goman-unit-log.XXXXXX", out[4096];
	close(mkstemp(log));
	assert_int_equal(run_command_text(send_texts[0], "i-0", log, out, sizeof(out)), 7);
	assert_string_equal(out, "curl: (6) Could not resolve host\n");
	unlink(log);
}

static void test_invocation_does_not_exist_is_pending_not_failure(void **s)
{
	struct goman_install *in = make();
	dne_left = 3;
	add(in, "server", 0, "i-0");
	run_to_end(in);
	assert_int_equal(ok_records, 1);
	assert_int_equal(polls, 4);
}

static void test_invalid_instance_id_retries_only_the_named_instance(void **s)
{
	struct goman_install *in = make();
	young_id = "i-young";
	add(in, "server", 0, "i-0");
	add(in, "agent", 0, "i-old");
	add(in, "agent", 1, "i-young");
	run_to_end(in);
	assert_int_equal(ok_records, 3);
	/* server, then i-old re-sent alone at once, then i-young after its back-off */
	assert_int_equal(sends, 3);
	assert_int_equal(send_sizes[1] + send_sizes[2], 2);
}

static void test_a_waiting_sendcommand_goes_before_due_polls(void **s)
{
	struct goman_install *in = make();
	((struct gm_install *)in)->o.concurrency = 1;
	inprog_left = 400; /* installs run on: their polls keep coming due, more than fit */
	add(in, "server", 0, "i-0");
	char iid[16];
	for (int i = 0; i < 9; i++) {
		snprintf(iid, sizeof(iid), "i-a%d", i);
		add(in, "agent", i, iid);
	}
	for (int i = 0; i < 10; i++)
		goman_http_run(loop, 10, -1);
	assert_true(polls > 10);
	assert_true(gm_inst_ssm_polls_waiting(cur)); /* due polls are queued */
	/* more agents while polls queue for the one slot: their SendCommand takes the next */
	for (int i = 9; i < 12; i++) {
		snprintf(iid, sizeof(iid), "i-a%d", i);
		add(in, "agent", i, iid);
	}
	run_to_end(in);
	assert_int_equal(ok_records, 13);
	assert_int_equal(sends, 3);
	assert_int_equal(max_in_flight, 1);
	assert_int_equal(polls_before_send, 0);
}

static void test_agents_wait_for_the_first_server_record(void **s)
{
	struct goman_install *in = make();
	add(in, "agent", 0, "i-a");
	for (int i = 0; i < 5; i++)
		goman_http_run(loop, 30, -1);
	assert_int_equal(sends, 0); /* no server address yet: nothing sent */
	add(in, "server", 0, "i-0");
	run_to_end(in);
	assert_int_equal(ok_records, 2);
}

static void add_json(struct goman_install *in, const char *json)
{
	struct goman_err err = GOMAN_ERR_INIT;
	cJSON *j = cJSON_Parse(json);
	assert_non_null(j);
	assert_int_equal(goman_install_add(in, j, 1, &err), 0);
}

static void test_an_agent_whose_record_names_the_server_starts_before_the_server_record(void **s)
{
	struct goman_install *in = make();
	add_json(in, "{\"cluster\":\"u\",\"role\":\"agent\",\"index\":0,\"instance_id\":\"i-a\","
		     "\"private_ip\":\"10.0.0.9\",\"server_url\":\"https://10.0.0.1:6443\"}");
	for (int i = 0; i < 10 && sends == 0; i++)
		goman_http_run(loop, 30, -1);
	assert_int_equal(sends, 1); /* sent without the first server's record */
	assert_non_null(strstr(send_texts[0], "'--server-url' 'https://10.0.0.1:6443'"));
	add(in, "server", 0, "i-0");
	run_to_end(in);
	assert_int_equal(ok_records, 2);
}

static void test_the_server_url_option_wins_over_the_records(void **s)
{
	struct goman_install *in = make();
	struct gm_install *g = (struct gm_install *)in;
	g->o.server_url = strdup("https://10.9.9.9:6443"); /* as --server-url leaves it */
	snprintf(g->server_url, sizeof(g->server_url), "%s", g->o.server_url);
	add_json(in, "{\"cluster\":\"u\",\"role\":\"agent\",\"index\":0,\"instance_id\":\"i-a\","
		     "\"server_url\":\"https://10.0.0.1:6443\"}");
	run_to_end(in);
	assert_int_equal(sends, 1);
	assert_non_null(strstr(send_texts[0], "'--server-url' 'https://10.9.9.9:6443'"));
}

static void test_a_server_url_that_is_not_https_addr_port_is_bad_input(void **s)
{
	struct goman_install *in = make();
	add_json(in, "{\"cluster\":\"u\",\"role\":\"agent\",\"index\":0,\"instance_id\":\"i-a\","
		     "\"server_url\":\"https://10.0.0.1:6443\\nExecStart=/bin/sh\"}");
	assert_int_equal(bad_records, 1);
	assert_non_null(strstr(last_msg, "server_url"));
	run_to_end(in);
	assert_int_equal(sends, 0);
}

static void test_a_private_ip_with_a_unit_line_is_bad_input_and_others_go_on(void **s)
{
	struct goman_install *in = make();
	add_json(in, "{\"cluster\":\"u\",\"role\":\"server\",\"index\":0,\"instance_id\":\"i-0\","
		     "\"private_ip\":\"10.0.0.5\\nExecStart=/bin/sh -c 'id >/root/PWNED'\\nX=\"}");
	assert_int_equal(bad_records, 1);
	assert_string_equal(last_code, "BadInput");
	assert_null(strchr(last_msg, '\n'));
	add_json(in, "{\"cluster\":\"u\",\"role\":\"agent\",\"index\":3,\"instance_id\":\"i-3\","
		     "\"private_ip\":\"10.0.0.4\",\"public_ip\":\"-oProxyCommand=id\"}");
	assert_int_equal(bad_records, 2);
	/* names and IDs go into log lines: no forged line either */
	add_json(in,
		 "{\"cluster\":\"u\",\"role\":\"agent\",\"index\":4,\"instance_id\":\"i-4\","
		 "\"private_ip\":\"10.0.0.4\",\"name\":\"a\\n[INSTALL] u-agent-9: installed\"}");
	add_json(in, "{\"cluster\":\"u\",\"role\":\"agent\",\"index\":5,\"instance_id\":\"i-5\\r\","
		     "\"private_ip\":\"10.0.0.4\"}");
	assert_int_equal(bad_records, 4);
	/* no server URL came from the bad record: the good ones still install */
	assert_string_equal(((struct gm_install *)in)->server_url, "");
	add(in, "server", 0, "i-s0");
	assert_string_equal(((struct gm_install *)in)->server_url, "https://10.0.0.1:6443");
	add(in, "agent", 1, "i-a1");
	run_to_end(in);
	assert_int_equal(ok_records, 2);
	assert_int_equal(bad_records, 4);
	assert_int_equal(emitted, 6);
}

static void test_an_ipv6_first_server_gives_a_bracketed_server_url(void **s)
{
	struct goman_install *in = make();
	add_json(in, "{\"cluster\":\"u\",\"role\":\"server\",\"index\":0,\"instance_id\":\"i-0\","
		     "\"private_ip\":\"fd00::5\"}");
	assert_string_equal(((struct gm_install *)in)->server_url, "https://[fd00::5]:6443");
	run_to_end(in);
	assert_int_equal(ok_records, 1);
}

static void test_a_server_url_option_that_is_not_https_addr_port_is_refused(void **s)
{
	struct goman_err err = GOMAN_ERR_INIT;
	struct goman_http *l = goman_http_new(NULL, &err);
	const char *bad[] = {"https://10.0.0.5\nExecStart=/bin/sh:6443", "https://10.0.0.5",
			     "http://10.0.0.5:6443", "https://10.0.0.5:6443 x"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		struct goman_install_opts o = {.via = GOMAN_VIA_LOCAL,
					       .http = l,
					       .script_path = "scripts/k3s-install.sh",
					       .server_url = bad[i],
					       .emit = on_emit};
		goman_err_clear(&err);
		assert_null(goman_install_new(&o, &err));
		assert_string_equal(err.code, "BadInput");
	}
	struct goman_install_opts o = {.via = GOMAN_VIA_LOCAL,
				       .http = l,
				       .script_path = "scripts/k3s-install.sh",
				       .server_url = "https://[fd00::5]:6443",
				       .emit = on_emit};
	struct goman_install *in = goman_install_new(&o, &err);
	assert_non_null(in);
	goman_install_free(in);
	goman_http_free(l);
}

static void test_an_index_out_of_int_range_is_bad_input(void **s)
{
	struct goman_install *in = make();
	const char *idx[] = {"1e300", "-1", "1.5", "100000", "2147483648", "-1e300"};
	char buf[256];
	for (size_t i = 0; i < sizeof(idx) / sizeof(*idx); i++) {
		snprintf(buf, sizeof(buf),
			 "{\"cluster\":\"u\",\"role\":\"agent\",\"index\":%s,"
			 "\"instance_id\":\"i-x\",\"private_ip\":\"10.0.0.9\"}",
			 idx[i]);
		add_json(in, buf);
		assert_int_equal(bad_records, (int)i + 1);
	}
	add(in, "server", 0, "i-0");
	/* the largest index still passes */
	add_json(in, "{\"cluster\":\"u\",\"role\":\"agent\",\"index\":99999,"
		     "\"instance_id\":\"i-big\",\"private_ip\":\"10.0.0.9\"}");
	run_to_end(in);
	assert_int_equal(ok_records, 2);
}

static void test_a_response_code_beyond_any_exit_status_is_clamped(void **s)
{
	struct goman_install *in = make();
	poll_answer =
		"{\"Status\":\"Failed\",\"ResponseCode\":1e300,\"StandardOutputContent\":\"\"}";
	add(in, "server", 0, "i-0");
	run_to_end(in);
	assert_int_equal(ok_records, 0);
	assert_string_equal(last_msg, "install script exited with 255");
}

static void test_durations_near_int64_max_still_install(void **s)
{
	goman_install_free(make()); /* the harness's loop and counters */
	/* what a library caller may pass; the deadline sums must not wrap to the past */
	struct goman_err err = GOMAN_ERR_INIT;
	struct goman_install_opts o = {.via = GOMAN_VIA_SSM,
				       .aws = (struct goman_aws *)1,
				       .http = loop,
				       .script_path = "scripts/k3s-install.sh",
				       .poll_ms = 5,
				       .poll_floor_ms = 5,
				       .batch_window_ms = 20,
				       .emit = on_emit,
				       .timeout_ms = INT64_MAX,
				       .delivery_timeout_ms = INT64_MAX / 2,
				       .verify_wait_ms = INT64_MAX};
	struct gm_install *g = (struct gm_install *)goman_install_new(&o, &err);
	assert_non_null(g);
	g->token = strdup("x");
	cur = g;
	add((struct goman_install *)g, "server", 0, "i-0");
	run_to_end((struct goman_install *)g);
	assert_int_equal(ok_records, 1);
}

static void test_presigned_urls_live_inside_the_credentials_remaining_life(void **s)
{
	int64_t now = 1700000000000;
	assert_int_equal(goman_presign_lifetime(4200, 0, now), 4200);      /* long-lived keys */
	assert_int_equal(goman_presign_lifetime(9999999, 0, now), 604800); /* SigV4's week */
	assert_int_equal(goman_presign_lifetime(4200, now + 3600000, now), 3540); /* 1 h left */
	assert_int_equal(goman_presign_lifetime(600, now + 3600000, now), 600);
	assert_int_equal(goman_presign_lifetime(4200, now + 30000, now), -1); /* 30 s left */
	assert_int_equal(goman_presign_lifetime(4200, now - 1, now), -1);     /* expired */
}

static void test_parses_progress_and_the_last_result(void **s)
{
	int pct;
	cJSON *r =
		goman_install_parse_output("noise\nGOMAN_PROGRESS 25 precheck\nGOMAN_PROGRESS 50 "
					   "download\nGOMAN_RESULT {\"ok\":false}\nGOMAN_RESULT "
					   "{\"ok\":true,\"version\":\"v1\"}\ntrailer\n",
					   &pct);
	assert_non_null(r);
	assert_int_equal(pct, 50);
	assert_true(cJSON_IsTrue(cJSON_GetObjectItem(r, "ok")));
	cJSON_Delete(r);
	assert_null(goman_install_parse_output("", &pct));
	assert_int_equal(pct, -1);
	assert_null(goman_install_parse_output("GOMAN_RESULT {broken\n", NULL));
}

static void test_counts_ready_nodes_in_kubectl_output(void **s)
{
	const char *out = "a   Ready    control-plane,etcd   5m   v1.31.4+k3s1\n"
			  "b   NotReady <none>               1m   v1.31.4+k3s1\n"
			  "c   Ready    <none>               1m   v1.31.4+k3s1\n";
	assert_int_equal(goman_install_count_ready(out), 2);
	assert_int_equal(goman_install_count_ready(""), -1);
	assert_int_equal(goman_install_count_ready("error: connection refused\n"), -1);
	assert_true(goman_install_node_ready(out, "a"));
	assert_false(goman_install_node_ready(out, "b"));
	assert_false(goman_install_node_ready(out, "absent"));
	assert_false(goman_install_node_ready(out, "NAME"));
}

static void test_label_and_taint_rules_follow_kubernetes(void **s)
{
	assert_null(goman_install_label_why("tier", "web"));
	assert_null(goman_install_label_why("example.com/team", "a.b_c-1"));
	assert_null(goman_install_label_why("node.kubernetes.io/pool", ""));
	assert_null(goman_install_label_why("kubelet.kubernetes.io/x", "y"));
	assert_non_null(goman_install_label_why("kubernetes.io/role", "x")); /* NodeRestriction */
	assert_non_null(goman_install_label_why("sub.k8s.io/role", "x"));
	assert_non_null(goman_install_label_why("Example.com/team", "a")); /* prefix lower case */
	assert_non_null(goman_install_label_why("tier", "web;id"));
	assert_non_null(goman_install_label_why("tier", "-web"));
	assert_non_null(goman_install_label_why("", "x"));
	assert_non_null(goman_install_label_why("a/b/c", "x"));
	assert_non_null(goman_install_label_why("tier", "a\nExecStart=/bin/sh"));
	char longv[80];
	memset(longv, 'a', 64);
	longv[64] = '\0';
	assert_non_null(goman_install_label_why("tier", longv));
	longv[63] = '\0';
	assert_null(goman_install_label_why("tier", longv));
	assert_null(goman_install_taint_why("dedicated=web:NoSchedule"));
	assert_null(goman_install_taint_why("spot:PreferNoSchedule"));
	assert_null(goman_install_taint_why("example.com/gpu=:NoExecute"));
	assert_non_null(goman_install_taint_why("a=b"));
	assert_non_null(goman_install_taint_why("a=b:Sometimes"));
	assert_non_null(goman_install_taint_why(":NoSchedule"));
	assert_non_null(goman_install_taint_why("a=b c:NoSchedule"));
	assert_non_null(goman_install_taint_why("a;b:NoSchedule"));
	assert_true(goman_install_node_name_ok("web-agent-3"));
	assert_true(goman_install_node_name_ok("ip-10-0-0-5.ec2.internal"));
	assert_false(goman_install_node_name_ok("Web"));
	assert_false(goman_install_node_name_ok("a_b"));
	assert_false(goman_install_node_name_ok("-a"));
	assert_false(goman_install_node_name_ok(""));
}

static void test_release_and_channel_forms(void **s)
{
	assert_true(goman_install_version_ok("v1.31.4+k3s1"));
	assert_true(goman_install_version_ok("v1.32.0-rc1+k3s2"));
	assert_false(goman_install_version_ok("1.31.4+k3s1"));
	assert_false(goman_install_version_ok("v1.31.4"));
	assert_false(goman_install_version_ok("v1.31+k3s1"));
	assert_false(goman_install_version_ok("v1.31.4+k3s1 --token x"));
	assert_false(goman_install_version_ok("v1.31.4+k3s"));
	assert_false(goman_install_version_ok(""));
	assert_true(goman_install_channel_ok("stable"));
	assert_true(goman_install_channel_ok("v1.31"));
	assert_false(goman_install_channel_ok("Stable"));
	assert_false(goman_install_channel_ok("../x"));
	assert_false(goman_install_channel_ok(""));
}

static void test_each_instance_of_a_sendcommand_gets_its_own_node_flags(void **s)
{
	struct goman_install *in = make();
	add(in, "server", 0, "i-0");
	add_json(in,
		 "{\"cluster\":\"u\",\"role\":\"agent\",\"index\":0,\"instance_id\":\"i-a0\","
		 "\"private_ip\":\"10.0.0.7\",\"name\":\"u-agent-0\",\"labels\":{\"tier\":\"web\"},"
		 "\"taints\":[\"dedicated=web:NoSchedule\"]}");
	add_json(in, "{\"cluster\":\"u\",\"role\":\"agent\",\"index\":1,\"instance_id\":\"i-a1\","
		     "\"private_ip\":\"10.0.0.8\",\"name\":\"u-agent-1\",\"labels\":{}}");
	run_to_end(in);
	assert_int_equal(ok_records, 3);
	/* the two agents shared one SendCommand; each instance picks its own flags */
	assert_int_equal(sends, 2);
	int ag = send_sizes[0] == 2 ? 0 : 1, sv = 1 - ag;
	assert_int_equal(send_sizes[ag], 2);
	const char *t = send_texts[ag];
	assert_non_null(strstr(t, "case \"${AWS_SSM_INSTANCE_ID:-}\" in\n"));
	assert_non_null(strstr(t,
			       "'i-a0') set -- '--node-name' 'u-agent-0' '--node-label' 'tier=web' "
			       "'--node-taint' 'dedicated=web:NoSchedule' ;;\n"));
	assert_non_null(strstr(t, "'i-a1') set -- '--node-name' 'u-agent-1' ;;\n"));
	assert_non_null(strstr(t, "*) echo 'GOMAN_RESULT"));
	assert_non_null(strstr(t, " \"$@\" >\"$log\" 2>&1\nrc=$?"));
	/* the first server's own case names it */
	assert_non_null(strstr(send_texts[sv], "'i-0') set -- '--node-name' 'u-server-0' ;;"));
}

static struct goman_install *make_action(enum goman_install_action action, const char *server_iid)
{
	goman_install_free(make()); /* the harness's loop and counters */
	struct goman_err err = GOMAN_ERR_INIT;
	struct goman_install_opts o = {.via = GOMAN_VIA_SSM,
				       .aws = (struct goman_aws *)1,
				       .http = loop,
				       .poll_ms = 5,
				       .poll_floor_ms = 5,
				       .batch_window_ms = 20,
				       .emit = on_emit,
				       .action = action,
				       .drain_timeout_ms = 90000,
				       .server_instance = server_iid};
	struct gm_install *g = (struct gm_install *)goman_install_new(&o, &err);
	assert_non_null(g);
	cur = g;
	return (struct goman_install *)g;
}

static void test_drain_runs_kubectl_on_the_first_server_one_node_per_sendcommand(void **s)
{
	struct goman_install *in = make_action(GOMAN_ACTION_DRAIN, NULL);
	poll_answer = "{\"Status\":\"Success\",\"ResponseCode\":0,\"StandardOutputContent\":"
		      "\"node/u-agent-1 drained\\n\"}";
	/* an agent before the server record waits for it; agents need no instance_id */
	add_json(in, "{\"cluster\":\"u\",\"role\":\"agent\",\"index\":1,\"name\":\"u-agent-1\"}");
	assert_int_equal(sends, 0);
	add(in, "server", 0, "i-srv");
	add(in, "agent", 2, "i-a2");
	run_to_end(in);
	assert_int_equal(emitted, 3);
	assert_int_equal(ok_records, 3);
	assert_int_equal(sends, 3);
	for (int i = 0; i < 3; i++) {
		assert_string_equal(send_ids[i], "[\"i-srv\"]");
		assert_non_null(strstr(send_texts[i],
				       "k=k3s; \"$k\" kubectl drain --ignore-daemonsets "
				       "--delete-emptydir-data --timeout=90s '"));
	}
	assert_non_null(strstr(send_texts[0], "--timeout=90s 'u-agent-1' 2>&1"));
	assert_null(strstr(send_texts[0], "GOMAN_K3S_INSTALL_EOF")); /* no script, no token */
	const cJSON *d = cJSON_GetArrayItem(drain_objs, 0);
	assert_true(cJSON_IsTrue(cJSON_GetObjectItem(d, "ok")));
	assert_string_equal(cJSON_GetObjectItem(d, "action")->valuestring, "drain");
	assert_true(cJSON_IsNumber(cJSON_GetObjectItem(d, "ms")));
}

static void test_a_failed_kubectl_is_an_error_record_naming_the_node(void **s)
{
	struct goman_install *in = make_action(GOMAN_ACTION_CORDON, "i-given");
	poll_answer = "{\"Status\":\"Failed\",\"ResponseCode\":1,\"StandardOutputContent\":"
		      "\"Error from server (NotFound): nodes \\\"u-agent-7\\\" not found\\n\"}";
	add(in, "agent", 7, "i-a7");
	run_to_end(in);
	assert_int_equal(ok_records, 0);
	assert_string_equal(last_code, "CordonFailed");
	assert_non_null(strstr(
		last_msg, "kubectl cordon u-agent-7 exited with 1: Error from server (NotFound)"));
	assert_string_equal(send_ids[0], "[\"i-given\"]");
	assert_non_null(strstr(send_texts[0], "kubectl cordon 'u-agent-7' 2>&1"));
}

static void test_a_drain_longer_than_the_execution_timeout_raises_it(void **s)
{
	goman_install_free(make());
	struct goman_err err = GOMAN_ERR_INIT;
	struct goman_install_opts o = {.via = GOMAN_VIA_LOCAL,
				       .http = loop,
				       .emit = on_emit,
				       .action = GOMAN_ACTION_DRAIN,
				       .drain_timeout_ms = 1200000,
				       .timeout_ms = 600000};
	struct gm_install *g = (struct gm_install *)goman_install_new(&o, &err);
	assert_non_null(g);
	assert_int_equal(g->o.timeout_ms, 1260000);
	goman_install_free((struct goman_install *)g);
	o.action = GOMAN_ACTION_CORDON; /* only a drain waits on its own timeout */
	g = (struct gm_install *)goman_install_new(&o, &err);
	assert_int_equal(g->o.timeout_ms, 600000);
	goman_install_free((struct goman_install *)g);
	cur = NULL;
	goman_http_free(loop);
}

static void test_an_action_without_a_first_server_fails_no_server(void **s)
{
	struct goman_install *in = make_action(GOMAN_ACTION_UNCORDON, NULL);
	add(in, "agent", 1, "i-a1");
	add(in, "server", 1, "i-s1"); /* a joining server is not where kubectl runs */
	run_to_end(in);
	assert_int_equal(sends, 0);
	assert_string_equal(last_code, "NoServer");
	assert_int_equal(emitted, 2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_120_nodes_share_sendcommands_of_at_most_50_ids),
		cmocka_unit_test(test_one_list_per_command_then_output_only_for_ended_invocations),
		cmocka_unit_test(test_without_list_every_invocation_is_polled_on_its_own),
		cmocka_unit_test(test_nodes_are_sent_only_once_ssm_lists_them_online),
		cmocka_unit_test(
			test_a_node_never_listed_goes_to_sendcommand_at_its_delivery_deadline),
		cmocka_unit_test(test_registered_nodes_of_one_check_share_one_sendcommand),
		cmocka_unit_test(test_more_than_50_waiting_are_asked_50_a_call),
		cmocka_unit_test(
			test_without_the_registration_check_nodes_go_straight_to_sendcommand),
		cmocka_unit_test(
			test_agent_commands_are_not_polled_while_the_first_server_installs),
		cmocka_unit_test(test_an_install_whose_list_output_holds_its_result_needs_no_get),
		cmocka_unit_test(test_a_list_output_cut_at_2500_characters_is_fetched_whole),
		cmocka_unit_test(
			test_the_command_prints_only_its_result_and_keeps_the_log_on_the_node),
		cmocka_unit_test(
			test_a_command_whose_installer_printed_no_result_prints_the_logs_tail),
		cmocka_unit_test(test_invocation_does_not_exist_is_pending_not_failure),
		cmocka_unit_test(test_invalid_instance_id_retries_only_the_named_instance),
		cmocka_unit_test(test_agents_wait_for_the_first_server_record),
		cmocka_unit_test(
			test_an_agent_whose_record_names_the_server_starts_before_the_server_record),
		cmocka_unit_test(test_a_server_url_that_is_not_https_addr_port_is_bad_input),
		cmocka_unit_test(test_the_server_url_option_wins_over_the_records),
		cmocka_unit_test(test_a_waiting_sendcommand_goes_before_due_polls),
		cmocka_unit_test(test_a_private_ip_with_a_unit_line_is_bad_input_and_others_go_on),
		cmocka_unit_test(test_an_ipv6_first_server_gives_a_bracketed_server_url),
		cmocka_unit_test(test_a_server_url_option_that_is_not_https_addr_port_is_refused),
		cmocka_unit_test(test_an_index_out_of_int_range_is_bad_input),
		cmocka_unit_test(test_a_response_code_beyond_any_exit_status_is_clamped),
		cmocka_unit_test(test_durations_near_int64_max_still_install),
		cmocka_unit_test(test_presigned_urls_live_inside_the_credentials_remaining_life),
		cmocka_unit_test(test_parses_progress_and_the_last_result),
		cmocka_unit_test(test_counts_ready_nodes_in_kubectl_output),
		cmocka_unit_test(test_label_and_taint_rules_follow_kubernetes),
		cmocka_unit_test(test_release_and_channel_forms),
		cmocka_unit_test(test_each_instance_of_a_sendcommand_gets_its_own_node_flags),
		cmocka_unit_test(
			test_drain_runs_kubectl_on_the_first_server_one_node_per_sendcommand),
		cmocka_unit_test(test_a_failed_kubectl_is_an_error_record_naming_the_node),
		cmocka_unit_test(test_an_action_without_a_first_server_fails_no_server),
		cmocka_unit_test(test_a_drain_longer_than_the_execution_timeout_raises_it),
	};
	int rc = cmocka_run_group_tests(tests, NULL, NULL);
	for (int i = 0; i < 16; i++) {
		free(send_texts[i]);
		free(send_ids[i]);
	}
	cJSON_Delete(drain_objs);
	cJSON_Delete(cmd_ids);
	return rc;
}
