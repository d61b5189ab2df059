/*
 * creds.c - the credential chain, region and endpoint resolution, as the AWS CLI does them
 * (see goman/creds.h). The providers that run programs or talk to services live in
 * creds_process.c, creds_http.c, creds_sts.c and creds_sso.c, the CLI's on-disk cache in
 * creds_cache.c; this file reads the profiles and decides the order.
 *
 * Chain order (the AWS CLI v2's, botocore's create_credential_resolver): environment keys
 * (skipped when a profile was passed explicitly, like `aws --profile`), then the profile:
 * role_arn without web_identity_token_file (AssumeRole from source_profile or
 * credential_source, with an MFA code when mfa_serial is set), web identity (the
 * AWS_WEB_IDENTITY_TOKEN_FILE / AWS_ROLE_ARN / AWS_ROLE_SESSION_NAME variables, not for an
 * explicit or source profile, else the profile keys), IAM Identity Center (sso_session or
 * sso_start_url), static keys in the credentials file, credential_process, static keys in
 * the config file; then ECS container credentials, then IMDSv2. A source that is configured
 * but fails stops the chain with its error. A source profile holding static keys is used
 * for them, not for its own role_arn (botocore's _resolve_credentials_from_profile).
 *
 * Profile settings are looked up in the credentials file "[name]" first, then the config
 * file "[profile name]" ("[default]" for default), as botocore merges them.
 *
 * The chain makes no AWS call by name: STS and SSO go through the caller hook its owner
 * installed (gm_credchain_set_caller). Assumed-role, web identity and SSO credentials sit in
 * the CLI's cache (~/.aws/cli/cache), shared by every process: reused while they have more
 * than the refresh margin left, else refreshed by one process under the slot's lock while
 * the others keep theirs or wait (cached_fetch).
 *
 * Caching in memory: the last credentials are kept until they are within the refresh margin
 * of their expiry: 5 minutes, or half their lifetime when that is shorter (so a provider
 * handing out 4-minute credentials is not re-run on every call). Asked again while it is
 * fetching (the owner's loop runs other calls meanwhile), the chain lends the current
 * credentials while they are unexpired, else answers GM_CREDS_BUSY_CODE.
 *
 * Ownership: the chain owns its files, cache and caller context; callers get copies.
 * goman_creds_clear() wipes the secret before freeing it.
 * Errors: -1/NULL with struct goman_err; ECREDS "NoCredentials" when no source had any.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <cjson/cJSON.h>
#include "goman/clock.h"
#include "goman/ini.h"
#include "goman/log.h"
#include "bytes_int.h"
#include "creds_int.h"

#define REFRESH_MARGIN_MS (5 * 60 * 1000)
#define MAX_ROLE_DEPTH 8

struct goman_credchain {
	char *profile;
	bool explicit_profile; /* passed as an argument: env keys do not apply */
	struct goman_ini *config, *credentials;
	struct goman_creds cache;
	bool cached;
	int64_t cache_margin_ms;
	char *imds_region; /* asked once */
	bool imds_region_asked;
	struct gm_caller caller; /* the owner's AWS client (STS, SSO calls) */
	void (*caller_free)(void *);
	bool resolving; /* a fetch is running further up this stack */
};

/* ~/ expansion of a path from the environment, or $HOME/.aws/<name>. malloc'd or NULL. */
static char *aws_file(const char *envname, const char *name)
{
	const char *v = gm_env(envname), *home = gm_env("HOME");
	char *p;
	size_t n;
	if (v && v[0] == '~' && (v[1] == '/' || !v[1]) && home) {
		n = strlen(home) + strlen(v) + 1;
		if ((p = malloc(n)))
			snprintf(p, n, "%s%s", home, v + 1);
		return p;
	}
	if (v)
		return strdup(v);
	if (!home)
		return NULL;
	n = strlen(home) + strlen(name) + 8;
	if ((p = malloc(n)))
		snprintf(p, n, "%s/.aws/%s", home, name);
	return p;
}

