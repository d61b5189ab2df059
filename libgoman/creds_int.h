/*
 * creds_int.h - what the credential files share (creds.c the chain; creds_common.c the
 * shared helpers; creds_process.c, creds_http.c, creds_sts.c, creds_sso.c the providers;
 * creds_cache.c the CLI's on-disk cache; creds_mfa.c the MFA prompt; creds_client.c the
 * public constructor). gm_ names, hidden from the shared library.
 *
 * The chain never calls the AWS client by name (that client owns the chain): the calls it
 * must make (STS AssumeRole / AssumeRoleWithWebIdentity, SSO-OIDC CreateToken, the SSO
 * portal's GetRoleCredentials) go through a caller hook its owner installs
 * (gm_credchain_set_caller). aws.c installs itself; creds_client.c installs a client made
 * on first need for chains created bare (goman_credchain_new).
 *
 * Provider convention: 0 = *out filled (caller owns, goman_creds_clear()), 1 = this source
 * is not configured (try the next one), -1 = configured but failed (err filled; the chain
 * stops there, as the CLI does, rather than silently using a weaker source).
 */
#ifndef GOMAN_CREDS_INT_H
#define GOMAN_CREDS_INT_H
#include <stdbool.h>
#include <stdint.h>
#include "goman/creds.h"
#include "goman/http.h"
#include "goman/kv.h"
#include "internal.h"

struct cJSON;

/* Called once secrets are held in memory: the process stops being dumpable (no core
 * file, no same-user ptrace or /proc/PID/mem). */
void gm_secrets_held(void);

/* ---- creds_common.c -------------------------------------------------------------- */
/* getenv that treats "" as unset */
const char *gm_env(const char *name);
/* "true" in any case */
bool gm_env_true(const char *name);

/* Fills out from a JSON object with AccessKeyId / SecretAccessKey / <token_field> /
 * Expiration (RFC 3339). what names the source in error messages. */
int gm_creds_from_json(const struct cJSON *o, const char *token_field, const char *source,
		       struct goman_creds *out, struct goman_err *err);

/* Builds creds from borrowed strings (token may be NULL or ""). */
int gm_creds_set(struct goman_creds *out, const char *akid, const char *secret, const char *token,
		 int64_t expires_ms, const char *source, struct goman_err *err);
/* $HOME/rel, malloc'd; NULL without HOME or memory. */
char *gm_home_path(const char *rel);
/* A small secret file (a web identity token) into *out (malloc'd, trailing newlines cut;
 * free with gm_wipe_free). Missing, unreadable, empty or longer than max: -1, ECREDS
 * "InvalidToken", naming `what` and the path, never the content. */
int gm_read_secret_file(const char *path, size_t max, const char *what, char **out,
			struct goman_err *err);
/* explicit_bzero + free (NULL ok) */
void gm_wipe_free(char *s);
/* Wipes every string of a parsed document, then frees it (NULL ok). */
void gm_json_wipe_delete(struct cJSON *doc);

/* ---- the caller hook ------------------------------------------------------------- */
enum gm_cc_kind {
	GM_CC_QUERY_SIGNED,   /* query protocol signed with ->creds (AssumeRole) */
	GM_CC_QUERY_UNSIGNED, /* query protocol, no signature and no credential lookup
			       * (AssumeRoleWithWebIdentity) */
	GM_CC_REST_JSON,      /* REST-JSON, unsigned; an optional bearer header (the SSO
			       * portal) and JSON body (SSO-OIDC CreateToken) */
};
struct gm_cc_call {
	enum gm_cc_kind kind;
	const char *service; /* "sts", "sso", "sso-oidc": the endpoint and breaker key */
	const char *action;
	const char *region;              /* validated by the chain before the call */
	const struct goman_kvs *params;  /* query */
	const struct goman_creds *creds; /* GM_CC_QUERY_SIGNED */
	const char *method;              /* REST: "GET", "POST" */
	const char *path;                /* REST: path and encoded query ("/token") */
	const char *bearer_header;       /* REST: e.g. "x-amz-sso_bearer_token", or NULL */
	const char *bearer;              /* its value (a secret: never logged) */
	const char *body;                /* REST: JSON text or NULL */
};
/* 0 with *reply the parsed reply (XML converted, or JSON; caller frees), or -1 with err
 * (service errors keep code, message, status and request id). */
