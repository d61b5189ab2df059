/*
 * test_provision.c - the poll loop's streaming and the convergence plan, without a network:
 * poller rounds are fed through gm_ec2_poller_apply() (a poller without a client schedules
 * nothing), plans through gm_prov_plan() over hand-made instance summaries.
 */
#include "unit.h"
#include <stdio.h>
#include <string.h>
#include <cjson/cJSON.h>
#include "goman/aws.h"
#include "goman/clock.h"
#include "goman/ec2.h"
#include "goman/http.h"
#include "goman/provision.h"
#include "ec2_int.h"
#include "provision_int.h"

struct seen {
	char id[8][32];
	char code[8][96];
	double share[8];
	int n;
};

static void on_done(const char *id, const struct goman_ec2_instance *inst,
		    const struct goman_err *err, double share, void *ud)
{
	struct seen *s = ud;
	assert_non_null(inst);
	snprintf(s->id[s->n], sizeof(s->id[0]), "%s", id);
	snprintf(s->code[s->n], sizeof(s->code[0]), "%s", err ? err->code : "");
	s->share[s->n] = share;
	s->n++;
}

static void inst(struct goman_ec2_instances *l, const char *id, const char *state,
		 const char *reason)
{
	struct goman_ec2_instance in;
	memset(&in, 0, sizeof(in));
	snprintf(in.instance_id, sizeof(in.instance_id), "%s", id);
	snprintf(in.state, sizeof(in.state), "%s", state);
	snprintf(in.state_reason, sizeof(in.state_reason), "%s", reason ? reason : "");
	assert_int_equal(goman_ec2_instances_add(l, &in), 0);
	goman_ec2_instance_clear(&in);
}

static struct goman_ec2_poller *poller(struct seen *s, int give_up)
{
	struct goman_ec2_poller_opts o = {.target = GOMAN_EC2_WAIT_RUNNING,
					  .on_done = on_done,
					  .ud = s,
					  .give_up_rounds = give_up};
	struct goman_ec2_poller *p = goman_ec2_poller_new(NULL, &o, NULL);
	assert_non_null(p);
	return p;
}

static void test_poller_hands_out_each_instance_the_round_it_runs(void **state)
{
	struct seen s = {0};
	struct goman_ec2_poller *p = poller(&s, 3);
	assert_int_equal(goman_ec2_poller_add(p, "i-a", 0, NULL), 0);
	assert_int_equal(goman_ec2_poller_add(p, "i-b", 0, NULL), 0);
	assert_int_equal(goman_ec2_poller_add(p, "i-c", 0, NULL), 0);
	assert_int_equal(goman_ec2_poller_add(p, "i-a", 0, NULL), 0); /* once only */
	gm_ec2_poller_mark(p);
	gm_ec2_poller_apply(p, NULL, 0, NULL); /* an empty first round (nothing seen yet) */
	assert_int_equal(s.n, 0);
	struct goman_ec2_instances r1 = {0};
	inst(&r1, "i-a", "running", NULL);
	inst(&r1, "i-b", "pending", NULL);
	inst(&r1, "i-c", "pending", NULL);
	inst(&r1, "i-other", "running", NULL); /* not ours: ignored */
	gm_ec2_poller_mark(p);
	gm_ec2_poller_apply(p, &r1, 1, NULL);
	/* i-a is out now, before the others run: no barrier */
	assert_int_equal(s.n, 1);
	assert_string_equal(s.id[0], "i-a");
	assert_string_equal(s.code[0], "");
	assert_int_equal(goman_ec2_poller_pending(p), 2);
	struct goman_ec2_instances r2 = {0};
	inst(&r2, "i-b", "running", NULL);
	inst(&r2, "i-c", "terminated", "Server.InsufficientInstanceCapacity");
	gm_ec2_poller_mark(p);
	gm_ec2_poller_apply(p, &r2, 1, NULL);
	assert_int_equal(s.n, 3);
	/* i-a: a third of round 2's call; i-b, i-c: a third of it and half of round 3's */
	assert_true(s.share[0] > 0.33 && s.share[0] < 0.34);
	for (int i = 0; i < 3; i++) {
		if (!strcmp(s.id[i], "i-c"))
			assert_string_equal(s.code[i], "Server.InsufficientInstanceCapacity");
		else
			assert_string_equal(s.code[i], "");
	}
	assert_int_equal(goman_ec2_poller_pending(p), 0);
	int rounds, calls;
	goman_ec2_poller_stats(p, &rounds, &calls);
	assert_int_equal(rounds, 3);
	assert_int_equal(calls, 2);
	goman_ec2_instances_clear(&r1);
	goman_ec2_instances_clear(&r2);
	goman_ec2_poller_free(p);
}

