/*
 * idem_file.c - the idempotency store's file backend (see goman/idem.h, idem_int.h).
 *
 * The store is one append-only log, <dir>/records.jsonl: a line per change of a record, the
 * latest valid line of a key being its record. Why a log and not a file per key: creating a
 * file is a directory change (a journal entry; ~360 us of CPU on this project's ext4 VMs),
 * appending to an open file is a page-cache write, so begin+complete costs two appends.
 *
 * Protocol: every operation holds flock(2) on <dir>/.lock (the kernel drops it when its
 * holder dies, so kill -9 never leaves the store locked), reads what the log gained since
 * this handle last looked (other processes' lines) into an in-memory index, judges, and
 * appends at most one line with one write. Nobody else writes under the lock, so "read,
 * judge, append" is atomic: of many processes racing begin on one key, exactly one appends
 * its INPROGRESS line; the others read it and answer IN_PROGRESS.
 *
 * A line is the record's JSON with "id" first and a checksum last:
 *     {"id":"<64 hex>",...,"sum":"<16 hex>"}\n   sum = FNV-1a 64 of the bytes before ,"sum"
 * A line that fails the check (a write cut short by a crash or a full disk) is skipped, so
 * the key's previous line stays in force. Torn bytes at the log's end are cut off (ftruncate
 * to the last whole line) by the writer whose append failed, or else by the next holder of
 * the lock, so readers such as jq see whole lines; should the cut fail too, the next line
 * starts with \n, so torn bytes stay a line of their own.
 *
 * What the sum protects against: torn and half-flushed writes, nothing more. It is not
 * keyed: whoever can write the directory can forge a COMPLETED record (and make a run skip
 * a launch) or truncate the log. What keeps others out is the directory: it and every
 * directory above it must belong to the user (or root) and not be writable by group or
 * others (above the store's own directory a sticky one, such as /tmp, is allowed), as
 * OpenSSH demands of ~/.ssh; a store in an unsafe directory is refused with an error, not
 * used with a warning, since the store is what makes a re-run safe. Every file in it is
 * opened relative to the checked directory without following symlinks and must be the
 * user's own regular file.
 *
 * Durability, with fsync on (the default): begin's line is fdatasync'd before begin
 * returns, since the caller sends its ClientToken next and a power cut must not lose it.
 * complete and fail are not synced: if one is lost, a re-run finds an INPROGRESS whose
 * owner is dead, takes it over and sends the same ClientToken, which EC2 answers with the
 * instances already launched.
 *
 * Compaction: when superseded and broken lines outweigh the live ones in a log over 256 KiB,
 * and on cleanup (which also drops expired records), the live lines are written to a temp
 * file that is renamed over the log. Other handles see their log's link count fall to 0
 * and read the new one.
 *
 * forget (goman-idem) appends the record once more as FORGOTTEN with expires_at 0: begin
 * starts afresh, its owner can no longer complete it, and compaction drops it.
 *
 * Ownership: f->dir (malloc'd), the three fds, the index (and its malloc'd lines) and
 * f->held belong to the handle. Errors: -1 + *err (GOMAN_EIO with the path and errno text).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>
#include <cjson/cJSON.h>
#include "goman/clock.h"
#include "goman/idem.h"
#include "goman/log.h"
#include "buf_int.h"
#include "bytes_int.h"
#include "fdio_int.h"
#include "idem_int.h"
#include "shared_state_int.h"

#define LOG_NAME "records.jsonl"
#define LOG_TMP ".records.tmp"
#define COMPACT_MIN_BYTES (256LL * 1024)
#define ID_AT 7     /* {"id":" */
#define SUM_TAIL 26 /* ,"sum":"<16 hex>"} */

struct entry {
	char *line; /* the key's latest valid line, without its \n; NULL = free */
	size_t len;
	int64_t expires_at;
	unsigned long long seq; /* when it was indexed (held_seq compares against it) */
};

struct gm_idem_index {
	struct entry *slots;
	size_t cap, used;     /* cap is a power of two, used <= cap / 2 */
	long long live_bytes; /* the latest lines, with their \n: the rest of the log is dead */
};

