/*
 * goman-install - K3s on every node the moment its record arrives (plumbing). Flags, the
 * token, air-gap URLs and the input loop only: the scheduler is libgoman/install.c, the
 * transports install_ssm.c and install_proc.c. See goman-install(1).
 *
 * stdin is read non-blocking on the same loop as the AWS calls and children
 * (goman_http_run's extra_fd), so each record is acted on as it arrives.
 */
#include <fcntl.h>
#include <getopt.h>
#include <stddef.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cjson/cJSON.h>
#include <openssl/crypto.h>
#include "goman/addr.h"
#include "goman/aws.h"
#include "goman/clock.h"
#include "goman/config.h"
#include "goman/creds.h"
#include "goman/install.h"
#include "goman/jsonl.h"
#include "goman/log.h"
#include "goman/provision.h"
#include "goman/s3.h"
#include "cli.h"

static int write_failed;
/* --check: every problem is reported (one line each), nothing is started */
static int check_mode, problems;

static void problem(const char *fmt, const char *a, const char *b)
{
	fputs("goman-install: ", stderr);
	fprintf(stderr, fmt, a, b);
	fputc('\n', stderr);
	problems++;
}

static void usage(FILE *f)
{
	fputs("usage: goman-install [--via ssm|ssh|local] [options] <node-records.jsonl\n"
	      "       goman-install --action cordon|drain|uncordon|delete [options] "
	      "<records.jsonl\n"
	      "       goman-install --check [options]\n"
	      "Installs K3s on each node as its record arrives; writes the record back with\n"
	      "\"install\":{ok,ms,k3s_version,via,skipped,verified,...} and t.installed.\n"
	      "  --via ssm|ssh|local     transport (default ssm: AWS-RunShellScript)\n"
	      "  --cluster NAME          cluster (default: the records' \"cluster\")\n"
	      "  --servers N             servers in the cluster (decides --cluster-init)\n"
	      "  --server-url URL        join this server (input holds agents/joiners only)\n"
	      "  --wait-server           joiners start after the first server is ready\n"
	      "  --k3s-version V  --channel NAME  --mirror URL  --tls-san NAME (repeatable)\n"
	      "  --airgap s3://BUCKET/PREFIX   nodes fetch PREFIX/k3s and\n"
	      "                          PREFIX/sha256sum-amd64.txt by presigned URLs\n"
	      "  --concurrency N         ssh/local: nodes at once; ssm: API calls in flight\n"
	      "  --timeout DUR           execution timeout per node (default 10m)\n"
	      "  --delivery-timeout DUR  ssm: how long SSM may not know an instance (default 5m)\n"
	      "  --poll-interval DUR  --poll-floor DUR  --batch-window DUR   ssm timing\n"
	      "  --verify-wait DUR  --no-verify  --no-kubeconfig\n"
	      "  --token-file PATH       ssh/local: the token (default: get-or-create in SSM)\n"
	      "  --script PATH           k3s-install.sh (default: found next to goman)\n"
	      "  --ssh-user U  --ssh-key F  --ssh-port N  --ssh-config F  --ssh-public-ip\n"
	      "  --ssh-sudo|--no-ssh-sudo   (default: sudo unless --prefix or user root)\n"
	      "  --prefix DIR  --no-services   testing aids passed to the script\n"
	      "  --action cordon|drain|uncordon|delete   kubectl on the first server for each\n"
	      "                          record's node (delete: drain, then delete the node);\n"
	      "                          writes \"drain\":{ok,action,ms} (no install)\n"
	      "  --drain-timeout DUR     kubectl drain --timeout (default 5m)\n"
	      "  --server-address ADDR  --server-instance ID   ssh/ssm: where kubectl runs when\n"
	      "                          the input has no first server record\n"
	      "  --check                 check every flag and file, start nothing, read no stdin\n"
	      "  --region R  --profile P  --env PROFILE  --show-config  --help  --version\n"
	      "Exit: 0 all ok, 1 some failed, 64 usage, 65 bad input lines, 69 unavailable,\n"
	      "75 temporary failure. See goman-install(1).\n",
	      f);
}

