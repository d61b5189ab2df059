/*
 * goman-plan - what it would take to make a cluster match its node specs (one JSON line per
 * change and a summary), or the cluster file of a cluster that exists (--export). Changes
 * nothing (plumbing). Flags and the line loop only: the rules are libgoman/plan.c, the
 * listing ec2.c's paginated describe. See goman-plan(1).
 */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>
#include "goman/aws.h"
#include "goman/cluster_file.h"
#include "goman/config.h"
#include "goman/ec2.h"
#include "goman/jsonl.h"
#include "goman/log.h"
#include "goman/plan.h"
#include "goman/provision.h"

#define EXIT_PENDING 2 /* the plan holds changes */

static void usage(FILE *f)
{
	fputs("usage: goman-plan [--cluster NAME] [options] <node-specs.jsonl\n"
	      "       goman-plan --export --cluster NAME [options] >cluster.json\n"
	      "Compares node specs (goman-spec's output) with the cluster's instances and writes\n"
	      "one line per change (launch, terminate, drift, orphan), then a summary line.\n"
	      "Nothing is changed.\n"
	      "  --cluster NAME    the cluster (default: the specs' own)\n"
	      "  --export          write the cluster file (JSON) of the cluster as it exists\n"
	      "  --region R  --profile NAME  --env PROFILE  --help  --version\n"
	      "Exit: 0 nothing would change, 2 changes are pending, 1 error, 64 usage,\n"
	      "65 bad spec lines (nothing planned), 69 unavailable, 74 output failed,\n"
	      "75 temporary failure. See goman-plan(1).\n",
	      f);
}

static int die_usage(const char *msg, const char *arg)
{
	fprintf(stderr, "goman-plan: %s%s%s\n", msg, arg ? ": " : "", arg ? arg : "");
	return GOMAN_EXIT_USAGE;
}

static int put(const cJSON *o, struct goman_outcome *oc)
{
	struct goman_err e = GOMAN_ERR_INIT;
	if (oc->output_errors)
		return -1;
	if (!o || goman_jsonl_write(1, o, &e) != 0) {
		fprintf(stderr, "goman-plan: cannot write output: %s\n",
			o ? e.message : "out of memory");
		oc->output_errors++;
		return -1;
	}
	return 0;
}

/* Reads the specs; a bad line is an error record on stdout. -1 when stdin failed. */
static int read_specs(cJSON *specs, const char *cluster, struct goman_outcome *oc)
{
	struct goman_jsonl_reader *rd = goman_jsonl_reader_new(0, GOMAN_JSONL_DEFAULT_MAX);
	struct goman_err err = GOMAN_ERR_INIT;
	int rc = rd ? 0 : -1;
	while (rd) {
		cJSON *rec = NULL;
		goman_err_clear(&err);
		int r = goman_jsonl_next(rd, &rec, &err);
		if (r == GOMAN_JSONL_EOF)
			break;
		if (r == GOMAN_JSONL_IOERR || r == GOMAN_JSONL_AGAIN) {
			fprintf(stderr, "goman-plan: reading stdin: %s\n", err.message);
			rc = -1;
			break;
		}
		if (r == GOMAN_JSONL_RECORD && goman_plan_spec_check(rec, cluster, &err) == 0) {
			cJSON_AddItemToArray(specs, rec);
			continue;
		}
		cJSON *er = goman_jsonl_error_record(rec, NULL, &err, goman_jsonl_lineno(rd));
		fprintf(stderr, "goman-plan: line %ld: %s\n", goman_jsonl_lineno(rd), err.message);
		oc->bad_lines++;
		put(er, oc);
		cJSON_Delete(er);
		cJSON_Delete(rec);
	}
	goman_jsonl_reader_free(rd);
	return rc;
}

