/*
 * goman/config.h - resilience and run settings: profiles, config file, environment, flags.
 *
 * Every setting has a dotted key ("concurrency", "retry.policy", "breaker.ec2.recovery_ms")
 * and remembers where its value came from. Precedence, highest first:
 *   flags > GOMAN_* environment > AWS_RETRY_MODE / AWS_MAX_ATTEMPTS > config file > profile
 *   > built-in defaults.
 * Environment names are the key upper-cased with '.' → '_' behind "GOMAN_"
 * (GOMAN_BREAKER_EC2_RECOVERY_MS, GOMAN_RETRY_POLICY); GOMAN_ENV selects the profile,
 * GOMAN_STATE_FILE the shared state file, GOMAN_CONFIG the config file.
 * "breaker.X" without a service (GOMAN_BREAKER_FAILURE_THRESHOLD, [breaker] in the file)
 * sets X for every service at that precedence.
 *
 * Config file: $GOMAN_CONFIG, else $XDG_CONFIG_HOME/goman/config, else ~/.config/goman/config,
 * INI (goman/ini.h):
 *   [goman]           profile = production / concurrency = 5 / batch_size = 15 / ...
 *   [retry]           policy = aws / base_ms = 500 / mode = adaptive / ...
 *   [breaker]         failure_threshold = 3            (all services)
 *   [breaker ec2]     recovery_ms = 20000              (one service)
 *   [adaptive]        min_rate = 0.5
 * Choosing a retry policy fills base/cap/multiplier/deadline/max_retries at the policy's own
 * precedence; a field set at a higher precedence keeps its value.
 *
 * Ownership: struct goman_config is a plain value (no heap memory): declare it, call
 * goman_config_init(), goman_config_set() for flags, then goman_config_load(). Nothing to free.
 * Errors: -1 with err filled (EINVAL for an unknown key or bad value, naming both).
 */
#ifndef GOMAN_CONFIG_H
#define GOMAN_CONFIG_H
#include <stdint.h>
#include <stdio.h>
#include "goman/error.h"
#include "goman/retry.h"
#include "goman/breaker.h"

enum goman_src {
	GOMAN_SRC_DEFAULT = 0,
	GOMAN_SRC_PROFILE,
	GOMAN_SRC_FILE,
	GOMAN_SRC_AWS_ENV,
	GOMAN_SRC_ENV,
	GOMAN_SRC_FLAG,
};
/* "default", "profile", "config file", "AWS env", "env", "flag" */
const char *goman_src_name(enum goman_src s);

/* the services that have their own breaker settings; GOMAN_SVC_OTHER for the rest */
enum goman_svc {
	GOMAN_SVC_EC2,
	GOMAN_SVC_S3,
	GOMAN_SVC_SSM,
	GOMAN_SVC_DYNAMODB,
	GOMAN_SVC_STS,
	GOMAN_SVC_IAM,
	GOMAN_SVC_OTHER,
	GOMAN_SVC_MAX
};
enum goman_svc goman_svc_from_name(const char *service);
const char *goman_svc_name(enum goman_svc s);

#define GOMAN_CONFIG_MAX_KEYS 96
#define GOMAN_DEFAULT_MAX_REPLY_BYTES (INT64_C(64) << 20)

struct goman_config {
	char profile[32];    /* "" = none; development|staging|production|high-volume */
	int64_t concurrency; /* parallel operations per command */
	int64_t batch_size;
	int64_t idempotency_ttl_ms;
	char retry_policy[32];           /* default|aws|critical|high-frequency|custom */
	struct goman_retry_policy retry; /* the effective policy (name points into retry_policy) */
	enum goman_retry_mode retry_mode;
	int64_t quota_capacity;       /* AWS standard retry quota: 500 */
	int64_t quota_retry_cost;     /* 5 */
	int64_t quota_timeout_cost;   /* 10 */
	int64_t quota_success_refund; /* 1 when the call needed no retry */
	int64_t eventual_deadline_ms; /* default own deadline for eventual-consistency codes */
	int64_t max_reply_bytes; /* an AWS reply longer than this is ReplyTooLarge; 0 = no cap */
	struct goman_adaptive_params adaptive;
	struct goman_breaker_params breaker[GOMAN_SVC_MAX];
	char state_file[512];  /* "" = $XDG_RUNTIME_DIR/goman/breakers or the state dir */
	char config_file[512]; /* the file read (for --show-config); "" = none */
	unsigned char src[GOMAN_CONFIG_MAX_KEYS]; /* enum goman_src per key (internal) */
};

/* Built-in defaults (no profile). */
void goman_config_init(struct goman_config *c);
/* Sets key to value at precedence src; a value already set at a higher precedence stays.
 * Use for flags (GOMAN_SRC_FLAG) before goman_config_load(). */
int goman_config_set(struct goman_config *c, const char *key, const char *value, enum goman_src src,
		     struct goman_err *err);
/* Reads environment and config file, applies the profile and the retry policy. A missing
 * config file is fine; a bad one is an error. */
int goman_config_load(struct goman_config *c, struct goman_err *err);
/* The effective settings, one "key = value  (source)" line each, for --show-config. */
void goman_config_print(const struct goman_config *c, FILE *out);
/* value as text and its source; -1 for an unknown key */
int goman_config_get(const struct goman_config *c, const char *key, char *buf, size_t len,
		     enum goman_src *src);
/* The breaker settings for a service name ("ec2", ...); never NULL. */
const struct goman_breaker_params *goman_config_breaker(const struct goman_config *c,
							const char *service);

#endif