/* The file backend's state (behind struct goman_idem's be). */
struct fstore {
	struct goman_idem *s; /* the front's handle: ttl and counters */
	char *dir;
	int dirfd, lockfd, logfd;
	bool fsync;
	long long log_off;       /* bytes of the log read into the index */
	bool log_torn;           /* the log ends in a torn line: the next append starts with \n */
	struct gm_idem_index ix; /* key -> the latest valid line for it */
	unsigned long long next_seq;
	/* the record this handle last stored as owner and the index sequence of its line:
	 * complete/fail trust it while that line is still the key's latest, saving a parse.
	 * held.id[0] == 0 when none. */
	struct gm_idem_rec held;
	unsigned long long held_seq;
};

static int io_err(struct goman_err *err, const char *what, const char *path)
{
	return goman_err_set(err, GOMAN_EIO, GOMAN_CLASS_NONE, "IdempotencyStore",
			     "idempotency store: %s '%s': %s", what, path, strerror(errno));
}

/* ---- lines ------------------------------------------------------------------------------ */

/* n lowercase hex digits at p as a number; false if any is not one (the store writes
 * lowercase only, so an uppercase digit is a line someone else wrote) */
static bool hex_number(const char *p, size_t n, uint64_t *out)
{
	uint64_t v = 0;
	for (size_t i = 0; i < n; i++) {
		int d = p[i] >= 'A' && p[i] <= 'F' ? -1 : gm_hex_value(p[i]);
		if (d < 0)
			return false;
		v = v << 4 | (uint64_t)d;
	}
	*out = v;
	return true;
}

/* p[0..len) (no \n) is a whole line as line_make writes them */
static bool line_valid(const char *p, size_t len)
{
	uint64_t sum, ignored;
	if (len < ID_AT + 65 + SUM_TAIL || memcmp(p, "{\"id\":\"", ID_AT) || p[ID_AT + 64] != '"' ||
	    !hex_number(p + ID_AT, 16, &ignored) || !hex_number(p + ID_AT + 16, 16, &ignored) ||
	    !hex_number(p + ID_AT + 32, 16, &ignored) || !hex_number(p + ID_AT + 48, 16, &ignored))
		return false;
	const char *tail = p + len - SUM_TAIL;
	return !memcmp(tail, ",\"sum\":\"", 8) && !memcmp(tail + 24, "\"}", 2) &&
	       hex_number(tail + 8, 16, &sum) && sum == gm_fnv1a(p, len - SUM_TAIL);
}

static void put_name(struct gm_buf *b, const char *name)
{
	gm_buf_add(b, ",\"", 2);
	gm_buf_adds(b, name);
	gm_buf_add(b, "\":", 2);
}

static void put_str(struct gm_buf *b, const char *name, const char *v)
{
	put_name(b, name);
	gm_buf_add(b, "\"", 1);
	for (const char *p = v; *p;) {
		size_t plain = 0;
		while (p[plain] && p[plain] != '"' && p[plain] != '\\' &&
		       (unsigned char)p[plain] >= 0x20)
			plain++;
		gm_buf_add(b, p, plain);
		p += plain;
		if (*p) {
			unsigned char c = (unsigned char)*p++;
			if (c == '"' || c == '\\')
				gm_buf_printf(b, "\\%c", c);
			else
				gm_buf_printf(b, "\\u%04x", c);
		}
	}
	gm_buf_add(b, "\"", 1);
}

static void put_int(struct gm_buf *b, const char *name, long long v)
{
	char digits[24], *d = digits + sizeof(digits);
	unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
	do
		*--d = (char)('0' + u % 10);
	while (u /= 10);
	if (v < 0)
		*--d = '-';
	put_name(b, name);
	gm_buf_add(b, d, (size_t)(digits + sizeof(digits) - d));
}

static void put_json(struct gm_buf *b, const char *name, const cJSON *v)
{
	if (!v)
		return;
	char *text = cJSON_PrintUnformatted(v);
	if (!text) {
		b->oom = 1;
		return;
	}
	put_name(b, name);
	gm_buf_adds(b, text);
	free(text);
}

/* The record as a log line, \n included (*len counts it); malloc'd, NULL on no memory.
 * Written directly rather than through a cJSON tree: the line is most of begin's work. */
