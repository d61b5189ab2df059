/*
 * idem.c - the idempotency store's front (see goman/idem.h): keys, canonical JSON, the
 * verdict on a found record, ownership checks, counters, events and [IDEMPOTENCY] lines.
 * Storage is in idem_file.c and idem_dynamo.c (idem_int.h is the seam).
 *
 * Ownership: the handle owns its backend state; tickets own their result. Errors come back
 * as -1 + *err (store failures); begin's answers are its return value.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>
#include <cjson/cJSON.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include "goman/clock.h"
#include "goman/idem.h"
#include "goman/log.h"
#include "idem_int.h"
#include "internal.h"

#define TAG "IDEMPOTENCY"

const char *goman_idem_state_name(enum goman_idem_state st)
{
	switch (st) {
	case GOMAN_IDEM_NEW: return "new";
	case GOMAN_IDEM_IN_PROGRESS: return "in_progress";
	case GOMAN_IDEM_COMPLETED: return "completed";
	case GOMAN_IDEM_MISMATCH: return "mismatch";
	}
	return "?";
}

/* ---- canonical JSON and hashes ---------------------------------------------------- */

static int cmp_items(const void *a, const void *b)
{
	const cJSON *x = *(const cJSON *const *)a, *y = *(const cJSON *const *)b;
	return strcmp(x->string ? x->string : "", y->string ? y->string : "");
}

/* Sorts object members by name at every depth, in place. 0, or -1 on no memory. */
static int sort_tree(cJSON *v)
{
	if (!cJSON_IsObject(v) && !cJSON_IsArray(v))
		return 0;
	size_t n = 0;
	for (cJSON *c = v->child; c; c = c->next) {
		if (sort_tree(c))
			return -1;
		n++;
	}
	if (!cJSON_IsObject(v) || n < 2)
		return 0;
	cJSON **a = malloc(n * sizeof(*a));
	if (!a)
		return -1;
	size_t i = 0;
	for (cJSON *c = v->child; c; c = c->next)
		a[i++] = c;
	qsort(a, n, sizeof(*a), cmp_items);
	/* relink as cJSON keeps it: prev of the head points at the tail */
	for (i = 0; i < n; i++) {
		a[i]->next = i + 1 < n ? a[i + 1] : NULL;
		a[i]->prev = i ? a[i - 1] : a[n - 1];
	}
	v->child = a[0];
	free(a);
	return 0;
}

char *goman_idem_canonical(const cJSON *v)
{
	if (!v)
		return strdup("null");
	cJSON *d = cJSON_Duplicate(v, 1);
	if (!d)
		return NULL;
	char *out = sort_tree(d) ? NULL : cJSON_PrintUnformatted(d);
	cJSON_Delete(d);
	return out;
}

static void hex(const unsigned char *b, size_t n, char *out)
{
	static const char h[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = h[b[i] >> 4];
		out[2 * i + 1] = h[b[i] & 15];
	}
	out[2 * n] = '\0';
}

/* SHA-256 hex of a and b joined by a NUL (so "ab"+"c" and "a"+"bc" differ) */
static int sha256_hex2(const char *a, const char *b, char out[65])
{
	unsigned char md[32];
	unsigned int len = 0;
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	int ok = c && EVP_DigestInit_ex(c, EVP_sha256(), NULL) &&
		 EVP_DigestUpdate(c, a, strlen(a) + 1) && EVP_DigestUpdate(c, b, strlen(b)) &&
		 EVP_DigestFinal_ex(c, md, &len);
	EVP_MD_CTX_free(c);
	if (!ok)
		return -1;
	hex(md, 32, out);
	return 0;
}

int goman_idem_key(const char *operation, const cJSON *identity, char out[65])
{
	if (!operation || !*operation)
		return -1;
	char *canon = goman_idem_canonical(identity);
	if (!canon)
		return -1;
	int rc = sha256_hex2(operation, canon, out);
	free(canon);
	return rc;
}

int gm_idem_random_hex(char *out, size_t nbytes)
{
	unsigned char b[64];
	if (nbytes > sizeof(b) || RAND_bytes(b, (int)nbytes) != 1)
		return -1;
	hex(b, nbytes, out);
	return 0;
}

/* ---- who we are, and whether an owner is gone -------------------------------------- */

static const char *my_host(void)
{
	static char host[256];
	if (!host[0] && gethostname(host, sizeof(host) - 1) != 0)
		snprintf(host, sizeof(host), "localhost");
	return host;
}