/* A missing file is an empty one; an unreadable one is an error. */
static int load_file(const char *envname, const char *name, struct goman_ini **out,
		     struct goman_err *err)
{
	char *path = aws_file(envname, name);
	*out = NULL;
	if (!path)
		return 0;
	struct goman_err e = GOMAN_ERR_INIT;
	goman_err_clear(&e);
	*out = goman_ini_load(path, &e);
	free(path);
	if (!*out && e.rc != GOMAN_ENOTFOUND) {
		if (err)
			*err = e;
		return -1;
	}
	return 0;
}

/* the config-file section of a profile: "default" or "profile NAME" */
static const char *config_get(const struct goman_credchain *cc, const char *profile,
			      const char *key)
{
	char sec[512];
	snprintf(sec, sizeof(sec), "profile %s", profile);
	const char *v = goman_ini_get(cc->config, sec, key);
	if (!v && strcmp(profile, "default") == 0)
		v = goman_ini_get(cc->config, "default", key);
	return v;
}

/* A profile setting: credentials file first, then config file (botocore's merge). */
static const char *prof_get(const struct goman_credchain *cc, const char *profile, const char *key)
{
	const char *v = goman_ini_get(cc->credentials, profile, key);
	return v ? v : config_get(cc, profile, key);
}

static bool profile_exists(const struct goman_credchain *cc, const char *profile)
{
	char sec[512];
	snprintf(sec, sizeof(sec), "profile %s", profile);
	for (size_t i = 0; goman_ini_section(cc->credentials, i); i++)
		if (strcmp(goman_ini_section(cc->credentials, i), profile) == 0)
			return true;
	for (size_t i = 0; goman_ini_section(cc->config, i); i++) {
		const char *s = goman_ini_section(cc->config, i);
		if (strcmp(s, sec) == 0 ||
		    (strcmp(profile, "default") == 0 && strcmp(s, "default") == 0))
			return true;
	}
	return false;
}

struct goman_credchain *gm_credchain_new(const char *profile, struct goman_err *err)
{
	struct goman_credchain *cc = calloc(1, sizeof(*cc));
	if (!cc) {
		gm_err_oom(err);
		return NULL;
	}
	const char *named = profile && *profile ? profile : NULL;
	cc->explicit_profile = named != NULL;
	if (!named)
		named = gm_env("AWS_PROFILE");
	if (!named)
		named = gm_env("AWS_DEFAULT_PROFILE");
	if (!(cc->profile = strdup(named ? named : "default"))) {
		gm_err_oom(err);
		goto fail;
	}
	if (load_file("AWS_CONFIG_FILE", "config", &cc->config, err) < 0 ||
	    load_file("AWS_SHARED_CREDENTIALS_FILE", "credentials", &cc->credentials, err) < 0)
		goto fail;
	/* a profile the user named must exist ("default" may be absent) */
	if (named && !profile_exists(cc, cc->profile)) {
		goman_err_set(err, GOMAN_ENOTFOUND, GOMAN_CLASS_CLIENT, "ProfileNotFound",
			      "the config profile (%s) could not be found", cc->profile);
		goto fail;
	}
	return cc;
fail:
	goman_credchain_free(cc);
	return NULL;
}

void gm_credchain_set_caller(struct goman_credchain *cc, gm_cc_call_fn fn, void *ctx,
			     void (*ctx_free)(void *))
{
	if (cc->caller_free)
		cc->caller_free(cc->caller.ctx);
	cc->caller = (struct gm_caller){.fn = fn, .ctx = ctx};
	cc->caller_free = ctx_free;
}

void goman_credchain_free(struct goman_credchain *cc)
{
	if (!cc)
		return;
	if (cc->caller_free)
		cc->caller_free(cc->caller.ctx);
	goman_creds_clear(&cc->cache);
	goman_ini_free(cc->config);
	goman_ini_free(cc->credentials);
	free(cc->imds_region);
	free(cc->profile);
	free(cc);
}

