/*
 * creds.c - the credential chain, region and endpoint resolution, as the AWS CLI does them
 * (see goman/creds.h). The providers that run programs or talk HTTP live in
 * creds_process.c, creds_http.c and creds_sts.c; this file decides the order.
 *
 * Chain order (botocore's): environment keys (skipped when a profile was passed
 * explicitly, like `aws --profile`), then the profile: role_arn (AssumeRole from
 * source_profile or credential_source), static keys in the credentials file,
 * credential_process, static keys in the config file; then ECS container credentials,
 * then IMDSv2. A source that is configured but fails stops the chain with its error.
 *
 * Profile settings are looked up in the credentials file "[name]" first, then the config
 * file "[profile name]" ("[default]" for default), as botocore merges them.
 *
 * Caching: the last credentials are kept until they are within the refresh margin of
 * their expiry: 5 minutes, or half their lifetime when that is shorter (so a provider
 * handing out 4-minute credentials is not re-run on every call).
 *
 * Ownership: the chain owns its files, cache and HTTP loop; callers get copies.
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
};

const char *gm_env(const char *name)
{
	const char *v = getenv(name);
	return v && *v ? v : NULL;
}

bool gm_env_true(const char *name)
{
	const char *v = gm_env(name);
	return v && strcasecmp(v, "true") == 0;
}

static char *xstrdup(const char *s)
{
	return s ? strdup(s) : NULL;
}

void goman_creds_clear(struct goman_creds *c)
{
	if (!c)
		return;
	if (c->secret_access_key)
		explicit_bzero(c->secret_access_key, strlen(c->secret_access_key));
	if (c->session_token)
		explicit_bzero(c->session_token, strlen(c->session_token));
	free(c->access_key_id);
	free(c->secret_access_key);
	free(c->session_token);
	free(c->source);
	memset(c, 0, sizeof(*c));
}

int goman_creds_copy(struct goman_creds *dst, const struct goman_creds *src)
{
	memset(dst, 0, sizeof(*dst));
	dst->access_key_id = xstrdup(src->access_key_id);
	dst->secret_access_key = xstrdup(src->secret_access_key);
	dst->session_token = xstrdup(src->session_token);
	dst->source = xstrdup(src->source);
	dst->expires_ms = src->expires_ms;
	if ((src->access_key_id && !dst->access_key_id) ||
	    (src->secret_access_key && !dst->secret_access_key) ||
	    (src->session_token && !dst->session_token) || (src->source && !dst->source)) {
		goman_creds_clear(dst);
		return -1;
	}
	return 0;
}

/* Builds creds from borrowed strings (token may be NULL). */
static int creds_set(struct goman_creds *out, const char *akid, const char *secret,
		     const char *token, int64_t expires_ms, const char *source,
		     struct goman_err *err)
{
	struct goman_creds tmp = {
		.access_key_id = (char *)akid,
		.secret_access_key = (char *)secret,
		.session_token = (char *)(token && *token ? token : NULL),
		.expires_ms = expires_ms,
		.source = (char *)source,
	};
	if (goman_creds_copy(out, &tmp) < 0)
		return goman_err_set(err, GOMAN_ENOMEM, GOMAN_CLASS_NONE, "", "out of memory");
	return 0;
}

void gm_secrets_held(void)
{
	/* a core dump or a same-user ptrace/proc read of this process would now carry the
	 * secret key (and the session token): neither is allowed from here on. exec resets
	 * it, so programs we start are not affected. */
	prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
}

int gm_creds_from_json(const cJSON *o, const char *token_field, const char *source,
		       struct goman_creds *out, struct goman_err *err)
{
	const cJSON *ak = cJSON_GetObjectItemCaseSensitive(o, "AccessKeyId");
	const cJSON *sk = cJSON_GetObjectItemCaseSensitive(o, "SecretAccessKey");
	const cJSON *tk = cJSON_GetObjectItemCaseSensitive(o, token_field);
	const cJSON *ex = cJSON_GetObjectItemCaseSensitive(o, "Expiration");
	if (!cJSON_IsString(ak) || !*ak->valuestring || !cJSON_IsString(sk) || !*sk->valuestring)
		return goman_err_set(err, GOMAN_ECREDS, GOMAN_CLASS_AUTH, "InvalidCredentials",
				     "%s credentials lack AccessKeyId or SecretAccessKey", source);
	if (tk && !cJSON_IsString(tk) && !cJSON_IsNull(tk))
		return goman_err_set(err, GOMAN_ECREDS, GOMAN_CLASS_AUTH, "InvalidCredentials",
				     "%s credentials: %s is not a string", source, token_field);
	int64_t exp = 0;
	if (ex && !cJSON_IsNull(ex)) {
		if (!cJSON_IsString(ex) || goman_parse_time(ex->valuestring, &exp) < 0)
			return goman_err_set(
				err, GOMAN_ECREDS, GOMAN_CLASS_AUTH, "InvalidCredentials",
				"%s credentials: Expiration is not an ISO 8601 time", source);
		if (exp <= goman_now_ms())
			return goman_err_set(err, GOMAN_ECREDS, GOMAN_CLASS_AUTH, "ExpiredToken",
					     "%s credentials expired at %s", source,
					     ex->valuestring);
	}
	return creds_set(out, ak->valuestring, sk->valuestring,
			 cJSON_IsString(tk) ? tk->valuestring : NULL, exp, source, err);
}

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

