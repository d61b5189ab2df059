/*
 * goman-provision - make a cluster's EC2 nodes exist and stream one node record per node
 * as it reaches the wait state (plumbing). Flags and the input loop only: the engine is
 * libgoman/provision.c, the EC2 helpers libgoman/ec2.c. See goman-provision(1).
 */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
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

static int count_arg(const char *s, long *out)
{
	char *end;
	long v = strtol(s, &end, 10);
	if (end == s || *end || v < 0 || v > 10000)
		return -1;
	*out = v;
	return 0;
}

static int die_usage(const char *msg, const char *arg)
{
	fprintf(stderr, "goman-provision: %s%s%s\n", msg, arg ? ": " : "", arg ? arg : "");
	return GOMAN_EXIT_USAGE;
}

int main(int argc, char **argv)
{
	enum {
		O_STYPE = 256,
		O_ATYPE,
		O_AMI,
		O_SUBNET,
		O_SG,
		O_PROF,
		O_TAG,
		O_REGION,
		O_ENV,
		O_WAIT,
		O_TIMEOUT,
		O_KEY,
		O_SSH,
		O_API,
		O_DRY,
		O_SHOW,
		O_PMIN,
		O_PMAX,
		O_VIA
	};
	static const struct option longopts[] = {
		{"cluster", required_argument, NULL, 'c'},
		{"servers", required_argument, NULL, 's'},
		{"agents", required_argument, NULL, 'a'},
		{"type", required_argument, NULL, 't'},
		{"server-type", required_argument, NULL, O_STYPE},
		{"agent-type", required_argument, NULL, O_ATYPE},
		{"ami", required_argument, NULL, O_AMI},
		{"subnet", required_argument, NULL, O_SUBNET},
		{"security-group", required_argument, NULL, O_SG},
		{"instance-profile", required_argument, NULL, O_PROF},
		{"tag", required_argument, NULL, O_TAG},
		{"region", required_argument, NULL, O_REGION},
		{"env", required_argument, NULL, O_ENV},
		{"wait", required_argument, NULL, O_WAIT},
		{"timeout", required_argument, NULL, O_TIMEOUT},
		{"key-name", required_argument, NULL, O_KEY},
		{"ssh-cidr", required_argument, NULL, O_SSH},
		{"api-cidr", required_argument, NULL, O_API},
		{"dry-run", no_argument, NULL, O_DRY},
		{"show-config", no_argument, NULL, O_SHOW},
		{"poll-interval", required_argument, NULL, O_PMIN},
		{"poll-max", required_argument, NULL, O_PMAX},
		{"via", required_argument, NULL, O_VIA},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{NULL, 0, NULL, 0},
	};
	struct goman_provision_opts po = {.emit = emit};
	struct goman_kvs tags = {0};
	struct goman_config cfg;
	struct goman_err err = GOMAN_ERR_INIT;
	const char *region = NULL, *type = NULL;
	long servers = -1, agents = -1;
	bool show = false;
	int c, rc = GOMAN_EXIT_USAGE;
	goman_err_clear(&err);
	goman_config_init(&cfg);
	signal(SIGPIPE, SIG_IGN);
	while ((c = getopt_long(argc, argv, "c:s:a:t:hV", longopts, NULL)) != -1) {
		switch (c) {
		case 'c': po.cluster = optarg; break;
		case 's':
			if (count_arg(optarg, &servers))
				return die_usage("--servers wants a count", optarg);
			break;
		case 'a':
			if (count_arg(optarg, &agents))
				return die_usage("--agents wants a count", optarg);
			break;
		case 't': type = optarg; break;
		case O_STYPE: po.server_type = optarg; break;
		case O_ATYPE: po.agent_type = optarg; break;
		case O_AMI: po.ami = optarg; break;
		case O_SUBNET: po.subnet = optarg; break;
		case O_SG: po.security_group = optarg; break;
		case O_PROF: po.instance_profile = optarg; break;
		case O_TAG: {
			const char *eq = strchr(optarg, '=');
			if (!eq || eq == optarg || !strncmp(optarg, "goman:", 6))
				return die_usage("--tag wants K=V (goman: keys are goman's own)",
						 optarg);
			goman_kvs_addn(&tags, optarg, (size_t)(eq - optarg), eq + 1,
				       strlen(eq + 1));
			break;
		}
		case O_REGION: region = optarg; break;
		case O_ENV:
			if (goman_config_set(&cfg, "profile", optarg, GOMAN_SRC_FLAG, &err) != 0)
				return die_usage(err.message, NULL);
			break;
		case O_WAIT:
			if (!strcmp(optarg, "none"))
				po.wait_none = true;
			else if (goman_ec2_wait_parse(optarg, &po.wait) != 0 ||
				 po.wait > GOMAN_EC2_WAIT_STATUS_OK)
				return die_usage("--wait wants running, status-ok or none", optarg);
			break;
		case O_TIMEOUT:
			if (goman_parse_duration_ms(optarg, &po.timeout_ms) || po.timeout_ms <= 0)
				return die_usage("--timeout wants a duration", optarg);
			break;
		case O_PMIN:
			if (goman_parse_duration_ms(optarg, &po.poll_min_ms) || po.poll_min_ms <= 0)
				return die_usage("--poll-interval wants a duration", optarg);
			break;
		case O_PMAX:
			if (goman_parse_duration_ms(optarg, &po.poll_max_ms) || po.poll_max_ms <= 0)
				return die_usage("--poll-max wants a duration", optarg);
			break;
		case O_VIA:
			if (strcmp(optarg, "ssm") && strcmp(optarg, "ssh") &&
			    strcmp(optarg, "local"))
				return die_usage("--via wants ssm, ssh or local", optarg);
			po.via = optarg;
			break;
		case O_KEY: po.key_name = optarg; break;
		case O_SSH: po.ssh_cidr = optarg; break;
		case O_API: po.api_cidr = optarg; break;
		case O_DRY: po.dry_run = true; break;
		case O_SHOW: show = true; break;
		case 'h':
			usage(stdout);
			goman_kvs_clear(&tags);
			return 0;
		case 'V':
			printf("goman-provision %s\n", GOMAN_VERSION);
			goman_kvs_clear(&tags);
			return 0;
		default: usage(stderr); goto out;
		}
	}
	if (optind < argc) {
		usage(stderr);
		goto out;
	}
	if (type) {
		if (!po.server_type)
			po.server_type = type;
		if (!po.agent_type)
			po.agent_type = type;
	}
	po.tags = &tags;
	if (goman_config_load(&cfg, &err) != 0) {
		fprintf(stderr, "goman-provision: %s\n", err.message);
		goto out;
	}
	if (show) {
		goman_config_print(&cfg, stdout);
		rc = 0;
		goto out;
	}
	bool from_flags = servers >= 0 || agents >= 0;
	if (from_flags && !po.cluster) {
		die_usage("--servers/--agents need --cluster", NULL);
		goto out;
	}
	if (po.cluster && !goman_cluster_name_ok(po.cluster)) {
		die_usage("cluster names must match ^[a-z][a-z0-9-]{0,39}$", po.cluster);
		goto out;
	}

	goman_events_init("goman-provision");
	struct goman_outcome outcome = {0};
	cJSON *specs = cJSON_CreateArray();
	if (from_flags) {
		goman_provision_specs(specs, po.cluster, servers < 0 ? 0 : servers,
				      agents < 0 ? 0 : agents);
	} else {
		struct goman_jsonl_reader *rd = goman_jsonl_reader_new(0, GOMAN_JSONL_DEFAULT_MAX);
		for (;;) {
			cJSON *rec = NULL;
			int r = goman_jsonl_next(rd, &rec, &err);
			if (r == GOMAN_JSONL_EOF || r == GOMAN_JSONL_IOERR ||
			    r == GOMAN_JSONL_AGAIN) {
				if (r == GOMAN_JSONL_IOERR)
					goman_log(GOMAN_LOG_ERROR, "PROVISION", "%s", err.message);
				break;
			}
			if (r == GOMAN_JSONL_BAD) {
				cJSON *er = goman_jsonl_error_record(NULL, NULL, &err,
								     goman_jsonl_lineno(rd));
				goman_outcome_add(&outcome, &err);
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
	struct goman_aws_opts ao = {.region = region, .config = &cfg};
	struct goman_aws *aws = goman_aws_new(&ao, &err);
	struct goman_idem_opts io = {.ttl_ms = cfg.idempotency_ttl_ms};
	struct goman_idem *idem = aws ? goman_idem_open(&io, &err) : NULL;
	if (!aws || !idem) {
		/* every spec is a record: each gets the setup error */
		goman_err_classify(&err, NULL, NULL);
		goman_log(GOMAN_LOG_ERROR, "PROVISION", "%s", err.message);
		const cJSON *s;
		cJSON_ArrayForEach (s, specs) {
			cJSON *er = goman_jsonl_error_record(s, "provision", &err, 0);
			cJSON_DeleteItemFromObjectCaseSensitive(er, "_line");
			goman_outcome_add(&outcome, &err);
			if (er)
				emit(er, &err, NULL);
			cJSON_Delete(er);
		}
	} else if (goman_provision_run(aws, idem, &po, specs, &outcome, &err) != 0) {
		goman_log(GOMAN_LOG_ERROR, "PROVISION", "%s", err.message);
		outcome.failed++;
	}
	goman_idem_close(idem);
	goman_aws_free(aws);
	cJSON_Delete(specs);
	if (write_failed)
		outcome.output_errors++;
	rc = goman_exit_code(&outcome);
out:
	goman_kvs_clear(&tags);
	return rc;
}
