/*
 * idem_file.c - the idempotency store's file backend (see goman/idem.h, idem_int.h).
 *
 * One file per key, <dir>/<key>.json, holding the record as JSON. Protocol:
 *  - create: the record is written to a temp file in the same directory (fsync'd), then
 *    link()ed to <key>.json: link fails with EEXIST when the name exists, so of many
 *    processes racing on one key exactly one creates it, and a reader never sees a half
 *    written record.
 *  - every other change (takeover, complete, fail, cleanup) happens under flock(2) on
 *    <dir>/.lock and replaces the file with temp + fsync + rename (atomic). The kernel drops
 *    the flock when its holder dies, so kill -9 never leaves the store locked. Under the lock
 *    a file can only appear (someone's unlocked create), never change or vanish, which is
 *    what makes "read, judge, replace" safe.
 *  - fsync of the temp file and of the directory (after link/rename) unless no_fsync.
 * Ownership: s->dir (malloc'd), s->dirfd and s->lockfd belong to the handle.
 * Errors: -1 + *err (GOMAN_EIO with the path and errno text).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>
#include <cjson/cJSON.h>
#include "goman/clock.h"
#include "goman/idem.h"
#include "goman/log.h"
#include "idem_int.h"

static int io_err(struct goman_err *err, const char *what, const char *path)
{
	return goman_err_set(err, GOMAN_EIO, GOMAN_CLASS_NONE, "IdempotencyStore",
			     "idempotency store: %s '%s': %s", what, path, strerror(errno));
}

static int mkdir_p(char *path)
{
	for (char *p = path + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		int rc = mkdir(path, 0700);
		*p = '/';
		if (rc && errno != EEXIST)
			return -1;
	}
	if (mkdir(path, 0700) && errno != EEXIST)
		return -1;
	return 0;
}

int gm_idem_file_open(struct goman_idem *s, const char *dir, struct goman_err *err)
{
	char buf[4096];
	const char *env = getenv("GOMAN_IDEMPOTENCY_DIR"), *xdg = getenv("XDG_STATE_HOME"),
		   *home = getenv("HOME");
	if (dir && *dir)
		snprintf(buf, sizeof(buf), "%s", dir);
	else if (env && *env)
		snprintf(buf, sizeof(buf), "%s", env);
	else if (xdg && *xdg == '/')
		snprintf(buf, sizeof(buf), "%s/goman/idempotency", xdg);
	else if (home && *home)
		snprintf(buf, sizeof(buf), "%s/.local/state/goman/idempotency", home);
	else
		return goman_err_set(err, GOMAN_EINVAL, GOMAN_CLASS_BAD_INPUT, "NoStateDir",
				     "idempotency store: neither XDG_STATE_HOME nor HOME is set");
	if (!(s->dir = strdup(buf)))
		return goman_err_set(err, GOMAN_ENOMEM, GOMAN_CLASS_NONE, "NoMemory", "out of memory");
	if (mkdir_p(buf))
		return io_err(err, "cannot create", s->dir);
	s->dirfd = open(s->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (s->dirfd < 0)
		return io_err(err, "cannot open", s->dir);
	s->lockfd = openat(s->dirfd, ".lock", O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (s->lockfd < 0)
		return io_err(err, "cannot open lock in", s->dir);
	/* cleanup on use, amortised: at most once an hour per store, stamped by .cleaned's
	 * mtime, so a store nobody runs cleanup on does not grow without bound */
	struct stat st;
	int64_t now = goman_now_ms();
	if (fstatat(s->dirfd, ".cleaned", &st, 0) != 0 ||
	    (int64_t)st.st_mtime * 1000 + 3600 * 1000 < now) {
		int fd = openat(s->dirfd, ".cleaned", O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
		if (fd >= 0) {
			futimens(fd, NULL);
			close(fd);
		}
		size_t n = 0;
		struct goman_err ignored;
		if (gm_idem_file_cleanup(s, &n, &ignored) == 0)
			s->stats.cleaned += n;
	}
	return 0;
}

