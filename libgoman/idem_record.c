/*
 * idem_record.c - what both idempotency backends (idem_file.c, idem_dynamo.c) and the front
 * (idem.c) share about one record: who owns it (host, pid, pid start time, a random nonce),
 * whether that owner is gone, the verdict on a found record, forget's check, and the record
 * as a JSON object both ways. It calls neither the front nor a backend, so the three sit
 * above it with no circle between them.
 *
 * Ownership: a struct gm_idem_rec owns its cJSON members (gm_idem_rec_clear frees them).
 * Errors: -1 (records that lack their fields, no random bytes) or -1 + *err (forget_check).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>
#include <cjson/cJSON.h>
#include <openssl/rand.h>
#include "bytes_int.h"
#include "idem_int.h"
#include "proc_int.h"

/* out gets 2 * nbytes hex digits and a NUL */
static int random_hex(char *out, size_t nbytes)
{
	unsigned char b[64];
	if (nbytes > sizeof(b) || RAND_bytes(b, (int)nbytes) != 1)
		return -1;
	gm_hex_encode(b, nbytes, out);
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
	char state;
	unsigned long long start;
	return gm_proc_stat((pid_t)pid, &state, &start) == 0 ? (long long)start : -1;
}

/* getpid() is a real syscall (and syscalls are dear in VMs): cache it, reset in a forked
 * child by the atfork handler (a forked child is another owner). */
static pid_t cached_pid;
static long long cached_start;
static void forget_pid(void)
{
	cached_pid = 0;
}

static long my_pid(void)
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
	long pid = my_pid();
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

int gm_idem_rec_init_owner(struct gm_idem_rec *r, const char *operation, const char *key,
			   const char *payload_hash, const cJSON *identity, int64_t now,
			   int64_t lease_ms, int64_t ttl_ms)
{
	memset(r, 0, sizeof(*r));
	snprintf(r->id, sizeof(r->id), "%s", key);
	snprintf(r->operation, sizeof(r->operation), "%s", operation);
	snprintf(r->status, sizeof(r->status), "INPROGRESS");
	snprintf(r->payload_hash, sizeof(r->payload_hash), "%s", payload_hash);
	char both[65]; /* one RAND_bytes call for both: each costs a getpid() inside OpenSSL */
	if (random_hex(both, 32))
		return -1;
	memcpy(r->client_token, both, 32);
	memcpy(r->owner, both + 32, 32);
	r->owner_pid = my_pid();
	r->owner_pid_start = my_start_time();
	snprintf(r->owner_host, sizeof(r->owner_host), "%s", my_host());
	r->started_at = now;
	r->lease_expires = now + lease_ms;
	r->expires_at = now + ttl_ms;
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

/* the record's text fields: name, where each goes and how much room it has */
#define AT(f) offsetof(struct gm_idem_rec, f), sizeof(((struct gm_idem_rec *)0)->f)
static const struct {
	const char *name;
	size_t off, len;
} text_fields[] = {
	{"id", AT(id)},
	{"operation", AT(operation)},
	{"status", AT(status)},
	{"payload_hash", AT(payload_hash)},
	{"client_token", AT(client_token)},
	{"owner", AT(owner)},
	{"owner_host", AT(owner_host)},
};

int gm_idem_rec_from_json(const cJSON *o, struct gm_idem_rec *r)
{
	memset(r, 0, sizeof(*r));
	if (!cJSON_IsObject(o))
		return -1;
	for (size_t i = 0; i < sizeof(text_fields) / sizeof(text_fields[0]); i++)
		get_str(o, text_fields[i].name, (char *)r + text_fields[i].off, text_fields[i].len);
	r->owner_pid = (long)get_num(o, "owner_pid");
	r->owner_pid_start = (long long)get_num(o, "owner_pid_start");
	int64_t *const times[] = {&r->started_at, &r->lease_expires, &r->expires_at};
	static const char *const time_names[] = {"started_at", "lease_expires", "expires_at"};
	for (size_t i = 0; i < 3; i++)
		*times[i] = get_num(o, time_names[i]);
	r->identity = get_dup(o, "identity");
	r->result = get_dup(o, "result");
	r->error = get_dup(o, "error");
	if (!r->id[0] || !r->status[0] || !r->payload_hash[0])
		return -1;
	return 0;
}