/* Field 22 of /proc/<pid>/stat (start time in clock ticks since boot), or -1. */
static long long pid_start_time(long pid)
{
	char path[64], buf[1024];
	snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	char *p = strrchr(buf, ')'); /* comm may hold spaces and parens */
	if (!p)
		return -1;
	p++;
	for (int field = 3; field < 22 && p; field++) {
		p = strchr(p + 1, ' ');
	}
	if (!p)
		return -1;
	return strtoll(p + 1, NULL, 10);
}

/* getpid() is a real syscall (and syscalls are dear in VMs): cache it, reset in a forked
 * child by the atfork handler (a forked child is another owner). */
static pid_t cached_pid;
static long long cached_start;
static void forget_pid(void)
{
	cached_pid = 0;
}

long gm_idem_pid(void)
{
	static int registered;
	if (!registered) {
		registered = 1;
		pthread_atfork(NULL, NULL, forget_pid);
	}
	if (!cached_pid) {
		cached_pid = getpid();
		cached_start = -2;
	}
	return (long)cached_pid;
}

static long long my_start_time(void)
{
	long pid = gm_idem_pid();
	if (cached_start == -2)
		cached_start = pid_start_time(pid);
	return cached_start;
}

bool gm_idem_owner_dead(const struct gm_idem_rec *r)
{
	/* another machine, or a pid no process can have: only the lease can tell (a pid_t cast
	 * of a larger one would ask about some other process, or about all of them) */
	if (strcmp(r->owner_host, my_host()) != 0 || r->owner_pid <= 0 || r->owner_pid > INT_MAX)
		return false;
	if (kill((pid_t)r->owner_pid, 0) != 0 && errno == ESRCH)
		return true;
	if (r->owner_pid_start > 0) {
		long long st = pid_start_time(r->owner_pid);
		if (st > 0 && st != r->owner_pid_start)
			return true; /* the pid was reused by another process */
	}
	return false;
}

enum gm_idem_verdict gm_idem_judge(const struct gm_idem_rec *old, const char *payload_hash,
				   int64_t now)
{
	bool same = strcmp(old->payload_hash, payload_hash) == 0;
	if (old->expires_at <= now)
		return GM_IDEM_REPLACE_FRESH;
	if (!strcmp(old->status, "COMPLETED"))
		return same ? GM_IDEM_ANSWER_COMPLETED : GM_IDEM_ANSWER_MISMATCH;
	if (!strcmp(old->status, "FAILED"))
		return same ? GM_IDEM_REPLACE_TAKEOVER : GM_IDEM_REPLACE_FRESH;
	/* INPROGRESS: other parameters are a mismatch even when the owner is dead, since the
	 * dead run may have launched with them */
	if (!same)
		return GM_IDEM_ANSWER_MISMATCH;
	if (old->lease_expires <= now || gm_idem_owner_dead(old))
		return GM_IDEM_REPLACE_TAKEOVER;
	return GM_IDEM_ANSWER_IN_PROGRESS;
}

int gm_idem_forget_check(const struct gm_idem_rec *r, bool force, int64_t now,
			 struct goman_err *err)
{
	if (force || strcmp(r->status, "INPROGRESS") || r->lease_expires <= now ||
	    gm_idem_owner_dead(r))
		return 0;
	return goman_err_set(err, GOMAN_ECONFLICT, GOMAN_CLASS_CLIENT, "IdempotencyInProgress",
			     "%s %.12s is in progress (pid %ld on %s, lease until %lld): not "
			     "forgotten without --force",
			     r->operation, r->id, r->owner_pid, r->owner_host,
			     (long long)r->lease_expires);
}

/* ---- records -------------------------------------------------------------------------- */

void gm_idem_rec_clear(struct gm_idem_rec *r)
{
	cJSON_Delete(r->identity);
	cJSON_Delete(r->result);
	cJSON_Delete(r->error);
	memset(r, 0, sizeof(*r));
}