static void emit(const cJSON *rec, void *ud)
{
	(void)ud;
	struct goman_err e = GOMAN_ERR_INIT;
	if (!write_failed && goman_jsonl_write(1, rec, &e) != 0) {
		goman_log(GOMAN_LOG_ERROR, "INSTALL", "cannot write output: %s", e.message);
		write_failed = 1;
	}
}

static bool readable_file(const char *path)
{
	FILE *f = fopen(path, "r");
	if (!f)
		return false;
	char c;
	/* a directory opens, but does not read */
	bool ok = fread(&c, 1, 1, f) == 1 || !ferror(f);
	fclose(f);
	return ok;
}

static char *find_script(void)
{
	const char *env = getenv("GOMAN_INSTALL_SCRIPT");
	if (env && *env)
		return strdup(env);
	char exe[PATH_MAX], path[PATH_MAX + 64];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n > 0) {
		exe[n] = '\0';
		char *slash = strrchr(exe, '/');
		if (slash)
			*slash = '\0';
		const char *tries[] = {"/../share/goman/k3s-install.sh",
				       "/../../scripts/k3s-install.sh", "/k3s-install.sh"};
		for (size_t i = 0; i < 3; i++) {
			snprintf(path, sizeof(path), "%s%s", exe, tries[i]);
			if (access(path, R_OK) == 0)
				return realpath(path, NULL);
		}
	}
	return NULL;
}

static char *read_token(const char *path, struct goman_err *err)
{
	FILE *f = fopen(path, "r");
	char buf[512];
	if (!f)
		return goman_err_set(err, GOMAN_EIO, GOMAN_CLASS_BAD_INPUT, "NoToken",
				     "cannot read token file %s", path),
		       NULL;
	char *line = fgets(buf, sizeof(buf), f);
	fclose(f);
	if (!line || !*line || *line == '\n')
		return goman_err_set(err, GOMAN_EINVAL, GOMAN_CLASS_BAD_INPUT, "NoToken",
				     "token file %s is empty", path),
		       NULL;
	buf[strcspn(buf, "\r\n")] = '\0';
	char *t = strdup(buf);
	OPENSSL_cleanse(buf, sizeof(buf));
	return t;
}

/* What can be checked without a node, an AWS call or stdin: each problem is one line.
 * Returns the install script's path (malloc'd; NULL when not needed or not found). */
