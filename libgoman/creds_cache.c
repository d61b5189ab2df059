/*
 * creds_cache.c - the AWS CLI's credential cache (~/.aws/cli/cache), shared with `aws`.
 *
 * A slot is <key>.json, key = SHA-1 hex of the fetcher's arguments exactly as botocore
 * builds it (credentials.py: _create_cache_key of the assume-role fetchers, json.dumps with
 * sort_keys and the default separators; the SSO fetcher's minified {accountId, roleName,
 * sessionName|startUrl}), holding the CLI's JSON: {"Credentials":{"AccessKeyId",
 * "SecretAccessKey","SessionToken","Expiration"},...}. So `aws` and goman reuse each
 * other's credentials.
 *
 * Files are 0600 in a 0700 directory, written to a temporary file in the same directory,
 * fsync'd and renamed over the slot (readers see the old or the new file, never half of
 * one). A file or directory that is another user's, or writable by others, is refused:
 * credentials planted there would be used for every call. A corrupt file is a miss (the
 * refresh replaces it), reported once at warning level.
 *
 * One refresher: <key>.lock is flock'ed by the process that refreshes; the others keep
 * using their still-valid credentials or wait for it (GOMAN_CREDS_LOCK_TIMEOUT_MS, default
 * 5 minutes: an MFA prompt is answered under the lock).
 *
 * Ownership: a slot owns its paths and lock descriptor (gm_cache_close). Filled creds are
 * the caller's. Buffers that held secrets are wiped.
 * Errors: -1 with ECREDS (foreign owner, lock timeout) or EIO (directory), never the
 * file's content in a message.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cjson/cJSON.h>
#include <openssl/evp.h>
#include "goman/clock.h"
#include "goman/log.h"
#include "bytes_int.h"
#include "creds_int.h"

/* a cached credentials document is a few kilobytes */
#define CACHE_MAX_BYTES (256 * 1024)
#define LOCK_TIMEOUT_DEFAULT_MS (5 * 60 * 1000)
#define LOCK_POLL_MS 50

struct gm_cache_slot {
	char *dir, *path, *lock;
	int lock_fd;
	bool locked;
	struct gm_cache_slot *next_locked;
};

/* slots this process holds locked: a nested fetch of the same slot (two profiles naming
 * the same role) goes on under the outer lock instead of waiting for itself */
static struct gm_cache_slot *held;

static bool held_here(const char *lock)
{
	for (struct gm_cache_slot *h = held; h; h = h->next_locked)
		if (!strcmp(h->lock, lock))
			return true;
	return false;
}

/* ---- keys ------------------------------------------------------------------------- */

static int add(char **buf, size_t *len, const char *s, size_t n)
{
	char *p = realloc(*buf, *len + n + 1);
	if (!p)
		return -1;
	memcpy(p + *len, s, n);
	*len += n;
	p[*len] = '\0';
	*buf = p;
	return 0;
}

static int add_u16(char **buf, size_t *len, unsigned v)
{
	char e[8];
	snprintf(e, sizeof(e), "\\u%04x", v & 0xffff);
	return add(buf, len, e, 6);
}

