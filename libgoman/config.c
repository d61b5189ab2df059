/*
 * config.c - profiles, config file, environment and flags, with the source of every value
 * (see goman/config.h). One table of keys drives parsing, environment names, the config
 * file sections and --show-config. Owns no heap memory after goman_config_load() returns
 * (the INI file is freed there). Errors: -1 with err filled.
 */
#include <ctype.h>
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include "goman/config.h"
#include "goman/ini.h"

static const char *const src_names[] = {"default", "profile", "config file",
					"AWS env", "env",     "flag"};

const char *goman_src_name(enum goman_src s)
{
	return (unsigned)s <= GOMAN_SRC_FLAG ? src_names[s] : "?";
}

static const char *const svc_names[GOMAN_SVC_MAX] = {"ec2", "s3",  "ssm",  "dynamodb",
						     "sts", "iam", "other"};

enum goman_svc goman_svc_from_name(const char *service)
{
	for (int i = 0; service && i < GOMAN_SVC_OTHER; i++)
		if (strcmp(service, svc_names[i]) == 0)
			return (enum goman_svc)i;
	return GOMAN_SVC_OTHER;
}

const char *goman_svc_name(enum goman_svc s)
{
	return (unsigned)s < GOMAN_SVC_MAX ? svc_names[s] : "other";
}

enum ktype { T_I64, T_INT, T_DBL, T_STR, T_MODE, T_JITTER, T_PROFILE, T_POLICY };

struct key {
	const char *name;
	enum ktype type;
	size_t off, size;
};

#define K(n, t, f)                                                                            \
	{                                                                                     \
		n, t, offsetof(struct goman_config, f), sizeof(((struct goman_config *)0)->f) \
	}
#define BK(s, i)                                                                           \
	K("breaker." s ".failure_threshold", T_I64, breaker[i].failure_threshold),         \
		K("breaker." s ".recovery_ms", T_I64, breaker[i].recovery_ms),             \
		K("breaker." s ".max_concurrent", T_I64, breaker[i].max_concurrent),       \
		K("breaker." s ".success_threshold", T_I64, breaker[i].success_threshold), \
		K("breaker." s ".probes", T_I64, breaker[i].probes)

static const struct key keys[] = {
	K("profile", T_PROFILE, profile),
	K("concurrency", T_I64, concurrency),
	K("batch_size", T_I64, batch_size),
	K("idempotency_ttl_ms", T_I64, idempotency_ttl_ms),
	K("state_file", T_STR, state_file),
	K("max_reply_bytes", T_I64, max_reply_bytes),
	K("retry.policy", T_POLICY, retry_policy),
	K("retry.mode", T_MODE, retry_mode),
	K("retry.max_retries", T_INT, retry.max_retries),
	K("retry.base_ms", T_I64, retry.base_ms),
	K("retry.cap_ms", T_I64, retry.cap_ms),
	K("retry.multiplier", T_DBL, retry.multiplier),
	K("retry.deadline_ms", T_I64, retry.deadline_ms),
	K("retry.jitter", T_JITTER, retry.jitter),
	K("retry.quota_capacity", T_I64, quota_capacity),
	K("retry.retry_cost", T_I64, quota_retry_cost),
	K("retry.timeout_cost", T_I64, quota_timeout_cost),
	K("retry.success_refund", T_I64, quota_success_refund),
	K("retry.eventual_deadline_ms", T_I64, eventual_deadline_ms),
	K("adaptive.min_rate", T_DBL, adaptive.min_rate),
	K("adaptive.beta", T_DBL, adaptive.beta),
	K("adaptive.scale", T_DBL, adaptive.scale),
	K("adaptive.smoothing", T_DBL, adaptive.smoothing),
	K("adaptive.bucket_ms", T_I64, adaptive.bucket_ms),
	K("adaptive.max_rate_scale", T_DBL, adaptive.max_rate_scale),
	BK("ec2", GOMAN_SVC_EC2),
	BK("s3", GOMAN_SVC_S3),
	BK("ssm", GOMAN_SVC_SSM),
	BK("dynamodb", GOMAN_SVC_DYNAMODB),
	BK("sts", GOMAN_SVC_STS),
	BK("iam", GOMAN_SVC_IAM),
	BK("other", GOMAN_SVC_OTHER),
};
#define NKEYS (sizeof(keys) / sizeof(keys[0]))
_Static_assert(NKEYS <= GOMAN_CONFIG_MAX_KEYS, "src[] holds every key");