int gm_idem_rec_init_owner(struct goman_idem *s, struct gm_idem_rec *r, const char *operation,
			   const char *key, const char *payload_hash, const cJSON *identity,
			   int64_t now)
{
	memset(r, 0, sizeof(*r));
	snprintf(r->id, sizeof(r->id), "%s", key);
	snprintf(r->operation, sizeof(r->operation), "%s", operation);
	snprintf(r->status, sizeof(r->status), "INPROGRESS");
	snprintf(r->payload_hash, sizeof(r->payload_hash), "%s", payload_hash);
	char both[65]; /* one RAND_bytes call for both: each costs a getpid() inside OpenSSL */
	if (gm_idem_random_hex(both, 32))
		return -1;
	memcpy(r->client_token, both, 32);
	memcpy(r->owner, both + 32, 32);
	r->owner_pid = gm_idem_pid();
	r->owner_pid_start = my_start_time();
	snprintf(r->owner_host, sizeof(r->owner_host), "%s", my_host());
	r->started_at = now;
	r->lease_expires = now + s->lease_ms;
	r->expires_at = now + s->ttl_ms;
	if (identity && !(r->identity = cJSON_Duplicate(identity, 1)))
		return -1;
	return 0;
}

/* Integers as raw number text: cJSON prints doubles through "%1.15g" plus a re-parse,
 * which is most of a record's user time; these are integers, printed exactly. */
static cJSON *add_int(cJSON *o, const char *name, long long v)
{
	char buf[32];
	snprintf(buf, sizeof(buf), "%lld", v);
	return cJSON_AddRawToObject(o, name, buf);
}

cJSON *gm_idem_rec_to_json(const struct gm_idem_rec *r)
{
	cJSON *o = cJSON_CreateObject();
	if (!o)
		return NULL;
	int ok = cJSON_AddStringToObject(o, "id", r->id) &&
		 cJSON_AddStringToObject(o, "operation", r->operation) &&
		 cJSON_AddStringToObject(o, "status", r->status) &&
		 cJSON_AddStringToObject(o, "payload_hash", r->payload_hash) &&
		 cJSON_AddStringToObject(o, "client_token", r->client_token) &&
		 cJSON_AddStringToObject(o, "owner", r->owner) &&
		 add_int(o, "owner_pid", r->owner_pid) &&
		 add_int(o, "owner_pid_start", r->owner_pid_start) &&
		 cJSON_AddStringToObject(o, "owner_host", r->owner_host) &&
		 add_int(o, "started_at", r->started_at) &&
		 add_int(o, "lease_expires", r->lease_expires) &&
		 add_int(o, "expires_at", r->expires_at);
	if (ok && r->identity)
		ok = cJSON_AddItemToObject(o, "identity", cJSON_Duplicate(r->identity, 1));
	if (ok && r->result)
		ok = cJSON_AddItemToObject(o, "result", cJSON_Duplicate(r->result, 1));
	if (ok && r->error)
		ok = cJSON_AddItemToObject(o, "error", cJSON_Duplicate(r->error, 1));
	if (!ok) {
		cJSON_Delete(o);
		return NULL;
	}
	return o;
}

static void get_str(const cJSON *o, const char *name, char *out, size_t len)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
	snprintf(out, len, "%s", cJSON_IsString(v) ? v->valuestring : "");
}

/* A stored number is input like any other (a damaged or planted record can hold 1e300):
 * beyond int64 it saturates, NaN is 0, so no cast is ever out of range. */
static int64_t sat_i64(double d)
{
	if (d != d)
		return 0;
	if (d >= 9223372036854775808.0) /* 2^63: the first double past INT64_MAX */
		return INT64_MAX;
	if (d <= -9223372036854775808.0)
		return INT64_MIN;
	return (int64_t)d;
}

static int64_t get_num(const cJSON *o, const char *name)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
	if (cJSON_IsNumber(v))
		return sat_i64(v->valuedouble);
	if (cJSON_IsString(v)) /* DynamoDB numbers arrive as strings */
		return strtoll(v->valuestring, NULL, 10);
	return 0;
}

static cJSON *get_dup(const cJSON *o, const char *name)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
	if (cJSON_IsString(v) && v->valuestring[0] &&
	    (v->valuestring[0] == '{' || v->valuestring[0] == '['))
		return cJSON_Parse(v->valuestring); /* DynamoDB keeps JSON as text */
	return v ? cJSON_Duplicate(v, 1) : NULL;
}