static char *check_args(const struct goman_install_opts *o, const char *token_file,
			const char *script, const char *airgap, const char *sans)
{
	bool install = o->action == GOMAN_ACTION_INSTALL;
	if (airgap && (strncmp(airgap, "s3://", 5) || !strchr(airgap + 5, '/') || airgap[5] == '/'))
		problem("--airgap takes s3://BUCKET/PREFIX, not '%s'%s", cli_shown(airgap), "");
	if (token_file && o->via == GOMAN_VIA_SSM)
		problem("--token-file is for --via ssh|local (SSM nodes read the token from "
			"Parameter Store)%s%s",
			"", "");
	else if (token_file && install && !readable_file(token_file))
		problem("--token-file %s: not a readable file%s", cli_shown(token_file), "");
	if (o->cluster && !goman_cluster_name_ok(o->cluster))
		problem("--cluster '%s' is not a cluster name (a-z first, then a-z 0-9 -, at most "
			"40)%s",
			cli_shown(o->cluster), "");
	if (o->k3s_version && !goman_install_version_ok(o->k3s_version))
		problem("--k3s-version '%s' is not a K3s release (vMAJOR.MINOR.PATCH+k3sN, e.g. "
			"v1.31.4+k3s1)%s",
			cli_shown(o->k3s_version), "");
	if (o->channel && !goman_install_channel_ok(o->channel))
		problem("--channel '%s' is not a channel name (stable, latest, v1.31: a-z 0-9 . "
			"-)%s",
			cli_shown(o->channel), "");
	if (o->server_url && !goman_server_url_ok(o->server_url))
		problem("--server-url must be https://ADDR:PORT (goman(7) ADDRESSES), not '%s'%s",
			cli_shown(o->server_url), "");
	if (o->mirror && ((strncmp(o->mirror, "https://", 8) && strncmp(o->mirror, "http://", 7)) ||
			  strcmp(cli_shown(o->mirror), o->mirror) || strpbrk(o->mirror, " \"'\\")))
		problem("--mirror '%s' must be an http:// or https:// URL%s", cli_shown(o->mirror),
			"");
	if (o->region && !goman_region_ok(o->region))
		problem("--region '%s' is not a region name (e.g. us-east-1)%s",
			cli_shown(o->region), "");
	if (sans && *sans) {
		char buf[1024];
		snprintf(buf, sizeof(buf), "%s", sans);
		for (char *save = NULL, *t = strtok_r(buf, ",", &save); t;
		     t = strtok_r(NULL, ",", &save))
			if (!goman_addr_ok(t))
				problem("--tls-san '%s' is not an IP address or host name%s",
					cli_shown(t), "");
	}
	if (o->via == GOMAN_VIA_SSH) {
		if (o->ssh_key && !readable_file(o->ssh_key))
			problem("--ssh-key %s: not a readable file%s", cli_shown(o->ssh_key), "");
		if (o->ssh_config && !readable_file(o->ssh_config))
			problem("--ssh-config %s: not a readable file%s", cli_shown(o->ssh_config),
				"");
		if (o->ssh_user && (!*o->ssh_user || o->ssh_user[0] == '-' ||
				    strcmp(cli_shown(o->ssh_user), o->ssh_user)))
			problem("--ssh-user '%s' is not a user name%s", cli_shown(o->ssh_user), "");
	}
	if (o->server_address && !goman_addr_ok(o->server_address))
		problem("--server-address '%s' is not an IP address or host name%s",
			cli_shown(o->server_address), "");
	if (o->server_instance && (strncmp(o->server_instance, "i-", 2) ||
				   strspn(o->server_instance + 2, "0123456789abcdefABCDEF") !=
					   strlen(o->server_instance + 2) ||
				   !o->server_instance[2] || strlen(o->server_instance) > 30))
		problem("--server-instance '%s' is not an instance ID (i-...)%s",
			cli_shown(o->server_instance), "");
	/* flags of the other mode are ignored: one set of pass-through flags serves both */
	if (!install)
		return NULL;
	char *path = script ? strdup(script) : find_script();
	if (!path)
		problem("k3s-install.sh not found (give --script PATH)%s%s", "", "");
	else if (!readable_file(path))
		problem("--script %s: not a readable file%s", cli_shown(path), "");
	return path;
}

/* ---- flags ------------------------------------------------------------------------------ */

/* everything the flags set */
struct args {
	struct goman_install_opts o;
	struct goman_config cfg;
	const char *token_file, *script, *airgap, *profile;
	char sans[1024];
	int show, sudo; /* sudo: -1 = decide from --prefix and --ssh-user */
};

enum fkind { F_STR, F_TRUE, F_FALSE, F_DUR, F_SET1, F_SET0, F_INT, F_FN };
enum { ST_OK = 0, ST_BAD = -1, ST_HELP = 1, ST_VERSION = 2 };

struct flag {
	const char *name;
	enum fkind kind;
	size_t off; /* into struct args */
	int (*fn)(struct args *a, const char *v);
	long min, max;    /* F_INT: an int in [min, max] */
	const char *what; /* F_INT: "a number", "a port" */
};

