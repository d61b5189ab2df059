/*
 * goman/creds.h - where credentials, region and endpoints come from, as the AWS CLI does.
 *
 * Credentials: AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY/AWS_SESSION_TOKEN; AWS_PROFILE (or
 * "default") in AWS_SHARED_CREDENTIALS_FILE (~/.aws/credentials) and AWS_CONFIG_FILE
 * (~/.aws/config): static keys, credential_process (JSON with Expiration), role_arn +
 * source_profile / credential_source (STS AssumeRole; mfa_serial prompts on /dev/tty), web
 * identity (AWS_WEB_IDENTITY_TOKEN_FILE + AWS_ROLE_ARN, or the profile keys: STS
 * AssumeRoleWithWebIdentity, unsigned, the token file re-read at each refresh), IAM Identity
 * Center (sso_session or sso_start_url: the token `aws sso login` cached, refreshed with
 * SSO-OIDC CreateToken, then GetRoleCredentials); ECS container credentials
 * (AWS_CONTAINER_CREDENTIALS_FULL_URI / _RELATIVE_URI, authorization token); IMDSv2 (PUT
 * token then GET, short timeouts, AWS_EC2_METADATA_SERVICE_ENDPOINT, off when
 * AWS_EC2_METADATA_DISABLED=true).
 * Order (the AWS CLI v2's): env keys (skipped when a profile is passed to _new, as with
 * `aws --profile`; AWS_PROFILE keeps them first) > profile: role_arn (source_profile or
 * credential_source Environment/EcsContainer/Ec2InstanceMetadata), web identity, SSO, keys
 * in the credentials file, credential_process, keys in the config file > ECS > IMDS. A
 * source that is configured but fails ends the chain with its error. Profile settings are
 * read from the credentials file "[name]" first, then the config file "[profile name]"
 * ("[default]").
 * Assumed-role, web identity and SSO role credentials are shared between processes (and
 * with the AWS CLI) through ~/.aws/cli/cache: reused until 5 minutes before expiry, then
 * refreshed by one process under a lock (see goman(7)).
 * Region: AWS_REGION > AWS_DEFAULT_REGION > profile region > IMDS placement region. Endpoint
 * per service: AWS_ENDPOINT_URL_<SERVICE> > AWS_ENDPOINT_URL > the profile's "services"
 * section (<svc>.endpoint_url) > profile endpoint_url > real AWS; none of the configured
 * ones when AWS_IGNORE_CONFIGURED_ENDPOINT_URLS=true. Secrets are never logged.
 *
 * Ownership: a struct goman_credchain is created by _new and freed by _free (NULL ok).
 * goman_credchain_get() fills a caller-owned struct goman_creds (free with
 * goman_creds_clear()); returned strings from _region/_endpoint are malloc'd for the caller.
 * Errors: -1/NULL with struct goman_err (ECREDS when no source had credentials).
 */
#ifndef GOMAN_CREDS_H
#define GOMAN_CREDS_H
#include <stdbool.h>
#include "goman/error.h"
#include "goman/sigv4.h"

struct goman_credchain;

/* Loads the files (absent files are empty). NULL with ENOTFOUND "ProfileNotFound" when a
 * profile named by the argument or AWS_PROFILE exists in neither file. Resolves nothing.
 * The STS and SSO calls of such a chain go through an AWS client it makes on first need;
 * a goman_aws client's own chain uses that client instead. */
struct goman_credchain *goman_credchain_new(const char *profile /* NULL = env/default */,
					    struct goman_err *err);
void goman_credchain_free(struct goman_credchain *cc);
/* Resolves (or returns cached, unexpired with a 5 min margin, or half the lifetime when
 * shorter) credentials. ECREDS "NoCredentials" when no source had any. */
int goman_credchain_get(struct goman_credchain *cc, struct goman_creds *out, struct goman_err *err);
/* Forgets the cached credentials (after an auth failure with expiring credentials). */
void goman_credchain_invalidate(struct goman_credchain *cc);
/* Region as the CLI resolves it; NULL with err when none is configured, or when the one
 * configured fails goman_region_ok() (InvalidRegion, class bad_input). */
char *goman_credchain_region(struct goman_credchain *cc, struct goman_err *err);
/* Endpoint base URL (no trailing slash) for a service ("ec2", "ssm", "s3", "dynamodb",
 * "sts", "iam") in a region. Env var names use the SDK service ids: EC2, SSM, S3, DYNAMODB,
 * STS, IAM. cc may be NULL (env and defaults only); region NULL = us-east-1.
 * NULL on out-of-memory, and when region fails goman_region_ok() (no URL is ever built
 * from such a region). */
char *goman_credchain_endpoint(struct goman_credchain *cc, const char *service, const char *region);
/* A region name as botocore accepts it: ^[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?$.
 * Every region, wherever it comes from (record, flag, env, profile, IMDS), passes this
 * before it goes into a host name. NULL is not ok. */
bool goman_region_ok(const char *region);
/* 0 when goman_region_ok(region), else -1 with err: EINVAL, class bad_input, code
 * "InvalidRegion", naming `from` (e.g. "AWS_REGION") but not echoing the value. */
int goman_region_check(const char *region, const char *from, struct goman_err *err);
/* Profile in use ("default" when none). Borrowed. */
const char *goman_credchain_profile(const struct goman_credchain *cc);

#endif