int gm_idem_rec_from_json(const cJSON *o, struct gm_idem_rec *r)
{
	memset(r, 0, sizeof(*r));
	if (!cJSON_IsObject(o))
		return -1;
	get_str(o, "id", r->id, sizeof(r->id));
	get_str(o, "operation", r->operation, sizeof(r->operation));
	get_str(o, "status", r->status, sizeof(r->status));
	get_str(o, "payload_hash", r->payload_hash, sizeof(r->payload_hash));
	get_str(o, "client_token", r->client_token, sizeof(r->client_token));
	get_str(o, "owner", r->owner, sizeof(r->owner));
	get_str(o, "owner_host", r->owner_host, sizeof(r->owner_host));
	r->owner_pid = (long)get_num(o, "owner_pid");
	r->owner_pid_start = (long long)get_num(o, "owner_pid_start");
	r->started_at = get_num(o, "started_at");
	r->lease_expires = get_num(o, "lease_expires");
	r->expires_at = get_num(o, "expires_at");
	r->identity = get_dup(o, "identity");
	r->result = get_dup(o, "result");
	r->error = get_dup(o, "error");
	if (!r->id[0] || !r->status[0] || !r->payload_hash[0])
		return -1;
	return 0;
}

/* ---- open / close ------------------------------------------------------------------- */

struct goman_idem *goman_idem_open(const struct goman_idem_opts *opts, struct goman_err *err)
{
	struct goman_idem_opts o = {0};
	if (opts)
		o = *opts;
	struct goman_idem *s = calloc(1, sizeof(*s));
	if (!s) {
		goman_err_set(err, GOMAN_ENOMEM, GOMAN_CLASS_NONE, "NoMemory", "out of memory");
		return NULL;
	}
	s->dirfd = s->lockfd = s->logfd = -1;
	s->ttl_ms = o.ttl_ms > 0 ? o.ttl_ms : GOMAN_IDEM_DEFAULT_TTL_MS;
	s->lease_ms = o.lease_ms > 0 ? o.lease_ms : GOMAN_IDEM_DEFAULT_LEASE_MS;
	const char *fs = getenv("GOMAN_IDEMPOTENCY_FSYNC");
	s->fsync = !o.no_fsync && !(fs && !strcmp(fs, "0"));
	const char *table = o.table ? o.table : getenv("GOMAN_IDEMPOTENCY_TABLE");
	int rc;
	if (table && *table) {
		s->kind = GM_IDEM_DYNAMO;
		rc = gm_idem_dynamo_open(s, table, o.aws, err);
	} else {
		s->kind = GM_IDEM_FILE;
		rc = gm_idem_file_open(s, o.dir, err);
	}
	if (rc) {
		goman_idem_close(s);
		return NULL;
	}
	return s;
}

void goman_idem_close(struct goman_idem *s)
{
	if (!s)
		return;
	if (s->kind == GM_IDEM_DYNAMO)
		gm_idem_dynamo_close(s);
	else
		gm_idem_file_close(s);
	free(s);
}

const char *goman_idem_backend(const struct goman_idem *s)
{
	return s && s->kind == GM_IDEM_DYNAMO ? "dynamodb" : "file";
}

const char *goman_idem_dir(const struct goman_idem *s)
{
	return s && s->kind == GM_IDEM_FILE ? s->dir : NULL;
}

void goman_idem_get_stats(const struct goman_idem *s, struct goman_idem_stats *out)
{
	if (s)
		*out = s->stats;
	else
		memset(out, 0, sizeof(*out));
}

void goman_idem_ticket_clear(struct goman_idem_ticket *t)
{
	if (!t)
		return;
	cJSON_Delete(t->result);
	memset(t, 0, sizeof(*t));
}

/* ---- begin / complete / fail / cleanup ------------------------------------------------- */

static void emit(const struct goman_idem_ticket *t, const char *result)
{
	cJSON *ev = cJSON_CreateObject();
	if (!ev)
		return;
	cJSON_AddStringToObject(ev, "operation", t->operation);
	cJSON_AddStringToObject(ev, "result", result);
	cJSON_AddStringToObject(ev, "key", t->key);
	if (t->taken_over)
		cJSON_AddBoolToObject(ev, "taken_over", 1);
	goman_event("idempotency", ev);
}

static void owner_into_ticket(const struct gm_idem_rec *r, struct goman_idem_ticket *t)
{
	t->owner_pid = r->owner_pid;
	snprintf(t->owner_host, sizeof(t->owner_host), "%s", r->owner_host);
	t->owner_started_ms = r->started_at;
	t->lease_expires_ms = r->lease_expires;
	t->expires_ms = r->expires_at;
}