/* v's index in names[0..n), or -1 after one message naming the choices */
static int one_of(const char *flag, const char *v, const char *const *names, int n,
		  const char *choices)
{
	for (int i = 0; i < n; i++)
		if (!strcmp(v, names[i]))
			return i;
	fprintf(stderr, "goman-install: --%s is %s, not '%s'\n", flag, choices, cli_shown(v));
	problems++;
	return -1;
}

static int f_via(struct args *a, const char *v)
{
	static const char *const names[] = {"ssm", "ssh", "local"};
	int i = one_of("via", v, names, 3, "ssm, ssh or local");
	if (i >= 0)
		a->o.via = (enum goman_install_via)i;
	return i >= 0 ? ST_OK : ST_BAD;
}

static int f_action(struct args *a, const char *v)
{
	static const char *const names[] = {"cordon", "drain", "uncordon", "delete"};
	int i = one_of("action", v, names, 4, "cordon, drain, uncordon or delete");
	if (i >= 0)
		a->o.action = (enum goman_install_action)(i + 1);
	return i >= 0 ? ST_OK : ST_BAD;
}

static int f_tls_san(struct args *a, const char *v)
{
	if (a->sans[0])
		strncat(a->sans, ",", sizeof(a->sans) - strlen(a->sans) - 1);
	strncat(a->sans, v, sizeof(a->sans) - strlen(a->sans) - 1);
	return ST_OK;
}

static int config_flag(struct args *a, const char *key, const char *flag, const char *v)
{
	struct goman_err err = GOMAN_ERR_INIT;
	if (goman_config_set(&a->cfg, key, v, GOMAN_SRC_FLAG, &err) == 0)
		return ST_OK;
	problem("--%s: %s", flag, err.message);
	return ST_BAD;
}

static int f_concurrency(struct args *a, const char *v)
{
	return config_flag(a, "concurrency", "concurrency", v);
}

static int f_env(struct args *a, const char *v)
{
	return config_flag(a, "profile", "env", v);
}

static int f_help(struct args *a, const char *v)
{
	(void)a, (void)v;
	return ST_HELP;
}

static int f_version(struct args *a, const char *v)
{
	(void)a, (void)v;
	return ST_VERSION;
}

