/*
 * goman/batch.h - batched operations on many instances, with bisection of refused batches.
 *
 * Two layers:
 * - The engine (struct goman_batch) is pure: it cuts the added instance IDs into batches of
 *   batch_size (at most 1000, the EC2 limit of IDs per call), keeps up to `concurrency`
 *   calls in flight, and hands each call to an executor function. When a call is refused
 *   because of one bad ID (goman_batch_bisectable(): InvalidInstanceID.NotFound/.Malformed,
 *   IncorrectInstanceState, OperationNotPermitted, ...), the call's IDs are split in two
 *   halves that are tried again, until every bad ID stands alone: each bad ID gets its own
 *   error and every good ID gets its action exactly once. Other failures (throttling after
 *   the retries, auth, breaker open, timeouts) are not about one ID: every ID of that call
 *   gets the error, unbisected. Each instance is reported once through on_item.
 *   The engine knows no event loop: an executor may finish a call at once (unit tests) or
 *   later from a loop callback (EC2); the engine never recurses into the executor deeper
 *   than one level.
 * - The EC2 executor (struct goman_batch_ec2) makes the calls of a verb on a goman_aws
 *   client: StartInstances, StopInstances (Force, Hibernate), RebootInstances,
 *   TerminateInstances, CreateTags, DescribeInstances (via goman/ec2.h). Terminate with
 *   force lifts termination protection (ModifyInstanceAttribute DisableApiTermination=false)
 *   of an instance isolated with OperationNotPermitted, then terminates it; without force
 *   that instance's error names --force.
 *
 * Ownership: goman_batch_new() → goman_batch_free() (NULL ok); IDs given to
 * goman_batch_add() are copied; item_ud pointers are the caller's (never freed here).
 * A struct goman_batch_call is the engine's: the executor borrows it from the exec call
 * until it calls goman_batch_call_done(), after which it must not touch it.
 * Items handed to on_item are borrowed for the callback's duration.
 * goman_batch_ec2_new() → goman_batch_ec2_free() (NULL ok); tags are copied.
 * goman_batch_record() and goman_batch_cluster_records() return new cJSON the caller deletes.
 * Errors: -1 with struct goman_err filled; per-instance failures arrive in on_item.
 */
#ifndef GOMAN_BATCH_H
#define GOMAN_BATCH_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "goman/error.h"
#include "goman/kv.h"

struct cJSON;
struct goman_aws;
struct goman_batch;

#define GOMAN_BATCH_MAX_IDS 1000 /* EC2: instance IDs per call */

enum goman_batch_verb {
	GOMAN_BATCH_DESCRIBE = 0,
	GOMAN_BATCH_START,
	GOMAN_BATCH_STOP,
	GOMAN_BATCH_REBOOT,
	GOMAN_BATCH_TERMINATE,
	GOMAN_BATCH_TAG,
	GOMAN_BATCH_WAIT, /* describe (bad IDs isolated), then poll until the target state */
};
/* "describe", "start", ...; parse returns -1 when unknown */
const char *goman_batch_verb_name(enum goman_batch_verb v);
int goman_batch_verb_parse(const char *s, enum goman_batch_verb *out);

/* One API call the engine wants made. Read-only for the executor. */
struct goman_batch_call {
	const char *const *ids; /* n IDs (borrowed from the engine) */
	size_t n;
	int batch;             /* 1-based number of the batch these IDs were cut into */
	int depth;             /* 0 for a whole batch, +1 per bisection */
	struct goman_batch *b; /* the engine (internal) */
	void *priv;            /* the engine's (internal) */
};

/* Starts the call; finishes it (now or later) with goman_batch_call_done(). Returning -1
 * (err filled) means it could not even start: the engine treats it as done with err. */
typedef int (*goman_batch_exec_fn)(struct goman_batch_call *call, void *ud, struct goman_err *err);

/* One instance's final result. */
struct goman_batch_item {
	const char *id;
	void *ud; /* as given to goman_batch_add() */
	bool ok;
	struct goman_err err;    /* rc OK when ok */
	char previous_state[24]; /* "" when the call does not say */
	char state[24];
	int batch;  /* 1-based batch number */
	int calls;  /* calls that included this ID (1 without bisection) */
	int64_t ms; /* from its batch's first call to its final answer */
};
typedef void (*goman_batch_item_fn)(const struct goman_batch_item *it, void *ud);