int goman_idem_begin(struct goman_idem *s, const char *operation, const cJSON *identity,
		     const cJSON *params, struct goman_idem_ticket *t, struct goman_err *err)
{
	memset(t, 0, sizeof(*t));
	if (!s || !operation || !*operation || strlen(operation) >= sizeof(t->operation))
		return goman_err_set(err, GOMAN_EINVAL, GOMAN_CLASS_BAD_INPUT, "BadInput",
				     "idempotency: an operation name (under 64 bytes) is needed");
	snprintf(t->operation, sizeof(t->operation), "%s", operation);
	char *canon = goman_idem_canonical(identity);
	char *pcanon = params ? goman_idem_canonical(params) : canon;
	int bad = !canon || !pcanon || sha256_hex2(operation, canon, t->key) ||
		  sha256_hex2(operation, pcanon, t->payload_hash);
	if (pcanon != canon)
		free(pcanon);
	free(canon);
	if (bad)
		return goman_err_set(err, GOMAN_ENOMEM, GOMAN_CLASS_NONE, "NoMemory",
				     "out of memory");

	int64_t now = goman_now_ms();
	struct gm_idem_rec mine, found;
	memset(&found, 0, sizeof(found));
	if (gm_idem_rec_init_owner(s, &mine, operation, t->key, t->payload_hash, identity, now)) {
		gm_idem_rec_clear(&mine);
		return goman_err_set(err, GOMAN_EIO, GOMAN_CLASS_NONE, "NoRandom",
				     "idempotency: no random bytes for a ClientToken");
	}
	enum gm_idem_verdict v;
	int rc = s->kind == GM_IDEM_DYNAMO ? gm_idem_dynamo_begin(s, &mine, &found, &v, err)
					   : gm_idem_file_begin(s, &mine, &found, &v, err);
	if (rc) {
		gm_idem_rec_clear(&mine);
		gm_idem_rec_clear(&found);
		return -1;
	}
	int state;
	switch (v) {
	case GM_IDEM_CREATED:
	case GM_IDEM_REPLACE_FRESH:
	case GM_IDEM_REPLACE_TAKEOVER:
		state = GOMAN_IDEM_NEW;
		t->taken_over = v == GM_IDEM_REPLACE_TAKEOVER;
		snprintf(t->client_token, sizeof(t->client_token), "%s", mine.client_token);
		snprintf(t->owner_id, sizeof(t->owner_id), "%s", mine.owner);
		if (t->taken_over)
			owner_into_ticket(&found, t);
		else
			owner_into_ticket(&mine, t);
		s->stats.miss++;
		if (t->taken_over) {
			s->stats.taken_over++;
			goman_log(
				GOMAN_LOG_INFO, TAG,
				"%s: took over %s record of pid %ld on %s, reusing its ClientToken",
				operation, found.status, found.owner_pid, found.owner_host);
		} else {
			goman_log(GOMAN_LOG_DEBUG, TAG, "%s: miss, key %.12s", operation, t->key);
		}
		emit(t, "miss");
		break;
	case GM_IDEM_ANSWER_COMPLETED:
		state = GOMAN_IDEM_COMPLETED;
		snprintf(t->client_token, sizeof(t->client_token), "%s", found.client_token);
		owner_into_ticket(&found, t);
		t->result = found.result;
		found.result = NULL;
		s->stats.hit++;
		goman_log(GOMAN_LOG_INFO, TAG, "%s: hit, completed at %lld, reusing its result",
			  operation, (long long)found.started_at);
		emit(t, "hit");
		break;
	case GM_IDEM_ANSWER_IN_PROGRESS:
		state = GOMAN_IDEM_IN_PROGRESS;
		snprintf(t->client_token, sizeof(t->client_token), "%s", found.client_token);
		owner_into_ticket(&found, t);
		s->stats.in_progress++;
		goman_err_set(err, GOMAN_ECONFLICT, GOMAN_CLASS_CLIENT, "IdempotencyInProgress",
			      "%s is already in progress (pid %ld on %s); retry after it ends",
			      operation, found.owner_pid, found.owner_host);
		goman_log(GOMAN_LOG_INFO, TAG, "%s: in progress by pid %ld on %s", operation,
			  found.owner_pid, found.owner_host);
		emit(t, "in_progress");
		break;
	default:
		state = GOMAN_IDEM_MISMATCH;
		owner_into_ticket(&found, t);
		s->stats.mismatch++;
		goman_err_set(err, GOMAN_ECONFLICT, GOMAN_CLASS_CLIENT, "IdempotencyMismatch",
			      "%s was already run for these identity fields with other parameters "
			      "(record %s); use the same parameters, wait for it to expire, or "
			      "remove it: goman-idem forget %s",
			      operation, found.status, t->key);
		goman_log(GOMAN_LOG_WARN, TAG, "%s: mismatch, same key with other parameters",
			  operation);
		emit(t, "mismatch");
		break;
	}
	gm_idem_rec_clear(&mine);
	gm_idem_rec_clear(&found);
	t->state = (enum goman_idem_state)state;
	return state;
}