#define AO(f) offsetof(struct args, f)
static const struct flag flag_table[] = {
	{.name = "via", .kind = F_FN, .fn = f_via},
	{.name = "cluster", .kind = F_STR, .off = AO(o.cluster)},
	{.name = "servers",
	 .kind = F_INT,
	 .off = AO(o.servers),
	 .min = 1,
	 .max = 99,
	 .what = "a number"},
	{.name = "server-url", .kind = F_STR, .off = AO(o.server_url)},
	{.name = "wait-server", .kind = F_TRUE, .off = AO(o.wait_server)},
	{.name = "k3s-version", .kind = F_STR, .off = AO(o.k3s_version)},
	{.name = "channel", .kind = F_STR, .off = AO(o.channel)},
	{.name = "mirror", .kind = F_STR, .off = AO(o.mirror)},
	{.name = "tls-san", .kind = F_FN, .fn = f_tls_san},
	{.name = "airgap", .kind = F_STR, .off = AO(airgap)},
	{.name = "concurrency", .kind = F_FN, .fn = f_concurrency},
	{.name = "timeout", .kind = F_DUR, .off = AO(o.timeout_ms)},
	{.name = "delivery-timeout", .kind = F_DUR, .off = AO(o.delivery_timeout_ms)},
	{.name = "poll-interval", .kind = F_DUR, .off = AO(o.poll_ms)},
	{.name = "poll-floor", .kind = F_DUR, .off = AO(o.poll_floor_ms)},
	{.name = "batch-window", .kind = F_DUR, .off = AO(o.batch_window_ms)},
	{.name = "verify-wait", .kind = F_DUR, .off = AO(o.verify_wait_ms)},
	{.name = "no-verify", .kind = F_FALSE, .off = AO(o.verify)},
	{.name = "no-kubeconfig", .kind = F_FALSE, .off = AO(o.store_kubeconfig)},
	{.name = "token-file", .kind = F_STR, .off = AO(token_file)},
	{.name = "script", .kind = F_STR, .off = AO(script)},
	{.name = "ssh-user", .kind = F_STR, .off = AO(o.ssh_user)},
	{.name = "ssh-key", .kind = F_STR, .off = AO(o.ssh_key)},
	{.name = "ssh-port",
	 .kind = F_INT,
	 .off = AO(o.ssh_port),
	 .min = 1,
	 .max = 65535,
	 .what = "a port"},
	{.name = "ssh-config", .kind = F_STR, .off = AO(o.ssh_config)},
	{.name = "ssh-public-ip", .kind = F_TRUE, .off = AO(o.ssh_public_ip)},
	{.name = "ssh-sudo", .kind = F_SET1, .off = AO(sudo)},
	{.name = "no-ssh-sudo", .kind = F_SET0, .off = AO(sudo)},
	{.name = "prefix", .kind = F_STR, .off = AO(o.prefix)},
	{.name = "no-services", .kind = F_TRUE, .off = AO(o.no_services)},
	{.name = "region", .kind = F_STR, .off = AO(o.region)},
	{.name = "profile", .kind = F_STR, .off = AO(profile)},
	{.name = "env", .kind = F_FN, .fn = f_env},
	{.name = "show-config", .kind = F_SET1, .off = AO(show)},
	{.name = "help", .kind = F_FN, .fn = f_help},
	{.name = "version", .kind = F_FN, .fn = f_version},
	{.name = "action", .kind = F_FN, .fn = f_action},
	{.name = "drain-timeout", .kind = F_DUR, .off = AO(o.drain_timeout_ms)},
	{.name = "server-address", .kind = F_STR, .off = AO(o.server_address)},
	{.name = "server-instance", .kind = F_STR, .off = AO(o.server_instance)},
	{.name = "check", .kind = F_SET1}, /* seen before parsing (check_mode) */
};
#define NFLAGS (sizeof(flag_table) / sizeof(flag_table[0]))

static int apply_flag(struct args *a, const struct flag *f, const char *v)
{
	char *base = (char *)a + f->off;
	switch (f->kind) {
	case F_STR: *(const char **)(void *)base = v; return ST_OK;
	case F_TRUE: *(bool *)(void *)base = true; return ST_OK;
	case F_FALSE: *(bool *)(void *)base = false; return ST_OK;
	case F_SET1:
		if (f->off)
			*(int *)(void *)base = 1;
		return ST_OK;
	case F_SET0: *(int *)(void *)base = 0; return ST_OK;
	case F_DUR:
		if (cli_duration(f->name, v, (int64_t *)(void *)base) == 0)
			return ST_OK;
		problems++;
		return ST_BAD;
	case F_INT: {
		long n;
		if (cli_parse_long(v, f->min, f->max, &n) == 0)
			return *(int *)(void *)base = (int)n, ST_OK;
		fprintf(stderr, "goman-install: --%s takes %s from %ld to %ld, not '%s'\n", f->name,
			f->what, f->min, f->max, cli_shown(v));
		problems++;
		return ST_BAD;
	}
	case F_FN: return f->fn(a, v);
	}
	return ST_BAD;
}

