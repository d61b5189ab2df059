/*
 * idem_int.h - what idem.c shares with its backends (idem_file.c, idem_dynamo.c). gm_idem_
 * names only; nothing here leaves the library.
 *
 * A struct gm_idem_rec is one stored record. It owns result/error/identity (cJSON, freed by
 * gm_idem_rec_clear()); the strings are fixed buffers.
 */
#ifndef GOMAN_IDEM_INT_H
#define GOMAN_IDEM_INT_H
#include <stdbool.h>
#include <stdint.h>
#include "goman/error.h"
#include "goman/idem.h"

struct cJSON;
struct gm_idem_index;

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

enum gm_idem_kind { GM_IDEM_FILE, GM_IDEM_DYNAMO };

struct goman_idem {
	enum gm_idem_kind kind;
	int64_t ttl_ms, lease_ms;
	bool fsync;
	struct goman_idem_stats stats;
	/* file (idem_file.c): the store is one append-only log, <dir>/records.jsonl */
	char *dir;
	int dirfd;
	int lockfd;
	int logfd;
	long long log_off; /* bytes of the log read into the index */
	bool log_torn;     /* the log ends in a torn line: the next append starts with \n */
	struct gm_idem_index *index; /* key -> the latest valid line for it */
	unsigned long long next_seq;
	/* the record this handle last stored as owner and the index sequence of its line:
	 * complete/fail trust it while that line is still the key's latest, saving a parse.
	 * held.id[0] == 0 when none. */
	struct gm_idem_rec held;
	unsigned long long held_seq;
	/* dynamodb */
	char *table;
	struct goman_aws *aws;
	bool own_aws;
};

void gm_idem_rec_clear(struct gm_idem_rec *r);
/* record <-> JSON object (file body; DynamoDB converts this further) */
struct cJSON *gm_idem_rec_to_json(const struct gm_idem_rec *r);
int gm_idem_rec_from_json(const struct cJSON *o, struct gm_idem_rec *r);
/* fills r as a fresh INPROGRESS record owned by this process */
int gm_idem_rec_init_owner(struct goman_idem *s, struct gm_idem_rec *r, const char *operation,
			   const char *key, const char *payload_hash, const struct cJSON *identity,
			   int64_t now);
enum gm_idem_verdict gm_idem_judge(const struct gm_idem_rec *old, const char *payload_hash,
				   int64_t now);
/* is the recorded owner gone? (same host and pid gone or reused) */
bool gm_idem_owner_dead(const struct gm_idem_rec *r);
/* forget's check: 0 when r may be forgotten, else -1 with *err (IdempotencyInProgress) */
int gm_idem_forget_check(const struct gm_idem_rec *r, bool force, int64_t now,
			 struct goman_err *err);
int gm_idem_random_hex(char *out, size_t nbytes); /* out gets 2*nbytes hex + NUL */
long gm_idem_pid(void);                           /* getpid(), cached (reset in forked children) */

/* backends: fill t (state NEW with token, or an answer), return 0 or -1 */
int gm_idem_file_open(struct goman_idem *s, const char *dir, struct goman_err *err);
void gm_idem_file_close(struct goman_idem *s);
int gm_idem_file_begin(struct goman_idem *s, struct gm_idem_rec *mine, struct gm_idem_rec *found,
		       enum gm_idem_verdict *verdict, struct goman_err *err);
int gm_idem_file_finish(struct goman_idem *s, const struct goman_idem_ticket *t, const char *status,
			const struct cJSON *result, const struct cJSON *error,
			struct goman_err *err);
int gm_idem_file_cleanup(struct goman_idem *s, size_t *removed, struct goman_err *err);
int gm_idem_file_list(struct goman_idem *s, bool all, goman_idem_list_fn fn, void *ctx,
		      struct goman_err *err);
int gm_idem_file_forget(struct goman_idem *s, const char *key, bool force, struct goman_err *err);

int gm_idem_dynamo_open(struct goman_idem *s, const char *table, struct goman_aws *aws,
			struct goman_err *err);
void gm_idem_dynamo_close(struct goman_idem *s);
int gm_idem_dynamo_begin(struct goman_idem *s, struct gm_idem_rec *mine, struct gm_idem_rec *found,
			 enum gm_idem_verdict *verdict, struct goman_err *err);
int gm_idem_dynamo_finish(struct goman_idem *s, const struct goman_idem_ticket *t,
			  const char *status, const struct cJSON *result, const struct cJSON *error,
			  struct goman_err *err);
int gm_idem_dynamo_cleanup(struct goman_idem *s, size_t *removed, struct goman_err *err);
int gm_idem_dynamo_list(struct goman_idem *s, bool all, goman_idem_list_fn fn, void *ctx,
			struct goman_err *err);
int gm_idem_dynamo_forget(struct goman_idem *s, const char *key, bool force, struct goman_err *err);
#ifdef GOMAN_UNIT_TEST
/* a DynamoDB item ({"id":{"S":..},"n":{"N":..}}) into r: 0, or -1 when it is no record */
int gm_idem_item_to_rec(const struct cJSON *item, struct gm_idem_rec *r);
#endif

#endif