static char *line_make(const struct gm_idem_rec *r, size_t *len)
{
	struct gm_buf b = {0};
	gm_buf_adds(&b, "{\"id\":\"");
	gm_buf_adds(&b, r->id);
	gm_buf_add(&b, "\"", 1);
	put_str(&b, "operation", r->operation);
	put_str(&b, "status", r->status);
	put_str(&b, "payload_hash", r->payload_hash);
	put_str(&b, "client_token", r->client_token);
	put_str(&b, "owner", r->owner);
	put_int(&b, "owner_pid", r->owner_pid);
	put_int(&b, "owner_pid_start", r->owner_pid_start);
	put_str(&b, "owner_host", r->owner_host);
	put_int(&b, "started_at", r->started_at);
	put_int(&b, "lease_expires", r->lease_expires);
	put_int(&b, "expires_at", r->expires_at);
	put_json(&b, "identity", r->identity);
	put_json(&b, "result", r->result);
	put_json(&b, "error", r->error);
	if (!b.oom) {
		uint64_t sum = gm_fnv1a(b.p, b.len);
		unsigned char be[8]; /* big-endian, so the hex reads as the number */
		char tail[SUM_TAIL + 1] = ",\"sum\":\"0123456789abcdef\"}\n";
		for (int i = 7; i >= 0; i--, sum >>= 8)
			be[i] = (unsigned char)(sum & 0xff);
		gm_hex_encode(be, 8, tail + 8);
		tail[24] = '"'; /* gm_hex_encode's NUL */
		gm_buf_add(&b, tail, SUM_TAIL + 1);
	}
	*len = b.len;
	return gm_buf_take(&b);
}

/* The record's own expiry: its "expires_at" comes before any nested JSON, and inside a
 * string value the quotes would be escaped, so the first match is the record's. */
static int64_t line_expires(const char *p, size_t len)
{
	static const char name[] = "\"expires_at\":";
	const char *end = p + len;
	for (const char *q = p; q + sizeof(name) - 1 < end; q++) {
		q = memchr(q, '"', (size_t)(end - q));
		if (!q || (size_t)(end - q) < sizeof(name))
			break;
		if (!memcmp(q, name, sizeof(name) - 1))
			return strtoll(q + sizeof(name) - 1, NULL, 10);
	}
	return 0;
}

static int line_parse(struct fstore *f, const struct entry *e, struct gm_idem_rec *rec,
		      struct goman_err *err)
{
	cJSON *o = cJSON_ParseWithLength(e->line, e->len);
	int bad = gm_idem_rec_from_json(o, rec);
	cJSON_Delete(o);
	if (!bad)
		return 0;
	gm_idem_rec_clear(rec);
	/* The line passed its checksum, so it was written whole: a line that is not JSON was
	 * written by someone who can write the directory, not torn by a crash. */
	return goman_err_set(err, GOMAN_EIO, GOMAN_CLASS_NONE, "IdempotencyStore",
			     "idempotency store: the record of key %.12s in '%s/" LOG_NAME
			     "' is damaged (%s)",
			     e->line + ID_AT, f->dir, o ? "it lacks its fields" : "not JSON");
}

/* ---- the index: key -> latest line ------------------------------------------------------- */

static size_t slot_of(const struct gm_idem_index *ix, const char *id)
{
	uint64_t h = 0;
	hex_number(id, 16, &h); /* a SHA-256: its first 64 bits are hash enough */
	size_t i = (size_t)h & (ix->cap - 1);
	while (ix->slots[i].line && memcmp(ix->slots[i].line + ID_AT, id, 64))
		i = (i + 1) & (ix->cap - 1);
	return i;
}

static struct entry *index_find(struct gm_idem_index *ix, const char *id)
{
	if (!ix->cap)
		return NULL;
	struct entry *e = &ix->slots[slot_of(ix, id)];
	return e->line ? e : NULL;
}

static int index_grow(struct gm_idem_index *ix)
{
	struct gm_idem_index bigger = {.cap = ix->cap ? ix->cap * 2 : 64};
	if (!(bigger.slots = calloc(bigger.cap, sizeof(*bigger.slots))))
		return -1;
	for (size_t i = 0; i < ix->cap; i++)
		if (ix->slots[i].line)
			bigger.slots[slot_of(&bigger, ix->slots[i].line + ID_AT)] = ix->slots[i];
	free(ix->slots);
	ix->slots = bigger.slots;
	ix->cap = bigger.cap;
	return 0;
}