const char *goman_credchain_profile(const struct goman_credchain *cc)
{
	return cc ? cc->profile : "default";
}

void goman_credchain_invalidate(struct goman_credchain *cc)
{
	if (!cc)
		return;
	goman_creds_clear(&cc->cache);
	cc->cached = false;
}

static int from_env(struct goman_creds *out, struct goman_err *err)
{
	const char *ak = gm_env("AWS_ACCESS_KEY_ID"), *sk = gm_env("AWS_SECRET_ACCESS_KEY");
	if (!ak || !sk)
		return 1;
	const char *tok = gm_env("AWS_SESSION_TOKEN");
	if (!tok)
		tok = gm_env("AWS_SECURITY_TOKEN"); /* the older name botocore still reads */
	int64_t exp = 0;
	const char *ex = gm_env("AWS_CREDENTIAL_EXPIRATION");
	if (ex && goman_parse_time(ex, &exp) < 0)
		exp = 0;
	return gm_creds_set(out, ak, sk, tok, exp, "env", err);
}

/* static keys of a profile in one file (credentials: "[name]"; config: via config_get) */
static int static_keys(const struct goman_credchain *cc, const char *profile, bool config_file,
		       struct goman_creds *out, struct goman_err *err)
{
	const char *ak, *sk, *tok;
	if (config_file) {
		ak = config_get(cc, profile, "aws_access_key_id");
		sk = config_get(cc, profile, "aws_secret_access_key");
		tok = config_get(cc, profile, "aws_session_token");
	} else {
		ak = goman_ini_get(cc->credentials, profile, "aws_access_key_id");
		sk = goman_ini_get(cc->credentials, profile, "aws_secret_access_key");
		tok = goman_ini_get(cc->credentials, profile, "aws_session_token");
	}
	if (!ak || !*ak || !sk || !*sk)
		return 1;
	char src[300];
	snprintf(src, sizeof(src), "profile:%s", profile);
	return gm_creds_set(out, ak, sk, tok, 0, src, err);
}

static int profile_creds(struct goman_credchain *cc, const char *profile, int depth, bool env_ok,
			 struct goman_creds *out, struct goman_err *err);

#define config_error(err, ...) \
	goman_err_set(err, GOMAN_ECREDS, GOMAN_CLASS_AUTH, "InvalidConfig", __VA_ARGS__)

/* The region of the chain's own STS calls: the one the CLI's client for the profile uses,
 * us-east-1 when none is set. Checked like every region before it names a host. */
static int sts_region(const struct goman_credchain *cc, const char *profile, const char **out,
		      struct goman_err *err)
{
	const char *from = "AWS_REGION", *r = gm_env("AWS_REGION");
	if (!r)
		r = gm_env(from = "AWS_DEFAULT_REGION");
	if (!r) {
		r = prof_get(cc, profile, "region");
		from = "the profile's region";
	}
	*out = r;
	if (r && goman_region_check(r, from, err) != 0) {
		if (err)
			err->rc = GOMAN_ECONFIG;
		return -1;
	}
	return 0;
}

/* One provider behind the CLI's on-disk cache (assume-role, web identity, SSO). */
struct fetch {
	struct goman_credchain *cc;
	const char *profile;
	int depth;
	const char *source;
	int (*run)(struct fetch *f, struct goman_creds *out, cJSON **doc, struct goman_err *err);
	struct gm_assume a;
	const char *token_file;
	struct gm_sso sso;
};

/* Cached credentials of slot `key` while they have more than the margin left; else one
 * process refreshes them (run) under the slot's lock while the others wait, or keep using
 * theirs while they are still valid. */