static int finish(struct goman_idem *s, const struct goman_idem_ticket *t, const char *status,
		  const cJSON *result, const cJSON *error, struct goman_err *err)
{
	if (!s || !t || t->state != GOMAN_IDEM_NEW || !t->owner_id[0])
		return goman_err_set(err, GOMAN_EINVAL, GOMAN_CLASS_BAD_INPUT, "BadInput",
				     "idempotency: only the owner of a NEW ticket can finish it");
	int rc = s->kind == GM_IDEM_DYNAMO ? gm_idem_dynamo_finish(s, t, status, result, error, err)
					   : gm_idem_file_finish(s, t, status, result, error, err);
	if (rc == 0)
		goman_log(GOMAN_LOG_DEBUG, TAG, "%s: %s", t->operation, status);
	return rc;
}

int goman_idem_complete(struct goman_idem *s, const struct goman_idem_ticket *t,
			const cJSON *result, struct goman_err *err)
{
	return finish(s, t, "COMPLETED", result, NULL, err);
}

int goman_idem_fail(struct goman_idem *s, const struct goman_idem_ticket *t,
		    const struct goman_err *why, struct goman_err *err)
{
	cJSON *e = cJSON_CreateObject();
	if (!e)
		return goman_err_set(err, GOMAN_ENOMEM, GOMAN_CLASS_NONE, "NoMemory",
				     "out of memory");
	if (why) {
		cJSON_AddStringToObject(e, "code", why->code);
		cJSON_AddStringToObject(e, "message", why->message);
	}
	int rc = finish(s, t, "FAILED", NULL, e, err);
	cJSON_Delete(e);
	return rc;
}

int goman_idem_cleanup(struct goman_idem *s, size_t *removed, struct goman_err *err)
{
	size_t n = 0;
	if (!s)
		return goman_err_set(err, GOMAN_EINVAL, GOMAN_CLASS_BAD_INPUT, "BadInput",
				     "no store");
	int rc = s->kind == GM_IDEM_DYNAMO ? gm_idem_dynamo_cleanup(s, &n, err)
					   : gm_idem_file_cleanup(s, &n, err);
	s->stats.cleaned += n;
	if (removed)
		*removed = n;
	if (n)
		goman_log(GOMAN_LOG_INFO, TAG, "cleanup removed %zu expired record%s", n,
			  n == 1 ? "" : "s");
	return rc;
}

int goman_idem_list(struct goman_idem *s, bool all, goman_idem_list_fn fn, void *ctx,
		    struct goman_err *err)
{
	if (!s || !fn)
		return goman_err_set(err, GOMAN_EINVAL, GOMAN_CLASS_BAD_INPUT, "BadInput",
				     "no store");
	return s->kind == GM_IDEM_DYNAMO ? gm_idem_dynamo_list(s, all, fn, ctx, err)
					 : gm_idem_file_list(s, all, fn, ctx, err);
}

int goman_idem_forget(struct goman_idem *s, const char *key, bool force, struct goman_err *err)
{
	size_t n = key ? strspn(key, "0123456789abcdef") : 0;
	if (!s || n != 64 || key[n])
		return goman_err_set(
			err, GOMAN_EINVAL, GOMAN_CLASS_BAD_INPUT, "BadInput",
			"idempotency: '%s' is not a record key (64 lowercase hex digits)",
			key ? key : "");
	int rc = s->kind == GM_IDEM_DYNAMO ? gm_idem_dynamo_forget(s, key, force, err)
					   : gm_idem_file_forget(s, key, force, err);
	if (rc == 1)
		goman_log(GOMAN_LOG_INFO, TAG, "forgot record %.12s", key);
	return rc;
}