static const char *const profiles[] = {"development", "staging", "production", "high-volume"};

/* the seed's per-service breakers; DynamoDB, STS, IAM and others chosen to match */
static const struct goman_breaker_params breaker_defaults[GOMAN_SVC_MAX] = {
	[GOMAN_SVC_EC2] = {5, 45000, 8, 2, 2},   [GOMAN_SVC_S3] = {3, 10000, 15, 2, 2},
	[GOMAN_SVC_SSM] = {2, 60000, 3, 1, 1},   [GOMAN_SVC_DYNAMODB] = {5, 20000, 10, 2, 2},
	[GOMAN_SVC_STS] = {3, 30000, 4, 1, 1},   [GOMAN_SVC_IAM] = {3, 30000, 4, 1, 1},
	[GOMAN_SVC_OTHER] = {5, 30000, 8, 2, 2},
};

void goman_config_init(struct goman_config *c)
{
	memset(c, 0, sizeof(*c));
	c->concurrency = 3;
	c->batch_size = 10;
	c->idempotency_ttl_ms = 2 * 3600 * 1000;
	snprintf(c->retry_policy, sizeof(c->retry_policy), "default");
	c->retry = *goman_retry_policy_named("default");
	c->retry_mode = GOMAN_RETRY_STANDARD;
	c->quota_capacity = 500;
	c->quota_retry_cost = 5;
	c->quota_timeout_cost = 10;
	c->quota_success_refund = 1;
	c->eventual_deadline_ms = 120000;
	/* a DescribeInstances page of 1000 instances is about 3.2 MB: twenty times that */
	c->max_reply_bytes = GOMAN_DEFAULT_MAX_REPLY_BYTES;
	goman_adaptive_params_default(&c->adaptive);
	memcpy(c->breaker, breaker_defaults, sizeof(breaker_defaults));
}

static const struct key *find_key(const char *name)
{
	for (size_t i = 0; i < NKEYS; i++)
		if (strcmp(keys[i].name, name) == 0)
			return &keys[i];
	return NULL;
}

static int bad(struct goman_err *err, const char *key, const char *value, const char *why)
{
	return goman_err_set(err, GOMAN_EINVAL, GOMAN_CLASS_BAD_INPUT, "BadConfig",
			     "setting '%s' to '%s': %s", key, value, why);
}