static void test_poller_shares_round_calls_over_the_pending_set(void **state)
{
	struct seen s = {0};
	struct goman_ec2_poller *p = poller(&s, 3);
	goman_ec2_poller_add(p, "i-a", 0, NULL);
	goman_ec2_poller_add(p, "i-b", 0, NULL);
	struct goman_ec2_instances r = {0};
	inst(&r, "i-a", "pending", NULL);
	inst(&r, "i-b", "pending", NULL);
	gm_ec2_poller_mark(p);
	gm_ec2_poller_apply(p, &r, 2, NULL);        /* 2 calls over 2 pending: 1 each */
	goman_ec2_poller_add(p, "i-late", 0, NULL); /* joins after the round started */
	goman_ec2_instances_clear(&r);
	inst(&r, "i-a", "running", NULL);
	inst(&r, "i-b", "pending", NULL);
	inst(&r, "i-late", "pending", NULL);
	gm_ec2_poller_apply(p, &r, 1, NULL); /* not marked: i-late was not in a round yet */
	assert_int_equal(s.n, 1);
	assert_string_equal(s.id[0], "i-a");
	assert_true(s.share[0] > 0.99 && s.share[0] < 1.01);
	goman_ec2_instances_clear(&r);
	inst(&r, "i-b", "running", NULL);
	inst(&r, "i-late", "running", NULL);
	gm_ec2_poller_mark(p);
	gm_ec2_poller_apply(p, &r, 4, NULL); /* 4 calls over i-b and i-late */
	assert_int_equal(s.n, 3);
	for (int i = 1; i < 3; i++) {
		double want = !strcmp(s.id[i], "i-b") ? 3.0 : 2.0;
		assert_true(s.share[i] > want - 0.01 && s.share[i] < want + 0.01);
	}
	int calls;
	goman_ec2_poller_stats(p, NULL, &calls);
	assert_int_equal(calls, 7);
	goman_ec2_instances_clear(&r);
	goman_ec2_poller_free(p);
}

static void test_poller_deadline_and_failed_rounds_become_errors(void **state)
{
	struct seen s = {0};
	struct goman_ec2_poller *p = poller(&s, 2);
	goman_ec2_poller_add(p, "i-late", goman_mono_ms() - 1, NULL);
	goman_ec2_poller_add(p, "i-x", 0, NULL);
	struct goman_ec2_instances r = {0};
	inst(&r, "i-late", "pending", NULL);
	gm_ec2_poller_apply(p, &r, 1, NULL);
	assert_int_equal(s.n, 1);
	assert_string_equal(s.id[0], "i-late");
	assert_string_equal(s.code[0], "Timeout");
	struct goman_err e = GOMAN_ERR_INIT;
	goman_err_set(&e, GOMAN_ESERVICE, GOMAN_CLASS_THROTTLING, "RequestLimitExceeded",
		      "slow down");
	gm_ec2_poller_apply(p, NULL, 1, &e); /* first failed round: kept */
	assert_int_equal(s.n, 1);
	gm_ec2_poller_apply(p, NULL, 1, &e); /* second: given up */
	assert_int_equal(s.n, 2);
	assert_string_equal(s.code[1], "RequestLimitExceeded");
	goman_ec2_instances_clear(&r);
	goman_ec2_poller_free(p);
}

static void test_poll_interval_grows_with_the_pending_count(void **state)
{
	struct goman_ec2_poller_opts o = {
		.min_interval_ms = 100, .max_interval_ms = 1000, .per_pending_ms = 10};
	assert_int_equal(goman_ec2_poll_interval(&o, 0), 100);
	assert_int_equal(goman_ec2_poll_interval(&o, 1), 110);
	assert_int_equal(goman_ec2_poll_interval(&o, 50), 600);
	assert_int_equal(goman_ec2_poll_interval(&o, 5000), 1000);
}

static void test_filters_group_values_of_one_name(void **state)
{
	struct goman_kvs f = {0}, p = {0};
	goman_kvs_add(&f, "tag:goman:cluster", "demo");
	goman_kvs_add(&f, "instance-state-name", "pending");
	goman_kvs_add(&f, "instance-state-name", "running");
	assert_int_equal(gm_ec2_add_filters(&p, &f), 0);
	assert_int_equal(p.n, 5);
	assert_string_equal(goman_kvs_get(&p, "Filter.1.Name"), "tag:goman:cluster");
	assert_string_equal(goman_kvs_get(&p, "Filter.1.Value.1"), "demo");
	assert_string_equal(goman_kvs_get(&p, "Filter.2.Name"), "instance-state-name");
	assert_string_equal(goman_kvs_get(&p, "Filter.2.Value.2"), "running");
	goman_kvs_clear(&f);
	goman_kvs_clear(&p);
}

static void existing_in(struct goman_ec2_instances *l, const char *id, const char *cluster,
			const char *role, const char *index)
{
	struct goman_ec2_instance in;
	memset(&in, 0, sizeof(in));
	snprintf(in.instance_id, sizeof(in.instance_id), "%s", id);
	snprintf(in.state, sizeof(in.state), "running");
	if (cluster)
		goman_kvs_add(&in.tags, "goman:cluster", cluster);
	goman_kvs_add(&in.tags, "goman:role", role);
	if (index)
		goman_kvs_add(&in.tags, "goman:index", index);
	assert_int_equal(goman_ec2_instances_add(l, &in), 0);
	goman_ec2_instance_clear(&in);
}

static void existing(struct goman_ec2_instances *l, const char *id, const char *role,
		     const char *index)
{
	existing_in(l, id, "demo", role, index);
}

/* gm_prov_plan with the complete listing filter of cluster "demo" */
static size_t plan(struct node **v, size_t nn, const struct goman_ec2_instances *ex)
{
	struct goman_kvs f = {0};
	struct goman_err e = GOMAN_ERR_INIT;
	goman_err_clear(&e);
	size_t missing = 0;
	assert_int_equal(gm_prov_filter(&f, "demo", true), 0);
	assert_int_equal(gm_prov_plan(v, nn, &f, ex, &missing, &e), 0);
	goman_kvs_clear(&f);
	return missing;
}