/* ST_OK, ST_HELP, ST_VERSION, or GOMAN_EXIT_USAGE (outside --check: usage printed) */
static int parse_flags(struct args *a, int argc, char **argv)
{
	struct option opts[NFLAGS + 1];
	for (size_t i = 0; i < NFLAGS; i++) {
		enum fkind k = flag_table[i].kind;
		bool takes =
			k == F_STR || k == F_DUR || k == F_INT ||
			(k == F_FN && flag_table[i].fn != f_help && flag_table[i].fn != f_version);
		opts[i] = (struct option){flag_table[i].name, takes, NULL, 256 + (int)i};
	}
	opts[NFLAGS] = (struct option){NULL, 0, NULL, 0};
	int c;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		int st = c >= 256 && c < 256 + (int)NFLAGS
				 ? apply_flag(a, &flag_table[c - 256], optarg)
				 : (problems++, ST_BAD); /* getopt named the flag already */
		if (st == ST_HELP || st == ST_VERSION)
			return st;
		if (st == ST_BAD && !check_mode) {
			usage(stderr);
			return GOMAN_EXIT_USAGE;
		}
	}
	for (int i = optind; i < argc; i++)
		problem("unexpected argument '%s'%s", cli_shown(argv[i]), "");
	return ST_OK;
}

/* ---- the run ---------------------------------------------------------------------------- */

/* Presigned GET URL of s3://bucket/key (goman_s3_presign), living long enough for the
 * install plus an hour. */
static char *presign(struct goman_credchain *cc, const char *region, const char *bucket,
		     const char *key, long expires, struct goman_err *err)
{
	struct goman_creds cr = {0};
	if (goman_credchain_get(cc, &cr, err) != 0)
		return NULL;
	char *ep = goman_credchain_endpoint(cc, "s3", region);
	struct goman_s3_presign p = {.endpoint = ep,
				     .region = region,
				     .bucket = bucket,
				     .key = key,
				     .expires_s = expires};
	char *url = ep ? goman_s3_presign(&p, &cr, err) : NULL;
	if (!ep)
		goman_err_set(err, GOMAN_ENOMEM, GOMAN_CLASS_NONE, "", "out of memory");
	free(ep);
	goman_creds_clear(&cr);
	return url;
}

/* --airgap s3://BUCKET/PREFIX: the two URLs the nodes fetch. 0, or -1 with err. */
static int airgap_urls(struct args *a, struct goman_aws *aws, char **bin_url, char **sum_url,
		       struct goman_err *err)
{
	const char *ag = a->airgap, *slash = strchr(ag + 5, '/');
	char bucket[256], key[1024];
	snprintf(bucket, sizeof(bucket), "%.*s", (int)(slash - ag - 5), ag + 5);
	const char *pfx = slash + 1;
	size_t pl = strlen(pfx);
	while (pl && pfx[pl - 1] == '/')
		pl--;
	long exp = (long)((a->o.timeout_ms > 0 ? a->o.timeout_ms : 600000) / 1000) + 3600;
	struct goman_credchain *cc = goman_credchain_new(a->profile, err);
	if (!cc)
		return -1;
	const char *region = a->o.region ? a->o.region : goman_aws_region(aws);
	snprintf(key, sizeof(key), "%.*s%sk3s", (int)pl, pfx, pl ? "/" : "");
	*bin_url = presign(cc, region, bucket, key, exp > 604800 ? 604800 : exp, err);
	snprintf(key, sizeof(key), "%.*s%ssha256sum-amd64.txt", (int)pl, pfx, pl ? "/" : "");
	if (*bin_url)
		*sum_url = presign(cc, region, bucket, key, exp > 604800 ? 604800 : exp, err);
	goman_credchain_free(cc);
	return *bin_url && *sum_url ? 0 : -1;
}