static int set_one(struct goman_config *c, const struct key *k, const char *v, enum goman_src src,
		   struct goman_err *err)
{
	size_t idx = (size_t)(k - keys);
	if (c->src[idx] > src)
		return 0; /* a higher precedence already decided */
	char *base = (char *)c + k->off;
	char *end = NULL;
	errno = 0;
	switch (k->type) {
	case T_I64:
	case T_INT: {
		long long n = strtoll(v, &end, 10);
		if (errno || end == v || *end || n < 0 || (k->type == T_INT && n > 1000000))
			return bad(err, k->name, v, "expected a non-negative integer");
		if (k->type == T_INT)
			*(int *)base = (int)n;
		else
			*(int64_t *)base = n;
		break;
	}
	case T_DBL: {
		double d = strtod(v, &end);
		if (errno || end == v || *end || !(d > 0))
			return bad(err, k->name, v, "expected a positive number");
		*(double *)base = d;
		break;
	}
	case T_MODE:
		if (goman_retry_mode_from_name(v, (enum goman_retry_mode *)base) < 0)
			return bad(err, k->name, v, "expected legacy, standard or adaptive");
		break;
	case T_JITTER:
		if (goman_jitter_from_name(v, (enum goman_jitter *)base) < 0)
			return bad(err, k->name, v, "expected full, decorrelated or none");
		break;
	case T_PROFILE: {
		bool ok = !*v || strcmp(v, "none") == 0;
		for (size_t i = 0; i < 4; i++)
			ok = ok || strcmp(v, profiles[i]) == 0;
		if (!ok)
			return bad(err, k->name, v,
				   "expected development, staging, production or high-volume");
		snprintf(base, k->size, "%s", strcmp(v, "none") == 0 ? "" : v);
		break;
	}
	case T_POLICY:
		if (!goman_retry_policy_named(v) && strcmp(v, "custom") != 0)
			return bad(err, k->name, v,
				   "expected default, aws, critical, high-frequency or custom");
		/* fall through */
	case T_STR:
		if (strlen(v) >= k->size)
			return bad(err, k->name, v, "too long");
		snprintf(base, k->size, "%s", v);
		break;
	}
	c->src[idx] = (unsigned char)src;
	return 0;
}

int goman_config_set(struct goman_config *c, const char *key, const char *value, enum goman_src src,
		     struct goman_err *err)
{
	if (!key || !value)
		return bad(err, key ? key : "(null)", "", "missing");
	/* "breaker.FIELD": every service at once */
	if (strncmp(key, "breaker.", 8) == 0 && !strchr(key + 8, '.')) {
		char full[96];
		for (int s = 0; s < GOMAN_SVC_MAX; s++) {
			snprintf(full, sizeof(full), "breaker.%s.%s", svc_names[s], key + 8);
			const struct key *k = find_key(full);
			if (!k)
				return bad(err, key, value, "unknown setting");
			if (set_one(c, k, value, src, err) < 0)
				return -1;
		}
		return 0;
	}
	const struct key *k = find_key(key);
	if (!k)
		return bad(err, key, value, "unknown setting");
	return set_one(c, k, value, src, err);
}

/* GOMAN_ + key upper-cased, '.' and '-' as '_' */
static void env_name(const char *key, char *buf, size_t len)
{
	size_t n = (size_t)snprintf(buf, len, "GOMAN_");
	for (; *key && n + 1 < len; key++)
		buf[n++] = (*key == '.' || *key == '-') ? '_' : (char)toupper((unsigned char)*key);
	buf[n] = 0;
}

static int load_env(struct goman_config *c, struct goman_err *err)
{
	char name[96];
	static const char *const fields[] = {"failure_threshold", "recovery_ms", "max_concurrent",
					     "success_threshold", "probes"};
	for (size_t i = 0; i < 5; i++) { /* service-less first: the per-service ones refine */
		char key[64];
		snprintf(key, sizeof(key), "breaker.%s", fields[i]);
		env_name(key, name, sizeof(name));
		const char *v = getenv(name);
		if (v && goman_config_set(c, key, v, GOMAN_SRC_ENV, err) < 0)
			return -1;
	}
	for (size_t i = 0; i < NKEYS; i++) {
		env_name(keys[i].name, name, sizeof(name));
		const char *v = getenv(name);
		if (v && set_one(c, &keys[i], v, GOMAN_SRC_ENV, err) < 0)
			return -1;
	}
	/* the profile has its own variable, as goman(7) and the porcelain name it */
	const char *v = getenv("GOMAN_ENV");
	if (v && goman_config_set(c, "profile", v, GOMAN_SRC_ENV, err) < 0)
		return -1;
	v = getenv("AWS_RETRY_MODE");
	if (v && *v && goman_config_set(c, "retry.mode", v, GOMAN_SRC_AWS_ENV, err) < 0)
		return -1;
	v = getenv("AWS_MAX_ATTEMPTS");
	if (v && *v) {
		char *end;
		long n = strtol(v, &end, 10);
		if (*end || n < 1 || n > 100)
			return bad(err, "AWS_MAX_ATTEMPTS", v, "expected 1..100");
		char buf[16];
		snprintf(buf, sizeof(buf), "%ld", n - 1);
		if (goman_config_set(c, "retry.max_retries", buf, GOMAN_SRC_AWS_ENV, err) < 0)
			return -1;
	}
	return 0;
}

