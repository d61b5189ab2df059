/*
 * test_creds.c - the credential chain, region and endpoint resolution.
 *
 * Each test runs with a fresh temp HOME and every AWS_* variable the chain reads unset
 * (restored at the end). IMDS stays disabled except in the tests that point it at the
 * loopback fixture (tests/fixtures/metadata_fixture.py, started with python3 from PATH).
 *
 *   test_creds               the offline tests (files, env, credential_process, fixture)
 *   test_creds assume-role   AssumeRole against the local AWS endpoint whose env
 *                            (AWS_ENDPOINT_URL, keys) the caller exported (tests/15-creds.bats)
 */
#include "unit.h"
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cjson/cJSON.h>
#include "goman/aws.h"
#include "goman/clock.h"
#include "goman/creds.h"
#include "aws_int.h"
#include "creds_int.h"

static const char *const aws_vars[] = {
	"HOME",
	"AWS_ACCESS_KEY_ID",
	"AWS_SECRET_ACCESS_KEY",
	"AWS_SESSION_TOKEN",
	"AWS_SECURITY_TOKEN",
	"AWS_CREDENTIAL_EXPIRATION",
	"AWS_PROFILE",
	"AWS_DEFAULT_PROFILE",
	"AWS_CONFIG_FILE",
	"AWS_SHARED_CREDENTIALS_FILE",
	"AWS_REGION",
	"AWS_DEFAULT_REGION",
	"AWS_ENDPOINT_URL",
	"AWS_ENDPOINT_URL_EC2",
	"AWS_ENDPOINT_URL_SSM",
	"AWS_ENDPOINT_URL_S3",
	"AWS_ENDPOINT_URL_DYNAMODB",
	"AWS_ENDPOINT_URL_STS",
	"AWS_ENDPOINT_URL_IAM",
	"AWS_IGNORE_CONFIGURED_ENDPOINT_URLS",
	"AWS_CONTAINER_CREDENTIALS_FULL_URI",
	"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
	"AWS_CONTAINER_AUTHORIZATION_TOKEN",
	"AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
	"AWS_EC2_METADATA_DISABLED",
	"AWS_EC2_METADATA_SERVICE_ENDPOINT",
	"AWS_WEB_IDENTITY_TOKEN_FILE",
	"AWS_ROLE_ARN",
	"AWS_ROLE_SESSION_NAME",
	"AWS_ENDPOINT_URL_SSO",
	"AWS_ENDPOINT_URL_SSO_OIDC",
	"AWS_MAX_ATTEMPTS",
	"GOMAN_CREDS_LOCK_TIMEOUT_MS",
};
#define NVARS (sizeof(aws_vars) / sizeof(aws_vars[0]))
static char *saved[NVARS];

static char tmpdir[256];
static char fixture_port[16];
static char fixture_log[300];
static pid_t fixture_pid;

/* ---- helpers --------------------------------------------------------------------- */

static void write_file(const char *name, const char *text, int mode)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	chmod(path, (mode_t)mode);
}

static char *tpath(const char *name)
{
	static char buf[4][512];
	static int k;
	k = (k + 1) % 4;
	snprintf(buf[k], sizeof(buf[k]), "%s/%s", tmpdir, name);
	return buf[k];
}

static char *read_text(const char *path)
{
	FILE *f = fopen(path, "r");
	if (!f)
		return strdup("");
	char *b = calloc(1, 65536);
	size_t n = fread(b, 1, 65535, f);
	b[n] = '\0';
	fclose(f);
	return b;
}

static int rm_cb(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st, (void)flag, (void)ftw;
	return remove(p);
}

static int setup(void **state)
{
	for (size_t i = 0; i < NVARS; i++)
		unsetenv(aws_vars[i]);
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/goman-creds-XXXXXX");
	assert_non_null(mkdtemp(tmpdir));
	char aws[300];
	snprintf(aws, sizeof(aws), "%s/.aws", tmpdir);
	mkdir(aws, 0700);
	setenv("HOME", tmpdir, 1);
	setenv("AWS_EC2_METADATA_DISABLED", "true", 1);
	return 0;
}

