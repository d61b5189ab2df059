/*
 * goman-provision - make a cluster's EC2 nodes exist and stream one node record per node
 * as it reaches the wait state (plumbing). Flags and the input loop only: the engine is
 * libgoman/provision.c, the EC2 helpers libgoman/ec2.c. See goman-provision(1).
 */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cjson/cJSON.h>
#include "goman/aws.h"
#include "goman/clock.h"
#include "goman/config.h"
#include "goman/idem.h"
#include "goman/jsonl.h"
#include "goman/log.h"
#include "goman/provision.h"
#include "cli/cli.h"
#include "cli/cli_flags.h"

static int write_failed;

static void usage(FILE *f)
{
	fputs("usage: goman-provision --cluster NAME --servers N --agents M [options]\n"
	      "       goman-provision [options] <node-specs.jsonl\n"
	      "Makes the cluster's EC2 nodes exist (reusing what is there) and writes one node\n"
	      "record per node as it reaches the wait state.\n"
	      "  --cluster NAME          cluster (default for input lines)\n"
	      "  --servers N --agents M  node specs from flags (stdin is not read)\n"
	      "  --type T                instance type for both roles (default t3.medium)\n"
	      "  --server-type T --agent-type T\n"
	      "  --ami ID|ssm:/path      default: the AL2023 SSM parameter for the arch\n"
	      "  --subnet ID  --security-group ID  --instance-profile NAME (default goman-node)\n"
	      "  --key-name NAME  --ssh-cidr CIDR  --api-cidr CIDR  --tag K=V (repeatable)\n"
	      "  --via ssm|ssh|local     how K3s gets installed: the goman:via tag\n"
	      "  --wait running|status-ok|none (default running)  --timeout DUR (default 10m)\n"
	      "  --poll-interval DUR  --poll-max DUR   describe round interval bounds\n"
	      "  --region R  --env PROFILE  --dry-run  --show-config  --help  --version\n"
	      "Exit: 0 all ok, 1 some failed, 64 usage, 65 bad input lines, 69 unavailable,\n"
	      "75 temporary failure. See goman-provision(1).\n",
	      f);
}

static void emit(const cJSON *rec, const struct goman_err *err, void *ud)
{
	(void)err;
	(void)ud;
	struct goman_err e = GOMAN_ERR_INIT;
	if (!write_failed && goman_jsonl_write(1, rec, &e) != 0) {
		goman_log(GOMAN_LOG_ERROR, "PROVISION", "cannot write output: %s", e.message);
		write_failed = 1;
	}
}

/* ---- flags ----------------------------------------------------------------------------- */

struct args {
	struct goman_provision_opts po;
	struct goman_kvs tags;
	struct goman_config cfg;
	const char *region, *type;
	long servers, agents;
	bool show;
};

static int die_usage(const char *msg, const char *arg)
{
	if (arg)
		return cli_usage_error("%s: %s", msg, cli_shown(arg)), -1;
	return cli_usage_error("%s", msg), -1;
}

static int count_arg(const char *flag, const char *v, long *out)
{
	char msg[64];
	snprintf(msg, sizeof(msg), "--%s wants a count", flag);
	return cli_parse_long(v, 0, 10000, out) == 0 ? 0 : die_usage(msg, v);
}

/* a positive duration, or the flag's message */
static int dur_arg(const char *flag, const char *v, int64_t *ms)
{
	char msg[64];
	snprintf(msg, sizeof(msg), "--%s wants a duration", flag);
	if (goman_parse_duration_ms(v, ms) || *ms <= 0)
		return die_usage(msg, v);
	return 0;
}

