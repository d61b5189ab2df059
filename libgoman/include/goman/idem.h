/*
 * goman/idem.h - the idempotency store: run a side-effecting operation once per identity.
 *
 * Key = SHA-256 hex of (operation, canonical JSON of the identity fields, e.g. cluster +
 * node group). Beside it the payload hash = SHA-256 hex of the canonical JSON of all
 * parameters, so the same key asked with other parameters is a MISMATCH. Canonical JSON:
 * object keys sorted (byte order) at every depth, compact (cJSON_PrintUnformatted).
 *
 * A record is INPROGRESS (owner pid, host, start time, its own lease expiry, the
 * ClientToken), COMPLETED (the result JSON) or FAILED (the error), with the payload hash
 * and an expiry (TTL, default 2 h). Expired records count as absent (and are removed on
 * use and by goman_idem_cleanup()).
 *
 * begin → NEW        the caller owns it now. A ClientToken (random, 32 hex chars) is in
 *                    t->client_token and already saved in the store, so a crash after begin
 *                    keeps it. If a dead owner's INPROGRESS (same host and pid gone, or its
 *                    lease expired) or a FAILED record with the same parameters was found,
 *                    it was taken over, its stored ClientToken is reused and t->taken_over
 *                    is true (send the same ClientToken again: EC2 then answers with the
 *                    instances the crashed run launched instead of launching more).
 *       → IN_PROGRESS someone alive holds it; t->owner_* say who.
 *       → COMPLETED   t->result is the stored result (a hit).
 *       → MISMATCH    same key, other parameters (a clear error in *err, naming the operation).
 * then complete(result) or fail(error) by the owner (checked: an owner that lost the
 * record to a takeover gets GOMAN_ECONFLICT).
 *
 * Backends: file (default) under $GOMAN_IDEMPOTENCY_DIR, else
 * $XDG_STATE_HOME/goman/idempotency, else ~/.local/state/goman/idempotency: one append-only
 * log, records.jsonl, a checksummed JSON line per change (the latest valid line of a key is
 * its record), changed under a flock(2) on the directory's ".lock" (released by the kernel
 * when a holder dies, so a kill -9 never leaves it locked): of many racing processes exactly
 * one appends the INPROGRESS line. begin's line is fdatasync'd before it returns (unless
 * no_fsync), so a saved ClientToken survives a power cut; compacted when dead lines
 * outweigh live ones, and by cleanup. jq reads it as is. The checksum guards against torn
 * writes only: anyone who can write the directory could forge a record, so the directory
 * (and those above it) must be the user's or root's and not group/world-writable, else
 * goman_idem_open() fails with code "UnsafeDirectory".
 * DynamoDB ($GOMAN_IDEMPOTENCY_TABLE=name, or opts.table): conditional PutItem, expiry
 * checked in the condition, complete/fail conditional on the owner. Partition key "id" (S).
 * Create the table with goman_idem_dynamo_create_table() or:
 *   aws dynamodb create-table --table-name NAME --billing-mode PAY_PER_REQUEST \
 *     --attribute-definitions AttributeName=id,AttributeType=S \
 *     --key-schema AttributeName=id,KeyType=HASH
 *
 * Events: {"event":"idempotency","operation":"RunInstances","result":"hit|miss|mismatch|
 * in_progress","key":"...","taken_over":true} via goman_event(); [IDEMPOTENCY] log lines.
 *
 * Ownership: goman_idem_open() → goman_idem_close() (NULL ok). cJSON arguments are
 * borrowed. A struct goman_idem_ticket is filled by begin and owns t->result:
 * goman_idem_ticket_clear() frees it (a zeroed ticket is valid to clear).
 * Errors: functions return -1 and fill *err (may be NULL) when the store itself fails
 * (GOMAN_EIO, GOMAN_ESERVICE, ...). begin returns the enum goman_idem_state (>= 0) when the
 * store answered; for MISMATCH and IN_PROGRESS it also fills *err with GOMAN_ECONFLICT
 * (code "IdempotencyMismatch" / "IdempotencyInProgress") so a caller can report it as is.
 * A handle is for one thread (processes may share a store freely).
 */
#ifndef GOMAN_IDEM_H
#define GOMAN_IDEM_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "goman/error.h"

struct cJSON;
struct goman_aws;
struct goman_idem;

#define GOMAN_IDEM_DEFAULT_TTL_MS (2LL * 3600 * 1000)
#define GOMAN_IDEM_DEFAULT_LEASE_MS (15LL * 60 * 1000)