void gm_idem_file_close(struct goman_idem *s)
{
	gm_idem_rec_clear(&s->held);
	if (s->lockfd >= 0)
		close(s->lockfd);
	if (s->dirfd >= 0)
		close(s->dirfd);
	free(s->dir);
}

static int lock(struct goman_idem *s, struct goman_err *err)
{
	while (flock(s->lockfd, LOCK_EX) != 0) {
		if (errno != EINTR)
			return io_err(err, "cannot lock", s->dir);
	}
	return 0;
}

static void unlock(struct goman_idem *s)
{
	flock(s->lockfd, LOCK_UN);
}

static void key_name(const char *key, char out[80])
{
	snprintf(out, 80, "%s.json", key);
}

/* Writes rec to a fresh temp file in the directory; its name goes to tmp (64 bytes). */
static int write_tmp(struct goman_idem *s, const struct gm_idem_rec *rec, char tmp[64],
		     struct stat *st, struct goman_err *err)
{
	cJSON *o = gm_idem_rec_to_json(rec);
	char *text = o ? cJSON_PrintUnformatted(o) : NULL;
	cJSON_Delete(o);
	if (!text)
		return goman_err_set(err, GOMAN_ENOMEM, GOMAN_CLASS_NONE, "NoMemory", "out of memory");
	size_t len = strlen(text);
	text[len++] = '\n';
	int fd = -1;
	/* pid + sequence is unique per live process; O_EXCL retries past a dead one's leftover */
	for (int i = 0; i < 5 && fd < 0; i++) {
		snprintf(tmp, 64, ".tmp-%ld-%lu", gm_idem_pid(), ++s->tmp_seq);
		fd = openat(s->dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (fd < 0 && errno != EEXIST)
			break;
	}
	if (fd < 0) {
		free(text);
		return io_err(err, "cannot create a temp file in", s->dir);
	}
	size_t off = 0;
	while (off < len) {
		ssize_t w = write(fd, text + off, len - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			break;
		off += (size_t)w;
	}
	free(text);
	if (off != len || (s->fsync && fsync(fd) != 0) || (st && fstat(fd, st) != 0)) {
		io_err(err, "cannot write", tmp);
		close(fd);
		unlinkat(s->dirfd, tmp, 0);
		return -1;
	}
	close(fd);
	return 0;
}

static void sync_dir(struct goman_idem *s)
{
	if (s->fsync)
		fsync(s->dirfd);
}

/* Remembers rec (moved: its cJSON pointers now belong to the handle) as the one we hold. */
static void hold(struct goman_idem *s, struct gm_idem_rec *rec, const struct stat *st)
{
	gm_idem_rec_clear(&s->held);
	s->held = *rec;
	rec->identity = rec->result = rec->error = NULL;
	s->held_dev = (unsigned long long)st->st_dev;
	s->held_ino = (unsigned long long)st->st_ino;
}

/* Reads <key>.json. 1 = found (rec filled), 0 = absent, -1 = error. */
static int read_rec(struct goman_idem *s, const char *name, struct gm_idem_rec *rec,
		    struct goman_err *err)
{
	int fd = openat(s->dirfd, name, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT)
			return 0;
		return io_err(err, "cannot open", name);
	}
	char stackbuf[4096], *buf = stackbuf;
	size_t cap = sizeof(stackbuf), len = 0;
	for (;;) {
		if (len + 1 >= cap) {
			size_t ncap = cap * 2;
			char *nb = buf == stackbuf ? malloc(ncap) : realloc(buf, ncap);
			if (!nb)
				break;
			if (buf == stackbuf)
				memcpy(nb, stackbuf, len);
			buf = nb;
			cap = ncap;
		}
		size_t want = cap - len - 1;
		ssize_t n = read(fd, buf + len, want);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
		if ((size_t)n < want)
			break; /* a short read of a regular file is its end: saves a syscall */
	}
	close(fd);
	buf[len] = '\0';
	cJSON *o = cJSON_ParseWithLength(buf, len);
	if (buf != stackbuf)
		free(buf);
	int bad = gm_idem_rec_from_json(o, rec);
	cJSON_Delete(o);
	if (bad) {
		gm_idem_rec_clear(rec);
		return goman_err_set(err, GOMAN_EIO, GOMAN_CLASS_NONE, "IdempotencyStore",
				     "idempotency store: '%s/%s' is not a record (remove it)",
				     s->dir, name);
	}
	return 1;
}

int gm_idem_file_begin(struct goman_idem *s, struct gm_idem_rec *mine, struct gm_idem_rec *found,
		       enum gm_idem_verdict *verdict, struct goman_err *err)
{
	char name[80], tmp[64];
	struct stat st;
	key_name(mine->id, name);
	int64_t now = mine->started_at;