/* one UTF-8 sequence at s: its code point and length, or -1 */
static long utf8_next(const unsigned char *s, int *n)
{
	unsigned c = s[0];
	int k = c < 0x80             ? 1
		: (c & 0xe0) == 0xc0 ? 2
		: (c & 0xf0) == 0xe0 ? 3
		: (c & 0xf8) == 0xf0 ? 4
				     : 0;
	if (!k)
		return -1;
	long cp = k == 1 ? c : k == 2 ? (c & 0x1f) : k == 3 ? (c & 0x0f) : (c & 0x07);
	for (int i = 1; i < k; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return -1;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	static const long min[] = {0, 0, 0x80, 0x800, 0x10000};
	if (cp < min[k] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return -1;
	*n = k;
	return cp;
}

int gm_py_json_string(const char *str, char **buf, size_t *len)
{
	const unsigned char *s = (const unsigned char *)str;
	if (add(buf, len, "\"", 1))
		return -1;
	while (*s) {
		int n = 1;
		long cp = utf8_next(s, &n);
		const char *esc = NULL;
		int rc = 0;
		switch (cp) {
		case '"': esc = "\\\""; break;
		case '\\': esc = "\\\\"; break;
		case '\n': esc = "\\n"; break;
		case '\r': esc = "\\r"; break;
		case '\t': esc = "\\t"; break;
		case '\b': esc = "\\b"; break;
		case '\f': esc = "\\f"; break;
		default: break;
		}
		if (cp < 0)
			return -1;
		if (esc)
			rc = add(buf, len, esc, 2);
		else if (cp < 0x20 || (cp >= 0x7f && cp < 0x10000))
			rc = add_u16(buf, len, (unsigned)cp); /* ensure_ascii: DEL and up escaped */
		else if (cp >= 0x10000)
			rc = add_u16(buf, len, 0xd800 + (unsigned)((cp - 0x10000) >> 10)) ||
			     add_u16(buf, len, 0xdc00 + (unsigned)((cp - 0x10000) & 0x3ff));
		else
			rc = add(buf, len, (const char *)s, 1);
		if (rc)
			return -1;
		s += n;
	}
	return add(buf, len, "\"", 1);
}

int gm_sha1_hex(const char *text, char key[41])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;
	if (EVP_Digest(text, strlen(text), md, &n, EVP_sha1(), NULL) != 1 || n != 20)
		return -1;
	gm_hex_encode(md, n, key);
	return 0;
}

/* appends `"name": value` (sep between members, ", " or ",") */
static int member(char **buf, size_t *len, bool *first, const char *sep, const char *colon,
		  const char *name, const char *value)
{
	if (!*first && add(buf, len, sep, strlen(sep)))
		return -1;
	*first = false;
	return gm_py_json_string(name, buf, len) || add(buf, len, colon, strlen(colon)) ||
	       gm_py_json_string(value, buf, len);
}

int gm_cache_key_assume(const struct gm_assume *a, char key[41])
{
	char *buf = NULL;
	size_t len = 0;
	bool first = true;
	int rc = add(&buf, &len, "{", 1);
	/* sorted: DurationSeconds, ExternalId, RoleArn, RoleSessionName, SerialNumber */
	if (!rc && a->duration_s > 0) {
		char d[48];
		snprintf(d, sizeof(d), "\"DurationSeconds\": %ld", a->duration_s);
		rc = add(&buf, &len, d, strlen(d));
		first = false;
	}
	if (!rc && a->external_id)
		rc = member(&buf, &len, &first, ", ", ": ", "ExternalId", a->external_id);
	if (!rc)
		rc = member(&buf, &len, &first, ", ", ": ", "RoleArn", a->role_arn);
	if (!rc && a->session_name)
		rc = member(&buf, &len, &first, ", ", ": ", "RoleSessionName", a->session_name);
	if (!rc && a->mfa_serial)
		rc = member(&buf, &len, &first, ", ", ": ", "SerialNumber", a->mfa_serial);
	rc = rc || add(&buf, &len, "}", 1) || gm_sha1_hex(buf, key);
	free(buf);
	return rc ? -1 : 0;
}

int gm_cache_key_sso(const char *account, const char *role, const char *session,
		     const char *start_url, char key[41])
{
	char *buf = NULL;
	size_t len = 0;
	bool first = true;
	int rc = add(&buf, &len, "{", 1) ||
		 member(&buf, &len, &first, ",", ":", "accountId", account) ||
		 member(&buf, &len, &first, ",", ":", "roleName", role) ||
		 (session ? member(&buf, &len, &first, ",", ":", "sessionName", session)
			  : member(&buf, &len, &first, ",", ":", "startUrl", start_url)) ||
		 add(&buf, &len, "}", 1) || gm_sha1_hex(buf, key);
	free(buf);
	return rc ? -1 : 0;
}

void gm_iso_utc(int64_t ms, char out[21])
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(out, 21, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* ---- files ------------------------------------------------------------------------ */

/* refuses what another user could have put there */
static int check_owner(const struct stat *st, const char *path, struct goman_err *err)
{
	if (st->st_uid != geteuid() || (st->st_mode & (S_IWGRP | S_IWOTH)))
		return goman_err_set(err, GOMAN_ECREDS, GOMAN_CLASS_AUTH, "UnsafeCredentialCache",
				     "credential cache %s is not yours alone (owner uid %lu, mode "
				     "%04o): remove it or fix its owner and mode",
				     path, (unsigned long)st->st_uid,
				     (unsigned)(st->st_mode & 07777));
	return 0;
}

static int make_dir(const char *path, struct goman_err *err)
{
	struct stat st;
	if (mkdir(path, 0700) != 0 && errno != EEXIST)
		return goman_err_set(err, GOMAN_EIO, GOMAN_CLASS_CLIENT, "CacheDirectory",
				     "cannot create %s: %s", path, strerror(errno));
	if (lstat(path, &st) != 0 || !S_ISDIR(st.st_mode))
		return goman_err_set(err, GOMAN_EIO, GOMAN_CLASS_CLIENT, "CacheDirectory",
				     "%s is not a directory", path);
	return 0;
}

struct gm_cache_slot *gm_cache_open(const char *key, struct goman_err *err)
{
	struct gm_cache_slot *s = calloc(1, sizeof(*s));
	char *aws = gm_home_path(".aws"), *cli = gm_home_path(".aws/cli");
	struct stat st;
	if (!s)
		goto oom;
	s->lock_fd = -1;
	if (!gm_env("HOME")) /* nowhere to cache: every fetch is a miss */
		goto out;
	size_t n;
	if (!aws || !cli || !(s->dir = gm_home_path(".aws/cli/cache")))
		goto oom;
	n = strlen(s->dir) + strlen(key) + 8;
	if (!(s->path = malloc(n)) || !(s->lock = malloc(n)))
		goto oom;
	snprintf(s->path, n, "%s/%s.json", s->dir, key);
	snprintf(s->lock, n, "%s/%s.lock", s->dir, key);
	if (make_dir(aws, err) || make_dir(cli, err) || make_dir(s->dir, err) ||
	    lstat(s->dir, &st) || check_owner(&st, s->dir, err))
		goto fail;
	if (lstat(s->path, &st) == 0 && (!S_ISREG(st.st_mode) || check_owner(&st, s->path, err))) {
		if (!S_ISREG(st.st_mode))
			goman_err_set(err, GOMAN_ECREDS, GOMAN_CLASS_AUTH, "UnsafeCredentialCache",
				      "credential cache %s is not a regular file", s->path);
		goto fail;
	}
out:
	free(aws);
	free(cli);
	return s;
oom:
	gm_err_oom(err);
fail:
	free(aws);
	free(cli);
	gm_cache_close(s);
	return NULL;
}

void gm_cache_close(struct gm_cache_slot *s)
{
	if (!s)
		return;
	for (struct gm_cache_slot **pp = &held; *pp; pp = &(*pp)->next_locked)
		if (*pp == s) {
			*pp = s->next_locked;
			break;
		}
	if (s->lock_fd >= 0)
		close(s->lock_fd); /* releases the flock */
	free(s->dir);
	free(s->path);
	free(s->lock);
	free(s);
}

char *gm_read_private_file(const char *path, size_t *len, int *rc, struct goman_err *err)
{
	*rc = 1;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return NULL;
	struct stat st;
	char *buf = NULL;
	if (fstat(fd, &st) != 0 || check_owner(&st, path, err) != 0) {
		*rc = -1;
	} else if (st.st_size < CACHE_MAX_BYTES && (buf = calloc(1, (size_t)st.st_size + 1))) {
		ssize_t r = read(fd, buf, (size_t)st.st_size);
		*len = r > 0 ? (size_t)r : 0;
	}
	close(fd);
	return buf;
}

int gm_cache_parse(const char *text, size_t len, int64_t margin_ms, struct goman_creds *out,
		   const char *source)
{
	cJSON *doc = cJSON_ParseWithLength(text, len);
	cJSON *c = cJSON_GetObjectItemCaseSensitive(doc, "Credentials");
	cJSON *ex = cJSON_GetObjectItemCaseSensitive(c, "Expiration");
	int rc = -1;
	if (cJSON_IsString(ex)) {
		/* botocore writes datetimes as "%Y-%m-%dT%H:%M:%S%Z": "...UTC" */
		size_t l = strlen(ex->valuestring);
		if (l > 3 && strcmp(ex->valuestring + l - 3, "UTC") == 0)
			memcpy(ex->valuestring + l - 3, "Z", 2);
		struct goman_err e = GOMAN_ERR_INIT;
		struct goman_creds got = {0};
		if (gm_creds_from_json(c, "SessionToken", source, &got, &e) == 0) {
			if (got.expires_ms - goman_now_ms() > margin_ms) {
				*out = got;
				rc = 0;
			} else {
				goman_creds_clear(&got);
				rc = 1;
			}
		} else if (!strcmp(e.code, "ExpiredToken")) {
			rc = 1;
		}
	}
	gm_json_wipe_delete(doc);
	return rc;
}

int gm_cache_read(struct gm_cache_slot *s, int64_t margin_ms, struct goman_creds *out,
		  const char *source, struct goman_err *err)
{
	size_t len = 0;
	int rc = 1;
	memset(out, 0, sizeof(*out));
	char *text = s->path ? gm_read_private_file(s->path, &len, &rc, err) : NULL;
	if (!text)
		return rc;
	rc = gm_cache_parse(text, len, margin_ms, out, source);
	explicit_bzero(text, len);
	free(text);
	if (rc < 0) {
		goman_log(GOMAN_LOG_WARN, "CREDS",
			  "credential cache %s is not valid JSON credentials; fetching new ones",
			  s->path);
		rc = 1;
	}
	if (rc == 0)
		goman_log(GOMAN_LOG_DEBUG, "CREDS", "%s credentials from the cache %s", source,
			  s->path);
	return rc;
}

static int64_t lock_timeout_ms(void)
{
	const char *v = gm_env("GOMAN_CREDS_LOCK_TIMEOUT_MS");
	char *end;
	errno = 0;
	long long ms = v ? strtoll(v, &end, 10) : 0;
	if (!v || errno || end == v || *end || ms < 0 || ms > INT32_MAX)
		return LOCK_TIMEOUT_DEFAULT_MS;
	return ms;
}

int gm_cache_lock(struct gm_cache_slot *s, bool wait, struct goman_err *err)
{
	if (!s->lock || s->locked || held_here(s->lock))
		return 0;
	if (s->lock_fd < 0 &&
	    (s->lock_fd = open(s->lock, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600)) < 0)
		return goman_err_set(err, GOMAN_EIO, GOMAN_CLASS_CLIENT, "CacheLock",
				     "cannot open %s: %s", s->lock, strerror(errno));
	int64_t waited = 0, limit = lock_timeout_ms();
	for (;;) {
		if (flock(s->lock_fd, LOCK_EX | LOCK_NB) == 0) {
			s->locked = true;
			s->next_locked = held;
			held = s;
			return 0;
		}
		if (errno != EWOULDBLOCK && errno != EINTR)
			return goman_err_set(err, GOMAN_EIO, GOMAN_CLASS_CLIENT, "CacheLock",
					     "cannot lock %s: %s", s->lock, strerror(errno));
		if (!wait)
			return 1;
		if (waited >= limit)
			return goman_err_set(err, GOMAN_ECREDS, GOMAN_CLASS_TRANSIENT, "CacheLock",
					     "another process has been refreshing the credentials "
					     "of %s for %lld ms (GOMAN_CREDS_LOCK_TIMEOUT_MS)",
					     s->path, (long long)limit);
		struct timespec ts = {0, LOCK_POLL_MS * 1000000L};
		nanosleep(&ts, NULL);
		waited += LOCK_POLL_MS;
	}
}

int gm_write_private_file(const char *dir, const char *path, const char *text,
			  struct goman_err *err)
{
	size_t n = strlen(dir) + 24;
	char *tmp = malloc(n);
	int rc = -1, fd = -1;
	if (!tmp)
		return gm_err_oom(err);
	snprintf(tmp, n, "%s/goman-XXXXXX.tmp", dir);
	if ((fd = mkstemps(tmp, 4)) < 0) /* 0600 */
		goto ioerr;
	size_t len = strlen(text), off = 0;
	while (off < len) {
		ssize_t w = write(fd, text + off, len - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			goto ioerr;
		off += (size_t)w;
	}
	int synced = fsync(fd), closed = close(fd);
	fd = -1;
	if (synced != 0 || closed != 0 || rename(tmp, path) != 0)
		goto ioerr;
	rc = 0;
	goto out;
ioerr:
	goman_err_set(err, GOMAN_EIO, GOMAN_CLASS_CLIENT, "CacheWrite", "cannot write %s: %s", path,
		      strerror(errno));
	goman_log(GOMAN_LOG_WARN, "CREDS", "cannot write %s: %s", path, strerror(errno));
out:
	if (fd >= 0)
		close(fd);
	if (rc != 0)
		unlink(tmp);
	free(tmp);
	return rc;
}

int gm_cache_write(struct gm_cache_slot *s, const cJSON *doc, struct goman_err *err)
{
	if (!s->path)
		return 0;
	char *text = cJSON_PrintUnformatted(doc);
	if (!text)
		return gm_err_oom(err);
	int rc = gm_write_private_file(s->dir, s->path, text, err);
	explicit_bzero(text, strlen(text));
	free(text);
	return rc;
}