static void test_plan_reuses_by_index_adopts_unnamed_and_counts_missing(void **state)
{
	struct node nodes[4];
	struct node *v[4];
	const char *roles[4] = {"agent", "agent", "agent", "server"};
	int idx[4] = {0, 1, 2, 0};
	memset(nodes, 0, sizeof(nodes));
	for (int i = 0; i < 4; i++) {
		nodes[i].cluster = "demo";
		nodes[i].role = roles[i];
		nodes[i].index = idx[i];
		nodes[i].inst.launch_index = -1;
		v[i] = &nodes[i];
	}
	struct goman_ec2_instances ex = {0};
	existing(&ex, "i-s0", "server", "0");
	existing(&ex, "i-a1", "agent", "1");
	existing(&ex, "i-crash", "agent", NULL); /* launched, killed before its name tags */
	existing(&ex, "i-a7", "agent", "7");     /* not asked for: left alone */
	assert_int_equal(plan(v, 4, &ex), 1);
	assert_true(nodes[0].reused && nodes[0].adopted); /* agent-0: the lowest missing index */
	assert_string_equal(nodes[0].inst.instance_id, "i-crash");
	assert_true(nodes[0].need_tags);
	assert_true(nodes[1].reused && !nodes[1].adopted);
	assert_string_equal(nodes[1].inst.instance_id, "i-a1");
	assert_false(nodes[2].reused); /* agent-2 must be launched */
	assert_true(nodes[3].reused);
	assert_string_equal(nodes[3].inst.instance_id, "i-s0");
	for (int i = 0; i < 4; i++)
		goman_ec2_instance_clear(&nodes[i].inst);
	goman_ec2_instances_clear(&ex);
}

static void test_unnamed_instances_are_adopted_in_launch_order(void **state)
{
	(void)state;
	struct node nodes[3];
	struct node *v[3];
	memset(nodes, 0, sizeof(nodes));
	for (int i = 0; i < 3; i++) {
		nodes[i].cluster = "demo";
		nodes[i].role = "agent";
		nodes[i].index = i;
		nodes[i].inst.launch_index = -1;
		v[i] = &nodes[i];
	}
	/* a killed run left three agents unnamed; it had named them 0, 1, 2 in launch order
	 * (launch time, then place in the call): the listing gives them in another order */
	struct goman_ec2_instances ex = {0};
	existing(&ex, "i-third", "agent", NULL);
	existing(&ex, "i-second", "agent", NULL);
	existing(&ex, "i-first", "agent", NULL);
	const char *when[3] = {"2026-12-03T10:00:05.000Z", "2026-12-03T10:00:01.000Z",
			       "2026-12-03T10:00:01.000Z"};
	int at[3] = {0, 4, 2};
	for (int j = 0; j < 3; j++) {
		snprintf(ex.v[j].launch_time, sizeof(ex.v[j].launch_time), "%s", when[j]);
		ex.v[j].launch_index = at[j];
	}
	assert_int_equal(plan(v, 3, &ex), 0);
	assert_string_equal(nodes[0].inst.instance_id, "i-first");
	assert_string_equal(nodes[1].inst.instance_id, "i-second");
	assert_string_equal(nodes[2].inst.instance_id, "i-third");
	for (int i = 0; i < 3; i++) {
		assert_true(nodes[i].adopted && nodes[i].need_tags);
		goman_ec2_instance_clear(&nodes[i].inst);
	}
	goman_ec2_instances_clear(&ex);
}

static void test_plan_of_a_converged_cluster_launches_nothing(void **state)
{
	struct node nodes[2];
	struct node *v[2] = {&nodes[0], &nodes[1]};
	memset(nodes, 0, sizeof(nodes));
	for (int i = 0; i < 2; i++) {
		nodes[i].cluster = "demo";
		nodes[i].role = "agent";
		nodes[i].index = i;
	}
	struct goman_ec2_instances ex = {0};
	existing(&ex, "i-0", "agent", "0");
	existing(&ex, "i-1", "agent", "1");
	assert_int_equal(plan(v, 2, &ex), 0);
	assert_false(nodes[0].adopted || nodes[1].adopted);
	for (int i = 0; i < 2; i++)
		goman_ec2_instance_clear(&nodes[i].inst);
	goman_ec2_instances_clear(&ex);
	/* nothing exists: everything is missing */
	memset(nodes, 0, sizeof(nodes));
	nodes[0].cluster = nodes[1].cluster = "demo";
	nodes[0].role = nodes[1].role = "server";
	nodes[1].index = 1;
	assert_int_equal(plan(v, 2, &ex), 2);
}

static void test_plan_never_reuses_or_adopts_another_clusters_instances(void **state)
{
	struct node nodes[2];
	struct node *v[2] = {&nodes[0], &nodes[1]};
	memset(nodes, 0, sizeof(nodes));
	for (int i = 0; i < 2; i++) {
		nodes[i].cluster = "demo";
		nodes[i].role = "agent";
		nodes[i].index = i;
	}
	/* a describe answer that holds instances of other clusters (or of none) with this
	 * cluster's roles and indices, and a terminated one of ours */
	struct goman_ec2_instances ex = {0};
	existing_in(&ex, "i-prod0", "prod", "agent", "0");
	existing_in(&ex, "i-prodx", "prod", "agent", NULL);
	existing_in(&ex, "i-none", NULL, "agent", NULL);
	existing_in(&ex, "i-demo-prefix", "demo2", "agent", "1");
	existing(&ex, "i-dead", "agent", "1");
	snprintf(ex.v[4].state, sizeof(ex.v[4].state), "terminated");
	assert_int_equal(plan(v, 2, &ex), 2);
	assert_false(nodes[0].reused || nodes[0].adopted);
	assert_false(nodes[1].reused || nodes[1].adopted);
	assert_string_equal(nodes[0].inst.instance_id, "");
	/* its own instance among them is still taken */
	existing(&ex, "i-demo0", "agent", NULL);
	assert_int_equal(plan(v, 2, &ex), 1);
	assert_true(nodes[0].adopted);
	assert_string_equal(nodes[0].inst.instance_id, "i-demo0");
	for (int i = 0; i < 2; i++)
		goman_ec2_instance_clear(&nodes[i].inst);
	goman_ec2_instances_clear(&ex);
}