	/* fast path: nothing there yet */
	if (write_tmp(s, mine, tmp, &st, err))
		return -1;
	if (linkat(s->dirfd, tmp, s->dirfd, name, 0) == 0) {
		unlinkat(s->dirfd, tmp, 0);
		sync_dir(s);
		hold(s, mine, &st);
		*verdict = GM_IDEM_CREATED;
		return 0;
	}
	int e = errno;
	unlinkat(s->dirfd, tmp, 0);
	if (e != EEXIST) {
		errno = e;
		return io_err(err, "cannot create", name);
	}
	int r = read_rec(s, name, found, err);
	if (r < 0)
		return -1;
	if (r == 1) {
		*verdict = gm_idem_judge(found, mine->payload_hash, now);
		if (*verdict == GM_IDEM_ANSWER_COMPLETED || *verdict == GM_IDEM_ANSWER_IN_PROGRESS ||
		    *verdict == GM_IDEM_ANSWER_MISMATCH)
			return 0;
		gm_idem_rec_clear(found);
	}

	/* slow path: replace (or create, if it vanished) under the lock, judging again */
	if (lock(s, err))
		return -1;
	int rc = -1;
	for (int tries = 0; tries < 100; tries++) {
		r = read_rec(s, name, found, err);
		if (r < 0)
			break;
		if (r == 0) {
			if (write_tmp(s, mine, tmp, &st, err))
				break;
			int ok = linkat(s->dirfd, tmp, s->dirfd, name, 0) == 0;
			e = errno;
			unlinkat(s->dirfd, tmp, 0);
			if (ok) {
				sync_dir(s);
				hold(s, mine, &st);
				*verdict = GM_IDEM_CREATED;
				rc = 0;
				break;
			}
			if (e != EEXIST) {
				errno = e;
				io_err(err, "cannot create", name);
				break;
			}
			continue; /* someone created it meanwhile: judge theirs */
		}
		*verdict = gm_idem_judge(found, mine->payload_hash, now);
		if (*verdict == GM_IDEM_REPLACE_FRESH || *verdict == GM_IDEM_REPLACE_TAKEOVER) {
			if (*verdict == GM_IDEM_REPLACE_TAKEOVER)
				snprintf(mine->client_token, sizeof(mine->client_token), "%s",
					 found->client_token);
			if (write_tmp(s, mine, tmp, &st, err))
				break;
			if (renameat(s->dirfd, tmp, s->dirfd, name) != 0) {
				io_err(err, "cannot replace", name);
				unlinkat(s->dirfd, tmp, 0);
				break;
			}
			sync_dir(s);
			hold(s, mine, &st);
		}
		rc = 0;
		break;
	}
	unlock(s);
	return rc;
}

int gm_idem_file_finish(struct goman_idem *s, const struct goman_idem_ticket *t, const char *status,
			const cJSON *result, const cJSON *error, struct goman_err *err)
{
	char name[80], tmp[64];
	key_name(t->key, name);
	struct gm_idem_rec rec;
	memset(&rec, 0, sizeof(rec));
	if (lock(s, err))
		return -1;
	int rc = -1, r;
	struct stat cur;
	if (!strcmp(s->held.id, t->key) && !strcmp(s->held.owner, t->owner_id) &&
	    fstatat(s->dirfd, name, &cur, 0) == 0 && (unsigned long long)cur.st_dev == s->held_dev &&
	    (unsigned long long)cur.st_ino == s->held_ino) {
		/* still the very file we stored (replacing means rename, a new inode) */
		rec = s->held;
		memset(&s->held, 0, sizeof(s->held));
		r = 1;
	} else {
		r = read_rec(s, name, &rec, err);
	}
	if (r == 0 || (r == 1 && (strcmp(rec.status, "INPROGRESS") || strcmp(rec.owner, t->owner_id)))) {
		goman_err_set(err, GOMAN_ECONFLICT, GOMAN_CLASS_CLIENT, "IdempotencyLost",
			      "%s: this process no longer holds the idempotency record (its lease "
			      "expired and another run took it over, or it was removed)",
			      t->operation);
		goto out;
	}
	if (r < 0)
		goto out;
	snprintf(rec.status, sizeof(rec.status), "%s", status);
	rec.expires_at = goman_now_ms() + s->ttl_ms;
	cJSON_Delete(rec.result);
	cJSON_Delete(rec.error);
	rec.result = result ? cJSON_Duplicate(result, 1) : NULL;
	rec.error = error ? cJSON_Duplicate(error, 1) : NULL;
	if ((result && !rec.result) || (error && !rec.error)) {
		goman_err_set(err, GOMAN_ENOMEM, GOMAN_CLASS_NONE, "NoMemory", "out of memory");
		goto out;
	}
	if (write_tmp(s, &rec, tmp, NULL, err))
		goto out;
	if (renameat(s->dirfd, tmp, s->dirfd, name) != 0) {
		io_err(err, "cannot replace", name);
		unlinkat(s->dirfd, tmp, 0);
		goto out;
	}
	sync_dir(s);
	rc = 0;
out:
	unlock(s);
	gm_idem_rec_clear(&rec);
	return rc;
}

/* ".tmp-<pid>-..." left by a process that died between writing and linking */
static bool stale_tmp(const char *name)
{
	char *end;
	long pid = strtol(name + 5, &end, 10);
	if (pid <= 0 || *end != '-')
		return false;
	return kill((pid_t)pid, 0) != 0 && errno == ESRCH;
}

int gm_idem_file_cleanup(struct goman_idem *s, size_t *removed, struct goman_err *err)
{
	if (lock(s, err))
		return -1;
	int dfd = dup(s->dirfd);
	DIR *d = dfd >= 0 ? fdopendir(dfd) : NULL;
	if (!d) {
		if (dfd >= 0)
			close(dfd);
		unlock(s);
		return io_err(err, "cannot list", s->dir);
	}
	rewinddir(d);
	int64_t now = goman_now_ms();
	size_t n = 0;
	struct dirent *de;
	while ((de = readdir(d))) {
		const char *nm = de->d_name;
		size_t len = strlen(nm);
		if (!strncmp(nm, ".tmp-", 5)) {
			if (stale_tmp(nm))
				unlinkat(s->dirfd, nm, 0);
			continue;
		}
		if (len != 69 || strcmp(nm + 64, ".json"))
			continue;
		struct gm_idem_rec rec;
		struct goman_err ignored;
		if (read_rec(s, nm, &rec, &ignored) == 1) {
			if (rec.expires_at <= now && unlinkat(s->dirfd, nm, 0) == 0)
				n++;
			gm_idem_rec_clear(&rec);
		}
	}
	closedir(d);
	if (n)
		sync_dir(s);
	unlock(s);
	*removed = n;
	return 0;
}
