/*
 * creds_common.c - what every credential provider file uses: the environment as the CLI
 * reads it, struct goman_creds copies that wipe their secrets, the JSON credential shape
 * (AccessKeyId / SecretAccessKey / token / Expiration), and small secret files (web
 * identity tokens) read without leaving copies behind. It sits below creds.c and the
 * provider files so that none of them needs the chain to build a credential.
 *
 * Ownership: filled structs and returned strings belong to the caller; secrets are wiped
 * (explicit_bzero) before they are freed.
 * Errors: -1 with struct goman_err (ECREDS for bad credentials, ENOMEM).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cjson/cJSON.h>
#include "goman/clock.h"
#include "bytes_int.h"
#include "creds_int.h"

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
int gm_creds_set(struct goman_creds *out, const char *akid, const char *secret, const char *token,
		 int64_t expires_ms, const char *source, struct goman_err *err)
{
	struct goman_creds tmp = {
		.access_key_id = (char *)akid,
		.secret_access_key = (char *)secret,
		.session_token = (char *)(token && *token ? token : NULL),
		.expires_ms = expires_ms,
		.source = (char *)source,
	};
	if (goman_creds_copy(out, &tmp) < 0)
		return gm_err_oom(err);
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
	return gm_creds_set(out, ak->valuestring, sk->valuestring,
			    cJSON_IsString(tk) ? tk->valuestring : NULL, exp, source, err);
}

char *gm_home_path(const char *rel)
{
	const char *home = gm_env("HOME");
	if (!home)
		return NULL;
	size_t n = strlen(home) + strlen(rel) + 2;
	char *p = malloc(n);
	if (p)
		snprintf(p, n, "%s/%s", home, rel);
	return p;
}

int gm_read_secret_file(const char *path, size_t max, const char *what, char **out,
			struct goman_err *err)
{
	*out = NULL;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return goman_err_set(err, GOMAN_ECREDS, GOMAN_CLASS_AUTH, "InvalidToken",
				     "cannot read %s '%s': %s", what, path, strerror(errno));
	char *buf = malloc(max + 1);
	size_t n = 0;
	ssize_t r = 0;
	while (buf && n < max && (r = read(fd, buf + n, max - n)) != 0) {
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			break;
		n += (size_t)r;
	}
	int e = errno;
	char extra;
	bool longer = buf && r > 0 && n == max && read(fd, &extra, 1) == 1;
	close(fd);
	if (!buf)
		return gm_err_oom(err);
	int rc = 0;
	if (r < 0)
		rc = goman_err_set(err, GOMAN_ECREDS, GOMAN_CLASS_AUTH, "InvalidToken",
				   "cannot read %s '%s': %s", what, path, strerror(e));
	else if (longer)
		rc = goman_err_set(err, GOMAN_ECREDS, GOMAN_CLASS_AUTH, "InvalidToken",
				   "%s '%s' is longer than %zu bytes", what, path, max);
	/* trailing newlines are the editor's, not the token's */
	while (rc == 0 && n && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' '))
		n--;
	buf[n] = '\0';
	if (rc == 0 && n == 0)
		rc = goman_err_set(err, GOMAN_ECREDS, GOMAN_CLASS_AUTH, "InvalidToken",
				   "%s '%s' is empty", what, path);
	if (rc != 0) {
		explicit_bzero(buf, max + 1);
		free(buf);
		return -1;
	}
	*out = buf;
	return 0;
}

void gm_wipe_free(char *s)
{
	if (s) {
		explicit_bzero(s, strlen(s));
		free(s);
	}
}

static void json_wipe(cJSON *node)
{
	for (cJSON *c = node ? node->child : NULL; c; c = c->next) {
		if (cJSON_IsString(c) && c->valuestring)
			explicit_bzero(c->valuestring, strlen(c->valuestring));
		json_wipe(c);
	}
}

void gm_json_wipe_delete(cJSON *doc)
{
	json_wipe(doc);
	cJSON_Delete(doc);
}