static void test_plan_refuses_a_listing_filter_without_its_cluster_tag(void **state)
{
	struct node n;
	struct node *v[1] = {&n};
	memset(&n, 0, sizeof(n));
	n.cluster = "demo";
	n.role = "agent";
	n.index = 0;
	struct goman_ec2_instances ex = {0};
	existing(&ex, "i-0", "agent", NULL);
	struct goman_err e = GOMAN_ERR_INIT;
	size_t missing = 99;
	/* what a failed first add leaves: the states without the cluster tag */
	struct goman_kvs half = {0};
	assert_int_equal(gm_prov_filter(&half, "demo", true), 0);
	struct goman_kvs f = {0};
	for (size_t i = 1; i < half.n; i++)
		assert_int_equal(goman_kvs_add(&f, half.v[i].name, half.v[i].value), 0);
	goman_err_clear(&e);
	assert_int_equal(gm_prov_plan(v, 1, &f, &ex, &missing, &e), -1);
	assert_string_equal(e.code, "Internal");
	assert_false(n.reused || n.adopted);
	assert_int_equal(missing, 99);
	/* a filter for another cluster, one without states, and no filter at all */
	goman_kvs_clear(&f);
	assert_int_equal(gm_prov_filter(&f, "prod", true), 0);
	assert_int_equal(gm_prov_plan(v, 1, &f, &ex, &missing, &e), -1);
	goman_kvs_clear(&f);
	assert_int_equal(gm_prov_filter(&f, "demo", false), 0);
	assert_int_equal(gm_prov_plan(v, 1, &f, &ex, &missing, &e), -1);
	assert_int_equal(gm_prov_plan(v, 1, NULL, &ex, &missing, &e), -1);
	assert_false(n.reused);
	goman_kvs_clear(&f);
	goman_kvs_clear(&half);
	goman_ec2_instances_clear(&ex);
}

static void node_free_fields(struct node *n)
{
	cJSON_Delete(n->in);
	free(n->labels_tag);
	free(n->taints_tag);
	free(n->sig);
	goman_ec2_instance_clear(&n->inst);
}

static int spec(const char *json, struct node *n, struct goman_err *e)
{
	struct goman_provision_opts o = {.agent_type = "t3.small", .cluster = "dflt"};
	memset(n, 0, sizeof(*n));
	n->in = cJSON_Parse(json);
	assert_non_null(n->in);
	goman_err_clear(e);
	return gm_prov_spec(&o, n, e);
}

static void test_specs_are_validated_and_filled_from_defaults(void **state)
{
	struct node n;
	struct goman_err e = GOMAN_ERR_INIT;
	assert_int_equal(spec("{\"role\":\"agent\"}", &n, &e), 0);
	assert_string_equal(n.cluster, "dflt");
	assert_string_equal(n.type, "t3.small");
	assert_int_equal(n.index, -1);
	assert_string_equal(n.ami, GOMAN_AL2023_X86);
	node_free_fields(&n);
	assert_int_equal(spec("{\"cluster\":\"c\",\"role\":\"server\",\"name\":\"c-server-3\","
			      "\"instance_type\":\"m7g.large\"}",
			      &n, &e),
			 0);
	assert_int_equal(n.index, 3);
	assert_string_equal(n.ami, GOMAN_AL2023_ARM);
	node_free_fields(&n);
	const char *bad[] = {
		"{\"cluster\":\"Caps\",\"role\":\"agent\"}",
		"{\"cluster\":\"c\",\"role\":\"queen\"}",
		"{\"cluster\":\"c\",\"role\":\"agent\",\"index\":-1}",
		"{\"cluster\":\"c\",\"role\":\"agent\",\"index\":1.5}",
		"{\"cluster\":\"c\",\"role\":\"agent\",\"name\":\"c-agent-2\",\"index\":1}",
		"{\"cluster\":\"c\",\"role\":\"agent\",\"name\":\"other-agent-2\"}",
		"{\"cluster\":\"c\",\"role\":\"agent\",\"tags\":{\"goman:name\":\"x\"}}",
		"{\"cluster\":\"c\",\"role\":\"agent\",\"tags\":{\"n\":1}}",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(spec(bad[i], &n, &e), -1);
		assert_string_equal(e.code, "BadInput");
		assert_int_equal(e.cls, GOMAN_CLASS_BAD_INPUT);
		node_free_fields(&n);
	}
}

