/*
 * goman/breaker.h - a circuit breaker whose whole state is one 64-bit word, changed only by
 * compare-and-swap. The word can live in process memory or in the shared state file (see
 * guard.h): a process killed at any moment leaves either the old or the new word, never a
 * half-written one, and there is no lock to leave held.
 *
 * closed --FailureThreshold consecutive failures--> open --RecoveryTimeout--> half-open
 * half-open admits at most `probes` concurrent probe attempts; SuccessThreshold probe
 * successes close it, one probe failure re-opens it. A probe whose process died is given
 * up after recovery_ms (its slot is freed), so half-open never wedges.
 * Failures are server faults, timeouts and connection failures; throttling and client
 * errors are neutral (goman_breaker_counts()), except that a half-open probe answered
 * with any 4xx counts as a success (the service is up; guard.c decides this). A since_ms
 * later than now (a damaged word, a clock restarted by a reboot) is read as now.
 *
 * Ownership: plain values, nothing to free. Errors: goman_breaker_admit() says no with the
 * time until the next probe.
 */
#ifndef GOMAN_BREAKER_H
#define GOMAN_BREAKER_H
#include <stdbool.h>
#include <stdint.h>
#include "goman/error.h"

enum goman_breaker_state { GOMAN_BREAKER_CLOSED = 0, GOMAN_BREAKER_OPEN, GOMAN_BREAKER_HALF_OPEN };
const char *goman_breaker_state_name(enum goman_breaker_state s);

struct goman_breaker_params {
	int64_t failure_threshold; /* consecutive failures that open it */
	int64_t recovery_ms;       /* open → half-open */
	int64_t max_concurrent;    /* in-flight attempts, per user (guard.c) */
	int64_t success_threshold; /* probe successes that close it */
	int64_t probes;            /* concurrent probes admitted while half-open */
};

/* the one word: its fields, unpacked */
struct goman_breaker_view {
	enum goman_breaker_state state;
	unsigned failures;  /* consecutive, while closed */
	unsigned probes;    /* in flight, while half-open */
	unsigned successes; /* probe successes, while half-open */
	unsigned gen;       /* bumped on each entry to half-open */
	int64_t since_ms;   /* open: opened at; half-open: entered at (mono ms) */
};
void goman_breaker_unpack(uint64_t w, struct goman_breaker_view *v);

/* What an admitted attempt must hand back to goman_breaker_record(). */
struct goman_breaker_pass {
	bool probe;
	unsigned gen;
};

/* A state change, for logs and events (from == to: none). */
struct goman_breaker_change {
	enum goman_breaker_state from, to;
};

/* Admits an attempt (true, *pass filled) or refuses it (false, *retry_in_ms = time until
 * the next probe may go). May move open → half-open (reported in *chg). */
bool goman_breaker_admit(_Atomic uint64_t *word, const struct goman_breaker_params *p,
			 int64_t now_ms, struct goman_breaker_pass *pass, int64_t *retry_in_ms,
			 struct goman_breaker_change *chg);

enum goman_breaker_outcome { GOMAN_BREAKER_SUCCESS, GOMAN_BREAKER_FAILURE, GOMAN_BREAKER_NEUTRAL };
/* What an attempt's result means to a breaker: failure for transient (5xx, connection) and
 * timeout; neutral for throttling, client, auth and circuit_open; success for none. */
enum goman_breaker_outcome goman_breaker_counts(enum goman_class cls);
/* Feeds one attempt's outcome. */
void goman_breaker_record(_Atomic uint64_t *word, const struct goman_breaker_params *p,
			  const struct goman_breaker_pass *pass, enum goman_breaker_outcome o,
			  int64_t now_ms, struct goman_breaker_change *chg);

#endif
