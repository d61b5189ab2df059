/*
 * idem_int.h - the idempotency store's seams: the front (idem.c) reaches a backend
 * (idem_file.c, idem_dynamo.c) only through its struct gm_idem_ops, and all three share the
 * record logic of idem_record.c, which calls none of them. gm_idem_ names only; nothing here
 * leaves the library.
 *
 * A struct gm_idem_rec is one stored record. It owns result/error/identity (cJSON, freed by
 * gm_idem_rec_clear()); the strings are fixed buffers.
 */
#ifndef GOMAN_IDEM_INT_H
#define GOMAN_IDEM_INT_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "goman/error.h"
#include "goman/idem.h"

struct cJSON;

struct gm_idem_rec {
	char id[65];
	char operation[64];
	char status[16]; /* INPROGRESS | COMPLETED | FAILED */
	char payload_hash[65];
	char client_token[65];
	char owner[33]; /* ownership nonce of the current holder */
	long owner_pid;
	long long owner_pid_start; /* /proc/<pid>/stat starttime: guards against pid reuse */
	char owner_host[256];
	int64_t started_at, lease_expires, expires_at;
	struct cJSON *identity; /* canonical identity, for humans reading the store */
	struct cJSON *result;
	struct cJSON *error;
};

/* What begin does with a record it found. */
enum gm_idem_verdict {
	GM_IDEM_CREATED, /* (backend answer) no live record: ours was stored */
	GM_IDEM_ANSWER_COMPLETED,
	GM_IDEM_ANSWER_IN_PROGRESS,
	GM_IDEM_ANSWER_MISMATCH,
	GM_IDEM_REPLACE_FRESH,    /* expired (or failed with other parameters): a new token */
	GM_IDEM_REPLACE_TAKEOVER, /* dead/expired owner or failed: reuse the stored token */
};

/* A backend, behind the front (idem.c): open sets s->be to its own state, close frees it
 * (also after a failed open). begin fills *found and *verdict when it met a record (mine
 * is stored unless the verdict is an ANSWER); the others are goman_idem_*'s, checked by the
 * front. All return 0 (forget: 1 removed, 0 none) or -1 with *err. */
struct gm_idem_ops {
	const char *name; /* goman_idem_backend()'s answer */
	int (*open)(struct goman_idem *s, const struct goman_idem_opts *o, struct goman_err *err);
	void (*close)(struct goman_idem *s);
	int (*begin)(struct goman_idem *s, struct gm_idem_rec *mine, struct gm_idem_rec *found,
		     enum gm_idem_verdict *verdict, struct goman_err *err);
	int (*finish)(struct goman_idem *s, const struct goman_idem_ticket *t, const char *status,
		      const struct cJSON *result, const struct cJSON *error, struct goman_err *err);
	int (*cleanup)(struct goman_idem *s, size_t *removed, struct goman_err *err);
	int (*list)(struct goman_idem *s, bool all, goman_idem_list_fn fn, void *ctx,
		    struct goman_err *err);
	int (*forget)(struct goman_idem *s, const char *key, bool force, struct goman_err *err);
	const char *(*dir)(const struct goman_idem *s); /* NULL: the store is no directory */
};

/* A backend's table, from its functions PREFIX_open ... PREFIX_forget (one place that names
 * every member, so a member added to the struct is added to every backend alike). */
#define GM_IDEM_OPS(prefix, label, dirfn)                                                        \
	{                                                                                        \
		.name = (label), .open = prefix##_open, .close = prefix##_close,                 \
		.begin = prefix##_begin, .finish = prefix##_finish, .cleanup = prefix##_cleanup, \
		.list = prefix##_list, .forget = prefix##_forget, .dir = (dirfn)                 \
	}

extern const struct gm_idem_ops gm_idem_file_ops;   /* idem_file.c */
extern const struct gm_idem_ops gm_idem_dynamo_ops; /* idem_dynamo.c */

/* What every backend shares; each keeps the rest in its own struct behind be (struct
 * fstore in idem_file.c, struct dstore in idem_dynamo.c). */
struct goman_idem {
	const struct gm_idem_ops *ops;
	void *be;
	int64_t ttl_ms, lease_ms;
	struct goman_idem_stats stats;
};

/* ---- idem_record.c: one record, below the front and both backends ---------------------- */
void gm_idem_rec_clear(struct gm_idem_rec *r);
/* record <-> JSON object (file body; DynamoDB converts this further) */
struct cJSON *gm_idem_rec_to_json(const struct gm_idem_rec *r);
int gm_idem_rec_from_json(const struct cJSON *o, struct gm_idem_rec *r);
/* fills r as a fresh INPROGRESS record owned by this process */
int gm_idem_rec_init_owner(struct gm_idem_rec *r, const char *operation, const char *key,
			   const char *payload_hash, const struct cJSON *identity, int64_t now,
			   int64_t lease_ms, int64_t ttl_ms);
enum gm_idem_verdict gm_idem_judge(const struct gm_idem_rec *old, const char *payload_hash,
				   int64_t now);
/* is the recorded owner gone? (same host and pid gone or reused) */
bool gm_idem_owner_dead(const struct gm_idem_rec *r);
/* forget's check: 0 when r may be forgotten, else -1 with *err (IdempotencyInProgress) */
int gm_idem_forget_check(const struct gm_idem_rec *r, bool force, int64_t now,
			 struct goman_err *err);

#ifdef GOMAN_UNIT_TEST
/* a DynamoDB item ({"id":{"S":..},"n":{"N":..}}) into r: 0, or -1 when it is no record */
int gm_idem_item_to_rec(const struct cJSON *item, struct gm_idem_rec *r);
#endif

#endif
