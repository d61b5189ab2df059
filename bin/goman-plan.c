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
	struct goman_ec2_instances l = {0};
	cJSON *arr = NULL;
	if (goman_ec2_cluster_instances(aws, cluster, false, &l, err) == 0 &&
	    !(arr = cJSON_CreateArray()))
		goman_err_set(err, GOMAN_ENOMEM, GOMAN_CLASS_NONE, "", "out of memory");
	for (size_t i = 0; arr && i < l.n; i++) {
		cJSON *o = goman_plan_instance_json(&l.v[i]);
		if (!o || !cJSON_AddItemToArray(arr, o)) {
			cJSON_Delete(o);
			cJSON_Delete(arr);
			arr = NULL;
			goman_err_set(err, GOMAN_ENOMEM, GOMAN_CLASS_NONE, "", "out of memory");
		}
	}
	goman_ec2_instances_clear(&l);
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

struct args {
	const char *cluster, *region, *profile;
	bool export;
	struct goman_config cfg;
};

/* The flags into a: 0, or the exit code (help, version, usage). */
static int parse_flags(struct args *a, int argc, char **argv)
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
	struct goman_err err = GOMAN_ERR_INIT;
	int c;
	while ((c = getopt_long(argc, argv, "c:hV", longopts, NULL)) != -1) {
		switch (c) {
		case 'c': a->cluster = optarg; break;
		case O_EXPORT: a->export = true; break;
		case O_REGION: a->region = optarg; break;
		case O_PROFILE: a->profile = optarg; break;
		case O_ENV:
			if (goman_config_set(&a->cfg, "profile", optarg, GOMAN_SRC_FLAG, &err) != 0)
				return die_usage(err.message, NULL);
			break;
		case 'h': usage(stdout); return -1;
		case 'V': printf("goman-plan %s\n", GOMAN_VERSION); return -1;
		default: usage(stderr); return GOMAN_EXIT_USAGE;
		}
	}
	if (optind < argc)
		return die_usage("unexpected argument", argv[optind]);
	if (a->cluster && !goman_cluster_name_ok(a->cluster))
		return die_usage("cluster names must match ^[a-z][a-z0-9-]{0,39}$", a->cluster);
	if (a->export && !a->cluster)
		return die_usage("--export needs --cluster", NULL);
	if (goman_config_load(&a->cfg, &err) != 0)
		return die_usage(err.message, NULL);
	return 0;
}

/* The specs from stdin, and the cluster and region they name. 0, or the exit code. */
static int take_specs(struct args *a, cJSON *specs, struct goman_outcome *oc)
{
	if (read_specs(specs, a->cluster, oc) != 0)
		return GOMAN_EXIT_FAILED;
	if (oc->bad_lines) /* a plan from part of the specs would name wrong terminations */
		return goman_exit_code(oc);
	if (!a->cluster && cJSON_GetArraySize(specs) > 0)
		a->cluster = cJSON_GetStringValue(
			cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(specs, 0), "cluster"));
	if (!a->cluster)
		return die_usage("no spec names a cluster: give --cluster", NULL);
	const char *sr = specs_region(specs);
	if (sr && !*sr)
		return die_usage("the specs name different regions", NULL);
	if (sr && a->region && strcmp(sr, a->region))
		return die_usage("--region differs from the specs' region", sr);
	if (!a->region)
		a->region = sr;
	return 0;
}

/* The cluster file of what exists. The exit code. */
static int export_file(const char *cluster, struct goman_aws *aws, const cJSON *haves,
		       struct goman_outcome *oc)
{
	struct goman_err err = GOMAN_ERR_INIT;
	struct goman_cluster_file *cf = NULL;
	if (goman_plan_export(cluster, goman_aws_region(aws), haves, &cf, &err) != 0) {
		fprintf(stderr, "goman-plan: export of %s: %s\n", cluster, err.message);
		return GOMAN_EXIT_FAILED;
	}
	cJSON *j = goman_cluster_file_to_json(cf);
	goman_cluster_file_free(cf);
	put(j, oc);
	cJSON_Delete(j);
	return goman_exit_code(oc);
}