/* Takes line (malloc'd, len without \n) as the key's latest; frees it on failure. */
static int index_put(struct fstore *f, char *line, size_t len)
{
	struct gm_idem_index *ix = &f->ix;
	if ((ix->used + 1) * 2 > ix->cap && index_grow(ix)) {
		free(line);
		return -1;
	}
	struct entry *e = &ix->slots[slot_of(ix, line + ID_AT)];
	if (e->line) {
		ix->live_bytes -= (long long)e->len + 1;
		free(e->line);
	} else {
		ix->used++;
	}
	*e = (struct entry){line, len, line_expires(line, len), ++f->next_seq};
	ix->live_bytes += (long long)len + 1;
	return 0;
}

static void index_clear(struct gm_idem_index *ix)
{
	for (size_t i = 0; i < ix->cap; i++)
		free(ix->slots[i].line);
	free(ix->slots);
	memset(ix, 0, sizeof(*ix));
}

/* ---- the log ------------------------------------------------------------------------------ */

/* Indexes the whole lines of buf[0..len) that pass their check; returns how many bytes it
 * consumed (up to the last \n). */
static long long index_lines(struct fstore *f, const char *buf, size_t len, int *rc)
{
	size_t at = 0;
	*rc = 0;
	for (;;) {
		const char *nl = memchr(buf + at, '\n', len - at);
		if (!nl)
			break;
		size_t n = (size_t)(nl - (buf + at));
		if (line_valid(buf + at, n)) {
			char *copy = malloc(n + 1);
			if (!copy ||
			    (memcpy(copy, buf + at, n), copy[n] = '\0', index_put(f, copy, n))) {
				*rc = -1;
				return (long long)at;
			}
		}
		at += n + 1;
	}
	return (long long)at;
}

/* fd is the user's own regular file (opened O_NOFOLLOW in the checked directory) */
static int own_file(int fd, const char *name, struct goman_err *err)
{
	struct stat st;
	if (fstat(fd, &st))
		return io_err(err, "cannot stat", name);
	if (!S_ISREG(st.st_mode) || st.st_uid != geteuid())
		return goman_err_set(err, GOMAN_EIO, GOMAN_CLASS_NONE, "IdempotencyStore",
				     "idempotency store: '%s' is not a regular file of uid %lu",
				     name, (unsigned long)geteuid());
	return 0;
}