static void test_cluster_names_and_default_ami_arch(void **state)
{
	assert_true(goman_cluster_name_ok("a"));
	assert_true(goman_cluster_name_ok("demo-1"));
	assert_false(goman_cluster_name_ok("1demo"));
	assert_false(goman_cluster_name_ok("de_mo"));
	assert_false(goman_cluster_name_ok(""));
	assert_true(goman_cluster_name_ok("a234567890123456789012345678901234567890"));
	assert_false(goman_cluster_name_ok("a2345678901234567890123456789012345678901"));
	assert_string_equal(goman_default_ami_for("t4g.small"), GOMAN_AL2023_ARM);
	assert_string_equal(goman_default_ami_for("c6gn.large"), GOMAN_AL2023_ARM);
	assert_string_equal(goman_default_ami_for("g5.xlarge"), GOMAN_AL2023_X86);
	assert_string_equal(goman_default_ami_for("m7i-flex.large"), GOMAN_AL2023_X86);
	assert_string_equal(goman_default_ami_for("t3.medium"), GOMAN_AL2023_X86);
}

static void test_instance_summary_from_a_converted_reply(void **state)
{
	cJSON *reply = cJSON_Parse(
		"{\"reservationSet\":[{\"instancesSet\":[{\"instanceId\":\"i-1\",\"instanceState\":"
		"{\"code\":\"16\",\"name\":\"running\"},\"privateIpAddress\":\"10.0.0.5\","
		"\"ipAddress\":\"54.1.2.3\",\"placement\":{\"availabilityZone\":\"us-east-1a\"},"
		"\"instanceType\":\"t3.medium\",\"amiLaunchIndex\":\"4\",\"tagSet\":[{\"key\":"
		"\"goman:role\",\"value\":\"agent\"}]}]}],\"nextToken\":\"x\"}");
	struct goman_ec2_instances l = {0};
	assert_int_equal(goman_ec2_instances_from_reply(reply, &l), 1);
	assert_string_equal(l.v[0].state, "running");
	assert_string_equal(l.v[0].public_ip, "54.1.2.3");
	assert_string_equal(l.v[0].az, "us-east-1a");
	assert_int_equal(l.v[0].launch_index, 4);
	assert_string_equal(goman_ec2_tag(&l.v[0], "goman:role"), "agent");
	assert_null(goman_ec2_tag(&l.v[0], "goman:name"));
	cJSON *o = cJSON_CreateObject();
	assert_int_equal(goman_ec2_instance_to_json(&l.v[0], o), 0);
	assert_string_equal(cJSON_GetObjectItem(o, "private_ip")->valuestring, "10.0.0.5");
	cJSON_Delete(o);
	cJSON_Delete(reply);
	goman_ec2_instances_clear(&l);
}

static void test_an_instance_address_that_is_not_an_ip_is_dropped(void **state)
{
	cJSON *reply = cJSON_Parse(
		"{\"instancesSet\":[{\"instanceId\":\"i-1\",\"instanceState\":{\"name\":"
		"\"running\"},"
		"\"privateIpAddress\":\"10.0.0.5\\nExecStart=/bin/sh -c 'id'\\nX=\","
		"\"ipAddress\":\"-oProxyCommand=id\"},{\"instanceId\":\"i-2\",\"instanceState\":"
		"{\"name\":\"running\"},\"privateIpAddress\":\"fd00::2\"}]}");
	struct goman_ec2_instances l = {0};
	assert_int_equal(goman_ec2_instances_from_reply(reply, &l), 2);
	assert_string_equal(l.v[0].private_ip, "");
	assert_string_equal(l.v[0].public_ip, "");
	assert_string_equal(l.v[1].private_ip, "fd00::2");
	cJSON_Delete(reply);
	goman_ec2_instances_clear(&l);
}

static void sn(struct goman_ec2_subnet *v, int i, const char *id, const char *az)
{
	memset(&v[i], 0, sizeof(v[i]));
	snprintf(v[i].subnet_id, sizeof(v[i].subnet_id), "%s", id);
	snprintf(v[i].az, sizeof(v[i].az), "%s", az);
}

static void test_place_spreads_servers_over_distinct_azs_and_round_robins_agents(void **state)
{
	struct goman_ec2_subnet subnets[3];
	sn(subnets, 0, "subnet-a", "us-east-1a");
	sn(subnets, 1, "subnet-b", "us-east-1b");
	sn(subnets, 2, "subnet-c", "us-east-1c");
	struct node nodes[7];
	struct node *v[7];
	memset(nodes, 0, sizeof(nodes));
	for (int i = 0; i < 7; i++) {
		nodes[i].role = i < 3 ? "server" : "agent";
		nodes[i].index = i < 3 ? i : i - 3;
		v[i] = &nodes[i];
	}
	gm_prov_place(v, 7, subnets, 3);
	assert_string_equal(nodes[0].az, "us-east-1a");
	assert_string_equal(nodes[1].az, "us-east-1b");
	assert_string_equal(nodes[2].az, "us-east-1c");
	assert_string_equal(nodes[2].subnet, "subnet-c");
	/* agents: a, b, c, then a again */
	assert_string_equal(nodes[3].az, "us-east-1a");
	assert_string_equal(nodes[4].az, "us-east-1b");
	assert_string_equal(nodes[5].az, "us-east-1c");
	assert_string_equal(nodes[6].az, "us-east-1a");
	/* the same input places the same way (a re-run agrees) */
	struct node again[7];
	struct node *w[7];
	memcpy(again, nodes, sizeof(nodes));
	for (int i = 0; i < 7; i++) {
		again[i].subnet[0] = again[i].az[0] = '\0';
		w[i] = &again[i];
	}
	gm_prov_place(w, 7, subnets, 3);
	for (int i = 0; i < 7; i++)
		assert_string_equal(again[i].subnet, nodes[i].subnet);
}