static int load_file(struct goman_config *c, struct goman_err *err)
{
	char path[512];
	const char *p = getenv("GOMAN_CONFIG");
	const char *xdg = getenv("XDG_CONFIG_HOME"), *home = getenv("HOME");
	if (p && *p)
		snprintf(path, sizeof(path), "%s", p);
	else if (xdg && *xdg)
		snprintf(path, sizeof(path), "%s/goman/config", xdg);
	else if (home && *home)
		snprintf(path, sizeof(path), "%s/.config/goman/config", home);
	else
		return 0;
	struct goman_err e = GOMAN_ERR_INIT;
	goman_err_clear(&e);
	struct goman_ini *ini = goman_ini_load(path, &e);
	if (!ini) {
		if (e.rc == GOMAN_ENOTFOUND)
			return 0;
		if (err)
			*err = e;
		return -1;
	}
	snprintf(c->config_file, sizeof(c->config_file), "%s", path);
	int rc = 0;
	const char *sec;
	for (size_t i = 0; rc == 0 && (sec = goman_ini_section(ini, i)); i++) {
		char prefix[64];
		if (!strcmp(sec, "goman") || !strcmp(sec, "default"))
			prefix[0] = 0;
		else if (!strcmp(sec, "retry") || !strcmp(sec, "adaptive") ||
			 !strcmp(sec, "breaker"))
			snprintf(prefix, sizeof(prefix), "%s.", sec);
		else if (!strncmp(sec, "breaker ", 8))
			snprintf(prefix, sizeof(prefix), "breaker.%s.", sec + 8);
		else {
			rc = goman_err_set(err, GOMAN_EINVAL, GOMAN_CLASS_BAD_INPUT, "BadConfig",
					   "%s: unknown section [%s]", path, sec);
			break;
		}
		const char *k, *v;
		for (size_t j = 0; (k = goman_ini_key(ini, sec, j, &v)); j++) {
			char key[160];
			snprintf(key, sizeof(key), "%s%s", prefix, k);
			if (goman_config_set(c, key, v ? v : "", GOMAN_SRC_FILE, err) < 0) {
				if (err) {
					char m[sizeof(err->message)];
					if (snprintf(m, sizeof(m), "%s: %s", path, err->message) <
					    0)
						m[0] = 0;
					memcpy(err->message, m, sizeof(m));
				}
				rc = -1;
				break;
			}
		}
	}
	goman_ini_free(ini);
	return rc;
}

static void set_internal(struct goman_config *c, const char *key, const char *v, enum goman_src s)
{
	struct goman_err e = GOMAN_ERR_INIT;
	goman_config_set(c, key, v, s, &e); /* our own values: cannot fail */
}

static void apply_profile(struct goman_config *c)
{
	const char *p = c->profile;
	const enum goman_src S = GOMAN_SRC_PROFILE;
	if (!strcmp(p, "development")) {
		set_internal(c, "concurrency", "2", S);
		set_internal(c, "breaker.failure_threshold", "2", S);
		set_internal(c, "retry.policy", "default", S);
		set_internal(c, "batch_size", "5", S);
	} else if (!strcmp(p, "staging")) {
		set_internal(c, "concurrency", "3", S);
		set_internal(c, "breaker.failure_threshold", "3", S);
		set_internal(c, "retry.policy", "aws", S);
		set_internal(c, "batch_size", "10", S);
	} else if (!strcmp(p, "production")) {
		set_internal(c, "concurrency", "5", S);
		set_internal(c, "breaker.failure_threshold", "5", S);
		set_internal(c, "retry.policy", "critical", S);
		set_internal(c, "batch_size", "15", S);
	} else if (!strcmp(p, "high-volume")) {
		set_internal(c, "concurrency", "10", S);
		set_internal(c, "breaker.max_concurrent", "20", S);
		set_internal(c, "batch_size", "25", S);
		set_internal(c, "idempotency_ttl_ms", "14400000", S);
	}
}