static int cached_fetch(struct fetch *f, const char *key, struct goman_creds *out,
			struct goman_err *err)
{
	struct gm_cache_slot *slot = gm_cache_open(key, err);
	if (!slot)
		return -1;
	int rc = gm_cache_read(slot, REFRESH_MARGIN_MS, out, f->source, err);
	if (rc != 1)
		goto done;
	int lk = gm_cache_lock(slot, false, err);
	if (lk == 1) {
		/* another process is refreshing: still-valid credentials will do meanwhile */
		if ((rc = gm_cache_read(slot, 0, out, f->source, err)) != 1)
			goto done;
		lk = gm_cache_lock(slot, true, err);
	}
	if (lk != 0) {
		rc = -1;
		goto done;
	}
	/* the lock's previous holder may have refreshed them */
	if ((rc = gm_cache_read(slot, REFRESH_MARGIN_MS, out, f->source, err)) != 1)
		goto done;
	cJSON *doc = NULL;
	rc = f->run(f, out, &doc, err);
	if (rc == 0 && doc)
		gm_cache_write(slot, doc, NULL); /* not fatal: the credentials are good */
	gm_json_wipe_delete(doc);
done:
	gm_cache_close(slot);
	return rc;
}

/* An STS provider (assume-role, web identity) in the region of the profile's STS calls,
 * behind its CLI cache slot. */
static int cached_sts(struct fetch *f, struct goman_creds *out, struct goman_err *err)
{
	char key[41];
	if (sts_region(f->cc, f->profile, &f->a.region, err) != 0)
		return -1;
	if (gm_cache_key_assume(&f->a, key) != 0)
		return gm_err_oom(err);
	return cached_fetch(f, key, out, err);
}

/* The source credentials of a role profile: source_profile or credential_source. */
static int role_source(struct goman_credchain *cc, const char *profile, int depth,
		       struct goman_creds *base, struct goman_err *err)
{
	const char *src = prof_get(cc, profile, "source_profile");
	const char *csrc = prof_get(cc, profile, "credential_source");
	int rc;
	if (src) {
		/* a profile naming itself means its own static keys, as in botocore */
		if (strcmp(src, profile) == 0) {
			rc = static_keys(cc, src, false, base, err);
			if (rc == 1)
				rc = static_keys(cc, src, true, base, err);
		} else {
			rc = profile_creds(cc, src, depth + 1, false, base, err);
		}
	} else if (strcmp(csrc, "Environment") == 0) {
		rc = from_env(base, err);
	} else if (strcmp(csrc, "EcsContainer") == 0) {
		rc = gm_creds_ecs(NULL, base, err);
	} else {
		rc = gm_creds_imds(NULL, base, err);
	}
	if (rc == 1)
		return goman_err_set(err, GOMAN_ECREDS, GOMAN_CLASS_AUTH, "NoCredentials",
				     "profile %s: its source (%s) has no credentials", profile,
				     src ? src : csrc);
	return rc;
}

static int run_assume(struct fetch *f, struct goman_creds *out, cJSON **doc, struct goman_err *err)
{
	struct goman_creds base = {0};
	char code[16] = "";
	struct gm_assume a = f->a;
	int rc = role_source(f->cc, f->profile, f->depth, &base, err);
	/* the prompt comes after the source resolved: a broken setup asks for no code */
	if (rc == 0 && a.mfa_serial) {
		rc = gm_mfa_prompt(a.mfa_serial, code, err);
		a.token_code = code;
	}
	if (rc == 0)
		rc = gm_creds_assume_role(&f->cc->caller, &a, &base, out, doc, err);
	explicit_bzero(code, sizeof(code));
	goman_creds_clear(&base);
	return rc;
}

/* role_arn (without web_identity_token_file): AssumeRole from the source. 1 when the
 * profile has no role_arn. */