/* one setter per flag: p is the struct args */
#define A ((struct args *)p)
static int f_cluster(void *p, const char *v)
{
	A->po.cluster = v;
	return 0;
}
static int f_servers(void *p, const char *v)
{
	return count_arg("servers", v, &A->servers);
}
static int f_agents(void *p, const char *v)
{
	return count_arg("agents", v, &A->agents);
}
static int f_type(void *p, const char *v)
{
	A->type = v;
	return 0;
}
static int f_stype(void *p, const char *v)
{
	A->po.server_type = v;
	return 0;
}
static int f_atype(void *p, const char *v)
{
	A->po.agent_type = v;
	return 0;
}
static int f_ami(void *p, const char *v)
{
	A->po.ami = v;
	return 0;
}
static int f_subnet(void *p, const char *v)
{
	A->po.subnet = v;
	return 0;
}
static int f_sg(void *p, const char *v)
{
	A->po.security_group = v;
	return 0;
}
static int f_prof(void *p, const char *v)
{
	A->po.instance_profile = v;
	return 0;
}
static int f_region(void *p, const char *v)
{
	A->region = v;
	return 0;
}
static int f_key(void *p, const char *v)
{
	A->po.key_name = v;
	return 0;
}
static int f_ssh(void *p, const char *v)
{
	A->po.ssh_cidr = v;
	return 0;
}
static int f_api(void *p, const char *v)
{
	A->po.api_cidr = v;
	return 0;
}
static int f_dry(void *p, const char *v)
{
	(void)v;
	A->po.dry_run = true;
	return 0;
}
static int f_show(void *p, const char *v)
{
	(void)v;
	A->show = true;
	return 0;
}
static int f_timeout(void *p, const char *v)
{
	return dur_arg("timeout", v, &A->po.timeout_ms);
}
static int f_pmin(void *p, const char *v)
{
	return dur_arg("poll-interval", v, &A->po.poll_min_ms);
}
static int f_pmax(void *p, const char *v)
{
	return dur_arg("poll-max", v, &A->po.poll_max_ms);
}
static int f_tag(void *p, const char *v)
{
	const char *eq = strchr(v, '=');
	if (!eq || eq == v || !strncmp(v, "goman:", 6))
		return die_usage("--tag wants K=V (goman: keys are goman's own)", v);
	goman_kvs_addn(&A->tags, v, (size_t)(eq - v), eq + 1, strlen(eq + 1));
	return 0;
}
static int f_env(void *p, const char *v)
{
	struct goman_err err = GOMAN_ERR_INIT;
	if (goman_config_set(&A->cfg, "profile", v, GOMAN_SRC_FLAG, &err) != 0)
		return die_usage(err.message, NULL);
	return 0;
}
static int f_wait(void *p, const char *v)
{
	if (!strcmp(v, "none"))
		A->po.wait_none = true;
	else if (goman_ec2_wait_parse(v, &A->po.wait) != 0 || A->po.wait > GOMAN_EC2_WAIT_STATUS_OK)
		return die_usage("--wait wants running, status-ok or none", v);
	return 0;
}
static int f_via(void *p, const char *v)
{
	if (strcmp(v, "ssm") && strcmp(v, "ssh") && strcmp(v, "local"))
		return die_usage("--via wants ssm, ssh or local", v);
	A->po.via = v;
	return 0;
}

#undef A

static const struct cli_flag flags[] = {
	{"cluster", required_argument, f_cluster},
	{"servers", required_argument, f_servers},
	{"agents", required_argument, f_agents},
	{"type", required_argument, f_type},
	{"server-type", required_argument, f_stype},
	{"agent-type", required_argument, f_atype},
	{"ami", required_argument, f_ami},
	{"subnet", required_argument, f_subnet},
	{"security-group", required_argument, f_sg},
	{"instance-profile", required_argument, f_prof},
	{"tag", required_argument, f_tag},
	{"region", required_argument, f_region},
	{"env", required_argument, f_env},
	{"wait", required_argument, f_wait},
	{"timeout", required_argument, f_timeout},
	{"key-name", required_argument, f_key},
	{"ssh-cidr", required_argument, f_ssh},
	{"api-cidr", required_argument, f_api},
	{"dry-run", no_argument, f_dry},
	{"show-config", no_argument, f_show},
	{"poll-interval", required_argument, f_pmin},
	{"poll-max", required_argument, f_pmax},
	{"via", required_argument, f_via},
};

/* ---- the run --------------------------------------------------------------------------- */

/* The specs from stdin; a bad line is an error record at once. */
static void read_specs(cJSON *specs, struct goman_outcome *outcome)
{
	struct goman_err err = GOMAN_ERR_INIT;
	struct goman_jsonl_reader *rd = goman_jsonl_reader_new(0, GOMAN_JSONL_DEFAULT_MAX);
	for (;;) {
		cJSON *rec = NULL;
		int r = goman_jsonl_next(rd, &rec, &err);
		if (r == GOMAN_JSONL_EOF || r == GOMAN_JSONL_IOERR || r == GOMAN_JSONL_AGAIN) {
			if (r == GOMAN_JSONL_IOERR)
				goman_log(GOMAN_LOG_ERROR, "PROVISION", "%s", err.message);
			break;
		}
		if (r == GOMAN_JSONL_BAD) {
			cJSON *er =
				goman_jsonl_error_record(NULL, NULL, &err, goman_jsonl_lineno(rd));
			goman_outcome_add(outcome, &err);
			if (er)
				emit(er, &err, NULL);
			cJSON_Delete(er);
			continue;
		}
		/* ours, not the input's: a "_line" of the record would be read first */
		cJSON_DeleteItemFromObjectCaseSensitive(rec, "_line");
		cJSON_AddNumberToObject(rec, "_line", (double)goman_jsonl_lineno(rd));
		cJSON_AddItemToArray(specs, rec);
	}
	goman_jsonl_reader_free(rd);
}

