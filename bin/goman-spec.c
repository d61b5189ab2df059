/*
 * goman-spec - read a cluster file (goman-cluster(5)), check it, and write one node spec
 * per node for goman-provision, or the normalised file (plumbing). Flags and output only:
 * the schema, its rules and both outputs are libgoman/cluster_file.c. See goman-spec(1).
 */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>
#include "goman/cluster_file.h"
#include "goman/jsonl.h"
#include "cli.h"

#define EXIT_NOINPUT 66 /* sysexits EX_NOINPUT: the file is missing or unreadable */

static void usage(FILE *f)
{
	fputs("usage: goman-spec [-f FILE|-] [--check] [--json] [--format yaml|json]\n"
	      "Reads a cluster file (YAML or JSON, see goman-cluster(5)) and writes one node spec\n"
	      "per node (servers, then agents) for goman-provision.\n"
	      "  -f, --file FILE   the cluster file; - or none reads standard input\n"
	      "  --check           only check the file; print nothing\n"
	      "  --json            print the normalised file as one JSON object instead\n"
	      "  --format F        yaml or json (default: by suffix, else by the first character)\n"
	      "  --help  --version\n"
	      "Exit: 0 ok, 64 usage, 65 bad file, 66 missing or unreadable file.\n"
	      "See goman-spec(1).\n",
	      f);
}

/* a positive size from the environment; 0 when unset; -1 when malformed */
static long env_size(const char *name, long max)
{
	const char *s = getenv(name);
	if (!s || !*s)
		return 0;
	long v;
	if (cli_parse_long(s, 1, max, &v) < 0) {
		fprintf(stderr, "goman-spec: %s wants a number from 1 to %ld: %s\n", name, max, s);
		return -1;
	}
	return v;
}

int main(int argc, char **argv)
{
	enum { O_CHECK = 256, O_JSON, O_FORMAT };
	static const struct option longopts[] = {
		{"file", required_argument, NULL, 'f'},
		{"check", no_argument, NULL, O_CHECK},
		{"json", no_argument, NULL, O_JSON},
		{"format", required_argument, NULL, O_FORMAT},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{NULL, 0, NULL, 0},
	};
	const char *path = "-";
	bool check = false, json = false;
	struct goman_cf_opts o = {0};
	int c;
	signal(SIGPIPE, SIG_IGN);
	while ((c = getopt_long(argc, argv, "f:hV", longopts, NULL)) != -1) {
		switch (c) {
		case 'f': path = optarg; break;
		case O_CHECK: check = true; break;
		case O_JSON: json = true; break;
		case O_FORMAT:
			if (!strcmp(optarg, "yaml"))
				o.format = GOMAN_CF_YAML;
			else if (!strcmp(optarg, "json"))
				o.format = GOMAN_CF_JSON;
			else {
				fprintf(stderr, "goman-spec: --format wants yaml or json: %s\n",
					optarg);
				return GOMAN_EXIT_USAGE;
			}
			break;
		case 'h': usage(stdout); return 0;
		case 'V': printf("goman-spec %s\n", GOMAN_VERSION); return 0;
		default: usage(stderr); return GOMAN_EXIT_USAGE;
		}
	}
	if (optind < argc || (check && json)) {
		if (check && json)
			fputs("goman-spec: --check and --json exclude each other\n", stderr);
		usage(stderr);
		return GOMAN_EXIT_USAGE;
	}
	long mb = env_size("GOMAN_CLUSTER_FILE_MAX_BYTES", 1L << 30);
	long mg = env_size("GOMAN_CLUSTER_FILE_MAX_GROUPS", 10000);
	if (mb < 0 || mg < 0)
		return GOMAN_EXIT_USAGE;
	o.max_bytes = (size_t)mb;
	o.max_groups = (size_t)mg;

	struct goman_cluster_file *cf = NULL;
	struct goman_err err = GOMAN_ERR_INIT;
	goman_err_clear(&err);
	if (goman_cluster_file_read(path, &o, &cf, &err) != 0) {
		fprintf(stderr, "goman-spec: %s\n", err.message);
		return err.rc == GOMAN_EINVAL                             ? GOMAN_EXIT_DATAERR
		       : err.rc == GOMAN_ENOTFOUND || err.rc == GOMAN_EIO ? EXIT_NOINPUT
									  : GOMAN_EXIT_FAILED;
	}
	int rc = 0;
	if (!check) {
		cJSON *out = json ? goman_cluster_file_to_json(cf) : cJSON_CreateArray();
		if (!out || (!json && goman_cluster_file_node_specs(cf, out) != 0)) {
			fputs("goman-spec: out of memory\n", stderr);
			rc = GOMAN_EXIT_FAILED;
		} else if (json) {
			if (goman_jsonl_write(1, out, &err) != 0)
				rc = GOMAN_EXIT_FAILED;
		} else {
			const cJSON *n;
			cJSON_ArrayForEach (n, out) {
				if (goman_jsonl_write(1, n, &err) != 0) {
					rc = GOMAN_EXIT_FAILED;
					break;
				}
			}
		}
		if (rc && err.rc != GOMAN_OK)
			fprintf(stderr, "goman-spec: cannot write output: %s\n", err.message);
		cJSON_Delete(out);
	}
	goman_cluster_file_free(cf);
	return rc;
}