static int assume_role(struct goman_credchain *cc, const char *profile, int depth,
		       struct goman_creds *out, struct goman_err *err)
{
	const char *role = prof_get(cc, profile, "role_arn");
	if (!role || !*role || prof_get(cc, profile, "web_identity_token_file"))
		return 1;
	const char *src = prof_get(cc, profile, "source_profile");
	const char *csrc = prof_get(cc, profile, "credential_source");
	if ((src && csrc) || (!src && !csrc))
		return config_error(err,
				    "profile %s: role_arn needs exactly one of source_profile and "
				    "credential_source",
				    profile);
	if (src && !profile_exists(cc, src))
		return goman_err_set(err, GOMAN_ECREDS, GOMAN_CLASS_AUTH, "ProfileNotFound",
				     "profile %s: source_profile %s could not be found", profile,
				     src);
	/* a loop of source_profile names is a configuration error found before any call */
	const char *p = src && strcmp(src, profile) ? src : NULL;
	for (int i = depth + 1; p; i++) {
		if (i >= MAX_ROLE_DEPTH || !strcmp(p, profile))
			return config_error(err,
					    "profile %s: source_profile chain too deep (a loop?)",
					    profile);
		const char *next =
			prof_get(cc, p, "role_arn") ? prof_get(cc, p, "source_profile") : NULL;
		p = next && strcmp(next, p) ? next : NULL;
	}
	if (csrc && strcmp(csrc, "Environment") && strcmp(csrc, "EcsContainer") &&
	    strcmp(csrc, "Ec2InstanceMetadata"))
		return config_error(err, "profile %s: unknown credential_source '%s'", profile,
				    csrc);
	const char *dur = prof_get(cc, profile, "duration_seconds");
	char *end = NULL;
	long d = dur ? strtol(dur, &end, 10) : 0;
	if (dur && (end == dur || *end || d < 0))
		d = 0;
	struct fetch f = {
		.cc = cc,
		.profile = profile,
		.depth = depth,
		.source = "assume-role",
		.run = run_assume,
		.a =
			{
				.role_arn = role,
				.session_name = prof_get(cc, profile, "role_session_name"),
				.external_id = prof_get(cc, profile, "external_id"),
				.mfa_serial = prof_get(cc, profile, "mfa_serial"),
				.duration_s = d,
			},
	};
	return cached_sts(&f, out, err);
}

static int run_web_identity(struct fetch *f, struct goman_creds *out, cJSON **doc,
			    struct goman_err *err)
{
	return gm_creds_web_identity(&f->cc->caller, &f->a, f->token_file, out, doc, err);
}

/* web identity: AWS_WEB_IDENTITY_TOKEN_FILE / AWS_ROLE_ARN / AWS_ROLE_SESSION_NAME (not for
 * a named profile or a source profile), else the profile's keys of the same meaning, each
 * on its own, as botocore reads them. 1 when no token file is configured. */
static int web_identity(struct goman_credchain *cc, const char *profile, bool env_ok,
			struct goman_creds *out, struct goman_err *err)
{
	const char *file = env_ok ? gm_env("AWS_WEB_IDENTITY_TOKEN_FILE") : NULL;
	const char *role = env_ok ? gm_env("AWS_ROLE_ARN") : NULL;
	const char *name = env_ok ? gm_env("AWS_ROLE_SESSION_NAME") : NULL;
	if (!file)
		file = prof_get(cc, profile, "web_identity_token_file");
	if (!file || !*file)
		return 1;
	if (!role)
		role = prof_get(cc, profile, "role_arn");
	if (!name)
		name = prof_get(cc, profile, "role_session_name");
	if (!role || !*role)
		return config_error(err,
				    "profile %s: a web identity token file is set but no role ARN "
				    "(AWS_ROLE_ARN or role_arn)",
				    profile);
	struct fetch f = {
		.cc = cc,
		.profile = profile,
		.source = "web-identity",
		.run = run_web_identity,
		.a = {.role_arn = role, .session_name = name},
		.token_file = file,
	};
	return cached_sts(&f, out, err);
}

static int run_sso(struct fetch *f, struct goman_creds *out, cJSON **doc, struct goman_err *err)
{
	return gm_creds_sso(&f->cc->caller, &f->sso, out, doc, err);
}