struct goman_batch_opts {
	size_t batch_size;  /* 1..1000; 0 = 10 */
	size_t concurrency; /* calls in flight; 0 = 1 */
	const char *action; /* for log lines ("stop"); NULL = "call" */
	goman_batch_exec_fn exec;
	void *exec_ud;
	goman_batch_item_fn on_item;
	void *item_ud;
};

struct goman_batch_stats {
	int batches;    /* batches cut */
	int calls;      /* calls handed to the executor, bisection included */
	int bisections; /* refused calls that were split */
	int isolated;   /* IDs that failed alone (the bad IDs) */
	int ok, failed; /* items */
};

struct goman_batch *goman_batch_new(const struct goman_batch_opts *o, struct goman_err *err);
void goman_batch_free(struct goman_batch *b);
/* Adds an instance before goman_batch_start(). 0 or -1 (no memory). */
int goman_batch_add(struct goman_batch *b, const char *id, void *item_ud, struct goman_err *err);
/* Cuts the batches and starts calls up to the concurrency. Calls finished at once by the
 * executor are processed before this returns. 0 or -1 (no memory). */
int goman_batch_start(struct goman_batch *b, struct goman_err *err);
/* True when every item has been reported. */
bool goman_batch_finished(const struct goman_batch *b);
void goman_batch_stats(const struct goman_batch *b, struct goman_batch_stats *st);

/* Executor side: states reported by the call for its i-th ID (either may be NULL). */
void goman_batch_call_state(struct goman_batch_call *c, size_t i, const char *previous_state,
			    const char *state);
/* Executor side: the call is over (err NULL or rc OK = accepted for every ID). The call
 * is freed; new calls may be started from inside this function. */
void goman_batch_call_done(struct goman_batch_call *c, const struct goman_err *err);

/* True when a refused call is worth bisecting: the refusal names one ID's problem. */
bool goman_batch_bisectable(const struct goman_err *e);

/* The output record of one instance (input borrowed; NULL = {}): a copy of input whose
 * "batch" (this command's key; an earlier goman-batch's result) is replaced by
 *   {"action","previous_state","state","batch","ms","ok":true}   (empty states left out)
 * and a top-level "ok" (true unless the input already said false). On failure (e set,
 * rc not OK): goman_jsonl_error_record(copy, "batch", e, line) with action, batch and ms
 * added under "batch". Returns a new object the caller deletes, or NULL (no memory). */
struct cJSON *goman_batch_record(const struct cJSON *input, const char *action,
				 const char *previous_state, const char *state, int batch,
				 int64_t ms, const struct goman_err *e, long line);

/* ---- the EC2 executor ------------------------------------------------------------------ */

struct goman_batch_ec2;

struct goman_batch_ec2_opts {
	enum goman_batch_verb verb;   /* DESCRIBE and WAIT both describe */
	bool force;                   /* stop: Force=true; terminate: lift protection */
	bool hibernate;               /* stop: Hibernate=true */
	const struct goman_kvs *tags; /* tag: key → value (copied) */
};

struct goman_batch_ec2 *goman_batch_ec2_new(struct goman_aws *aws,
					    const struct goman_batch_ec2_opts *o,
					    struct goman_err *err);
void goman_batch_ec2_free(struct goman_batch_ec2 *x);
/* The goman_batch_exec_fn for the verb; ud is the struct goman_batch_ec2. Calls are queued
 * on the client's loop: drive it with goman_http_run(goman_aws_http(aws), ...). */
int goman_batch_ec2_exec(struct goman_batch_call *call, void *ud, struct goman_err *err);

/* Blocking: the instances tagged goman:cluster=cluster in state pending, running, stopping
 * or stopped, and shutting-down too with shutting_down (one paginated DescribeInstances), as
 * input records {"cluster","name","role","index","instance_id","state","private_ip",...}
 * (name, role, index when tagged) in a new cJSON array the caller deletes; NULL with err on
 * failure. */
struct cJSON *goman_batch_cluster_records(struct goman_aws *aws, const char *cluster,
					  bool shutting_down, struct goman_err *err);
/* Blocking: one record per cluster that has instances in those states (every instance with
 * a goman:cluster tag, one paginated DescribeInstances), sorted by name:
 * {"cluster","instances","running","states":{"<state>":N,...}}, in a new cJSON array the
 * caller deletes. NULL with err when the listing failed: no count is then known (the caller
 * says "unknown", never 0). */
struct cJSON *goman_batch_clusters(struct goman_aws *aws, bool shutting_down,
				   struct goman_err *err);

#endif