/* The changes, then the summary line. The exit code (2 when anything would change). */
static int write_plan(const char *cluster, const cJSON *specs, const cJSON *haves,
		      struct goman_outcome *oc)
{
	struct goman_err err = GOMAN_ERR_INIT;
	struct goman_plan_counts ct = {0};
	cJSON *changes = cJSON_CreateArray();
	if (!changes || goman_plan_compute(specs, haves, cluster, changes, &ct, &err) != 0) {
		fprintf(stderr, "goman-plan: %s\n", changes ? err.message : "out of memory");
		cJSON_Delete(changes);
		return GOMAN_EXIT_FAILED;
	}
	const cJSON *ch;
	cJSON_ArrayForEach (ch, changes)
		put(ch, oc);
	cJSON_Delete(changes);
	cJSON *sum = cJSON_CreateObject(), *p = NULL;
	if (sum && cJSON_AddStringToObject(sum, "cluster", cluster) &&
	    (p = cJSON_AddObjectToObject(sum, "plan"))) {
		cJSON_AddNumberToObject(p, "launch", (double)ct.launch);
		cJSON_AddNumberToObject(p, "terminate", (double)ct.terminate);
		cJSON_AddNumberToObject(p, "drift", (double)ct.drift);
		cJSON_AddNumberToObject(p, "orphan", (double)ct.orphan);
		cJSON_AddNumberToObject(p, "unchanged", (double)ct.unchanged);
	}
	put(p ? sum : NULL, oc);
	cJSON_Delete(sum);
	goman_log(GOMAN_LOG_INFO, "PLAN",
		  "cluster %s: %ld to launch, %ld to terminate, %ld drifted, "
		  "%ld orphans, %ld unchanged",
		  cluster, ct.launch, ct.terminate, ct.drift, ct.orphan, ct.unchanged);
	int rc = goman_exit_code(oc);
	if (rc == 0 && ct.launch + ct.terminate + ct.drift + ct.orphan > 0)
		rc = EXIT_PENDING;
	return rc;
}

int main(int argc, char **argv)
{
	struct args a = {0};
	struct goman_err err = GOMAN_ERR_INIT;
	goman_err_clear(&err);
	goman_config_init(&a.cfg);
	signal(SIGPIPE, SIG_IGN);
	int rc = parse_flags(&a, argc, argv);
	if (rc != 0)
		return rc < 0 ? 0 : rc;
	struct goman_outcome oc = {0};
	cJSON *specs = cJSON_CreateArray(), *haves = NULL;
	struct goman_aws *aws = NULL;
	rc = GOMAN_EXIT_FAILED;
	if (!specs || (!a.export && (rc = take_specs(&a, specs, &oc)) != 0))
		goto out;
	goman_events_init("goman-plan");
	struct goman_aws_opts ao = {.profile = a.profile, .region = a.region, .config = &a.cfg};
	if (!(aws = goman_aws_new(&ao, &err)) || !(haves = list_cluster(aws, a.cluster, &err))) {
		goman_err_classify(&err, "ec2", "DescribeInstances");
		fprintf(stderr, "goman-plan: listing cluster %s: %s%s%s\n", a.cluster, err.code,
			err.code[0] ? " " : "", err.message);
		goman_outcome_add(&oc, &err);
		rc = goman_exit_code(&oc);
		if (rc == 0)
			rc = GOMAN_EXIT_FAILED;
		goto out;
	}
	rc = a.export ? export_file(a.cluster, aws, haves, &oc)
		      : write_plan(a.cluster, specs, haves, &oc);
out:
	cJSON_Delete(haves);
	cJSON_Delete(specs);
	goman_aws_free(aws);
	return rc;
}