static void test_place_fills_the_azs_existing_nodes_leave_and_keeps_named_subnets(void **state)
{
	struct goman_ec2_subnet subnets[3];
	sn(subnets, 0, "subnet-a", "us-east-1a");
	sn(subnets, 1, "subnet-b", "us-east-1b");
	sn(subnets, 2, "subnet-c", "us-east-1c");
	struct node nodes[4];
	struct node *v[4];
	memset(nodes, 0, sizeof(nodes));
	for (int i = 0; i < 4; i++) {
		nodes[i].role = "server";
		nodes[i].index = i;
		v[i] = &nodes[i];
	}
	/* server-0 runs in 1a, server-1 in 1c; server-2 is new, server-3 names its subnet */
	nodes[0].reused = nodes[1].reused = true;
	snprintf(nodes[0].inst.az, sizeof(nodes[0].inst.az), "us-east-1a");
	snprintf(nodes[1].inst.az, sizeof(nodes[1].inst.az), "us-east-1c");
	snprintf(nodes[3].subnet, sizeof(nodes[3].subnet), "subnet-mine");
	gm_prov_place(v, 4, subnets, 3);
	assert_string_equal(nodes[2].az, "us-east-1b");
	assert_string_equal(nodes[2].subnet, "subnet-b");
	assert_string_equal(nodes[3].subnet, "subnet-mine");
	assert_string_equal(nodes[0].subnet, ""); /* reused: left where it runs */
	/* no subnets known: nothing placed, EC2 chooses */
	nodes[2].subnet[0] = nodes[2].az[0] = '\0';
	gm_prov_place(v, 4, subnets, 0);
	assert_string_equal(nodes[2].subnet, "");
}

static void
test_fallback_to_the_next_type_only_on_capacity_and_only_while_types_remain(void **state)
{
	struct goman_err e = GOMAN_ERR_INIT;
	goman_err_set(&e, GOMAN_ESERVICE, GOMAN_CLASS_CLIENT, "InsufficientInstanceCapacity",
		      "no capacity");
	assert_true(gm_prov_fallback(&e, 0, 2));
	assert_false(gm_prov_fallback(&e, 1, 2)); /* the last type: the nodes' error */
	assert_false(gm_prov_fallback(&e, 0, 1));
	goman_err_set(&e, GOMAN_ESERVICE, GOMAN_CLASS_CLIENT, "Unsupported",
		      "not supported in your requested Availability Zone");
	assert_true(gm_prov_fallback(&e, 1, 3));
	const char *other[] = {"InvalidParameterValue", "RequestLimitExceeded", "InternalError",
			       "UnauthorizedOperation", ""};
	for (size_t i = 0; i < sizeof(other) / sizeof(other[0]); i++) {
		goman_err_set(&e, GOMAN_ESERVICE, GOMAN_CLASS_CLIENT, other[i], "x");
		assert_false(gm_prov_fallback(&e, 0, 3));
	}
	goman_err_clear(&e);
	assert_false(gm_prov_fallback(&e, 0, 3));
	assert_false(gm_prov_fallback(NULL, 0, 3));
}

static void test_specs_read_group_types_spot_volume_labels_and_taints(void **state)
{
	struct node n;
	struct goman_err e = GOMAN_ERR_INIT;
	assert_int_equal(
		spec("{\"cluster\":\"c\",\"role\":\"agent\",\"group\":\"workers\","
		     "\"types\":[\"t3.large\",\"t3a.large\"],\"spot\":true,\"volume_gb\":40,"
		     "\"labels\":{\"tier\":\"web\",\"app\":\"x\"},"
		     "\"taints\":[\"dedicated=web:NoSchedule\",\"a:NoExecute\"],\"via\":\"ssh\"}",
		     &n, &e),
		0);
	assert_string_equal(n.group, "workers");
	assert_string_equal(n.type, "t3.large");
	assert_int_equal(n.ntypes, 2);
	assert_string_equal(n.types[1], "t3a.large");
	assert_true(n.spot && n.has_spot && n.explicit_type && n.explicit_group);
	assert_int_equal(n.volume_gb, 40);
	assert_string_equal(n.labels_tag, "app=x,tier=web"); /* sorted: order is no drift */
	assert_string_equal(n.taints_tag, "a:NoExecute,dedicated=web:NoSchedule");
	assert_string_equal(n.via, "ssh");
	node_free_fields(&n);
	/* defaults: the group of the role, the default type (not explicit), nothing else */
	assert_int_equal(spec("{\"cluster\":\"c\",\"role\":\"server\"}", &n, &e), 0);
	assert_string_equal(n.group, "server");
	assert_false(n.explicit_type || n.explicit_group || n.has_spot);
	assert_null(n.labels_tag);
	assert_int_equal(n.ntypes, 1);
	node_free_fields(&n);
	/* instance_type first, then the list's others, once each */
	assert_int_equal(
		spec("{\"cluster\":\"c\",\"role\":\"agent\",\"instance_type\":\"m5.large\","
		     "\"types\":[\"t3.large\",\"m5.large\"]}",
		     &n, &e),
		0);
	assert_int_equal(n.ntypes, 2);
	assert_string_equal(n.types[0], "m5.large");
	assert_string_equal(n.types[1], "t3.large");
	node_free_fields(&n);
	const char *bad[] = {
		"{\"cluster\":\"c\",\"role\":\"agent\",\"group\":\"Bad Group\"}",
		"{\"cluster\":\"c\",\"role\":\"agent\",\"types\":[]}",
		"{\"cluster\":\"c\",\"role\":\"agent\",\"types\":\"t3.large\"}",
		"{\"cluster\":\"c\",\"role\":\"agent\",\"spot\":\"yes\"}",
		"{\"cluster\":\"c\",\"role\":\"agent\",\"volume_gb\":4}",
		"{\"cluster\":\"c\",\"role\":\"agent\",\"volume_gb\":40.5}",
		"{\"cluster\":\"c\",\"role\":\"agent\",\"labels\":{\"a\":\"x,y\"}}",
		"{\"cluster\":\"c\",\"role\":\"agent\",\"labels\":[\"a\"]}",
		"{\"cluster\":\"c\",\"role\":\"agent\",\"taints\":[\"noeffect\"]}",
		"{\"cluster\":\"c\",\"role\":\"agent\",\"via\":\"telnet\"}",
		"{\"cluster\":\"c\",\"role\":\"agent\",\"subnets\":[\"sg-1\"]}",
		"{\"cluster\":\"c\",\"role\":\"agent\",\"subnets\":[]}",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(spec(bad[i], &n, &e), -1);
		assert_string_equal(e.code, "BadInput");
		node_free_fields(&n);
	}
}