static size_t key_index(const char *name)
{
	return (size_t)(find_key(name) - keys);
}

/* The chosen policy fills its fields at its own precedence; explicit fields above it stay. */
static void apply_policy(struct goman_config *c)
{
	const struct goman_retry_policy *p = goman_retry_policy_named(c->retry_policy);
	if (!p) {
		c->retry.name = "custom";
		return;
	}
	unsigned char ps = c->src[key_index("retry.policy")];
	static const char *const f[] = {"retry.max_retries", "retry.base_ms",     "retry.cap_ms",
					"retry.multiplier",  "retry.deadline_ms", "retry.jitter"};
	for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++) {
		size_t idx = key_index(f[i]);
		if (c->src[idx] >= ps && c->src[idx] != GOMAN_SRC_DEFAULT)
			continue;
		switch (i) {
		case 0: c->retry.max_retries = p->max_retries; break;
		case 1: c->retry.base_ms = p->base_ms; break;
		case 2: c->retry.cap_ms = p->cap_ms; break;
		case 3: c->retry.multiplier = p->multiplier; break;
		case 4: c->retry.deadline_ms = p->deadline_ms; break;
		case 5: c->retry.jitter = p->jitter; break;
		}
		if (c->src[idx] < ps)
			c->src[idx] = ps;
	}
	c->retry.name = p->name;
}

int goman_config_load(struct goman_config *c, struct goman_err *err)
{
	if (load_env(c, err) < 0 || load_file(c, err) < 0)
		return -1;
	apply_profile(c);
	apply_policy(c);
	if (c->retry.cap_ms < c->retry.base_ms)
		c->retry.cap_ms = c->retry.base_ms;
	return 0;
}

int goman_config_get(const struct goman_config *c, const char *key, char *buf, size_t len,
		     enum goman_src *src)
{
	const struct key *k = find_key(key);
	if (!k)
		return -1;
	const char *base = (const char *)c + k->off;
	switch (k->type) {
	case T_I64: snprintf(buf, len, "%lld", (long long)*(const int64_t *)base); break;
	case T_INT: snprintf(buf, len, "%d", *(const int *)base); break;
	case T_DBL: snprintf(buf, len, "%g", *(const double *)base); break;
	case T_MODE:
		snprintf(buf, len, "%s",
			 goman_retry_mode_name(*(const enum goman_retry_mode *)base));
		break;
	case T_JITTER:
		snprintf(buf, len, "%s", goman_jitter_name(*(const enum goman_jitter *)base));
		break;
	default: snprintf(buf, len, "%s", base); break;
	}
	if (src)
		*src = (enum goman_src)c->src[k - keys];
	return 0;
}

void goman_config_print(const struct goman_config *c, FILE *out)
{
	char v[600];
	enum goman_src s;
	for (size_t i = 0; i < NKEYS; i++) {
		goman_config_get(c, keys[i].name, v, sizeof(v), &s);
		fprintf(out, "%-36s = %-14s (%s)\n", keys[i].name, v, goman_src_name(s));
	}
	fprintf(out, "%-36s = %s\n", "# config file",
		c->config_file[0] ? c->config_file : "(none)");
}

const struct goman_breaker_params *goman_config_breaker(const struct goman_config *c,
							const char *service)
{
	return &c->breaker[goman_svc_from_name(service)];
}