/* Replaces the log with text[0..len) (temp + rename); on success f->logfd is the new log. */
static int log_replace(struct fstore *f, const char *text, size_t len, struct goman_err *err)
{
	/* a temp file left by a writer that died is ours to remove (we hold the lock) */
	if (unlinkat(f->dirfd, LOG_TMP, 0) && errno != ENOENT)
		return io_err(err, "cannot remove", LOG_TMP);
	int fd = openat(f->dirfd, LOG_TMP,
			O_RDWR | O_CREAT | O_EXCL | O_APPEND | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return io_err(err, "cannot create", LOG_TMP);
	if (gm_write_all(fd, text, len) || (f->fsync && fsync(fd)) ||
	    renameat(f->dirfd, LOG_TMP, f->dirfd, LOG_NAME)) {
		io_err(err, "cannot write", LOG_TMP);
		close(fd);
		unlinkat(f->dirfd, LOG_TMP, 0);
		return -1;
	}
	if (f->fsync)
		fsync(f->dirfd);
	if (f->logfd >= 0)
		close(f->logfd);
	f->logfd = fd;
	f->log_off = (long long)len;
	f->log_torn = false;
	return 0;
}

/* Opens the log; creates it when this directory has none. */
static int log_open(struct fstore *f, struct goman_err *err)
{
	f->logfd = openat(f->dirfd, LOG_NAME, O_RDWR | O_APPEND | O_NOFOLLOW | O_CLOEXEC);
	if (f->logfd >= 0) {
		if (own_file(f->logfd, LOG_NAME, err) == 0)
			return 0;
		close(f->logfd);
		f->logfd = -1;
		return -1;
	}
	if (errno != ENOENT)
		return io_err(err, "cannot open", LOG_NAME);
	return log_replace(f, "", 0, err);
}

/* Cuts the log back to its last whole line at off (torn bytes after it); false if it could
 * not, when the next line is to start with a \n of its own. */
static bool cut_torn(struct fstore *f, long long off)
{
	if (ftruncate(f->logfd, (off_t)off) == 0) {
		f->log_off = off;
		f->log_torn = false;
		return true;
	}
	goman_log(GOMAN_LOG_WARN, "IDEMPOTENCY", "cannot cut a torn line off '%s/" LOG_NAME "': %s",
		  f->dir, strerror(errno));
	f->log_torn = true;
	return false;
}

/* Under the lock: brings the index up to the log's end (a replaced log is read afresh). */
static int refresh(struct fstore *f, struct goman_err *err)
{
	struct stat st;
	if (f->logfd >= 0 && fstat(f->logfd, &st))
		return io_err(err, "cannot stat", LOG_NAME);
	if (f->logfd < 0 || st.st_nlink == 0 || st.st_size < f->log_off) {
		if (f->logfd >= 0)
			close(f->logfd);
		f->logfd = -1;
		index_clear(&f->ix);
		gm_idem_rec_clear(&f->held);
		f->log_off = 0;
		f->log_torn = false;
		if (log_open(f, err))
			return -1;
		if (fstat(f->logfd, &st))
			return io_err(err, "cannot stat", LOG_NAME);
	}
	if (st.st_size == f->log_off)
		return 0;
	size_t want = (size_t)(st.st_size - f->log_off), got = 0;
	char *buf = malloc(want);
	if (!buf)
		return gm_err_oom(err);
	while (got < want) {
		ssize_t n = pread(f->logfd, buf + got, want - got,
				  (off_t)(f->log_off + (long long)got));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	int rc;
	long long used = index_lines(f, buf, got, &rc);
	free(buf);
	if (rc)
		return gm_err_oom(err);
	/* bytes after the last \n: a writer died mid-line (every writer holds the lock) */
	long long whole = f->log_off + used;
	f->log_off += (long long)got;
	if (used < (long long)got)
		cut_torn(f, whole);
	return 0;
}

/* Appends line (malloc'd, \n included; taken) and indexes it; *seq gets its sequence. */
static int append(struct fstore *f, char *line, size_t len, bool sync, unsigned long long *seq,
		  struct goman_err *err)
{
	struct iovec iov[2] = {{"\n", 1}, {line, len}};
	int first = f->log_torn ? 0 : 1;
	size_t total = len + (f->log_torn ? 1 : 0);
	ssize_t w;
	do
		w = writev(f->logfd, iov + first, 2 - first);
	while (w < 0 && errno == EINTR);
	long long before = f->log_off;
	bool was_torn = f->log_torn; /* then the cut below keeps the earlier torn bytes */
	if (w != (ssize_t)total) {
		int e = w >= 0 ? ENOSPC
			       : errno; /* a short write to a regular file: the disk is full */
		if (w > 0) {
			f->log_off += w;
			if (cut_torn(f, before))
				f->log_torn = was_torn;
		}
		free(line);
		errno = e;
		return io_err(err, "cannot append to", LOG_NAME);
	}
	f->log_off += w;
	f->log_torn = false;
	if (sync && fdatasync(f->logfd)) {
		/* reported as not written, so it must not stand: a caller told "failed" does not
		 * launch, and a record left behind would answer the next run IN_PROGRESS */
		int e = errno;
		if (cut_torn(f, before))
			f->log_torn = was_torn;
		free(line);
		errno = e;
		return io_err(err, "cannot sync", LOG_NAME);
	}
	line[len - 1] = '\0';
	if (index_put(f, line, len - 1))
		return gm_err_oom(err);
	*seq = f->next_seq;
	return 0;
}

/* Writes the live lines (expired ones dropped, counted in *dropped) as the new log. */
static int compact(struct fstore *f, int64_t now, size_t *dropped, struct goman_err *err)
{
	struct gm_idem_index *ix = &f->ix;
	size_t n = 0, total = 0;
	for (size_t i = 0; i < ix->cap; i++) {
		struct entry *e = &ix->slots[i];
		if (e->line && e->expires_at <= now)
			n++;
		else if (e->line)
			total += e->len + 1;
	}
	*dropped = n;
	if (n == 0 && (long long)total == f->log_off)
		return 0; /* nothing dead: leave the log alone */
	char *text = malloc(total + 1), *p = text;
	if (!text)
		return gm_err_oom(err);
	for (size_t i = 0; i < ix->cap; i++) {
		struct entry *e = &ix->slots[i];
		if (e->line && e->expires_at > now) {
			memcpy(p, e->line, e->len);
			p[e->len] = '\n';
			p += e->len + 1;
		}
	}
	int rc = log_replace(f, text, total, err);
	free(text);
	if (rc)
		return -1;
	/* re-index what was written: dropped keys leave, sequences stay comparable */
	unsigned long long held = f->held_seq;
	bool keep_held = false;
	struct gm_idem_index old = *ix;
	memset(ix, 0, sizeof(*ix));
	rc = 0;
	for (size_t i = 0; i < old.cap; i++) {
		struct entry *e = &old.slots[i];
		if (!e->line)
			continue;
		if (e->expires_at <= now || rc) {
			free(e->line);
			continue;
		}
		bool was_held = e->seq == held;
		rc = index_put(f, e->line, e->len);
		if (!rc && was_held) {
			f->held_seq = f->next_seq;
			keep_held = true;
		}
	}
	free(old.slots);
	if (!keep_held)
		gm_idem_rec_clear(&f->held);
	if (rc) {
		f->log_off = 0; /* the index is incomplete: read the log afresh next time */
		index_clear(ix);
		return gm_err_oom(err);
	}
	return 0;
}

/* After a change: compacts when dead lines outweigh live ones in a log worth the trouble. */
static void maybe_compact(struct fstore *f, int64_t now)
{
	long long live = f->ix.live_bytes;
	if (f->log_off < COMPACT_MIN_BYTES || f->log_off - live <= live)
		return;
	size_t n = 0;
	struct goman_err e = GOMAN_ERR_INIT;
	if (compact(f, now, &n, &e) == 0)
		f->s->stats.cleaned += n;
	else
		goman_log(GOMAN_LOG_WARN, "IDEMPOTENCY", "compaction skipped: %s", e.message);
}

/* ---- the backend ----------------------------------------------------------------------------- */

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

static int file_cleanup_store(struct fstore *f, size_t *removed, struct goman_err *err);

/* Fills f->dir as goman/idem.h says (the given dir, $GOMAN_IDEMPOTENCY_DIR, XDG, HOME). */
static int store_dir(struct fstore *f, const char *dir, struct goman_err *err)
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
	if (!(f->dir = strdup(buf)))
		return gm_err_oom(err);
	if (mkdir_p(buf))
		return io_err(err, "cannot create", f->dir);
	return 0;
}

static int file_open(struct goman_idem *s, const struct goman_idem_opts *o, struct goman_err *err)
{
	struct fstore *f = calloc(1, sizeof(*f));
	if (!f)
		return gm_err_oom(err);
	s->be = f;
	f->s = s;
	f->dirfd = f->lockfd = f->logfd = -1;
	const char *fs = getenv("GOMAN_IDEMPOTENCY_FSYNC");
	f->fsync = !o->no_fsync && !(fs && !strcmp(fs, "0"));
	if (store_dir(f, o->dir, err))
		return -1;
	char why[4200];
	f->dirfd = gm_private_dir(f->dir, why, sizeof(why));
	if (f->dirfd < 0 && errno == EPERM)
		return goman_err_set(err, GOMAN_EIO, GOMAN_CLASS_NONE, "UnsafeDirectory",
				     "idempotency store '%s' refused: %s (others could forge or "
				     "remove its records; see goman(7))",
				     f->dir, why);
	if (f->dirfd < 0)
		return goman_err_set(err, GOMAN_EIO, GOMAN_CLASS_NONE, "IdempotencyStore",
				     "idempotency store: %s", why);
	f->lockfd = openat(f->dirfd, ".lock", O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (f->lockfd < 0)
		return io_err(err, "cannot open lock in", f->dir);
	if (own_file(f->lockfd, ".lock", err))
		return -1;
	/* cleanup on use, amortised: at most once an hour per store, stamped by .cleaned's
	 * mtime, so a store nobody runs cleanup on does not grow without bound */
	struct stat st;
	int64_t now = goman_now_ms();
	if (fstatat(f->dirfd, ".cleaned", &st, AT_SYMLINK_NOFOLLOW) != 0 ||
	    (int64_t)st.st_mtime * 1000 + 3600 * 1000 < now) {
		int fd = openat(f->dirfd, ".cleaned", O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC,
				0600);
		if (fd >= 0) {
			futimens(fd, NULL);
			close(fd);
		}
		size_t n = 0;
		struct goman_err ignored = GOMAN_ERR_INIT;
		if (file_cleanup_store(f, &n, &ignored) == 0)
			s->stats.cleaned += n;
	}
	return 0;
}

static void file_close(struct goman_idem *s)
{
	struct fstore *f = s->be;
	if (!f)
		return;
	gm_idem_rec_clear(&f->held);
	index_clear(&f->ix);
	if (f->logfd >= 0)
		close(f->logfd);
	if (f->lockfd >= 0)
		close(f->lockfd);
	if (f->dirfd >= 0)
		close(f->dirfd);
	free(f->dir);
	free(f);
	s->be = NULL;
}

static int lock(struct fstore *f, struct goman_err *err)
{
	while (flock(f->lockfd, LOCK_EX) != 0) {
		if (errno != EINTR)
			return io_err(err, "cannot lock", f->dir);
	}
	if (refresh(f, err)) {
		flock(f->lockfd, LOCK_UN);
		return -1;
	}
	return 0;
}

static void unlock(struct fstore *f)
{
	flock(f->lockfd, LOCK_UN);
}

/* Remembers rec (moved: its cJSON pointers now belong to the handle) as the one we hold. */
static void hold(struct fstore *f, struct gm_idem_rec *rec, unsigned long long seq)
{
	gm_idem_rec_clear(&f->held);
	f->held = *rec;
	rec->identity = rec->result = rec->error = NULL;
	f->held_seq = seq;
}

static int begin_locked(struct fstore *f, struct gm_idem_rec *mine, struct gm_idem_rec *found,
			enum gm_idem_verdict *verdict, struct goman_err *err)
{
	struct entry *e = index_find(&f->ix, mine->id);
	*verdict = GM_IDEM_CREATED;
	if (e) {
		if (line_parse(f, e, found, err))
			return -1;
		*verdict = gm_idem_judge(found, mine->payload_hash, mine->started_at);
		if (*verdict == GM_IDEM_ANSWER_COMPLETED ||
		    *verdict == GM_IDEM_ANSWER_IN_PROGRESS || *verdict == GM_IDEM_ANSWER_MISMATCH)
			return 0;
		if (*verdict == GM_IDEM_REPLACE_TAKEOVER)
			snprintf(mine->client_token, sizeof(mine->client_token), "%s",
				 found->client_token);
	}
	size_t len;
	char *line = line_make(mine, &len);
	unsigned long long seq;
	if (!line)
		return gm_err_oom(err);
	if (append(f, line, len, f->fsync, &seq, err))
		return -1;
	hold(f, mine, seq);
	return 0;
}

static int file_begin(struct goman_idem *s, struct gm_idem_rec *mine, struct gm_idem_rec *found,
		      enum gm_idem_verdict *verdict, struct goman_err *err)
{
	struct fstore *f = s->be;
	if (lock(f, err))
		return -1;
	int rc = begin_locked(f, mine, found, verdict, err);
	if (rc == 0)
		maybe_compact(f, mine->started_at);
	unlock(f);
	return rc;
}

static int finish_locked(struct fstore *f, const struct goman_idem_ticket *t, const char *status,
			 const cJSON *result, const cJSON *error, struct gm_idem_rec *rec,
			 struct goman_err *err)
{
	struct entry *e = index_find(&f->ix, t->key);
	if (e && e->seq == f->held_seq && !strcmp(f->held.id, t->key)) {
		*rec = f->held; /* our line is still the latest: no need to parse it */
		memset(&f->held, 0, sizeof(f->held));
	} else if (e && line_parse(f, e, rec, err)) {
		return -1;
	}
	if (!e || strcmp(rec->status, "INPROGRESS") || strcmp(rec->owner, t->owner_id))
		return goman_err_set(
			err, GOMAN_ECONFLICT, GOMAN_CLASS_CLIENT, "IdempotencyLost",
			"%s: this process no longer holds the idempotency record (its "
			"lease expired and another run took it over, or it was removed)",
			t->operation);
	snprintf(rec->status, sizeof(rec->status), "%s", status);
	rec->expires_at = goman_now_ms() + f->s->ttl_ms;
	cJSON_Delete(rec->result);
	cJSON_Delete(rec->error);
	rec->result = result ? cJSON_Duplicate(result, 1) : NULL;
	rec->error = error ? cJSON_Duplicate(error, 1) : NULL;
	size_t len;
	char *line =
		(result && !rec->result) || (error && !rec->error) ? NULL : line_make(rec, &len);
	unsigned long long seq;
	if (!line)
		return gm_err_oom(err);
	return append(f, line, len, false, &seq, err); /* unsynced: see the header */
}

static int file_finish(struct goman_idem *s, const struct goman_idem_ticket *t, const char *status,
		       const cJSON *result, const cJSON *error, struct goman_err *err)
{
	struct fstore *f = s->be;
	struct gm_idem_rec rec;
	memset(&rec, 0, sizeof(rec));
	if (lock(f, err))
		return -1;
	int rc = finish_locked(f, t, status, result, error, &rec, err);
	if (rc == 0)
		maybe_compact(f, goman_now_ms());
	unlock(f);
	gm_idem_rec_clear(&rec);
	return rc;
}

static int file_cleanup_store(struct fstore *f, size_t *removed, struct goman_err *err)
{
	if (lock(f, err))
		return -1;
	int rc = compact(f, goman_now_ms(), removed, err);
	unlock(f);
	return rc;
}

static int file_cleanup(struct goman_idem *s, size_t *removed, struct goman_err *err)
{
	return file_cleanup_store(s->be, removed, err);
}

/* Copies the lines to list under the lock, then hands them out without it. */
static int file_list(struct goman_idem *s, bool all, goman_idem_list_fn fn, void *ctx,
		     struct goman_err *err)
{
	struct fstore *f = s->be;
	if (lock(f, err))
		return -1;
	int64_t now = goman_now_ms();
	struct gm_idem_index *ix = &f->ix;
	size_t n = 0;
	char **lines = calloc(ix->used + 1, sizeof(*lines));
	for (size_t i = 0; lines && i < ix->cap; i++) {
		struct entry *e = &ix->slots[i];
		if (e->line && (all || e->expires_at > now) &&
		    (lines[n] = strndup(e->line, e->len)))
			n++;
	}
	unlock(f);
	if (!lines)
		return gm_err_oom(err);
	int rc = 0;
	for (size_t i = 0; i < n; i++) {
		cJSON *o = rc ? NULL : cJSON_Parse(lines[i]);
		if (o) {
			cJSON_DeleteItemFromObjectCaseSensitive(o, "sum");
			rc = fn(o, ctx) ? 1 : 0;
		} else if (!rc) {
			rc = -1;
			gm_err_oom(err);
		}
		cJSON_Delete(o);
		free(lines[i]);
	}
	free(lines);
	return rc < 0 ? -1 : 0;
}

/* Appends the record again as FORGOTTEN with expires_at 0: begin starts afresh, its owner
 * can no longer complete it (not INPROGRESS), and the next compaction drops it. */
static int file_forget(struct goman_idem *s, const char *key, bool force, struct goman_err *err)
{
	struct fstore *f = s->be;
	if (lock(f, err))
		return -1;
	int64_t now = goman_now_ms();
	struct entry *e = index_find(&f->ix, key);
	struct gm_idem_rec rec;
	memset(&rec, 0, sizeof(rec));
	int rc = 0;
	if (e && e->expires_at > now) {
		rc = line_parse(f, e, &rec, err) || gm_idem_forget_check(&rec, force, now, err) ? -1
												: 1;
		if (rc == 1) {
			snprintf(rec.status, sizeof(rec.status), "FORGOTTEN");
			rec.expires_at = 0;
			size_t len;
			char *line = line_make(&rec, &len);
			unsigned long long seq;
			if (!line)
				rc = gm_err_oom(err);
			else if (append(f, line, len, f->fsync, &seq, err))
				rc = -1;
		}
	}
	unlock(f);
	gm_idem_rec_clear(&rec);
	return rc;
}

static const char *file_dir(const struct goman_idem *s)
{
	const struct fstore *f = s->be;
	return f->dir;
}

const struct gm_idem_ops gm_idem_file_ops = GM_IDEM_OPS(file, "file", file_dir);
