/*
 * creds_int.h - what the credential provider files (creds.c, creds_process.c,
 * creds_http.c, creds_sts.c) share. gm_ names, hidden from the shared library.
 *
 * Provider convention: 0 = *out filled (caller owns, goman_creds_clear()), 1 = this source
 * is not configured (try the next one), -1 = configured but failed (err filled; the chain
 * stops there, as the CLI does, rather than silently using a weaker source).
 */
#ifndef GOMAN_CREDS_INT_H
#define GOMAN_CREDS_INT_H
#include <stdbool.h>
#include "goman/creds.h"
#include "goman/http.h"
#include "internal.h"

struct cJSON;

/* Called once secrets are held in memory: the process stops being dumpable (no core
 * file, no same-user ptrace or /proc/PID/mem). */
void gm_secrets_held(void);

/* getenv that treats "" as unset */
const char *gm_env(const char *name);
/* "true" in any case */
bool gm_env_true(const char *name);

/* Fills out from a JSON object with AccessKeyId / SecretAccessKey / <token_field> /
 * Expiration (RFC 3339). what names the source in error messages. */
int gm_creds_from_json(const struct cJSON *o, const char *token_field, const char *source,
		       struct goman_creds *out, struct goman_err *err);

/* credential_process: splits cmdline like a POSIX shell (quotes, backslashes; no
 * expansion), runs it with stdin from /dev/null, parses its JSON (Version 1). */
int gm_creds_process(const char *cmdline, struct goman_creds *out, struct goman_err *err);

/* ECS container credentials (AWS_CONTAINER_CREDENTIALS_RELATIVE_URI / _FULL_URI). */
int gm_creds_ecs(struct goman_http *h, struct goman_creds *out, struct goman_err *err);
/* IMDSv2 (off with AWS_EC2_METADATA_DISABLED=true). */
int gm_creds_imds(struct goman_http *h, struct goman_creds *out, struct goman_err *err);
/* IMDSv2 placement region, malloc'd, or NULL (disabled or unreachable). */
char *gm_imds_region(struct goman_http *h);

/* STS AssumeRole with the source credentials src. */
struct gm_assume {
	const char *profile; /* profile whose endpoint settings apply to STS */
	const char *role_arn;
	const char *session_name; /* NULL = "goman-<epoch ms>" */
	const char *external_id;  /* optional */
	long duration_s;          /* 0 = STS default (3600) */
	const char *region;       /* NULL = us-east-1 */
};
int gm_creds_assume_role(const struct gm_assume *a, const struct goman_creds *src,
			 struct goman_creds *out, struct goman_err *err);

void gm_argv_free(char **argv);
#ifdef GOMAN_UNIT_TEST
/* NULL-terminated malloc'd argv (free with gm_argv_free), NULL with err on bad quoting. */
char **gm_split_args(const char *s, struct goman_err *err);
#endif

#endif