/* The cluster's live instances as plan.h's have objects. NULL with err on failure. */
static cJSON *list_cluster(struct goman_aws *aws, const char *cluster, struct goman_err *err)
{
	static const char *const live[] = {"pending", "running", "stopping", "stopped"};
	struct goman_kvs f = {0};
	struct goman_ec2_instances l = {0};
	cJSON *arr = NULL;
	int rc = goman_kvs_add(&f, "tag:goman:cluster", cluster);
	for (size_t i = 0; i < sizeof(live) / sizeof(*live); i++)
		rc |= goman_kvs_add(&f, "instance-state-name", live[i]);
	if (rc != 0)
		goman_err_set(err, GOMAN_ENOMEM, GOMAN_CLASS_NONE, "", "out of memory");
	else if (goman_ec2_describe(aws, &f, NULL, 0, &l, NULL, err) == 0 &&
		 !(arr = cJSON_CreateArray()))
		goman_err_set(err, GOMAN_ENOMEM, GOMAN_CLASS_NONE, "", "out of memory");
	for (size_t i = 0; arr && i < l.n; i++) {
		/* a reply is outside input: the filter is checked again */
		const char *c = goman_ec2_tag(&l.v[i], "goman:cluster");
		if (!c || strcmp(c, cluster))
			continue;
		cJSON *o = goman_plan_instance_json(&l.v[i]);
		if (!o || !cJSON_AddItemToArray(arr, o)) {
			cJSON_Delete(o);
			cJSON_Delete(arr);
			arr = NULL;
			goman_err_set(err, GOMAN_ENOMEM, GOMAN_CLASS_NONE, "", "out of memory");
		}
	}
	goman_ec2_instances_clear(&l);
	goman_kvs_clear(&f);
	return arr;
}

/* the specs' region, when they all name the same one; "" when they disagree */
static const char *specs_region(const cJSON *specs)
{
	const char *r = NULL;
	const cJSON *s;
	cJSON_ArrayForEach (s, specs) {
		const char *x = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(s, "region"));
		if (x && r && strcmp(r, x))
			return "";
		if (x)
			r = x;
	}
	return r;
}

