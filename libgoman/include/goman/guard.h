/*
 * goman/guard.h - breaker → rate limiter → retry around every attempt of an AWS call.
 *
 * The call path (aws.c) asks before each attempt and reports after it:
 *
 *   struct goman_guard_ticket t;  goman_guard_ticket_init(&t, deadline);   once per call
 *   loop:
 *     rc = goman_guard_before(g, &t, service, region, endpoint, &wait_ms, &err);
 *       rc 0  admitted: send now (wait_ms is 0)
 *       rc 1  not yet: ask again after wait_ms. Either MaxConcurrent is reached in this
 *             process (a slot frees when one of its attempts ends; wait_ms is a backstop),
 *             or it is reached by the user's processes together (the shared cap: no
 *             other process can say when a unit frees, so wait_ms is a short poll,
 *             $GOMAN_SHARED_CAP_POLL_MS, 20 ms ± 50 % by default), or, in adaptive mode,
 *             no send token is there yet (wait_ms: until one
 *             should be, at the current send rate, capped at the limiter's bucket_ms;
 *             nothing is reserved, so the next ask is priced at the rate of its moment)
 *       rc -1 refused: err is CircuitOpen (GOMAN_ECIRCUIT, class circuit_open,
 *             retry_after_ms = time until the next probe); the call ends with it
 *     ... sign and send, get the attempt's struct goman_err (rc OK on success) ...
 *     if (goman_guard_after(g, &t, &attempt_err, service, action, &retry_in_ms) == 1)
 *       wait retry_in_ms (re-sign!) and loop; else the call is over with attempt_err
 *
 * after() feeds the breaker (failures: 5xx, connection, timeout; throttling and client
 * errors do not count), the retry quota (standard and adaptive modes: a retry costs 5, a
 * retry after a timeout 10, a success refunds), the adaptive limiter (adaptive mode), and
 * decides with the policy (jitter, max retries or AWS_MAX_ATTEMPTS, the call's deadline;
 * eventual-consistency codes retried within their own deadline; never a sleep past it).
 * It logs [RETRY]/[CIRCUIT] lines and emits "retry" and "breaker" events.
 *
 * State: breakers, quota, send rate and each breaker's MaxConcurrent are shared by all
 * goman processes of the user via the state file (goman_guard_state_path()), unless it
 * cannot be opened (then per process, with one warning) or opts say otherwise
 * ($GOMAN_SHARED_CAPS=0 keeps only MaxConcurrent per process). A cap unit is owned by its
 * process (pid and start time) while its attempt is in flight; units of a process that
 * died holding them are taken back by the next process that finds the cap full. A guard
 * does not cross fork().
 *
 * Ownership: goman_guard_new() returns a guard freed by goman_guard_free() (NULL ok); it
 * keeps a copy of the config. Tickets are plain values owned by the caller.
 * Not thread-safe: one guard per thread (goman commands are single-threaded).
 */
#ifndef GOMAN_GUARD_H
#define GOMAN_GUARD_H
#include <stdbool.h>
#include <stdint.h>
#include "goman/error.h"
#include "goman/breaker.h"
#include "goman/retry.h"

struct goman_config;
struct goman_guard;
struct gm_guard_entry;

struct goman_guard_opts {
	const struct goman_config *config; /* NULL = defaults (goman_config_init + load) */
	const char *state_file;            /* NULL = from config / environment */
	bool no_shared_state;              /* keep everything in this process */
	bool no_shared_caps;               /* MaxConcurrent per process, the rest shared */
	uint64_t seed;                     /* jitter random source; 0 = from time and pid */
};

/* Per call, reused across its attempts. Zero it with goman_guard_ticket_init(). */
struct goman_guard_ticket {
	struct gm_guard_entry *e; /* the (service, region, endpoint) of the admitted attempt */
	struct goman_breaker_pass pass;
	bool admitted;                /* an attempt is in flight */
	int attempt;                  /* attempts admitted so far */
	int64_t started_ms;           /* first attempt (mono) */
	int64_t deadline_ms;          /* absolute mono deadline; 0 = policy deadline */
	int64_t eventual_deadline_ms; /* own deadline of eventual-consistency codes; 0 = config */
	int64_t sent_ms;              /* this attempt's admission */
	int64_t prev_delay_ms;
	int64_t quota_held; /* retry cost taken for the attempt in flight */
	int unit;           /* shared cap unit held by the attempt in flight + 1; 0 = none */
	const char *policy; /* NULL = configured policy; else a policy name */
};

struct goman_guard *goman_guard_new(const struct goman_guard_opts *opts, struct goman_err *err);
void goman_guard_free(struct goman_guard *g);

/* deadline_ms: absolute monotonic deadline of the whole call, 0 = the policy's. */
void goman_guard_ticket_init(struct goman_guard_ticket *t, int64_t deadline_ms);

int goman_guard_before(struct goman_guard *g, struct goman_guard_ticket *t, const char *service,
		       const char *region, const char *endpoint, int64_t *wait_ms,
		       struct goman_err *err);
/* Returns 1 = retry after *retry_in_ms, 0 = done (success or give up). attempt_result may
 * be adjusted: class filled if unset. */
int goman_guard_after(struct goman_guard *g, struct goman_guard_ticket *t,
		      const struct goman_err *attempt_result, const char *service,
		      const char *action, int64_t *retry_in_ms);
/* Releases an admitted attempt that was never sent (e.g. the request could not be built). */
void goman_guard_abandon(struct goman_guard *g, struct goman_guard_ticket *t);

/* Breaker state of (service, region, endpoint) as this guard sees it. */
enum goman_breaker_state goman_guard_breaker_state(struct goman_guard *g, const char *service,
						   const char *region, const char *endpoint);
/* retry quota left for (service, region, endpoint) */
int64_t goman_guard_quota(struct goman_guard *g, const char *service, const char *region,
			  const char *endpoint);
/* The settings this guard applies (its copy of opts->config, or the loaded ones). Borrowed. */
const struct goman_config *goman_guard_config(const struct goman_guard *g);
/* The state file this guard uses ("" when per process). Borrowed. */
const char *goman_guard_state_file(const struct goman_guard *g);

/* Default state file path into buf: $GOMAN_STATE_FILE, $XDG_RUNTIME_DIR/goman/shared-state,
 * $XDG_STATE_HOME/goman/shared-state, ~/.local/state/goman/shared-state. (Binaries from
 * before the shared caps used "breakers", a smaller layout: a new name, so that old and new
 * never reset each other's file.) */
int goman_guard_state_path(char *buf, size_t len);

#endif