/* The AWS client (when the run talks to AWS) and the loop. 0, or an exit code. */
static int open_aws(struct args *a, const char *token, struct goman_aws **aws,
		    struct goman_http **http)
{
	struct goman_err err = GOMAN_ERR_INIT;
	struct goman_install_opts *o = &a->o;
	/* an action over ssh/local needs no AWS at all (no token, no air-gap) */
	if (o->via == GOMAN_VIA_SSM ||
	    ((!token || a->airgap) && o->action == GOMAN_ACTION_INSTALL)) {
		struct goman_aws_opts ao = {
			.profile = a->profile, .region = o->region, .config = &a->cfg};
		*aws = goman_aws_new(&ao, &err);
		if (!*aws && (o->via == GOMAN_VIA_SSM || a->airgap)) {
			fprintf(stderr, "goman-install: %s\n", err.message);
			return err.rc == GOMAN_ECREDS || err.rc == GOMAN_ECONFIG ? GOMAN_EXIT_CONFIG
										 : GOMAN_EXIT_USAGE;
		}
	}
	if (*aws) {
		*http = goman_aws_http(*aws);
		if (o->via == GOMAN_VIA_SSM && !o->region)
			o->region = goman_aws_region(*aws);
	} else if (!(*http = goman_http_new(NULL, &err))) {
		fprintf(stderr, "goman-install: %s\n", err.message);
		return GOMAN_EXIT_FAILED;
	}
	return 0;
}

/* Reads what stdin has now into the installer; true at its end. */
static bool read_input(struct goman_install *in, struct goman_jsonl_reader *rd,
		       struct goman_outcome *extra)
{
	struct goman_err err = GOMAN_ERR_INIT;
	for (;;) {
		cJSON *rec = NULL;
		goman_err_clear(&err);
		int rc = goman_jsonl_next(rd, &rec, &err);
		if (rc == GOMAN_JSONL_AGAIN)
			return false;
		if (rc == GOMAN_JSONL_RECORD) {
			goman_install_add(in, rec, goman_jsonl_lineno(rd), &err);
		} else if (rc == GOMAN_JSONL_BAD) {
			cJSON *e =
				goman_jsonl_error_record(NULL, NULL, &err, goman_jsonl_lineno(rd));
			goman_log(GOMAN_LOG_WARN, "INSTALL", "line %ld: %s", goman_jsonl_lineno(rd),
				  err.message);
			emit(e, NULL);
			cJSON_Delete(e);
			extra->bad_lines++;
		} else {
			if (rc == GOMAN_JSONL_IOERR) {
				goman_log(GOMAN_LOG_ERROR, "INSTALL", "reading stdin: %s",
					  err.message);
				extra->failed++;
			}
			goman_install_input_done(in);
			return true;
		}
	}
}

/* Records in, records out, until every node is done; the exit code. */
static int run(struct goman_install *in, struct goman_http *http)
{
	struct goman_outcome extra = {0};
	fcntl(0, F_SETFL, fcntl(0, F_GETFL) | O_NONBLOCK);
	struct goman_jsonl_reader *rd = goman_jsonl_reader_new(0, 0);
	bool eof = !rd;
	if (!rd)
		goman_install_input_done(in);
	while (!write_failed) {
		if (!eof)
			eof = read_input(in, rd, &extra);
		if (eof && goman_install_finished(in))
			break;
		int r = goman_http_run(http, 1000, eof ? -1 : 0);
		if (r == 0 && eof && !goman_install_finished(in) && goman_http_pending(http) == 0) {
			goman_log(GOMAN_LOG_ERROR, "INSTALL",
				  "nothing left to wait for, yet not finished");
			extra.failed++;
			break;
		}
	}
	goman_jsonl_reader_free(rd);
	const struct goman_outcome *oc = goman_install_outcome(in);
	extra.bad_lines += oc->bad_lines;
	extra.failed += oc->failed;
	extra.unavailable += oc->unavailable;
	extra.tempfail += oc->tempfail;
	extra.ok += oc->ok;
	extra.config_errors += oc->config_errors;
	if (write_failed)
		extra.output_errors++;
	return goman_exit_code(&extra);
}

static void wipe_free(char *s)
{
	if (s)
		OPENSSL_cleanse(s, strlen(s));
	free(s);
}