static void test_labels_too_long_for_one_tag_become_a_digest_that_still_compares(void **state)
{
	cJSON *a = cJSON_CreateObject(), *b = cJSON_CreateObject();
	char k[16], v[64];
	memset(v, 'x', 60);
	v[60] = '\0';
	for (int i = 0; i < 10; i++) {
		snprintf(k, sizeof(k), "k%d", i);
		cJSON_AddStringToObject(a, k, v);
		cJSON_AddStringToObject(b, k, i == 9 ? "y" : v);
	}
	char *ca = gm_prov_compact(a), *cb = gm_prov_compact(b), *ca2 = gm_prov_compact(a);
	assert_int_equal(strncmp(ca, "sha256:", 7), 0);
	assert_int_equal(strlen(ca), 7 + 64);
	assert_string_equal(ca, ca2);
	assert_string_not_equal(ca, cb);
	free(ca);
	free(cb);
	free(ca2);
	cJSON_Delete(a);
	cJSON_Delete(b);
	cJSON *empty = cJSON_CreateObject();
	char *ce = gm_prov_compact(empty);
	assert_string_equal(ce, "");
	free(ce);
	cJSON_Delete(empty);
}

static void test_drift_names_type_ami_group_labels_and_spot_but_not_a_listed_fallback(void **state)
{
	struct node n;
	struct goman_err e = GOMAN_ERR_INIT;
	assert_int_equal(spec("{\"cluster\":\"c\",\"role\":\"agent\",\"group\":\"workers\","
			      "\"types\":[\"m5.large\",\"m5a.large\"],\"ami\":\"ami-new\","
			      "\"labels\":{\"tier\":\"web\"},\"spot\":true}",
			      &n, &e),
			 0);
	snprintf(n.ami_id, sizeof(n.ami_id), "ami-new");
	n.reused = true;
	snprintf(n.inst.state, sizeof(n.inst.state), "running");
	snprintf(n.inst.type, sizeof(n.inst.type), "m5a.large"); /* the fallback: no drift */
	snprintf(n.inst.image_id, sizeof(n.inst.image_id), "ami-new");
	snprintf(n.inst.lifecycle, sizeof(n.inst.lifecycle), "spot");
	goman_kvs_add(&n.inst.tags, "goman:group", "workers");
	goman_kvs_add(&n.inst.tags, "goman:labels", "tier=web");
	assert_null(gm_prov_drift(&n));
	snprintf(n.inst.type, sizeof(n.inst.type), "t3.medium");
	snprintf(n.inst.image_id, sizeof(n.inst.image_id), "ami-old");
	n.inst.lifecycle[0] = '\0';
	goman_kvs_clear(&n.inst.tags);
	goman_kvs_add(&n.inst.tags, "goman:group", "agent");
	cJSON *d = gm_prov_drift(&n);
	assert_non_null(d);
	char *txt = cJSON_PrintUnformatted(d);
	assert_string_equal(txt, "{\"instance_type\":{\"want\":[\"m5.large\",\"m5a.large\"],"
				 "\"have\":\"t3.medium\"},\"ami\":{\"want\":\"ami-new\",\"have\":"
				 "\"ami-old\"},\"group\":{\"want\":\"workers\",\"have\":\"agent\"},"
				 "\"labels\":{\"want\":\"tier=web\",\"have\":\"\"},"
				 "\"spot\":{\"want\":true,\"have\":false}}");
	free(txt);
	cJSON_Delete(d);
	node_free_fields(&n);
	/* defaults are not wishes: a default type or group never drifts (spec() gives agents
	 * an --agent-type, servers none) */
	assert_int_equal(spec("{\"cluster\":\"c\",\"role\":\"server\"}", &n, &e), 0);
	snprintf(n.inst.type, sizeof(n.inst.type), "c7i.4xlarge");
	snprintf(n.inst.state, sizeof(n.inst.state), "running");
	goman_kvs_add(&n.inst.tags, "goman:group", "workers");
	assert_null(gm_prov_drift(&n));
	node_free_fields(&n);
}

struct paced {
	const char *sent[8], *failed[8];
	int nsent, nfailed;
};

static int pace_send(void *item, void *ctx, struct goman_err *e)
{
	struct paced *p = ctx;
	if (!strcmp(item, "refused"))
		return goman_err_set(e, GOMAN_EIO, GOMAN_CLASS_NONE, "Refused", "no");
	p->sent[p->nsent++] = item;
	return 0;
}

