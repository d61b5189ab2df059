/*
 * goman-kubeconfig - put a cluster's kubeconfig (on stdin) where kubectl reads it, without
 * losing what is there: merged into the user's kubeconfig under goman-NAME, or written to a
 * file of its own. One JSON line says what was done. Flags only: libgoman/kubeconfig.c.
 * See goman-kubeconfig(1).
 */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cjson/cJSON.h>
#include "goman/addr.h"
#include "goman/error.h"
#include "goman/jsonl.h"
#include "goman/kubeconfig.h"
#include "goman/log.h"

static int usage(int rc)
{
	fputs("usage: goman-kubeconfig merge --cluster NAME [--server URL] [--use] [--file FILE]\n"
	      "       goman-kubeconfig write --cluster NAME [--server URL] --file FILE\n"
	      "Reads a cluster's kubeconfig (as K3s writes it) on standard input.\n"
	      "  merge     into FILE (default: the first file of $KUBECONFIG, else "
	      "~/.kube/config):\n"
	      "            cluster, user and context named goman-NAME, every other entry kept;\n"
	      "            the context becomes current with --use or when none is\n"
	      "  write     FILE holds goman-NAME only; refused when FILE holds other entries\n"
	      "  --server URL  the API server address to write (default: the incoming one)\n"
	      "What was there is first copied to FILE.goman-<UTC time>.bak; the file is replaced\n"
	      "atomically, mode 0600, under kubectl's FILE.lock.\n"
	      "Writes "
	      "{\"cluster\",\"kubeconfig\":{\"ok\",\"path\",\"backup\",\"context\",\"replaced\"},"
	      "\"ok\"}.\n"
	      "Exit: 0 ok, 1 not written (locked, other entries, I/O), 64 usage, 65 bad "
	      "kubeconfig.\n"
	      "See goman-kubeconfig(1).\n",
	      rc ? stderr : stdout);
	return rc;
}

/* stdin whole, capped one byte past the limit so an oversized document is seen as such */
static char *read_stdin(size_t *len)
{
	size_t cap = 64 * 1024, n = 0;
	char *p = malloc(cap);
	while (p) {
		if (n == cap) {
			if (cap > GOMAN_KUBECONFIG_MAX)
				break;
			char *q = realloc(p, cap * 2);
			if (!q) {
				free(p);
				return NULL;
			}
			p = q;
			cap *= 2;
		}
		ssize_t r = read(0, p + n, cap - n);
		if (r == 0)
			break;
		if (r < 0) {
			free(p);
			return NULL;
		}
		n += (size_t)r;
	}
	*len = n;
	return p;
}

int main(int argc, char **argv)
{
	static const struct option flags[] = {{"cluster", required_argument, NULL, 'c'},
					      {"server", required_argument, NULL, 's'},
					      {"file", required_argument, NULL, 'f'},
					      {"use", no_argument, NULL, 'u'},
					      {"help", no_argument, NULL, 'h'},
					      {"version", no_argument, NULL, 'V'},
					      {NULL, 0, NULL, 0}};
	struct goman_kubeconfig_opts o = {0};
	const char *file = NULL;
	int c;
	while ((c = getopt_long(argc, argv, "", flags, NULL)) != -1) {
		switch (c) {
		case 'c': o.cluster = optarg; break;
		case 's': o.server = optarg; break;
		case 'f': file = optarg; break;
		case 'u': o.use = true; break;
		case 'h': return usage(0);
		case 'V': printf("goman-kubeconfig %s\n", GOMAN_VERSION); return 0;
		default: return usage(GOMAN_EXIT_USAGE);
		}
	}
	const char *verb = optind < argc ? argv[optind++] : "";
	bool merge = !strcmp(verb, "merge"), write = !strcmp(verb, "write");
	const char *why = !merge && !write ? "a verb (merge or write) is needed"
			  : optind < argc  ? "too many arguments"
			  : !o.cluster     ? "--cluster is needed"
			  : write && !file ? "write needs --file"
			  : write && o.use ? "--use goes with merge"
			  : o.server && !goman_server_url_ok(o.server)
				  ? "--server must be https://ADDRESS:PORT"
				  : NULL;
	if (why) {
		fprintf(stderr, "goman-kubeconfig: %s\n", why);
		return usage(GOMAN_EXIT_USAGE);
	}
	signal(SIGPIPE, SIG_IGN);
	char *path = file ? strdup(file) : goman_kubeconfig_default_path();
	size_t len = 0;
	char *in = read_stdin(&len);
	struct goman_err err = GOMAN_ERR_INIT;
	goman_err_clear(&err);
	struct goman_kubeconfig_result res = {0};
	int rc = -1;
	if (!path || !in)
		goman_err_set(&err, GOMAN_EIO, GOMAN_CLASS_NONE, "IOError", "%s",
			      !path ? "no kubeconfig path: set --file, $KUBECONFIG or $HOME"
				    : "cannot read standard input");
	else
		rc = goman_kubeconfig_update(path, in, len, &o, write, &res, &err);
	cJSON *rec = cJSON_CreateObject(), *k;
	cJSON_AddStringToObject(rec, "cluster", o.cluster);
	struct goman_outcome out = {0};
	if (rc == 0) {
		k = cJSON_AddObjectToObject(rec, "kubeconfig");
		cJSON_AddBoolToObject(k, "ok", 1);
		cJSON_AddStringToObject(k, "path", res.path);
		if (res.backup_path)
			cJSON_AddStringToObject(k, "backup", res.backup_path);
		else
			cJSON_AddNullToObject(k, "backup");
		char ctx[64];
		snprintf(ctx, sizeof(ctx), "goman-%s", o.cluster);
		cJSON_AddStringToObject(k, "context", ctx);
		cJSON_AddBoolToObject(k, "replaced", res.replaced);
		cJSON_AddBoolToObject(rec, "ok", 1);
		goman_outcome_add(&out, NULL);
	} else {
		cJSON *e = goman_jsonl_error_record(rec, "kubeconfig", &err, 0);
		cJSON_Delete(rec);
		rec = e;
		fprintf(stderr, "goman-kubeconfig: %s\n", err.message);
		goman_outcome_add(&out, &err);
	}
	int wrc = rec ? goman_jsonl_write(1, rec, &err) : -1;
	cJSON_Delete(rec);
	goman_kubeconfig_result_free(&res);
	free(path);
	free(in);
	if (wrc != 0)
		return GOMAN_EXIT_FAILED;
	return goman_exit_code(&out);
}