struct goman_credchain *goman_credchain_new(const char *profile, struct goman_err *err)
{
	struct goman_credchain *cc = calloc(1, sizeof(*cc));
	if (!cc) {
		goman_err_set(err, GOMAN_ENOMEM, GOMAN_CLASS_NONE, "", "out of memory");
		return NULL;
	}
	const char *named = profile && *profile ? profile : NULL;
	cc->explicit_profile = named != NULL;
	if (!named)
		named = gm_env("AWS_PROFILE");
	if (!named)
		named = gm_env("AWS_DEFAULT_PROFILE");
	if (!(cc->profile = strdup(named ? named : "default"))) {
		goman_err_set(err, GOMAN_ENOMEM, GOMAN_CLASS_NONE, "", "out of memory");
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

void goman_credchain_free(struct goman_credchain *cc)
{
	if (!cc)
		return;
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
	return creds_set(out, ak, sk, tok, exp, "env", err);
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
	return creds_set(out, ak, sk, tok, 0, src, err);
}

static int profile_creds(struct goman_credchain *cc, const char *profile, int depth,
			 struct goman_creds *out, struct goman_err *err);

/* role_arn: resolve the source, then AssumeRole. 1 when the profile has no role_arn. */
static int assume_role(struct goman_credchain *cc, const char *profile, int depth,
		       struct goman_creds *out, struct goman_err *err)
{
	const char *role = prof_get(cc, profile, "role_arn");
	if (!role || !*role)
		return 1;
	if (depth >= MAX_ROLE_DEPTH)
		return goman_err_set(err, GOMAN_ECREDS, GOMAN_CLASS_AUTH, "InvalidConfig",
				     "profile %s: source_profile chain too deep (a loop?)",
				     profile);
	const char *src = prof_get(cc, profile, "source_profile");
	const char *csrc = prof_get(cc, profile, "credential_source");
	if (prof_get(cc, profile, "mfa_serial"))
		return goman_err_set(err, GOMAN_ECREDS, GOMAN_CLASS_AUTH, "InvalidConfig",
				     "profile %s: mfa_serial needs a prompt; goman does not "
				     "support it",
				     profile);
	if ((src && csrc) || (!src && !csrc))
		return goman_err_set(err, GOMAN_ECREDS, GOMAN_CLASS_AUTH, "InvalidConfig",
				     "profile %s: role_arn needs exactly one of source_profile "
				     "and credential_source",
				     profile);
	struct goman_creds base = {0};
	int rc;
	if (src) {
		if (!profile_exists(cc, src))
			return goman_err_set(err, GOMAN_ECREDS, GOMAN_CLASS_AUTH, "ProfileNotFound",
					     "profile %s: source_profile %s could not be found",
					     profile, src);
		/* a profile naming itself means its own static keys, as in botocore */
		if (strcmp(src, profile) == 0) {
			rc = static_keys(cc, src, false, &base, err);
			if (rc == 1)
				rc = static_keys(cc, src, true, &base, err);
		} else {
			rc = profile_creds(cc, src, depth + 1, &base, err);
		}
	} else if (strcmp(csrc, "Environment") == 0) {
		rc = from_env(&base, err);
	} else if (strcmp(csrc, "EcsContainer") == 0) {
		rc = gm_creds_ecs(NULL, &base, err);
	} else if (strcmp(csrc, "Ec2InstanceMetadata") == 0) {
		rc = gm_creds_imds(NULL, &base, err);
	} else {
		return goman_err_set(err, GOMAN_ECREDS, GOMAN_CLASS_AUTH, "InvalidConfig",
				     "profile %s: unknown credential_source '%s'", profile, csrc);
	}
	if (rc == 1)
		return goman_err_set(err, GOMAN_ECREDS, GOMAN_CLASS_AUTH, "NoCredentials",
				     "profile %s: its source (%s) has no credentials", profile,
				     src ? src : csrc);
	if (rc < 0)
		return -1;
	const char *dur = prof_get(cc, profile, "duration_seconds");
	char *end = NULL;
	long d = dur ? strtol(dur, &end, 10) : 0;
	if (dur && (end == dur || *end || d < 0))
		d = 0;
	const char *region = gm_env("AWS_REGION");
	if (!region)
		region = gm_env("AWS_DEFAULT_REGION");
	if (!region)
		region = prof_get(cc, profile, "region");
	struct gm_assume a = {
		.profile = cc->profile,
		.role_arn = role,
		.session_name = prof_get(cc, profile, "role_session_name"),
		.external_id = prof_get(cc, profile, "external_id"),
		.duration_s = d,
		.region = region,
	};
	rc = gm_creds_assume_role(&a, &base, out, err);
	goman_creds_clear(&base);
	return rc;
}

/* Credentials of one profile; 1 when it holds none. */
static int profile_creds(struct goman_credchain *cc, const char *profile, int depth,
			 struct goman_creds *out, struct goman_err *err)
{
	int rc = assume_role(cc, profile, depth, out, err);
	if (rc != 1)
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
	if ((rc = profile_creds(cc, cc->profile, 0, out, err)) != 1)
		return rc;
	if ((rc = gm_creds_ecs(NULL, out, err)) != 1)
		return rc;
	if ((rc = gm_creds_imds(NULL, out, err)) != 1)
		return rc;
	return goman_err_set(err, GOMAN_ECREDS, GOMAN_CLASS_AUTH, "NoCredentials",
			     "no credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or "
			     "AWS_PROFILE with keys, credential_process or role_arn in ~/.aws, or "
			     "run in ECS/EC2 (profile %s)",
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
	if (!cache_fresh(cc)) {
		struct goman_creds fresh = {0};
		if (resolve(cc, &fresh, err) < 0)
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
		return goman_err_set(err, GOMAN_ENOMEM, GOMAN_CLASS_NONE, "", "out of memory");
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
			goman_err_set(err, GOMAN_ENOMEM, GOMAN_CLASS_NONE, "", "out of memory");
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
	else
		snprintf(url, sizeof(url), "https://%s.%s.%s", service, region, suffix);
	return strdup(url);
}