static void pace_fail(void *item, void *ctx, const struct goman_err *e)
{
	struct paced *p = ctx;
	assert_string_equal(e->code, "Refused");
	p->failed[p->nfailed++] = item;
}

/* A pacer on a new loop with the items queued; returns the loop. */
static struct goman_http *pace_start(struct gm_pace *pace, struct paced *seen, double rate,
				     double burst, int inflight, char **items, size_t n)
{
	struct goman_http *h = goman_http_new(NULL, NULL);
	assert_non_null(h);
	gm_pace_init(pace, h, rate, burst, inflight, pace_send, pace_fail, seen);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(gm_pace_push(pace, items[i]), 0);
	return h;
}

static void test_pacing_keeps_to_the_burst_and_the_calls_in_flight(void **st)
{
	(void)st;
	struct gm_pace pace;
	struct paced seen = {0};
	/* 1 per second after a burst of 3, at most 2 in flight */
	static char *items[] = {"a", "refused", "b", "c", "d", "e"};
	struct goman_http *h = pace_start(&pace, &seen, 1.0, 3.0, 2, items, 6);
	gm_pace_pump(&pace);
	/* a, the refused one (its token spent, not in flight), b: two in flight */
	assert_int_equal(seen.nsent, 2);
	assert_int_equal(seen.nfailed, 1);
	assert_string_equal(seen.failed[0], "refused");
	assert_int_equal(pace.inflight, 2);
	assert_int_equal(pace.n, 3);
	assert_int_equal(pace.timer, 0); /* nothing could go anyway: no timer */
	gm_pace_done(&pace, 1);
	/* the other took three attempts: its two retries spent tokens of the server's bucket */
	double before = pace.tokens;
	gm_pace_done(&pace, 3);
	assert_true(pace.tokens <= before - 2.0 + 1e-9);
	gm_pace_pump(&pace);
	/* the burst is spent: c waits for a token, on a timer */
	assert_int_equal(seen.nsent, 2);
	assert_int_equal(pace.n, 3);
	assert_true(pace.timer > 0);
	gm_pace_clear(&pace);
	assert_int_equal(pace.timer, 0);
	goman_http_free(h);
}

static void test_promoted_items_go_first_in_promotion_order(void **st)
{
	(void)st;
	struct gm_pace pace;
	struct paced seen = {0};
	/* one token: nothing goes until the bucket refills, so the order is the queue's */
	static char *items[] = {"a", "b", "c", "d", "e"};
	struct goman_http *h = pace_start(&pace, &seen, 1000.0, 1.0, 8, items, 5);
	gm_pace_promote(&pace, items[3]); /* d runs first: it goes first */
	gm_pace_promote(&pace, items[1]); /* then b */
	gm_pace_promote(&pace, items[3]); /* promoted twice: still once, still first */
	gm_pace_promote(&pace, "not queued");
	assert_int_equal(pace.n, 5);
	gm_pace_pump(&pace);
	assert_int_equal(seen.nsent, 1);
	assert_string_equal(seen.sent[0], "d");
	for (int i = 0; i < 200 && seen.nsent < 5; i++)
		goman_http_run(h, 5, -1);
	assert_int_equal(seen.nsent, 5);
	assert_string_equal(seen.sent[1], "b");
	assert_string_equal(seen.sent[2], "a");
	assert_string_equal(seen.sent[3], "c");
	assert_string_equal(seen.sent[4], "e");
	assert_int_equal(pace.urgent, 0);
	gm_pace_clear(&pace);
	goman_http_free(h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_promoted_items_go_first_in_promotion_order),
		cmocka_unit_test(test_poller_hands_out_each_instance_the_round_it_runs),
		cmocka_unit_test(test_poller_shares_round_calls_over_the_pending_set),
		cmocka_unit_test(test_poller_deadline_and_failed_rounds_become_errors),
		cmocka_unit_test(test_poll_interval_grows_with_the_pending_count),
		cmocka_unit_test(test_filters_group_values_of_one_name),
		cmocka_unit_test(test_plan_reuses_by_index_adopts_unnamed_and_counts_missing),
		cmocka_unit_test(test_unnamed_instances_are_adopted_in_launch_order),
		cmocka_unit_test(test_plan_of_a_converged_cluster_launches_nothing),
		cmocka_unit_test(test_plan_never_reuses_or_adopts_another_clusters_instances),
		cmocka_unit_test(test_plan_refuses_a_listing_filter_without_its_cluster_tag),
		cmocka_unit_test(test_specs_are_validated_and_filled_from_defaults),
		cmocka_unit_test(test_cluster_names_and_default_ami_arch),
		cmocka_unit_test(test_instance_summary_from_a_converted_reply),
		cmocka_unit_test(test_an_instance_address_that_is_not_an_ip_is_dropped),
		cmocka_unit_test(
			test_place_spreads_servers_over_distinct_azs_and_round_robins_agents),
		cmocka_unit_test(
			test_place_fills_the_azs_existing_nodes_leave_and_keeps_named_subnets),
		cmocka_unit_test(
			test_fallback_to_the_next_type_only_on_capacity_and_only_while_types_remain),
		cmocka_unit_test(test_specs_read_group_types_spot_volume_labels_and_taints),
		cmocka_unit_test(
			test_labels_too_long_for_one_tag_become_a_digest_that_still_compares),
		cmocka_unit_test(
			test_drift_names_type_ami_group_labels_and_spot_but_not_a_listed_fallback),
		cmocka_unit_test(test_pacing_keeps_to_the_burst_and_the_calls_in_flight),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