/* the SSO settings of a profile: [sso-session NAME] or the legacy keys in the profile */
static int sso_settings(const struct goman_credchain *cc, const char *profile, struct gm_sso *s,
			struct goman_err *err)
{
	s->profile = profile;
	s->session = prof_get(cc, profile, "sso_session");
	s->account_id = prof_get(cc, profile, "sso_account_id");
	s->role_name = prof_get(cc, profile, "sso_role_name");
	s->start_url = prof_get(cc, profile, "sso_start_url");
	s->region = prof_get(cc, profile, "sso_region");
	if (s->session) {
		char sec[300];
		snprintf(sec, sizeof(sec), "sso-session %s", s->session);
		const char *url = goman_ini_get(cc->config, sec, "sso_start_url");
		const char *reg = goman_ini_get(cc->config, sec, "sso_region");
		if (!url && !reg)
			return config_error(err,
					    "profile %s: sso_session %s has no [sso-session %s] "
					    "section with sso_start_url and sso_region",
					    profile, s->session, s->session);
		/* the profile may repeat them, but not differently */
		if ((s->start_url && url && strcmp(s->start_url, url)) ||
		    (s->region && reg && strcmp(s->region, reg)))
			return config_error(err,
					    "profile %s: sso_start_url or sso_region differ from "
					    "sso-session %s",
					    profile, s->session);
		s->start_url = url;
		s->region = reg;
	}
	const char *missing = !s->start_url    ? "sso_start_url"
			      : !s->region     ? "sso_region"
			      : !s->account_id ? "sso_account_id"
			      : !s->role_name  ? "sso_role_name"
					       : NULL;
	if (missing)
		return config_error(err, "profile %s: SSO needs %s", profile, missing);
	if (goman_region_check(s->region, "sso_region", err) != 0) {
		/* the profile's, not one record's: every call of the run would fail alike */
		if (err)
			err->rc = GOMAN_ECONFIG;
		return -1;
	}
	return 0;
}

/* IAM Identity Center: sso_session or the legacy sso_start_url. 1 when neither is set. */
static int sso(struct goman_credchain *cc, const char *profile, struct goman_creds *out,
	       struct goman_err *err)
{
	if (!prof_get(cc, profile, "sso_session") && !prof_get(cc, profile, "sso_start_url"))
		return 1;
	struct fetch f = {.cc = cc, .profile = profile, .source = "sso", .run = run_sso};
	char key[41];
	if (sso_settings(cc, profile, &f.sso, err) != 0)
		return -1;
	if (gm_cache_key_sso(f.sso.account_id, f.sso.role_name, f.sso.session, f.sso.start_url,
			     key) != 0)
		return gm_err_oom(err);
	return cached_fetch(&f, key, out, err);
}

static bool has_static_keys(const struct goman_credchain *cc, const char *profile)
{
	return (goman_ini_get(cc->credentials, profile, "aws_access_key_id") &&
		goman_ini_get(cc->credentials, profile, "aws_secret_access_key")) ||
	       (config_get(cc, profile, "aws_access_key_id") &&
		config_get(cc, profile, "aws_secret_access_key"));
}

/* Credentials of one profile in botocore's order; 1 when it holds none. A source profile
 * (depth > 0) with static keys is used for its keys, not for its role_arn, as botocore
 * does; env_ok says whether the web identity variables apply. */
static int profile_creds(struct goman_credchain *cc, const char *profile, int depth, bool env_ok,
			 struct goman_creds *out, struct goman_err *err)
{
	int rc;
	if (depth >= MAX_ROLE_DEPTH)
		return config_error(err, "profile %s: source_profile chain too deep (a loop?)",
				    profile);
	if ((depth == 0 || !has_static_keys(cc, profile)) &&
	    (rc = assume_role(cc, profile, depth, out, err)) != 1)
		return rc;
	if ((rc = web_identity(cc, profile, env_ok, out, err)) != 1)
		return rc;
	if ((rc = sso(cc, profile, out, err)) != 1)
		return rc;
	if ((rc = static_keys(cc, profile, false, out, err)) != 1)
		return rc;
	const char *proc = prof_get(cc, profile, "credential_process");
	if (proc && *proc)
		return gm_creds_process(proc, out, err);
	return static_keys(cc, profile, true, out, err);
}