struct goman_idem_opts {
	const char *dir;       /* file backend directory; NULL = env/XDG as above */
	const char *table;     /* DynamoDB table; NULL = $GOMAN_IDEMPOTENCY_TABLE; "" = file */
	struct goman_aws *aws; /* DynamoDB: borrowed client; NULL = one is made (and freed) */
	int64_t ttl_ms;        /* record expiry; 0 = GOMAN_IDEM_DEFAULT_TTL_MS (profiles set it) */
	int64_t lease_ms;      /* INPROGRESS expiry; 0 = GOMAN_IDEM_DEFAULT_LEASE_MS */
	bool no_fsync;         /* file backend: do not fdatasync begin's line (throwaway dirs
				   in tests); also $GOMAN_IDEMPOTENCY_FSYNC=0 */
};

enum goman_idem_state {
	GOMAN_IDEM_NEW = 0,
	GOMAN_IDEM_IN_PROGRESS = 1,
	GOMAN_IDEM_COMPLETED = 2,
	GOMAN_IDEM_MISMATCH = 3,
};

struct goman_idem_ticket {
	enum goman_idem_state state;
	char operation[64];
	char key[65];          /* SHA-256 hex */
	char payload_hash[65]; /* ours */
	char client_token[65]; /* NEW: the token to send (fresh or reused); else the stored one */
	char owner_id[33];     /* NEW: our ownership nonce (complete/fail check it) */
	bool taken_over;       /* NEW: a dead/expired/failed record was taken over */
	/* IN_PROGRESS (and NEW after a takeover: the previous owner) */
	long owner_pid;
	char owner_host[256];
	int64_t owner_started_ms;
	int64_t lease_expires_ms;
	int64_t expires_ms;   /* record expiry */
	struct cJSON *result; /* COMPLETED: the stored result (owned; ticket_clear frees) */
};

struct goman_idem_stats {
	unsigned long hit, miss, mismatch, in_progress, taken_over, cleaned;
};

/* Opens the store (file dir created 0700 when missing). NULL on failure (*err filled). */
struct goman_idem *goman_idem_open(const struct goman_idem_opts *opts, struct goman_err *err);
void goman_idem_close(struct goman_idem *s);
/* "file" or "dynamodb" */
const char *goman_idem_backend(const struct goman_idem *s);
/* file backend: the directory in use (borrowed); NULL for DynamoDB */
const char *goman_idem_dir(const struct goman_idem *s);

/* Key for (operation, identity) into out (65 bytes). 0, or -1 on bad input / no memory. */
int goman_idem_key(const char *operation, const struct cJSON *identity, char out[65]);
/* Canonical JSON text (sorted keys, compact), malloc'd (caller frees); NULL on no memory. */
char *goman_idem_canonical(const struct cJSON *v);

/* See above. identity and params are borrowed; params NULL = identity. */
int goman_idem_begin(struct goman_idem *s, const char *operation, const struct cJSON *identity,
		     const struct cJSON *params, struct goman_idem_ticket *t,
		     struct goman_err *err);
/* Owner stores the result (borrowed) and the record becomes COMPLETED for ttl. 0 or -1. */
int goman_idem_complete(struct goman_idem *s, const struct goman_idem_ticket *t,
			const struct cJSON *result, struct goman_err *err);
/* Owner records a failure (why may be NULL): a re-run takes it over, reusing the token. */
int goman_idem_fail(struct goman_idem *s, const struct goman_idem_ticket *t,
		    const struct goman_err *why, struct goman_err *err);
/* Removes expired records (and dead owners' expired leases). *removed may be NULL. */
int goman_idem_cleanup(struct goman_idem *s, size_t *removed, struct goman_err *err);
void goman_idem_ticket_clear(struct goman_idem_ticket *t);
/* Calls fn with each record as a JSON object (id, operation, status, payload_hash,
 * client_token, owner, owner_pid, owner_pid_start, owner_host, started_at, lease_expires,
 * expires_at, identity, result, error; fn borrows it), expired ones only when all. fn
 * returns nonzero to stop early. The file backend calls fn after releasing its lock, so a
 * slow reader of the output holds up no other goman. 0, or -1 with *err. */
typedef int (*goman_idem_list_fn)(const struct cJSON *rec, void *ctx);
int goman_idem_list(struct goman_idem *s, bool all, goman_idem_list_fn fn, void *ctx,
		    struct goman_err *err);
/* Removes the record of key (64 hex, as list shows it), so the next begin starts afresh
 * with a new ClientToken. 1 removed, 0 none (or already expired), -1 error. An INPROGRESS
 * record whose owner is alive and whose lease has not expired is refused (GOMAN_ECONFLICT,
 * "IdempotencyInProgress") unless force: that run may be about to send its ClientToken. */
int goman_idem_forget(struct goman_idem *s, const char *key, bool force, struct goman_err *err);
void goman_idem_get_stats(const struct goman_idem *s, struct goman_idem_stats *out);

/* DynamoDB: creates the table (PAY_PER_REQUEST, hash key id:S). 0 or -1; an existing table
 * is fine (0). */
int goman_idem_dynamo_create_table(struct goman_aws *aws, const char *table, struct goman_err *err);

#endif