/* Flags checked: the installer made and run. The exit code. */
static int install(struct args *a, char *script_path)
{
	struct goman_install_opts *o = &a->o;
	struct goman_err err = GOMAN_ERR_INIT;
	int exit_code = GOMAN_EXIT_FAILED;
	char *token = NULL, *bin_url = NULL, *sum_url = NULL;
	struct goman_aws *aws = NULL;
	struct goman_http *http = NULL;
	struct goman_install *in = NULL;
	o->concurrency = (int)a->cfg.concurrency;
	/* over SSM: no more calls in flight than the SSM breaker admits, so none park inside
	 * libgoman and the installer alone decides their order (SendCommands before polls) */
	if (o->via == GOMAN_VIA_SSM && a->cfg.breaker[GOMAN_SVC_SSM].max_concurrent > 0 &&
	    o->concurrency > a->cfg.breaker[GOMAN_SVC_SSM].max_concurrent)
		o->concurrency = (int)a->cfg.breaker[GOMAN_SVC_SSM].max_concurrent;
	o->tls_san = a->sans[0] ? a->sans : NULL;
	o->ssh_sudo = a->sudo >= 0 ? a->sudo == 1
				   : !o->prefix && !(o->ssh_user && !strcmp(o->ssh_user, "root"));
	o->script_path = script_path;
	if (a->token_file && !(token = read_token(a->token_file, &err))) {
		fprintf(stderr, "goman-install: %s\n", err.message);
		exit_code = GOMAN_EXIT_USAGE;
		goto out;
	}
	o->token = token;
	if ((exit_code = open_aws(a, token, &aws, &http)) != 0)
		goto out;
	exit_code = GOMAN_EXIT_FAILED;
	o->aws = aws;
	o->http = http;
	if (a->airgap && airgap_urls(a, aws, &bin_url, &sum_url, &err) != 0) {
		fprintf(stderr, "goman-install: --airgap: %s\n", err.message);
		exit_code = GOMAN_EXIT_USAGE;
		goto out;
	}
	o->airgap_binary_url = bin_url;
	o->airgap_checksum_url = sum_url;
	o->emit = emit;
	if (!(in = goman_install_new(o, &err))) {
		fprintf(stderr, "goman-install: %s\n", err.message);
		exit_code = err.cls == GOMAN_CLASS_BAD_INPUT ? GOMAN_EXIT_USAGE : GOMAN_EXIT_FAILED;
		goto out;
	}
	if (token)
		OPENSSL_cleanse(token, strlen(token));
	exit_code = run(in, http);
out:
	goman_install_free(in);
	if (aws)
		goman_aws_free(aws);
	else
		goman_http_free(http);
	wipe_free(token);
	wipe_free(bin_url);
	wipe_free(sum_url);
	return exit_code;
}

int main(int argc, char **argv)
{
	static struct args a = {
		.o = {.verify = true, .store_kubeconfig = true, .batch_window_ms = 1000},
		.sudo = -1};
	cli_init("goman-install");
	for (int i = 1; i < argc && strcmp(argv[i], "--"); i++)
		if (!strcmp(argv[i], "--check"))
			check_mode = 1;
	struct goman_err err = GOMAN_ERR_INIT;
	goman_config_init(&a.cfg);
	goman_err_clear(&err);
	int st = parse_flags(&a, argc, argv);
	if (st == ST_HELP)
		return usage(stdout), 0;
	if (st == ST_VERSION)
		return printf("goman-install %s\n", GOMAN_VERSION), 0;
	if (st != ST_OK)
		return st;
	char *script_path = check_args(&a.o, a.token_file, a.script, a.airgap, a.sans);
	if (goman_config_load(&a.cfg, &err) != 0)
		problem("%s%s", err.message, "");
	if (problems || check_mode || a.show) {
		if (problems && !check_mode)
			usage(stderr);
		else if (!problems && !check_mode)
			goman_config_print(&a.cfg, stdout);
		free(script_path);
		return problems ? GOMAN_EXIT_USAGE : 0;
	}
	signal(SIGPIPE, SIG_IGN);
	goman_events_init("goman-install");
	int rc = install(&a, script_path);
	free(script_path);
	return rc;
}