static int resolve(struct goman_credchain *cc, struct goman_creds *out, struct goman_err *err)
{
	int rc = 1;
	if (!cc->explicit_profile && (rc = from_env(out, err)) != 1)
		return rc;
	if ((rc = profile_creds(cc, cc->profile, 0, !cc->explicit_profile, out, err)) != 1)
		return rc;
	if ((rc = gm_creds_ecs(NULL, out, err)) != 1)
		return rc;
	if ((rc = gm_creds_imds(NULL, out, err)) != 1)
		return rc;
	return goman_err_set(err, GOMAN_ECREDS, GOMAN_CLASS_AUTH, "NoCredentials",
			     "no credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or "
			     "AWS_PROFILE with keys, credential_process, role_arn, sso_session or "
			     "web_identity_token_file in ~/.aws, or run in ECS/EC2 (profile %s)",
			     cc->profile);
}

static bool cache_fresh(const struct goman_credchain *cc)
{
	if (!cc->cached)
		return false;
	if (cc->cache.expires_ms == 0)
		return true;
	return goman_now_ms() + cc->cache_margin_ms < cc->cache.expires_ms;
}

int goman_credchain_get(struct goman_credchain *cc, struct goman_creds *out, struct goman_err *err)
{
	memset(out, 0, sizeof(*out));
	if (!cc)
		return goman_err_set(err, GOMAN_EINVAL, GOMAN_CLASS_NONE, "",
				     "no credential chain");
	if (!cache_fresh(cc) && cc->resolving) {
		/* asked from inside our own fetch (the AWS client runs its other calls while it
		 * waits for STS or SSO): lend the current credentials while they last */
		if (!cc->cached || (cc->cache.expires_ms && cc->cache.expires_ms <= goman_now_ms()))
			return goman_err_set(err, GOMAN_ECREDS, GOMAN_CLASS_TRANSIENT,
					     GM_CREDS_BUSY_CODE,
					     "credentials are being fetched; ask again");
	} else if (!cache_fresh(cc)) {
		struct goman_creds fresh = {0};
		cc->resolving = true;
		int rc = resolve(cc, &fresh, err);
		cc->resolving = false;
		if (rc < 0)
			return -1;
		gm_secrets_held();
		goman_credchain_invalidate(cc);
		cc->cache = fresh;
		cc->cached = true;
		int64_t now = goman_now_ms();
		cc->cache_margin_ms = REFRESH_MARGIN_MS;
		if (fresh.expires_ms && (fresh.expires_ms - now) / 2 < cc->cache_margin_ms)
			cc->cache_margin_ms = (fresh.expires_ms - now) / 2;
		goman_log(GOMAN_LOG_DEBUG, "CREDS", "credentials from %s (key %.4s...)",
			  fresh.source, fresh.access_key_id);
	}
	if (goman_creds_copy(out, &cc->cache) < 0)
		return gm_err_oom(err);
	return 0;
}

bool goman_region_ok(const char *r)
{
	/* botocore's rule, ^[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?$: a region becomes
	 * a host label, and anything else ('@', ':', '/', '#', '.') would let it pick the host
	 * that receives the signed request */
	size_t n = r ? strlen(r) : 0;
	if (n < 1 || n > 63 || r[0] == '-' || r[n - 1] == '-')
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = r[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '-'))
			return false;
	}
	return true;
}

int goman_region_check(const char *region, const char *from, struct goman_err *err)
{
	if (goman_region_ok(region))
		return 0;
	/* the value itself is not echoed: it may be long or hold control bytes */
	return goman_err_set(err, GOMAN_EINVAL, GOMAN_CLASS_BAD_INPUT, "InvalidRegion",
			     "%s is not a valid region name (letters, digits and '-', at most 63)",
			     from ? from : "region");
}