typedef int (*gm_cc_call_fn)(void *ctx, const struct gm_cc_call *call, struct cJSON **reply,
			     struct goman_err *err);
struct gm_caller {
	gm_cc_call_fn fn;
	void *ctx;
};
/* The chain as built from the files, with no caller: calls fail until one is set. */
struct goman_credchain *gm_credchain_new(const char *profile, struct goman_err *err);
/* Installs the caller; ctx_free (may be NULL) runs on ctx when the chain is freed. */
void gm_credchain_set_caller(struct goman_credchain *cc, gm_cc_call_fn fn, void *ctx,
			     void (*ctx_free)(void *));
/* -1, ECREDS class transient "CredentialsRefreshing": the chain is fetching credentials
 * further up this same stack (an AWS call made while it waits for its own call) and has
 * no unexpired ones to lend; the AWS client waits a moment and asks again. */
#define GM_CREDS_BUSY_CODE "CredentialsRefreshing"

/* credential_process: splits cmdline like a POSIX shell (quotes, backslashes; no
 * expansion), runs it with stdin from /dev/null, parses its JSON (Version 1). */
int gm_creds_process(const char *cmdline, struct goman_creds *out, struct goman_err *err);

/* ECS container credentials (AWS_CONTAINER_CREDENTIALS_RELATIVE_URI / _FULL_URI). */
int gm_creds_ecs(struct goman_http *h, struct goman_creds *out, struct goman_err *err);
/* IMDSv2 (off with AWS_EC2_METADATA_DISABLED=true). */
int gm_creds_imds(struct goman_http *h, struct goman_creds *out, struct goman_err *err);
/* IMDSv2 placement region, malloc'd, or NULL (disabled or unreachable). */
char *gm_imds_region(struct goman_http *h);

/* ---- creds_sts.c: STS through the caller -------------------------------------------- */
struct gm_assume {
	const char *role_arn;
	const char *session_name; /* NULL = "goman-<epoch ms>" */
	const char *external_id;  /* optional */
	const char *mfa_serial;   /* optional, with token_code */
	const char *token_code;
	long duration_s;    /* 0 = STS default (3600) */
	const char *region; /* NULL = us-east-1 */
};
/* AssumeRole signed with src. With reply non-NULL, *reply is the whole converted reply
 * (for the on-disk cache; caller frees, secrets inside). */
int gm_creds_assume_role(const struct gm_caller *c, const struct gm_assume *a,
			 const struct goman_creds *src, struct goman_creds *out,
			 struct cJSON **reply, struct goman_err *err);
/* AssumeRoleWithWebIdentity (unsigned) with the token read from token_file now. */
int gm_creds_web_identity(const struct gm_caller *c, const struct gm_assume *a,
			  const char *token_file, struct goman_creds *out, struct cJSON **reply,
			  struct goman_err *err);

/* ---- creds_cache.c: the CLI's ~/.aws/cli/cache ----------------------------------------- */
/* Cache keys as botocore makes them (40 hex digits + NUL). Assume-role and web identity:
 * the call's arguments (RoleArn, RoleSessionName when configured, ExternalId,
 * SerialNumber, DurationSeconds) as json.dumps(sort_keys=True), SHA-1; unset ones left out. */
int gm_cache_key_assume(const struct gm_assume *a, char key[41]);
/* SSO role credentials: {accountId, roleName, sessionName | startUrl}, minified. */
int gm_cache_key_sso(const char *account, const char *role, const char *session,
		     const char *start_url, char key[41]);
/* JSON text in Python's json.dumps escaping (ensure_ascii): "\u00e9", surrogate pairs.
 * Appends to *buf (malloc'd, grown); -1 on bad UTF-8 or no memory. */