int main(int argc, char **argv)
{
	enum { O_EXPORT = 256, O_REGION, O_PROFILE, O_ENV };
	static const struct option longopts[] = {
		{"cluster", required_argument, NULL, 'c'},
		{"export", no_argument, NULL, O_EXPORT},
		{"region", required_argument, NULL, O_REGION},
		{"profile", required_argument, NULL, O_PROFILE},
		{"env", required_argument, NULL, O_ENV},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{NULL, 0, NULL, 0},
	};
	const char *cluster = NULL, *region = NULL, *profile = NULL;
	bool export = false;
	struct goman_config cfg;
	struct goman_err err = GOMAN_ERR_INIT;
	int c;
	goman_err_clear(&err);
	goman_config_init(&cfg);
	signal(SIGPIPE, SIG_IGN);
	while ((c = getopt_long(argc, argv, "c:hV", longopts, NULL)) != -1) {
		switch (c) {
		case 'c': cluster = optarg; break;
		case O_EXPORT: export = true; break;
		case O_REGION: region = optarg; break;
		case O_PROFILE: profile = optarg; break;
		case O_ENV:
			if (goman_config_set(&cfg, "profile", optarg, GOMAN_SRC_FLAG, &err) != 0)
				return die_usage(err.message, NULL);
			break;
		case 'h': usage(stdout); return 0;
		case 'V': printf("goman-plan %s\n", GOMAN_VERSION); return 0;
		default: usage(stderr); return GOMAN_EXIT_USAGE;
		}
	}
	if (optind < argc)
		return die_usage("unexpected argument", argv[optind]);
	if (cluster && !goman_cluster_name_ok(cluster))
		return die_usage("cluster names must match ^[a-z][a-z0-9-]{0,39}$", cluster);
	if (export && !cluster)
		return die_usage("--export needs --cluster", NULL);
	if (goman_config_load(&cfg, &err) != 0)
		return die_usage(err.message, NULL);

	struct goman_outcome oc = {0};
	cJSON *specs = cJSON_CreateArray(), *haves = NULL, *changes = NULL;
	struct goman_aws *aws = NULL;
	struct goman_plan_counts ct = {0};
	int rc = GOMAN_EXIT_FAILED;
	if (!specs)
		goto out;
	if (!export) {
		if (read_specs(specs, cluster, &oc) != 0)
			goto out;
		if (oc.bad_lines) { /* a plan from part of the specs would name wrong terminations */
			rc = goman_exit_code(&oc);
			goto out;
		}
		if (!cluster && cJSON_GetArraySize(specs) > 0)
			cluster = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(
				cJSON_GetArrayItem(specs, 0), "cluster"));
		if (!cluster) {
			rc = die_usage("no spec names a cluster: give --cluster", NULL);
			goto out;
		}
		const char *sr = specs_region(specs);
		if (sr && !*sr) {
			rc = die_usage("the specs name different regions", NULL);
			goto out;
		}
		if (sr && region && strcmp(sr, region)) {
			rc = die_usage("--region differs from the specs' region", sr);
			goto out;
		}
		if (!region)
			region = sr;
	}
	goman_events_init("goman-plan");
	struct goman_aws_opts ao = {.profile = profile, .region = region, .config = &cfg};
	if (!(aws = goman_aws_new(&ao, &err)) || !(haves = list_cluster(aws, cluster, &err))) {
		goman_err_classify(&err, "ec2", "DescribeInstances");
		fprintf(stderr, "goman-plan: listing cluster %s: %s%s%s\n", cluster, err.code,
			err.code[0] ? " " : "", err.message);
		goman_outcome_add(&oc, &err);
		rc = goman_exit_code(&oc);
		if (rc == 0)
			rc = GOMAN_EXIT_FAILED;
		goto out;
	}
	if (export) {
		struct goman_cluster_file *cf = NULL;
		if (goman_plan_export(cluster, goman_aws_region(aws), haves, &cf, &err) != 0) {
			fprintf(stderr, "goman-plan: export of %s: %s\n", cluster, err.message);
			goto out;
		}
		cJSON *j = goman_cluster_file_to_json(cf);
		goman_cluster_file_free(cf);
		put(j, &oc);
		cJSON_Delete(j);
		rc = goman_exit_code(&oc);
		goto out;
	}
	if (!(changes = cJSON_CreateArray()) ||
	    goman_plan_compute(specs, haves, cluster, changes, &ct, &err) != 0) {
		fprintf(stderr, "goman-plan: %s\n", changes ? err.message : "out of memory");
		goto out;
	}
	const cJSON *ch;
	cJSON_ArrayForEach (ch, changes)
		put(ch, &oc);
	cJSON *sum = cJSON_CreateObject(), *p = NULL;
	if (sum && cJSON_AddStringToObject(sum, "cluster", cluster) &&
	    (p = cJSON_AddObjectToObject(sum, "plan"))) {
		cJSON_AddNumberToObject(p, "launch", (double)ct.launch);
		cJSON_AddNumberToObject(p, "terminate", (double)ct.terminate);
		cJSON_AddNumberToObject(p, "drift", (double)ct.drift);
		cJSON_AddNumberToObject(p, "orphan", (double)ct.orphan);
		cJSON_AddNumberToObject(p, "unchanged", (double)ct.unchanged);
	}
	put(p ? sum : NULL, &oc);
	cJSON_Delete(sum);
	goman_log(GOMAN_LOG_INFO, "PLAN",
		  "cluster %s: %ld to launch, %ld to terminate, %ld drifted, "
		  "%ld orphans, %ld unchanged",
		  cluster, ct.launch, ct.terminate, ct.drift, ct.orphan, ct.unchanged);
	rc = goman_exit_code(&oc);
	if (rc == 0 && ct.launch + ct.terminate + ct.drift + ct.orphan > 0)
		rc = EXIT_PENDING;
out:
	cJSON_Delete(changes);
	cJSON_Delete(haves);
	cJSON_Delete(specs);
	goman_aws_free(aws);
	return rc;
}