/* The engine over the specs; when it cannot start, every spec gets the setup error. */
static void provision(struct args *a, const cJSON *specs, struct goman_outcome *outcome)
{
	struct goman_err err = GOMAN_ERR_INIT;
	goman_err_clear(&err);
	struct goman_aws_opts ao = {.region = a->region, .config = &a->cfg};
	struct goman_aws *aws = goman_aws_new(&ao, &err);
	struct goman_idem_opts io = {.ttl_ms = a->cfg.idempotency_ttl_ms};
	struct goman_idem *idem = aws ? goman_idem_open(&io, &err) : NULL;
	if (!aws || !idem) {
		goman_err_classify(&err, NULL, NULL);
		goman_log(GOMAN_LOG_ERROR, "PROVISION", "%s", err.message);
		const cJSON *s;
		cJSON_ArrayForEach (s, specs) {
			cJSON *er = goman_jsonl_error_record(s, "provision", &err, 0);
			cJSON_DeleteItemFromObjectCaseSensitive(er, "_line");
			goman_outcome_add(outcome, &err);
			if (er)
				emit(er, &err, NULL);
			cJSON_Delete(er);
		}
	} else if (goman_provision_run(aws, idem, &a->po, specs, outcome, &err) != 0) {
		goman_log(GOMAN_LOG_ERROR, "PROVISION", "%s", err.message);
		outcome->failed++;
	}
	goman_idem_close(idem);
	goman_aws_free(aws);
}

int main(int argc, char **argv)
{
	struct args a = {.po = {.emit = emit}, .servers = -1, .agents = -1};
	struct goman_err err = GOMAN_ERR_INIT;
	int rc = GOMAN_EXIT_USAGE;
	goman_err_clear(&err);
	goman_config_init(&a.cfg);
	cli_init("goman-provision");
	signal(SIGPIPE, SIG_IGN);
	/* -c -s -a -t stand for the first four */
	int pf = cli_flags_parse(flags, sizeof(flags) / sizeof(flags[0]), "csat", false, &a, argc,
				 argv);
	if (pf == CLI_FLAGS_BAD || (pf == CLI_FLAGS_OK && optind < argc)) {
		usage(stderr);
		goto out;
	}
	if (pf == CLI_FLAGS_HELP || pf == CLI_FLAGS_VERSION) {
		if (pf == CLI_FLAGS_HELP)
			usage(stdout);
		else
			printf("goman-provision %s\n", GOMAN_VERSION);
		rc = 0;
		goto out;
	}
	if (pf != CLI_FLAGS_OK)
		goto out;
	if (a.type) {
		if (!a.po.server_type)
			a.po.server_type = a.type;
		if (!a.po.agent_type)
			a.po.agent_type = a.type;
	}
	a.po.tags = &a.tags;
	if (goman_config_load(&a.cfg, &err) != 0) {
		cli_usage_error("%s", err.message);
		goto out;
	}
	if (a.show) {
		goman_config_print(&a.cfg, stdout);
		rc = 0;
		goto out;
	}
	bool from_flags = a.servers >= 0 || a.agents >= 0;
	if (from_flags && !a.po.cluster) {
		die_usage("--servers/--agents need --cluster", NULL);
		goto out;
	}
	if (a.po.cluster && !goman_cluster_name_ok(a.po.cluster)) {
		die_usage("cluster names must match ^[a-z][a-z0-9-]{0,39}$", a.po.cluster);
		goto out;
	}
	goman_events_init("goman-provision");
	struct goman_outcome outcome = {0};
	cJSON *specs = cJSON_CreateArray();
	if (from_flags)
		goman_provision_specs(specs, a.po.cluster, a.servers < 0 ? 0 : a.servers,
				      a.agents < 0 ? 0 : a.agents);
	else
		read_specs(specs, &outcome);
	provision(&a, specs, &outcome);
	cJSON_Delete(specs);
	if (write_failed)
		outcome.output_errors++;
	rc = goman_exit_code(&outcome);
out:
	goman_kvs_clear(&a.tags);
	return rc;
}