static int teardown(void **state)
{
	goman_clock_override(NULL, NULL, NULL);
	nftw(tmpdir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
	return 0;
}

/* removes HOME/rel and everything under it */
static void rm_tree(const char *rel)
{
	char p[600];
	snprintf(p, sizeof(p), "%s/%s", tmpdir, rel);
	nftw(p, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

static struct goman_credchain *chain(const char *profile)
{
	struct goman_err err = GOMAN_ERR_INIT;
	goman_err_clear(&err);
	struct goman_credchain *cc = goman_credchain_new(profile, &err);
	if (!cc)
		fail_msg("credchain_new: %s", err.message);
	return cc;
}

static void get_ok(struct goman_credchain *cc, struct goman_creds *c)
{
	struct goman_err err = GOMAN_ERR_INIT;
	goman_err_clear(&err);
	if (goman_credchain_get(cc, c, &err) < 0)
		fail_msg("credchain_get: %s", err.message);
}

static enum goman_rc get_fails(struct goman_credchain *cc, struct goman_err *err)
{
	struct goman_creds c;
	goman_err_clear(err);
	assert_int_equal(goman_credchain_get(cc, &c, err), -1);
	assert_null(c.access_key_id);
	return err->rc;
}

static const char *credentials_file = "[default]\n"
				      "aws_access_key_id = AKIADEFAULT\n"
				      "aws_secret_access_key = default-secret\n"
				      "[dev]\n"
				      "aws_access_key_id = AKIADEV\n"
				      "aws_secret_access_key = dev-secret\n"
				      "aws_session_token = dev-token\n";

/* ---- env and profiles ------------------------------------------------------------ */

static void env_keys_come_before_the_default_profile(void **state)
{
	write_file(".aws/credentials", credentials_file, 0600);
	setenv("AWS_ACCESS_KEY_ID", "AKIAENV", 1);
	setenv("AWS_SECRET_ACCESS_KEY", "env-secret", 1);
	setenv("AWS_SESSION_TOKEN", "env-token", 1);
	struct goman_credchain *cc = chain(NULL);
	struct goman_creds c;
	get_ok(cc, &c);
	assert_string_equal(c.access_key_id, "AKIAENV");
	assert_string_equal(c.secret_access_key, "env-secret");
	assert_string_equal(c.session_token, "env-token");
	assert_string_equal(c.source, "env");
	assert_int_equal(c.expires_ms, 0);
	assert_string_equal(goman_credchain_profile(cc), "default");
	goman_creds_clear(&c);
	goman_credchain_free(cc);
}

static void aws_profile_env_keeps_env_keys_first(void **state)
{
	write_file(".aws/credentials", credentials_file, 0600);
	setenv("AWS_PROFILE", "dev", 1);
	setenv("AWS_ACCESS_KEY_ID", "AKIAENV", 1);
	setenv("AWS_SECRET_ACCESS_KEY", "env-secret", 1);
	struct goman_credchain *cc = chain(NULL);
	struct goman_creds c;
	get_ok(cc, &c);
	assert_string_equal(c.source, "env");
	assert_null(c.session_token);
	assert_string_equal(goman_credchain_profile(cc), "dev");
	goman_creds_clear(&c);
	goman_credchain_free(cc);
}

static void profile_argument_skips_env_keys(void **state)
{
	write_file(".aws/credentials", credentials_file, 0600);
	setenv("AWS_ACCESS_KEY_ID", "AKIAENV", 1);
	setenv("AWS_SECRET_ACCESS_KEY", "env-secret", 1);
	struct goman_credchain *cc = chain("dev");
	struct goman_creds c;
	get_ok(cc, &c);
	assert_string_equal(c.access_key_id, "AKIADEV");
	assert_string_equal(c.session_token, "dev-token");
	assert_string_equal(c.source, "profile:dev");
	goman_creds_clear(&c);
	goman_credchain_free(cc);
}

static void config_file_profiles_need_the_profile_prefix(void **state)
{
	write_file(".aws/config",
		   "[profile cfg]\n"
		   "aws_access_key_id = AKIACFG\n"
		   "aws_secret_access_key = cfg-secret\n"
		   "[bare]\n"
		   "aws_access_key_id = AKIABARE\n"
		   "aws_secret_access_key = bare-secret\n",
		   0600);
	struct goman_credchain *cc = chain("cfg");
	struct goman_creds c;
	get_ok(cc, &c);
	assert_string_equal(c.access_key_id, "AKIACFG");
	assert_string_equal(c.source, "profile:cfg");
	goman_creds_clear(&c);
	goman_credchain_free(cc);
	/* "[bare]" in the config file is not the profile "bare" */
	struct goman_err err = GOMAN_ERR_INIT;
	goman_err_clear(&err);
	assert_null(goman_credchain_new("bare", &err));
	assert_int_equal(err.rc, GOMAN_ENOTFOUND);
	assert_string_equal(err.code, "ProfileNotFound");
}

static void credentials_file_keys_win_over_config_file_keys(void **state)
{
	write_file(".aws/credentials", credentials_file, 0600);
	write_file(".aws/config",
		   "[profile dev]\naws_access_key_id = AKIACFG\naws_secret_access_key = x\n", 0600);
	struct goman_credchain *cc = chain("dev");
	struct goman_creds c;
	get_ok(cc, &c);
	assert_string_equal(c.access_key_id, "AKIADEV");
	goman_creds_clear(&c);
	goman_credchain_free(cc);
}

static void file_location_env_overrides_are_honoured(void **state)
{
	write_file("elsewhere-creds",
		   "[other]\naws_access_key_id = AKIAOTHER\n"
		   "aws_secret_access_key = other-secret\n",
		   0600);
	write_file("elsewhere-config", "[profile other]\nregion = ap-northeast-2\n", 0600);
	write_file(".aws/credentials", credentials_file, 0600);
	setenv("AWS_SHARED_CREDENTIALS_FILE", tpath("elsewhere-creds"), 1);
	setenv("AWS_CONFIG_FILE", tpath("elsewhere-config"), 1);
	setenv("AWS_PROFILE", "other", 1);
	struct goman_credchain *cc = chain(NULL);
	struct goman_creds c;
	get_ok(cc, &c);
	assert_string_equal(c.access_key_id, "AKIAOTHER");
	struct goman_err err = GOMAN_ERR_INIT;
	char *r = goman_credchain_region(cc, &err);
	assert_string_equal(r, "ap-northeast-2");
	free(r);
	goman_creds_clear(&c);
	goman_credchain_free(cc);
	/* and ~/.aws/credentials is not read any more: "dev" is unknown */
	goman_err_clear(&err);
	assert_null(goman_credchain_new("dev", &err));
	assert_int_equal(err.rc, GOMAN_ENOTFOUND);
}

static void named_profile_that_does_not_exist_is_enotfound(void **state)
{
	setenv("AWS_PROFILE", "ghost", 1);
	struct goman_err err = GOMAN_ERR_INIT;
	goman_err_clear(&err);
	assert_null(goman_credchain_new(NULL, &err));
	assert_int_equal(err.rc, GOMAN_ENOTFOUND);
	assert_non_null(strstr(err.message, "ghost"));
}

static void nothing_configured_is_ecreds_without_touching_the_network(void **state)
{
	struct goman_credchain *cc = chain(NULL); /* absent default profile is fine */
	struct goman_err err = GOMAN_ERR_INIT;
	assert_int_equal(get_fails(cc, &err), GOMAN_ECREDS);
	assert_string_equal(err.code, "NoCredentials");
	assert_int_equal(err.cls, GOMAN_CLASS_AUTH);
	goman_credchain_free(cc);
}

/* ---- credential_process ---------------------------------------------------------- */

static void split_args_follows_shell_quoting_without_expansion(void **state)
{
	struct goman_err err = GOMAN_ERR_INIT;
	char **a = gm_split_args("  /bin/tool 'a b' \"c \\\"d\\\"\" e\\ f $HOME '' ", &err);
	assert_non_null(a);
	assert_string_equal(a[0], "/bin/tool");
	assert_string_equal(a[1], "a b");
	assert_string_equal(a[2], "c \"d\"");
	assert_string_equal(a[3], "e f");
	assert_string_equal(a[4], "$HOME"); /* no expansion: no shell */
	assert_string_equal(a[5], "");
	assert_null(a[6]);
	gm_argv_free(a);
	goman_err_clear(&err);
	assert_null(gm_split_args("tool 'unterminated", &err));
	assert_int_equal(err.rc, GOMAN_ECREDS);
	assert_null(gm_split_args("   ", &err));
	assert_null(gm_split_args("tool trailing\\", &err));
}

/* A credential_process script: counts its runs, records its argv and stdin, prints
 * credentials expiring in $1 minutes. */
static void write_process_script(void)
{
	char text[2048];
	snprintf(text, sizeof(text),
		 "#!/bin/sh\n"
		 "d='%s'\n"
		 "echo run >> \"$d/runs\"\n"
		 "printf '%%s\\n' \"$@\" > \"$d/argv\"\n"
		 "cat > \"$d/stdin\"\n"
		 "exp=$(date -u -d \"+$1 min\" +%%Y-%%m-%%dT%%H:%%M:%%SZ)\n"
		 "n=$(wc -l < \"$d/runs\")\n"
		 "printf '{\"Version\": 1, \"AccessKeyId\": \"AKIAPROC%%s\", "
		 "\"SecretAccessKey\": \"proc-secret\", \"SessionToken\": \"proc-token\", "
		 "\"Expiration\": \"%%s\"}\\n' \"$n\" \"$exp\"\n",
		 tmpdir);
	write_file("proc.sh", text, 0700);
}

static int runs(void)
{
	char *t = read_text(tpath("runs"));
	int n = 0;
	for (char *p = t; *p; p++)
		n += *p == '\n';
	free(t);
	return n;
}

static void credential_process_json_is_read_and_cached_until_expiry(void **state)
{
	write_process_script();
	char cfg[1024];
	snprintf(cfg, sizeof(cfg),
		 "[profile proc]\ncredential_process = %s/proc.sh 60 'two words'\n", tmpdir);
	write_file(".aws/config", cfg, 0600);
	struct goman_credchain *cc = chain("proc");
	struct goman_creds c;
	get_ok(cc, &c);
	assert_string_equal(c.access_key_id, "AKIAPROC1");
	assert_string_equal(c.secret_access_key, "proc-secret");
	assert_string_equal(c.session_token, "proc-token");
	assert_string_equal(c.source, "process");
	int64_t now = goman_now_ms();
	assert_true(c.expires_ms > now + 50 * 60000 && c.expires_ms < now + 70 * 60000);
	goman_creds_clear(&c);
	/* split like a shell, run without one; stdin is not ours */
	char *argv = read_text(tpath("argv"));
	assert_string_equal(argv, "60\ntwo words\n");
	free(argv);
	char *in = read_text(tpath("stdin"));
	assert_string_equal(in, "");
	free(in);
	/* cached: a second get does not run it again */
	get_ok(cc, &c);
	assert_string_equal(c.access_key_id, "AKIAPROC1");
	goman_creds_clear(&c);
	assert_int_equal(runs(), 1);
	/* invalidate forces a re-run */
	goman_credchain_invalidate(cc);
	get_ok(cc, &c);
	assert_string_equal(c.access_key_id, "AKIAPROC2");
	goman_creds_clear(&c);
	assert_int_equal(runs(), 2);
	goman_credchain_free(cc);
}

static int64_t wall_offset;
static int64_t shifted_wall(void *ctx)
{
	(void)ctx;
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 + wall_offset;
}

static void credential_process_is_rerun_within_five_minutes_of_expiry(void **state)
{
	write_process_script();
	char cfg[1024];
	snprintf(cfg, sizeof(cfg), "[default]\ncredential_process = %s/proc.sh 20\n", tmpdir);
	write_file(".aws/config", cfg, 0600);
	struct goman_credchain *cc = chain(NULL);
	struct goman_creds c;
	get_ok(cc, &c);
	goman_creds_clear(&c);
	/* 14 minutes later: 6 left, outside the 5 minute margin, still cached */
	wall_offset = 14 * 60000;
	goman_clock_override(shifted_wall, NULL, NULL);
	get_ok(cc, &c);
	assert_string_equal(c.access_key_id, "AKIAPROC1");
	goman_creds_clear(&c);
	assert_int_equal(runs(), 1);
	/* 16 minutes later: 4 left, inside the margin: run again */
	wall_offset = 16 * 60000;
	get_ok(cc, &c);
	assert_string_equal(c.access_key_id, "AKIAPROC2");
	goman_creds_clear(&c);
	assert_int_equal(runs(), 2);
	goman_credchain_free(cc);
}

static void credential_process_failures_are_ecreds(void **state)
{
	static const char *const bodies[] = {
		"echo '{\"Version\":1,\"AccessKeyId\":\"A\",\"SecretAccessKey\":\"S\"}'; exit 3\n",
		"echo '{\"Version\":2,\"AccessKeyId\":\"A\",\"SecretAccessKey\":\"S\"}'\n",
		"echo 'not json'\n",
		"echo '{\"Version\":1,\"AccessKeyId\":\"A\"}'\n",
		"echo '{\"Version\":1,\"AccessKeyId\":\"A\",\"SecretAccessKey\":\"S\","
		"\"Expiration\":\"2001-01-01T00:00:00Z\"}'\n",
		"kill -9 $$\n",
	};
	for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
		char text[512];
		snprintf(text, sizeof(text), "#!/bin/sh\n%s", bodies[i]);
		write_file("bad.sh", text, 0700);
		char cfg[600];
		snprintf(cfg, sizeof(cfg), "[default]\ncredential_process = %s/bad.sh\n", tmpdir);
		write_file(".aws/config", cfg, 0600);
		struct goman_credchain *cc = chain(NULL);
		struct goman_err err = GOMAN_ERR_INIT;
		assert_int_equal(get_fails(cc, &err), GOMAN_ECREDS);
		goman_credchain_free(cc);
	}
	/* a command that does not exist */
	write_file(".aws/config", "[default]\ncredential_process = /nonexistent/tool\n", 0600);
	struct goman_credchain *cc = chain(NULL);
	struct goman_err err = GOMAN_ERR_INIT;
	assert_int_equal(get_fails(cc, &err), GOMAN_ECREDS);
	assert_non_null(strstr(err.message, "/nonexistent/tool"));
	goman_credchain_free(cc);
}

static bool gone(pid_t pid)
{
	/* dead, or a zombie nobody has reaped yet */
	char path[64], st = 0;
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return true;
	int n = fscanf(f, "%*d %*s %c", &st);
	fclose(f);
	return n == 1 && (st == 'Z' || st == 'X');
}

static void
credential_process_that_hangs_is_killed_with_its_children_after_the_timeout(void **state)
{
	char text[512];
	snprintf(text, sizeof(text), "#!/bin/sh\nsleep 30 &\necho $! > '%s/grandchild'\nsleep 30\n",
		 tmpdir);
	write_file("hang.sh", text, 0700);
	char cfg[600];
	snprintf(cfg, sizeof(cfg), "[default]\ncredential_process = %s/hang.sh\n", tmpdir);
	write_file(".aws/config", cfg, 0600);
	setenv("GOMAN_CREDENTIAL_PROCESS_TIMEOUT_MS", "300", 1);
	struct goman_credchain *cc = chain(NULL);
	struct goman_err err = GOMAN_ERR_INIT;
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_int_equal(get_fails(cc, &err), GOMAN_ECREDS);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	unsetenv("GOMAN_CREDENTIAL_PROCESS_TIMEOUT_MS");
	assert_true(t1.tv_sec - t0.tv_sec < 10);
	assert_non_null(strstr(err.message, "did not finish within 300 ms"));
	assert_string_equal(err.code, "CredentialProcessFailed");
	char *gc = read_text(tpath("grandchild"));
	pid_t pid = (pid_t)atoi(gc);
	free(gc);
	assert_true(pid > 0);
	for (int i = 0; i < 200 && !gone(pid); i++)
		usleep(10000);
	assert_true(gone(pid));
	goman_credchain_free(cc);
}

static void a_process_holding_credentials_is_not_dumpable(void **state)
{
	setenv("AWS_ACCESS_KEY_ID", "AKIADUMP", 1);
	setenv("AWS_SECRET_ACCESS_KEY", "dump-secret", 1);
	prctl(PR_SET_DUMPABLE, 1, 0, 0, 0);
	assert_int_equal(prctl(PR_GET_DUMPABLE, 0, 0, 0, 0), 1);
	struct goman_credchain *cc = chain(NULL);
	struct goman_creds c;
	get_ok(cc, &c);
	goman_creds_clear(&c);
	assert_int_equal(prctl(PR_GET_DUMPABLE, 0, 0, 0, 0), 0);
	goman_credchain_free(cc);
}

static void region_names_follow_botocore(void **state)
{
	static const char *const good[] = {
		"us-east-1", "eu-central-1", "us-gov-west-1", "cn-north-1", "a", "A1", "x-y"};
	static const char *const bad[] = {"",         "-us",     "us-",     "x@127.0.0.1:18443/#",
					  "us east",  "us.east", "us_east", "r\r\nX: y",
					  "r\xc3\xa9"};
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		assert_true(goman_region_ok(good[i]));
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_false(goman_region_ok(bad[i]));
	assert_false(goman_region_ok(NULL));
	char r[80];
	memset(r, 'a', sizeof(r));
	r[63] = '\0';
	assert_true(goman_region_ok(r));
	r[63] = 'a';
	r[64] = '\0';
	assert_false(goman_region_ok(r));
	/* never a URL from a bad region; a region from the environment is checked too */
	assert_null(goman_credchain_endpoint(NULL, "sts", "x@127.0.0.1:18443/#"));
	setenv("AWS_REGION", "x@127.0.0.1:18443/#", 1);
	struct goman_err err = GOMAN_ERR_INIT;
	goman_err_clear(&err);
	assert_null(goman_credchain_region(NULL, &err));
	assert_string_equal(err.code, "InvalidRegion");
	assert_int_equal(err.cls, GOMAN_CLASS_BAD_INPUT);
	assert_null(strstr(err.message, "127.0.0.1"));
	assert_int_equal(err.rc, GOMAN_ECONFIG);
	unsetenv("AWS_REGION");
}

static void role_profile_without_a_source_is_an_error(void **state)
{
	write_file(".aws/config",
		   "[profile r]\nrole_arn = arn:aws:iam::123456789012:role/x\n"
		   "[profile loop]\nrole_arn = arn:aws:iam::123456789012:role/y\n"
		   "source_profile = loop2\n"
		   "[profile loop2]\nrole_arn = arn:aws:iam::123456789012:role/z\n"
		   "source_profile = loop\n"
		   "[profile empty]\nrole_arn = arn:aws:iam::123456789012:role/w\n"
		   "source_profile = nokeys\n"
		   "[profile nokeys]\nregion = us-east-1\n",
		   0600);
	struct goman_err err = GOMAN_ERR_INIT;
	struct goman_credchain *cc = chain("r");
	assert_int_equal(get_fails(cc, &err), GOMAN_ECREDS);
	assert_string_equal(err.code, "InvalidConfig");
	goman_credchain_free(cc);
	cc = chain("loop");
	assert_int_equal(get_fails(cc, &err), GOMAN_ECREDS);
	assert_non_null(strstr(err.message, "loop"));
	goman_credchain_free(cc);
	cc = chain("empty");
	assert_int_equal(get_fails(cc, &err), GOMAN_ECREDS);
	assert_string_equal(err.code, "NoCredentials");
	goman_credchain_free(cc);
}

/* ---- region and endpoints -------------------------------------------------------- */

static void region_precedence_is_env_then_default_env_then_profile(void **state)
{
	write_file(".aws/config", "[default]\nregion = eu-north-1\n", 0600);
	struct goman_credchain *cc = chain(NULL);
	struct goman_err err = GOMAN_ERR_INIT;
	char *r = goman_credchain_region(cc, &err);
	assert_string_equal(r, "eu-north-1");
	free(r);
	setenv("AWS_DEFAULT_REGION", "us-west-1", 1);
	r = goman_credchain_region(cc, &err);
	assert_string_equal(r, "us-west-1");
	free(r);
	setenv("AWS_REGION", "ca-central-1", 1);
	r = goman_credchain_region(cc, &err);
	assert_string_equal(r, "ca-central-1");
	free(r);
	goman_credchain_free(cc);
	unsetenv("AWS_REGION");
	unsetenv("AWS_DEFAULT_REGION");
	write_file(".aws/config", "[default]\noutput = json\n", 0600);
	cc = chain(NULL);
	goman_err_clear(&err);
	assert_null(goman_credchain_region(cc, &err));
	assert_int_equal(err.rc, GOMAN_ECONFIG);
	goman_credchain_free(cc);
}

static void endpoint_precedence_service_env_global_env_services_profile_default(void **state)
{
	write_file(".aws/config",
		   "[profile local]\n"
		   "endpoint_url = http://127.0.0.1:4000/\n"
		   "services = mine\n"
		   "[services mine]\n"
		   "ssm =\n"
		   "  endpoint_url = http://127.0.0.1:4001\n",
		   0600);
	struct goman_credchain *cc = chain("local");
	char *e;
	e = goman_credchain_endpoint(cc, "ssm", "us-east-1");
	assert_string_equal(e, "http://127.0.0.1:4001");
	free(e);
	e = goman_credchain_endpoint(cc, "ec2", "us-east-1");
	assert_string_equal(e, "http://127.0.0.1:4000"); /* trailing slash dropped */
	free(e);
	setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:5000", 1);
	e = goman_credchain_endpoint(cc, "ssm", "us-east-1");
	assert_string_equal(e, "http://127.0.0.1:5000");
	free(e);
	setenv("AWS_ENDPOINT_URL_DYNAMODB", "http://127.0.0.1:6000", 1);
	e = goman_credchain_endpoint(cc, "dynamodb", "us-east-1");
	assert_string_equal(e, "http://127.0.0.1:6000");
	free(e);
	e = goman_credchain_endpoint(cc, "s3", "us-east-1");
	assert_string_equal(e, "http://127.0.0.1:5000");
	free(e);
	setenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "true", 1);
	e = goman_credchain_endpoint(cc, "dynamodb", "eu-west-3");
	assert_string_equal(e, "https://dynamodb.eu-west-3.amazonaws.com");
	free(e);
	goman_credchain_free(cc);
}

static void default_endpoints_are_the_real_aws_ones(void **state)
{
	struct goman_credchain *cc = chain(NULL);
	static const char *const cases[][3] = {
		{"ec2", "us-east-2", "https://ec2.us-east-2.amazonaws.com"},
		{"ssm", "eu-west-1", "https://ssm.eu-west-1.amazonaws.com"},
		{"s3", "ap-south-1", "https://s3.ap-south-1.amazonaws.com"},
		{"dynamodb", "us-west-2", "https://dynamodb.us-west-2.amazonaws.com"},
		{"sts", "eu-central-1", "https://sts.eu-central-1.amazonaws.com"},
		{"iam", "eu-central-1", "https://iam.amazonaws.com"},
		{"ec2", "cn-north-1", "https://ec2.cn-north-1.amazonaws.com.cn"},
		{"ec2", NULL, "https://ec2.us-east-1.amazonaws.com"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *e = goman_credchain_endpoint(cc, cases[i][0], cases[i][1]);
		assert_string_equal(e, cases[i][2]);
		free(e);
	}
	/* a NULL chain still resolves env and defaults */
	setenv("AWS_ENDPOINT_URL_STS", "http://localhost:1/", 1);
	char *e = goman_credchain_endpoint(NULL, "sts", "us-east-1");
	assert_string_equal(e, "http://localhost:1");
	free(e);
	goman_credchain_free(cc);
}

static void creds_copy_duplicates_and_clear_frees(void **state)
{
	struct goman_creds a = {.access_key_id = "AKIA",
				.secret_access_key = "s",
				.session_token = NULL,
				.expires_ms = 42,
				.source = "env"};
	struct goman_creds b;
	assert_int_equal(goman_creds_copy(&b, &a), 0);
	assert_ptr_not_equal(b.access_key_id, a.access_key_id);
	assert_string_equal(b.secret_access_key, "s");
	assert_null(b.session_token);
	assert_int_equal(b.expires_ms, 42);
	goman_creds_clear(&b);
	assert_null(b.access_key_id);
	assert_null(b.secret_access_key);
	goman_creds_clear(&b);
	goman_creds_clear(NULL);
}

/* ---- ECS and IMDS against the loopback fixture ----------------------------------- */

static int fixture_start(void **state)
{
	char dir[] = "/tmp/goman-mdfix-XXXXXX";
	assert_non_null(mkdtemp(dir));
	static char portfile[300];
	snprintf(portfile, sizeof(portfile), "%s/port", dir);
	snprintf(fixture_log, sizeof(fixture_log), "%s/log", dir);
	fixture_pid = fork();
	if (fixture_pid == 0) {
		int devnull = open("/dev/null", O_RDWR);
		dup2(devnull, 0);
		execlp("python3", "python3", "tests/fixtures/metadata_fixture.py", portfile,
		       fixture_log, "--ecs-token", "ecs-auth-token", (char *)NULL);
		_exit(127);
	}
	for (int i = 0; i < 100; i++) {
		FILE *f = fopen(portfile, "r");
		if (f) {
			if (fgets(fixture_port, sizeof(fixture_port), f))
				fixture_port[strcspn(fixture_port, "\n")] = '\0';
			fclose(f);
			break;
		}
		usleep(100000);
	}
	if (!fixture_port[0]) {
		fprintf(stderr, "metadata fixture did not start (python3 on PATH?)\n");
		return -1;
	}
	return 0;
}

static int fixture_stop(void **state)
{
	if (fixture_pid > 0) {
		kill(fixture_pid, SIGTERM);
		waitpid(fixture_pid, NULL, 0);
	}
	char dir[300];
	snprintf(dir, sizeof(dir), "%s", fixture_log);
	*strrchr(dir, '/') = '\0';
	nftw(dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
	return 0;
}

static size_t log_lines(void)
{
	char *t = read_text(fixture_log);
	size_t n = 0;
	for (char *p = t; *p; p++)
		n += *p == '\n';
	free(t);
	return n;
}

static void ecs_full_uri_with_token_gives_container_credentials(void **state)
{
	char url[128];
	snprintf(url, sizeof(url), "http://127.0.0.1:%s/creds", fixture_port);
	setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", url, 1);
	setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN", "ecs-auth-token", 1);
	size_t before = log_lines();
	struct goman_credchain *cc = chain(NULL);
	struct goman_creds c;
	get_ok(cc, &c);
	assert_string_equal(c.access_key_id, "ASIAECSFIXTURE");
	assert_string_equal(c.secret_access_key, "ecs-fixture-secret");
	assert_string_equal(c.session_token, "ecs-fixture-session");
	assert_string_equal(c.source, "ecs");
	assert_true(c.expires_ms > goman_now_ms());
	goman_creds_clear(&c);
	goman_credchain_free(cc);
	assert_int_equal(log_lines(), before + 1);
	char *log = read_text(fixture_log);
	assert_non_null(strstr(log, "\"auth_ok\": true"));
	free(log);
	/* the token from a file (trailing newline trimmed) works the same */
	unsetenv("AWS_CONTAINER_AUTHORIZATION_TOKEN");
	write_file("ecs-token", "ecs-auth-token\n", 0600);
	setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", tpath("ecs-token"), 1);
	cc = chain(NULL);
	get_ok(cc, &c);
	assert_string_equal(c.source, "ecs");
	goman_creds_clear(&c);
	goman_credchain_free(cc);
}

static void ecs_wrong_token_is_ecreds_not_a_fall_through(void **state)
{
	char url[128];
	snprintf(url, sizeof(url), "http://127.0.0.1:%s/creds", fixture_port);
	setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", url, 1);
	setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN", "wrong", 1);
	struct goman_credchain *cc = chain(NULL);
	struct goman_err err = GOMAN_ERR_INIT;
	assert_int_equal(get_fails(cc, &err), GOMAN_ECREDS);
	assert_int_equal(err.http_status, 401);
	assert_null(strstr(err.message, "wrong")); /* the token is not echoed */
	goman_credchain_free(cc);
}

static void ecs_full_uri_over_plain_http_to_a_remote_host_is_refused(void **state)
{
	/* TEST-NET-1: refused before any packet is sent */
	setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://192.0.2.10/creds", 1);
	setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN", "secret-token", 1);
	struct goman_credchain *cc = chain(NULL);
	struct goman_err err = GOMAN_ERR_INIT;
	assert_int_equal(get_fails(cc, &err), GOMAN_ECREDS);
	assert_non_null(strstr(err.message, "must be https"));
	goman_credchain_free(cc);
}

static void imdsv2_token_then_role_then_credentials(void **state)
{
	char url[128];
	snprintf(url, sizeof(url), "http://127.0.0.1:%s/", fixture_port);
	unsetenv("AWS_EC2_METADATA_DISABLED");
	setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", url, 1);
	size_t before = log_lines();
	struct goman_credchain *cc = chain(NULL);
	struct goman_creds c;
	get_ok(cc, &c);
	assert_string_equal(c.access_key_id, "ASIAIMDSFIXTURE");
	assert_string_equal(c.secret_access_key, "imds-fixture-secret");
	assert_string_equal(c.session_token, "imds-fixture-session");
	assert_string_equal(c.source, "imds");
	goman_creds_clear(&c);
	/* region falls back to the placement region */
	struct goman_err err = GOMAN_ERR_INIT;
	char *r = goman_credchain_region(cc, &err);
	assert_string_equal(r, "eu-central-1");
	free(r);
	goman_credchain_free(cc);
	/* PUT token first, then every GET carried it */
	char *log = read_text(fixture_log);
	char *p = log;
	for (size_t i = 0; i < before; i++)
		p = strchr(p, '\n') + 1;
	assert_non_null(strstr(
		p, "{\"method\": \"PUT\", \"path\": \"/latest/api/token\", \"ttl\": \"21600\"}"));
	assert_true(strstr(p, "\"PUT\"") < strstr(p, "\"GET\""));
	assert_non_null(
		strstr(p, "\"path\": \"/latest/meta-data/iam/security-credentials/goman-node\", "
			  "\"token_ok\": true"));
	assert_null(strstr(p, "\"token_ok\": false"));
	free(log);
}

static void imds_disabled_sends_nothing(void **state)
{
	char url[128];
	snprintf(url, sizeof(url), "http://127.0.0.1:%s", fixture_port);
	setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", url, 1);
	setenv("AWS_EC2_METADATA_DISABLED", "TRUE", 1);
	size_t before = log_lines();
	struct goman_credchain *cc = chain(NULL);
	struct goman_err err = GOMAN_ERR_INIT;
	assert_int_equal(get_fails(cc, &err), GOMAN_ECREDS);
	goman_err_clear(&err);
	assert_null(goman_credchain_region(cc, &err));
	goman_credchain_free(cc);
	assert_int_equal(log_lines(), before);
}

static void imds_unreachable_is_no_credentials_quickly(void **state)
{
	/* a loopback port nobody listens on: connection refused, not a hang */
	unsetenv("AWS_EC2_METADATA_DISABLED");
	setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", "http://127.0.0.1:1", 1);
	struct goman_credchain *cc = chain(NULL);
	struct goman_err err = GOMAN_ERR_INIT;
	assert_int_equal(get_fails(cc, &err), GOMAN_ECREDS);
	assert_string_equal(err.code, "NoCredentials");
	goman_credchain_free(cc);
}

/* ---- precedence, as the AWS CLI v2 documents it ----------------------------------- */

/* One row: what is configured, and which source must win. Sources that would call STS or
 * SSO are pointed at a loopback port nobody listens on, so the winner shows in the error
 * it ends with (the chain stops at the first configured source, as the CLI does). */
struct prec_row {
	const char *name;
	const char *config, *credentials;
	const char *env[4];  /* "NAME=value" */
	const char *profile; /* passed as an argument (like --profile) */
	const char *want;    /* the source ("env", "profile:NAME", "process") or a piece of
			      * the error of the source that won */
};

#define ROLE "role_arn = arn:aws:iam::123456789012:role/"
#define KEYS(k) "aws_access_key_id = " k "\naws_secret_access_key = s-" k "\n"
#define PROC                                                                               \
	"credential_process = /bin/echo '{\"Version\": 1, \"AccessKeyId\": \"AKIAPROC\", " \
	"\"SecretAccessKey\": \"proc-secret\"}'\n"
#define SSO                                                                          \
	"sso_session = corp\nsso_account_id = 123456789012\nsso_role_name = Admin\n" \
	"[sso-session corp]\nsso_start_url = https://x.awsapps.com/start\n"          \
	"sso_region = eu-west-1\n"
#define WEBID_ENV                                     \
	"AWS_WEB_IDENTITY_TOKEN_FILE=/dev/null/none", \
		"AWS_ROLE_ARN=arn:aws:iam::123456789012:role/webid"

static const struct prec_row prec_rows[] = {
	{"env keys before a role profile",
	 "[default]\n" ROLE "r\nsource_profile = base\n",
	 "[base]\n" KEYS("AKIABASE"),
	 {"AWS_ACCESS_KEY_ID=AKIAENV", "AWS_SECRET_ACCESS_KEY=e"},
	 NULL,
	 "env"},
	{"a role profile before web identity",
	 "[default]\n" ROLE "r\nsource_profile = base\n",
	 "[base]\n" KEYS("AKIABASE"),
	 {WEBID_ENV},
	 NULL,
	 "AssumeRole arn:aws:iam::123456789012:role/r:"},
	{"web identity before SSO",
	 "[default]\n" SSO,
	 "",
	 {WEBID_ENV},
	 NULL,
	 "web identity token file '/dev/null/none'"},
	{"SSO before the credentials file",
	 "[default]\n" SSO,
	 "[default]\n" KEYS("AKIAFILE"),
	 {0},
	 NULL,
	 "aws sso login --profile default"},
	{"credentials file before credential_process",
	 "[default]\n" PROC,
	 "[default]\n" KEYS("AKIAFILE"),
	 {0},
	 NULL,
	 "profile:default"},
	{"credential_process before config file keys",
	 "[default]\n" PROC KEYS("AKIACONF"),
	 "",
	 {0},
	 NULL,
	 "process"},
	{"config file keys before container credentials",
	 "[default]\n" KEYS("AKIACONF"),
	 "",
	 {"AWS_CONTAINER_CREDENTIALS_FULL_URI=http://127.0.0.1:1/creds"},
	 NULL,
	 "profile:default"},
	{"a named profile skips env keys and web identity env",
	 "[profile p]\n" KEYS("AKIAP"),
	 "",
	 {"AWS_ACCESS_KEY_ID=AKIAENV", "AWS_SECRET_ACCESS_KEY=e", WEBID_ENV},
	 "p",
	 "profile:p"},
	{"a source profile with keys is used for its keys, not its role",
	 "[default]\n" ROLE "top\nsource_profile = mid\n[profile mid]\n" ROLE "mid\n"
	 "source_profile = base\n" KEYS("AKIAMID"),
	 "[base]\n" KEYS("AKIABASE"),
	 {0},
	 NULL,
	 "AssumeRole arn:aws:iam::123456789012:role/top:"},
	{"web identity profile keys win over role_arn + source_profile",
	 "[default]\n" ROLE "r\nsource_profile = base\nweb_identity_token_file = /dev/null/p\n",
	 "[base]\n" KEYS("AKIABASE"),
	 {0},
	 NULL,
	 "web identity token file '/dev/null/p'"},
};

static void credential_precedence_follows_the_cli_table(void **state)
{
	for (size_t i = 0; i < sizeof(prec_rows) / sizeof(prec_rows[0]); i++) {
		const struct prec_row *r = &prec_rows[i];
		for (size_t v = 0; v < NVARS; v++)
			if (strcmp(aws_vars[v], "HOME"))
				unsetenv(aws_vars[v]);
		setenv("AWS_EC2_METADATA_DISABLED", "true", 1);
		setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:1", 1);
		setenv("AWS_MAX_ATTEMPTS", "1", 1);
		for (size_t e = 0; e < 4 && r->env[e]; e++) {
			char name[64];
			const char *eq = strchr(r->env[e], '=');
			snprintf(name, sizeof(name), "%.*s", (int)(eq - r->env[e]), r->env[e]);
			setenv(name, eq + 1, 1);
		}
		write_file(".aws/config", r->config, 0600);
		write_file(".aws/credentials", r->credentials, 0600);
		struct goman_credchain *cc = chain(r->profile);
		struct goman_creds c;
		struct goman_err err = GOMAN_ERR_INIT;
		goman_err_clear(&err);
		const char *got = goman_credchain_get(cc, &c, &err) == 0 ? c.source : err.message;
		if (!strstr(got, r->want))
			fail_msg("%s: wanted \"%s\", got \"%s\"", r->name, r->want, got);
		goman_creds_clear(&c);
		goman_credchain_free(cc);
	}
}

/* botocore's keys for the same arguments (computed with botocore's fetchers, whose
 * json.dumps escapes non-ASCII as \uXXXX with surrogate pairs) */
/* {"DurationSeconds": 900, "RoleArn": "...:role/goman-ops", "RoleSessionName": "goman-test"} */
#define BOTO_KEY_OPS "011f03122cd47a4fe14462be02773fa526486dd8"
#define BOTO_KEY_PIPELINE "e78be19f8f35d1fda1036b2cf3d70426cc0494b1"
#define BOTO_KEY_UNICODE "3bb04b7484cf59356f4d462a031596bf1796d4c9"
#define BOTO_KEY_ROLE_ONLY "f12bc260e3d2390dd0ea8aa092d6f7f5f6a0ec1c"
#define BOTO_KEY_SSO_SESSION "8457bc68cf9d4aa8d629a61563948e8bd3159d49"
#define BOTO_KEY_SSO_URL "243185b3287804d23760113d179c4c72e67b4061"
static void cache_keys_are_botocores(void **state)
{
	char key[41];
	struct gm_assume a = {.role_arn = "arn:aws:iam::123456789012:role/goman-cached",
			      .session_name = "pipeline",
			      .duration_s = 900};
	assert_int_equal(gm_cache_key_assume(&a, key), 0);
	assert_string_equal(key, BOTO_KEY_PIPELINE);
	struct gm_assume b = {.role_arn = "arn:aws:iam::123456789012:role/r",
			      .session_name = "s\xc3\xa9ssion \xf0\x9f\x94\x91\"\\\n",
			      .external_id = "ext",
			      .mfa_serial = "arn:aws:iam::123456789012:mfa/u"};
	assert_int_equal(gm_cache_key_assume(&b, key), 0);
	assert_string_equal(key, BOTO_KEY_UNICODE);
	struct gm_assume c = {.role_arn = "arn:aws:iam::123456789012:role/webid"};
	assert_int_equal(gm_cache_key_assume(&c, key), 0);
	assert_string_equal(key, BOTO_KEY_ROLE_ONLY);
	assert_int_equal(gm_cache_key_sso("123456789012", "Admin", "corp", NULL, key), 0);
	assert_string_equal(key, BOTO_KEY_SSO_SESSION);
	assert_int_equal(
		gm_cache_key_sso("123456789012", "Admin", NULL, "https://x.awsapps.com/start", key),
		0);
	assert_string_equal(key, BOTO_KEY_SSO_URL);
	/* bad UTF-8 is refused, not hashed into a key nobody else computes */
	b.session_name = "\xff";
	assert_int_equal(gm_cache_key_assume(&b, key), -1);
}

/* ---- AssumeRole against the local AWS endpoint ----------------------------------- */

/* moto checks an assumed role's own policies when its credentials are used (the chained
 * case), so the roles must exist, with a policy that lets them call STS. */
static int create_role(struct goman_aws *aws, const char *name)
{
	static const char *trust = "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":"
				   "\"Allow\",\"Principal\":{\"AWS\":\"*\"},\"Action\":"
				   "\"sts:AssumeRole\"}]}";
	static const char *all = "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":"
				 "\"Allow\",\"Action\":\"*\",\"Resource\":\"*\"}]}";
	struct goman_kvs p = {0};
	struct goman_aws_result res;
	goman_kvs_add(&p, "RoleName", name);
	goman_kvs_add(&p, "AssumeRolePolicyDocument", trust);
	struct goman_aws_call call = {.service = "iam", .action = "CreateRole", .params = &p};
	int rc = goman_aws_call(aws, &call, &res);
	if (rc < 0 && strcmp(res.err.code, "EntityAlreadyExists") == 0)
		rc = 0; /* a re-run against the same endpoint */
	if (rc < 0)
		fprintf(stderr, "CreateRole %s: %s\n", name, res.err.message);
	goman_aws_result_clear(&res);
	goman_kvs_clear(&p);
	goman_kvs_add(&p, "RoleName", name);
	goman_kvs_add(&p, "PolicyName", "all");
	goman_kvs_add(&p, "PolicyDocument", all);
	call.action = "PutRolePolicy";
	if (rc == 0 && (rc = goman_aws_call(aws, &call, &res)) < 0)
		fprintf(stderr, "PutRolePolicy %s: %s\n", name, res.err.message);
	goman_aws_result_clear(&res);
	goman_kvs_clear(&p);
	return rc;
}

static char *moto_env[4];
static int assume_setup(void **state)
{
	/* the caller exported the local endpoint's env: keep its key for the source profile */
	const char *names[] = {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_ENDPOINT_URL"};
	for (int i = 0; i < 3; i++) {
		const char *v = getenv(names[i]);
		if (!v)
			return -1;
		moto_env[i] = strdup(v);
	}
	struct goman_err err = GOMAN_ERR_INIT;
	struct goman_aws_opts o = {.region = "us-east-1"};
	struct goman_aws *aws = goman_aws_new(&o, &err);
	if (!aws) {
		fprintf(stderr, "aws client: %s\n", err.message);
		return -1;
	}
	int rc = create_role(aws, "goman-ops") | create_role(aws, "goman-ops2");
	goman_aws_free(aws);
	return rc;
}

static int assume_teardown(void **state)
{
	for (int i = 0; i < 3; i++)
		free(moto_env[i]);
	return 0;
}

static void assume_role_uses_source_profile_and_caches(void **state)
{
	char text[1024];
	snprintf(text, sizeof(text), "[base]\naws_access_key_id = %s\naws_secret_access_key = %s\n",
		 moto_env[0], moto_env[1]);
	write_file(".aws/credentials", text, 0600);
	write_file(".aws/config",
		   "[profile ops]\n"
		   "role_arn = arn:aws:iam::123456789012:role/goman-ops\n"
		   "source_profile = base\n"
		   "role_session_name = goman-test\n"
		   "duration_seconds = 900\n"
		   "region = us-east-1\n"
		   "[profile ops2]\n"
		   "role_arn = arn:aws:iam::123456789012:role/goman-ops2\n"
		   "source_profile = ops\n",
		   0600);
	setenv("AWS_ENDPOINT_URL", moto_env[2], 1);
	struct goman_credchain *cc = chain("ops");
	struct goman_creds c, c2;
	get_ok(cc, &c);
	assert_string_equal(c.source, "assume-role");
	assert_non_null(c.session_token);
	assert_string_not_equal(c.access_key_id, moto_env[0]);
	int64_t now = goman_now_ms();
	assert_true(c.expires_ms > now + 60000 && c.expires_ms <= now + 3600 * 1000 + 60000);
	/* cached until expiry: same key, no second call */
	get_ok(cc, &c2);
	assert_string_equal(c2.access_key_id, c.access_key_id);
	goman_creds_clear(&c2);
	goman_creds_clear(&c);
	goman_credchain_free(cc);
	/* chained: ops2 assumes its role with ops' assumed credentials */
	cc = chain("ops2");
	get_ok(cc, &c);
	assert_string_equal(c.source, "assume-role");
	assert_non_null(c.session_token);
	goman_creds_clear(&c);
	goman_credchain_free(cc);
	/* a bad source key is an auth error from STS, named after the role (once the role's
	 * credentials are no longer in the CLI's cache, which would answer first) */
	rm_tree(".aws/cli");
	snprintf(text, sizeof(text),
		 "[base]\naws_access_key_id = %s\naws_secret_access_key = wrong\n", moto_env[0]);
	write_file(".aws/credentials", text, 0600);
	cc = chain("ops");
	struct goman_err err = GOMAN_ERR_INIT;
	get_fails(cc, &err);
	assert_non_null(strstr(err.message, "goman-ops"));
	assert_int_equal(err.cls, GOMAN_CLASS_AUTH);
	goman_credchain_free(cc);
}

/* the AccessKeyId in the CLI cache slot of the ops profile (malloc'd) */
static char *cached_key_id(void)
{
	char path[600];
	snprintf(path, sizeof(path), "%s/.aws/cli/cache/%s.json", tmpdir, BOTO_KEY_OPS);
	char *text = read_text(path);
	cJSON *doc = text ? cJSON_Parse(text) : NULL;
	const char *id = goman_json_path_str(doc, "Credentials.AccessKeyId");
	char *out = id ? strdup(id) : NULL;
	cJSON_Delete(doc);
	free(text);
	return out;
}

static void long_run_refreshes_role_credentials_before_they_expire(void **state)
{
	char text[1024];
	snprintf(text, sizeof(text), "[base]\naws_access_key_id = %s\naws_secret_access_key = %s\n",
		 moto_env[0], moto_env[1]);
	write_file(".aws/credentials", text, 0600);
	write_file(".aws/config",
		   "[profile ops]\n"
		   "role_arn = arn:aws:iam::123456789012:role/goman-ops\n"
		   "source_profile = base\n"
		   "role_session_name = goman-test\n"
		   "duration_seconds = 900\n",
		   0600);
	setenv("AWS_ENDPOINT_URL", moto_env[2], 1);
	struct goman_err err = GOMAN_ERR_INIT;
	struct goman_aws_opts o = {.profile = "ops", .region = "us-east-1"};
	struct goman_aws *aws = goman_aws_new(&o, &err);
	if (!aws)
		fail_msg("aws client: %s", err.message);
	struct goman_aws_call call = {.service = "sts", .action = "GetCallerIdentity"};
	struct goman_aws_result res;
	assert_int_equal(goman_aws_call(aws, &call, &res), 0);
	goman_aws_result_clear(&res);
	char *first = cached_key_id();
	assert_non_null(first);
	/* 11 minutes on, the 15-minute credentials are inside the 5-minute margin: the next
	 * call fetches new ones first and is signed with them */
	wall_offset = 11 * 60000;
	goman_clock_override(shifted_wall, NULL, NULL);
	assert_int_equal(goman_aws_call(aws, &call, &res), 0);
	assert_non_null(strstr(goman_json_path_str(res.data, "GetCallerIdentityResult.Arn"),
			       "assumed-role/goman-ops/goman-test"));
	goman_aws_result_clear(&res);
	char *second = cached_key_id();
	assert_non_null(second);
	assert_string_not_equal(first, second);
	free(first);
	free(second);
	goman_aws_free(aws);
}

/* A caller that asks its chain again from inside the chain's own STS call (what the AWS
 * client's loop does when other calls want credentials meanwhile), then makes the real call
 * through a client on the chain. */
struct reentrant {
	struct goman_credchain *cc;
	struct goman_aws *aws;
	int rc;
	char code[sizeof(((struct goman_err *)0)->code)], key[128];
};

static int reentrant_call(void *ctx, const struct gm_cc_call *call, cJSON **reply,
			  struct goman_err *err)
{
	struct reentrant *r = ctx;
	struct goman_creds c = {0};
	struct goman_err e = GOMAN_ERR_INIT;
	goman_err_clear(&e);
	r->rc = goman_credchain_get(r->cc, &c, &e);
	snprintf(r->code, sizeof(r->code), "%s", e.code);
	snprintf(r->key, sizeof(r->key), "%s", c.access_key_id ? c.access_key_id : "");
	goman_creds_clear(&c);
	return gm_aws_creds_call(r->aws, call, reply, err);
}

static void chain_asked_while_fetching_lends_valid_credentials_or_says_busy(void **state)
{
	char text[1024];
	snprintf(text, sizeof(text), "[base]\naws_access_key_id = %s\naws_secret_access_key = %s\n",
		 moto_env[0], moto_env[1]);
	write_file(".aws/credentials", text, 0600);
	write_file(".aws/config",
		   "[profile ops]\nrole_arn = arn:aws:iam::123456789012:role/goman-ops\n"
		   "source_profile = base\nduration_seconds = 900\n",
		   0600);
	setenv("AWS_ENDPOINT_URL", moto_env[2], 1);
	struct reentrant r = {.cc = chain("ops")};
	struct goman_err err = GOMAN_ERR_INIT;
	assert_non_null(r.aws = gm_aws_new_on_chain(r.cc, &err));
	gm_credchain_set_caller(r.cc, reentrant_call, &r, NULL);
	struct goman_creds c1, c2;
	/* nothing held yet: "ask again" */
	get_ok(r.cc, &c1);
	assert_int_equal(r.rc, -1);
	assert_string_equal(r.code, GM_CREDS_BUSY_CODE);
	/* inside the margin but unexpired: the current ones are lent while new ones come */
	wall_offset = 11 * 60000;
	goman_clock_override(shifted_wall, NULL, NULL);
	rm_tree(".aws/cli");
	get_ok(r.cc, &c2);
	assert_int_equal(r.rc, 0);
	assert_string_equal(r.key, c1.access_key_id);
	assert_string_not_equal(c2.access_key_id, c1.access_key_id);
	goman_creds_clear(&c1);
	goman_creds_clear(&c2);
	goman_aws_free(r.aws);
	goman_credchain_free(r.cc);
}

int main(int argc, char **argv)
{
	for (size_t i = 0; i < NVARS; i++) {
		const char *v = getenv(aws_vars[i]);
		saved[i] = v ? strdup(v) : NULL;
	}
	int rc;
	if (argc > 1 && strcmp(argv[1], "assume-role") == 0) {
		const struct CMUnitTest sts[] = {
			cmocka_unit_test_setup_teardown(assume_role_uses_source_profile_and_caches,
							setup, teardown),
			cmocka_unit_test_setup_teardown(
				long_run_refreshes_role_credentials_before_they_expire, setup,
				teardown),
			cmocka_unit_test_setup_teardown(
				chain_asked_while_fetching_lends_valid_credentials_or_says_busy,
				setup, teardown),
		};
		rc = cmocka_run_group_tests_name("assume-role", sts, assume_setup, assume_teardown);
	} else {
		const struct CMUnitTest files[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
			T(env_keys_come_before_the_default_profile),
			T(aws_profile_env_keeps_env_keys_first),
			T(profile_argument_skips_env_keys),
			T(config_file_profiles_need_the_profile_prefix),
			T(credentials_file_keys_win_over_config_file_keys),
			T(file_location_env_overrides_are_honoured),
			T(named_profile_that_does_not_exist_is_enotfound),
			T(nothing_configured_is_ecreds_without_touching_the_network),
			T(split_args_follows_shell_quoting_without_expansion),
			T(credential_process_json_is_read_and_cached_until_expiry),
			T(credential_process_is_rerun_within_five_minutes_of_expiry),
			T(credential_process_failures_are_ecreds),
			T(credential_process_that_hangs_is_killed_with_its_children_after_the_timeout),
			T(a_process_holding_credentials_is_not_dumpable),
			T(region_names_follow_botocore),
			T(role_profile_without_a_source_is_an_error),
			T(region_precedence_is_env_then_default_env_then_profile),
			T(endpoint_precedence_service_env_global_env_services_profile_default),
			T(default_endpoints_are_the_real_aws_ones),
			T(creds_copy_duplicates_and_clear_frees),
			T(credential_precedence_follows_the_cli_table),
			T(cache_keys_are_botocores),
		};
		const struct CMUnitTest fixture[] = {
			T(ecs_full_uri_with_token_gives_container_credentials),
			T(ecs_wrong_token_is_ecreds_not_a_fall_through),
			T(ecs_full_uri_over_plain_http_to_a_remote_host_is_refused),
			T(imdsv2_token_then_role_then_credentials),
			T(imds_disabled_sends_nothing),
			T(imds_unreachable_is_no_credentials_quickly),
#undef T
		};
		rc = cmocka_run_group_tests_name("creds", files, NULL, NULL);
		rc |= cmocka_run_group_tests_name("creds-metadata-fixture", fixture, fixture_start,
						  fixture_stop);
	}
	for (size_t i = 0; i < NVARS; i++) {
		if (saved[i])
			setenv(aws_vars[i], saved[i], 1);
		else
			unsetenv(aws_vars[i]);
		free(saved[i]);
	}
	return rc;
}
