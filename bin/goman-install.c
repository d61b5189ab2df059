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
#include "goman/sigv4.h"

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
	      "       goman-install --action cordon|drain|uncordon|delete [options] <records.jsonl\n"
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

static int dur(const char *flag, const char *s, int64_t *ms)
{
	if (goman_parse_duration_ms(s, ms) == 0)
		return 0;
	problem("bad duration for --%s: '%s'", flag, s);
	return -1;
}

/* a flag value echoed in a message: printable only */
static const char *shown(const char *s)
{
	for (const char *p = s; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			return "(a value with a control character)";
	return s;
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

/* Presigned GET URL of s3://bucket/key, made with the library's signer. */
static char *presign(struct goman_credchain *cc, const char *region, const char *bucket,
		     const char *key, long expires, struct goman_err *err)
{
	struct goman_creds cr = {0};
	if (goman_credchain_get(cc, &cr, err) != 0)
		return NULL;
	expires = goman_presign_lifetime(expires, cr.expires_ms, goman_now_ms());
	if (expires < 0) {
		goman_creds_clear(&cr);
		goman_err_set(err, GOMAN_ECREDS, GOMAN_CLASS_AUTH, "CredentialsExpiring",
			      "the credentials expire within a minute: too soon to presign");
		return NULL;
	}
	char *ep = goman_credchain_endpoint(cc, "s3", region);
	char *ekey = goman_uri_encode(key, strlen(key), true);
	char *url = NULL;
	if (ep && ekey) {
		size_t n = strlen(ep) + strlen(bucket) + strlen(ekey) + 4;
		char *u = malloc(n);
		if (u) {
			snprintf(u, n, "%s/%s/%s", ep, bucket, ekey);
			struct goman_sigv4_params p = {.method = "GET",
						       .url = u,
						       .service = "s3",
						       .region = region,
						       .presign_expires = expires,
						       .s3 = true,
						       .unsigned_payload = true,
						       .normalize = -1};
			struct goman_kvs h = {0};
			struct goman_sigv4_out out = {0};
			if (goman_sigv4_sign(&p, &cr, &h, false, &out, err) == 0) {
				url = out.url;
				out.url = NULL;
			}
			goman_sigv4_out_clear(&out);
			goman_kvs_clear(&h);
			free(u);
		}
	}
	free(ep);
	free(ekey);
	goman_creds_clear(&cr);
	return url;
}

/* What can be checked without a node, an AWS call or stdin: each problem is one line.
 * Returns the install script's path (malloc'd; NULL when not needed or not found). */
static char *check_args(const struct goman_install_opts *o, const char *token_file,
			const char *script, const char *airgap, const char *sans)
{
	bool install = o->action == GOMAN_ACTION_INSTALL;
	if (airgap && (strncmp(airgap, "s3://", 5) || !strchr(airgap + 5, '/') || airgap[5] == '/'))
		problem("--airgap takes s3://BUCKET/PREFIX, not '%s'%s", shown(airgap), "");
	if (token_file && o->via == GOMAN_VIA_SSM)
		problem("--token-file is for --via ssh|local (SSM nodes read the token from "
			"Parameter Store)%s%s",
			"", "");
	else if (token_file && install && !readable_file(token_file))
		problem("--token-file %s: not a readable file%s", shown(token_file), "");
	if (o->cluster && !goman_cluster_name_ok(o->cluster))
		problem("--cluster '%s' is not a cluster name (a-z first, then a-z 0-9 -, at most "
			"40)%s",
			shown(o->cluster), "");
	if (o->k3s_version && !goman_install_version_ok(o->k3s_version))
		problem("--k3s-version '%s' is not a K3s release (vMAJOR.MINOR.PATCH+k3sN, e.g. "
			"v1.31.4+k3s1)%s",
			shown(o->k3s_version), "");
	if (o->channel && !goman_install_channel_ok(o->channel))
		problem("--channel '%s' is not a channel name (stable, latest, v1.31: a-z 0-9 . "
			"-)%s",
			shown(o->channel), "");
	if (o->server_url && !goman_server_url_ok(o->server_url))
		problem("--server-url must be https://ADDR:PORT (goman(7) ADDRESSES), not '%s'%s",
			shown(o->server_url), "");
	if (o->mirror && ((strncmp(o->mirror, "https://", 8) && strncmp(o->mirror, "http://", 7)) ||
			  strcmp(shown(o->mirror), o->mirror) || strpbrk(o->mirror, " \"'\\")))
		problem("--mirror '%s' must be an http:// or https:// URL%s", shown(o->mirror), "");
	if (o->region && !goman_region_ok(o->region))
		problem("--region '%s' is not a region name (e.g. us-east-1)%s", shown(o->region),
			"");
	if (sans && *sans) {
		char buf[1024];
		snprintf(buf, sizeof(buf), "%s", sans);
		for (char *save = NULL, *t = strtok_r(buf, ",", &save); t;
		     t = strtok_r(NULL, ",", &save))
			if (!goman_addr_ok(t))
				problem("--tls-san '%s' is not an IP address or host name%s",
					shown(t), "");
	}
	if (o->via == GOMAN_VIA_SSH) {
		if (o->ssh_key && !readable_file(o->ssh_key))
			problem("--ssh-key %s: not a readable file%s", shown(o->ssh_key), "");
		if (o->ssh_config && !readable_file(o->ssh_config))
			problem("--ssh-config %s: not a readable file%s", shown(o->ssh_config), "");
		if (o->ssh_user && (!*o->ssh_user || o->ssh_user[0] == '-' ||
				    strcmp(shown(o->ssh_user), o->ssh_user)))
			problem("--ssh-user '%s' is not a user name%s", shown(o->ssh_user), "");
	}
	if (o->server_address && !goman_addr_ok(o->server_address))
		problem("--server-address '%s' is not an IP address or host name%s",
			shown(o->server_address), "");
	if (o->server_instance && (strncmp(o->server_instance, "i-", 2) ||
				   strspn(o->server_instance + 2, "0123456789abcdefABCDEF") !=
					   strlen(o->server_instance + 2) ||
				   !o->server_instance[2] || strlen(o->server_instance) > 30))
		problem("--server-instance '%s' is not an instance ID (i-...)%s",
			shown(o->server_instance), "");
	/* flags of the other mode are ignored: one set of pass-through flags serves both */
	if (!install)
		return NULL;
	char *path = script ? strdup(script) : find_script();
	if (!path)
		problem("k3s-install.sh not found (give --script PATH)%s%s", "", "");
	else if (!readable_file(path))
		problem("--script %s: not a readable file%s", shown(path), "");
	return path;
}

int main(int argc, char **argv)
{
	enum {
		O_VIA = 256,
		O_CLUSTER,
		O_SERVERS,
		O_SERVER_URL,
		O_WAIT,
		O_VER,
		O_CHAN,
		O_MIRROR,
		O_SAN,
		O_AIRGAP,
		O_CONC,
		O_TIMEOUT,
		O_DELIV,
		O_POLL,
		O_FLOOR,
		O_WINDOW,
		O_VWAIT,
		O_NOVERIFY,
		O_NOKC,
		O_TOKFILE,
		O_SCRIPT,
		O_SUSER,
		O_SKEY,
		O_SPORT,
		O_SCONF,
		O_SPUB,
		O_SUDO,
		O_NOSUDO,
		O_PREFIX,
		O_NOSVC,
		O_REGION,
		O_PROFILE,
		O_ENV,
		O_SHOW,
		O_HELP,
		O_VERSION,
		O_ACTION,
		O_DTIMEOUT,
		O_SADDR,
		O_SINST,
		O_CHECK
	};
	static const struct option flags[] = {{"via", 1, NULL, O_VIA},
					      {"cluster", 1, NULL, O_CLUSTER},
					      {"servers", 1, NULL, O_SERVERS},
					      {"server-url", 1, NULL, O_SERVER_URL},
					      {"wait-server", 0, NULL, O_WAIT},
					      {"k3s-version", 1, NULL, O_VER},
					      {"channel", 1, NULL, O_CHAN},
					      {"mirror", 1, NULL, O_MIRROR},
					      {"tls-san", 1, NULL, O_SAN},
					      {"airgap", 1, NULL, O_AIRGAP},
					      {"concurrency", 1, NULL, O_CONC},
					      {"timeout", 1, NULL, O_TIMEOUT},
					      {"delivery-timeout", 1, NULL, O_DELIV},
					      {"poll-interval", 1, NULL, O_POLL},
					      {"poll-floor", 1, NULL, O_FLOOR},
					      {"batch-window", 1, NULL, O_WINDOW},
					      {"verify-wait", 1, NULL, O_VWAIT},
					      {"no-verify", 0, NULL, O_NOVERIFY},
					      {"no-kubeconfig", 0, NULL, O_NOKC},
					      {"token-file", 1, NULL, O_TOKFILE},
					      {"script", 1, NULL, O_SCRIPT},
					      {"ssh-user", 1, NULL, O_SUSER},
					      {"ssh-key", 1, NULL, O_SKEY},
					      {"ssh-port", 1, NULL, O_SPORT},
					      {"ssh-config", 1, NULL, O_SCONF},
					      {"ssh-public-ip", 0, NULL, O_SPUB},
					      {"ssh-sudo", 0, NULL, O_SUDO},
					      {"no-ssh-sudo", 0, NULL, O_NOSUDO},
					      {"prefix", 1, NULL, O_PREFIX},
					      {"no-services", 0, NULL, O_NOSVC},
					      {"region", 1, NULL, O_REGION},
					      {"profile", 1, NULL, O_PROFILE},
					      {"env", 1, NULL, O_ENV},
					      {"show-config", 0, NULL, O_SHOW},
					      {"help", 0, NULL, O_HELP},
					      {"version", 0, NULL, O_VERSION},
					      {"action", 1, NULL, O_ACTION},
					      {"drain-timeout", 1, NULL, O_DTIMEOUT},
					      {"server-address", 1, NULL, O_SADDR},
					      {"server-instance", 1, NULL, O_SINST},
					      {"check", 0, NULL, O_CHECK},
					      {NULL, 0, NULL, 0}};
	for (int i = 1; i < argc && strcmp(argv[i], "--"); i++)
		if (!strcmp(argv[i], "--check"))
			check_mode = 1;
	struct goman_install_opts o = {
		.verify = true, .store_kubeconfig = true, .batch_window_ms = 1000};
	struct goman_config cfg;
	struct goman_err err = GOMAN_ERR_INIT;
	const char *token_file = NULL, *script = NULL, *airgap = NULL, *profile = NULL;
	char sans[1024] = "";
	int show = 0, sudo = -1, c;
	long servers = 0;
	goman_config_init(&cfg);
	goman_err_clear(&err);
	while ((c = getopt_long(argc, argv, "", flags, NULL)) != -1) {
		char *end = NULL;
		int bad = 0;
		switch (c) {
		case O_VIA:
			if (!strcmp(optarg, "ssm"))
				o.via = GOMAN_VIA_SSM;
			else if (!strcmp(optarg, "ssh"))
				o.via = GOMAN_VIA_SSH;
			else if (!strcmp(optarg, "local"))
				o.via = GOMAN_VIA_LOCAL;
			else
				bad = (problem("--via is ssm, ssh or local, not '%s'%s",
					       shown(optarg), ""),
				       1);
			break;
		case O_ACTION:
			if (!strcmp(optarg, "cordon"))
				o.action = GOMAN_ACTION_CORDON;
			else if (!strcmp(optarg, "drain"))
				o.action = GOMAN_ACTION_DRAIN;
			else if (!strcmp(optarg, "uncordon"))
				o.action = GOMAN_ACTION_UNCORDON;
			else if (!strcmp(optarg, "delete"))
				o.action = GOMAN_ACTION_DELETE;
			else
				bad = (problem("--action is cordon, drain, uncordon or delete, not '%s'%s",
					       shown(optarg), ""),
				       1);
			break;
		case O_DTIMEOUT: bad = dur("drain-timeout", optarg, &o.drain_timeout_ms); break;
		case O_SADDR: o.server_address = optarg; break;
		case O_SINST: o.server_instance = optarg; break;
		case O_CHECK: break;
		case O_CLUSTER: o.cluster = optarg; break;
		case O_SERVERS:
			servers = strtol(optarg, &end, 10);
			bad = *end || servers < 1 || servers > 99;
			o.servers = (int)servers;
			if (bad)
				problem("--servers takes a number from 1 to 99, not '%s'%s",
					shown(optarg), "");
			break;
		case O_SERVER_URL: o.server_url = optarg; break;
		case O_WAIT: o.wait_server = true; break;
		case O_VER: o.k3s_version = optarg; break;
		case O_CHAN: o.channel = optarg; break;
		case O_MIRROR: o.mirror = optarg; break;
		case O_SAN:
			if (sans[0])
				strncat(sans, ",", sizeof(sans) - strlen(sans) - 1);
			strncat(sans, optarg, sizeof(sans) - strlen(sans) - 1);
			break;
		case O_AIRGAP: airgap = optarg; break;
		case O_CONC:
			bad = goman_config_set(&cfg, "concurrency", optarg, GOMAN_SRC_FLAG, &err) !=
			      0;
			if (bad)
				problem("--concurrency: %s%s", err.message, "");
			break;
		case O_TIMEOUT: bad = dur("timeout", optarg, &o.timeout_ms); break;
		case O_DELIV: bad = dur("delivery-timeout", optarg, &o.delivery_timeout_ms); break;
		case O_POLL: bad = dur("poll-interval", optarg, &o.poll_ms); break;
		case O_FLOOR: bad = dur("poll-floor", optarg, &o.poll_floor_ms); break;
		case O_WINDOW: bad = dur("batch-window", optarg, &o.batch_window_ms); break;
		case O_VWAIT: bad = dur("verify-wait", optarg, &o.verify_wait_ms); break;
		case O_NOVERIFY: o.verify = false; break;
		case O_NOKC: o.store_kubeconfig = false; break;
		case O_TOKFILE: token_file = optarg; break;
		case O_SCRIPT: script = optarg; break;
		case O_SUSER: o.ssh_user = optarg; break;
		case O_SKEY: o.ssh_key = optarg; break;
		case O_SPORT:
			o.ssh_port = (int)strtol(optarg, &end, 10);
			bad = *end || o.ssh_port < 1 || o.ssh_port > 65535;
			if (bad)
				problem("--ssh-port takes a port from 1 to 65535, not '%s'%s",
					shown(optarg), "");
			break;
		case O_SCONF: o.ssh_config = optarg; break;
		case O_SPUB: o.ssh_public_ip = true; break;
		case O_SUDO: sudo = 1; break;
		case O_NOSUDO: sudo = 0; break;
		case O_PREFIX: o.prefix = optarg; break;
		case O_NOSVC: o.no_services = true; break;
		case O_REGION: o.region = optarg; break;
		case O_PROFILE: profile = optarg; break;
		case O_ENV:
			bad = goman_config_set(&cfg, "profile", optarg, GOMAN_SRC_FLAG, &err) != 0;
			if (bad)
				problem("--env: %s%s", err.message, "");
			break;
		case O_SHOW: show = 1; break;
		case O_HELP: usage(stdout); return 0;
		case O_VERSION: printf("goman-install %s\n", GOMAN_VERSION); return 0;
		default:
			/* getopt named the flag already */
			problems++;
			if (!check_mode) {
				usage(stderr);
				return GOMAN_EXIT_USAGE;
			}
		}
		if (bad && !check_mode) {
			usage(stderr);
			return GOMAN_EXIT_USAGE;
		}
	}
	for (int i = optind; i < argc; i++)
		problem("unexpected argument '%s'%s", shown(argv[i]), "");
	char *script_path = check_args(&o, token_file, script, airgap, sans);
	if (goman_config_load(&cfg, &err) != 0)
		problem("%s%s", err.message, "");
	if (problems) {
		if (!check_mode)
			usage(stderr);
		free(script_path);
		return GOMAN_EXIT_USAGE;
	}
	if (check_mode) {
		free(script_path);
		return 0;
	}
	if (show) {
		goman_config_print(&cfg, stdout);
		return 0;
	}
	signal(SIGPIPE, SIG_IGN);
	goman_events_init("goman-install");
	o.concurrency = (int)cfg.concurrency;
	/* over SSM: no more calls in flight than the SSM breaker admits, so none park inside
	 * libgoman and the installer alone decides their order (SendCommands before polls) */
	if (o.via == GOMAN_VIA_SSM && cfg.breaker[GOMAN_SVC_SSM].max_concurrent > 0 &&
	    o.concurrency > cfg.breaker[GOMAN_SVC_SSM].max_concurrent)
		o.concurrency = (int)cfg.breaker[GOMAN_SVC_SSM].max_concurrent;
	o.tls_san = sans[0] ? sans : NULL;
	o.ssh_sudo =
		sudo >= 0 ? sudo == 1 : !o.prefix && !(o.ssh_user && !strcmp(o.ssh_user, "root"));
	o.script_path = script_path;
	int exit_code = GOMAN_EXIT_FAILED;
	char *token = NULL, *bin_url = NULL, *sum_url = NULL;
	struct goman_aws *aws = NULL;
	struct goman_http *http = NULL;
	struct goman_credchain *cc = NULL;
	struct goman_install *in = NULL;
	struct goman_jsonl_reader *rd = NULL;
	struct goman_outcome extra = {0};
	if (token_file && !(token = read_token(token_file, &err))) {
		fprintf(stderr, "goman-install: %s\n", err.message);
		exit_code = GOMAN_EXIT_USAGE;
		goto out;
	}
	o.token = token;
	/* an action over ssh/local needs no AWS at all (no token, no air-gap) */
	if (o.via == GOMAN_VIA_SSM || ((!token || airgap) && o.action == GOMAN_ACTION_INSTALL)) {
		struct goman_aws_opts ao = {.profile = profile, .region = o.region, .config = &cfg};
		aws = goman_aws_new(&ao, &err);
		if (!aws && (o.via == GOMAN_VIA_SSM || airgap)) {
			fprintf(stderr, "goman-install: %s\n", err.message);
			exit_code = err.rc == GOMAN_ECREDS || err.rc == GOMAN_ECONFIG
					    ? GOMAN_EXIT_CONFIG
					    : GOMAN_EXIT_USAGE;
			goto out;
		}
	}
	if (aws) {
		http = goman_aws_http(aws);
		if (o.via == GOMAN_VIA_SSM && !o.region)
			o.region = goman_aws_region(aws);
	} else if (!(http = goman_http_new(NULL, &err))) {
		fprintf(stderr, "goman-install: %s\n", err.message);
		goto out;
	}
	o.aws = aws;
	o.http = http;
	if (airgap) {
		char bucket[256], key[1024];
		const char *slash = strchr(airgap + 5, '/');
		snprintf(bucket, sizeof(bucket), "%.*s", (int)(slash - airgap - 5), airgap + 5);
		const char *pfx = slash + 1;
		size_t pl = strlen(pfx);
		while (pl && pfx[pl - 1] == '/')
			pl--;
		long exp = (long)((o.timeout_ms > 0 ? o.timeout_ms : 600000) / 1000) + 3600;
		if (exp > 604800)
			exp = 604800;
		if (!(cc = goman_credchain_new(profile, &err)))
			goto airgap_fail;
		const char *region = o.region ? o.region : goman_aws_region(aws);
		snprintf(key, sizeof(key), "%.*s%sk3s", (int)pl, pfx, pl ? "/" : "");
		if (!(bin_url = presign(cc, region, bucket, key, exp, &err)))
			goto airgap_fail;
		snprintf(key, sizeof(key), "%.*s%ssha256sum-amd64.txt", (int)pl, pfx,
			 pl ? "/" : "");
		if (!(sum_url = presign(cc, region, bucket, key, exp, &err)))
			goto airgap_fail;
		o.airgap_binary_url = bin_url;
		o.airgap_checksum_url = sum_url;
	}
	o.emit = emit;
	if (!(in = goman_install_new(&o, &err))) {
		fprintf(stderr, "goman-install: %s\n", err.message);
		exit_code = err.cls == GOMAN_CLASS_BAD_INPUT ? GOMAN_EXIT_USAGE : GOMAN_EXIT_FAILED;
		goto out;
	}
	if (token)
		OPENSSL_cleanse(token, strlen(token));
	fcntl(0, F_SETFL, fcntl(0, F_GETFL) | O_NONBLOCK);
	rd = goman_jsonl_reader_new(0, 0);
	bool eof = !rd;
	while (!write_failed) {
		while (!eof) {
			cJSON *rec = NULL;
			goman_err_clear(&err);
			int rc = goman_jsonl_next(rd, &rec, &err);
			if (rc == GOMAN_JSONL_AGAIN)
				break;
			if (rc == GOMAN_JSONL_RECORD) {
				goman_install_add(in, rec, goman_jsonl_lineno(rd), &err);
			} else if (rc == GOMAN_JSONL_BAD) {
				cJSON *e = goman_jsonl_error_record(NULL, NULL, &err,
								    goman_jsonl_lineno(rd));
				goman_log(GOMAN_LOG_WARN, "INSTALL", "line %ld: %s",
					  goman_jsonl_lineno(rd), err.message);
				emit(e, NULL);
				cJSON_Delete(e);
				extra.bad_lines++;
			} else {
				if (rc == GOMAN_JSONL_IOERR) {
					goman_log(GOMAN_LOG_ERROR, "INSTALL", "reading stdin: %s",
						  err.message);
					extra.failed++;
				}
				eof = true;
				goman_install_input_done(in);
			}
		}
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
	const struct goman_outcome *oc = goman_install_outcome(in);
	extra.bad_lines += oc->bad_lines;
	extra.failed += oc->failed;
	extra.unavailable += oc->unavailable;
	extra.tempfail += oc->tempfail;
	extra.ok += oc->ok;
	extra.config_errors += oc->config_errors;
	if (write_failed)
		extra.output_errors++;
	exit_code = goman_exit_code(&extra);
	goto out;
airgap_fail:
	fprintf(stderr, "goman-install: --airgap: %s\n", err.message);
	exit_code = GOMAN_EXIT_USAGE;
out:
	goman_jsonl_reader_free(rd);
	goman_install_free(in);
	if (aws)
		goman_aws_free(aws);
	else
		goman_http_free(http);
	goman_credchain_free(cc);
	if (token) {
		OPENSSL_cleanse(token, strlen(token));
		free(token);
	}
	if (bin_url)
		OPENSSL_cleanse(bin_url, strlen(bin_url));
	if (sum_url)
		OPENSSL_cleanse(sum_url, strlen(sum_url));
	free(bin_url);
	free(sum_url);
	free(script_path);
	return exit_code;
}