int gm_py_json_string(const char *s, char **buf, size_t *len);
struct gm_cache_slot;
/* Opens the slot for key (directory made 0700 when missing). NULL with err when the
 * directory or the file is another user's or writable by others. */
struct gm_cache_slot *gm_cache_open(const char *key, struct goman_err *err);
void gm_cache_close(struct gm_cache_slot *s); /* releases the lock too */
/* Reads the cached credentials: 0 filled (unexpired), 1 none / expired / corrupt (a
 * corrupt file is reported once at warning level), -1 err (another user's file). Fresh
 * means more than margin_ms of life left. */
int gm_cache_read(struct gm_cache_slot *s, int64_t margin_ms, struct goman_creds *out,
		  const char *source, struct goman_err *err);
/* The text of a cache file: 0 filled (more than margin_ms left), 1 stale or expired, -1
 * not the CLI's credentials JSON. Never logs. */
int gm_cache_parse(const char *text, size_t len, int64_t margin_ms, struct goman_creds *out,
		   const char *source);
/* Takes the slot's lock: 0 held (until gm_cache_close), 1 held by another process (wait
 * false), -1 with err (waited GOMAN_CREDS_LOCK_TIMEOUT_MS, default 5 min, in vain). */
int gm_cache_lock(struct gm_cache_slot *s, bool wait, struct goman_err *err);
/* Writes doc (the CLI's shape: {"Credentials":{...}}) atomically, mode 0600. */
int gm_cache_write(struct gm_cache_slot *s, const struct cJSON *doc, struct goman_err *err);
/* SHA-1 of text as 40 hex digits (the CLI's cache file names). */
int gm_sha1_hex(const char *text, char out[41]);
/* A file only this user may have written: its text (NUL-terminated; wipe and free) and
 * *rc 0, or NULL with *rc 1 (missing, unreadable, too big) or -1 and err (another user's,
 * or writable by others). */
char *gm_read_private_file(const char *path, size_t *len, int *rc, struct goman_err *err);
/* text into path atomically (temporary file in dir, fsync, rename), mode 0600. */
int gm_write_private_file(const char *dir, const char *path, const char *text,
			  struct goman_err *err);
/* ISO 8601 UTC "YYYY-MM-DDTHH:MM:SSZ" of epoch ms into out[21]. */
void gm_iso_utc(int64_t ms, char out[21]);

/* ---- creds_sso.c: IAM Identity Center ------------------------------------------------ */
struct gm_sso {
	const char *profile; /* named in the "aws sso login --profile" hint */
	const char *session; /* sso_session name, NULL for the legacy form */
	const char *start_url;
	const char *region;
	const char *account_id;
	const char *role_name;
};
/* Token from ~/.aws/sso/cache (refreshed and written back when it is within 15 minutes of
 * expiry and refreshable), then GetRoleCredentials. ECREDS "SSOLoginRequired" naming
 * `aws sso login --profile NAME` when there is no usable token. *reply: the CLI cache doc. */
int gm_creds_sso(const struct gm_caller *c, const struct gm_sso *s, struct goman_creds *out,
		 struct cJSON **reply, struct goman_err *err);
/* Parses an SSO token cache document: 0 with access token borrowed and expiry, or -1. */
int gm_sso_token_parse(const struct cJSON *doc, const char **access, int64_t *expires_ms);

/* ---- creds_mfa.c ---------------------------------------------------------------------- */
/* Reads an MFA code for serial from /dev/tty without echo into code[16]. -1 with ECREDS
 * "MFARequired" when there is no terminal. */
int gm_mfa_prompt(const char *serial, char code[16], struct goman_err *err);

void gm_argv_free(char **argv);
#ifdef GOMAN_UNIT_TEST
/* NULL-terminated malloc'd argv (free with gm_argv_free), NULL with err on bad quoting. */
char **gm_split_args(const char *s, struct goman_err *err);
#endif

#endif