char *goman_credchain_region(struct goman_credchain *cc, struct goman_err *err)
{
	const char *from = "AWS_REGION";
	const char *r = gm_env("AWS_REGION");
	if (!r)
		r = gm_env(from = "AWS_DEFAULT_REGION");
	if (!r && cc) {
		r = prof_get(cc, cc->profile, "region");
		from = "the profile's region";
	}
	if (!r && cc) {
		if (!cc->imds_region_asked) {
			cc->imds_region_asked = true;
			cc->imds_region = gm_imds_region(NULL);
		}
		r = cc->imds_region;
		from = "the instance metadata region";
	}
	if (r && *r) {
		if (goman_region_check(r, from, err) != 0) {
			/* not one record's bad input: every call of the run would fail alike */
			if (err)
				err->rc = GOMAN_ECONFIG;
			return NULL;
		}
		char *d = strdup(r);
		if (!d)
			gm_err_oom(err);
		return d;
	}
	goman_err_set(err, GOMAN_ECONFIG, GOMAN_CLASS_CLIENT, "NoRegion",
		      "no region: set AWS_REGION or region in profile %s",
		      cc ? cc->profile : "default");
	return NULL;
}

static char *strip_slash_dup(const char *s)
{
	char *d = strdup(s);
	if (d) {
		size_t l = strlen(d);
		while (l && d[l - 1] == '/')
			d[--l] = '\0';
	}
	return d;
}

/* true when "true" in env, or in the profile */
static bool ignore_configured(const struct goman_credchain *cc)
{
	if (gm_env_true("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS"))
		return true;
	const char *v = cc ? prof_get(cc, cc->profile, "ignore_configured_endpoint_urls") : NULL;
	return v && strcasecmp(v, "true") == 0;
}

char *goman_credchain_endpoint(struct goman_credchain *cc, const char *service, const char *region)
{
	char key[128];
	size_t i;
	if (!ignore_configured(cc)) {
		/* AWS_ENDPOINT_URL_<SERVICE ID>: upper case, spaces and dashes as '_' */
		i = (size_t)snprintf(key, sizeof(key), "AWS_ENDPOINT_URL_");
		for (const char *p = service; *p && i + 1 < sizeof(key); p++)
			key[i++] =
				(*p == ' ' || *p == '-') ? '_' : (char)toupper((unsigned char)*p);
		key[i] = '\0';
		const char *v = gm_env(key);
		if (!v)
			v = gm_env("AWS_ENDPOINT_URL");
		if (!v && cc) {
			const char *svcs = prof_get(cc, cc->profile, "services");
			if (svcs && *svcs) {
				char sec[300];
				snprintf(sec, sizeof(sec), "services %s", svcs);
				snprintf(key, sizeof(key), "%s.endpoint_url", service);
				for (char *p = key; *p; p++)
					*p = (*p == ' ' || *p == '-')
						     ? '_'
						     : (char)tolower((unsigned char)*p);
				v = goman_ini_get(cc->config, sec, key);
			}
			if (!v || !*v)
				v = prof_get(cc, cc->profile, "endpoint_url");
		}
		if (v && *v)
			return strip_slash_dup(v);
	}
	if (!region || !*region)
		region = "us-east-1";
	if (!goman_region_ok(region))
		return NULL; /* never a URL whose host a region picked */
	const char *suffix = strncmp(region, "cn-", 3) == 0 ? "amazonaws.com.cn" : "amazonaws.com";
	char url[300];
	if (strcmp(service, "iam") == 0 && strncmp(region, "cn-", 3) != 0)
		snprintf(url, sizeof(url), "https://iam.amazonaws.com");
	else if (strcmp(service, "sso") == 0) /* the SSO portal, as botocore names its host */
		snprintf(url, sizeof(url), "https://portal.sso.%s.%s", region, suffix);
	else if (strcmp(service, "sso-oidc") == 0)
		snprintf(url, sizeof(url), "https://oidc.%s.%s", region, suffix);
	else
		snprintf(url, sizeof(url), "https://%s.%s.%s", service, region, suffix);
	return strdup(url);
}
