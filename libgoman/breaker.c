/*
 * breaker.c - the circuit breaker as one 64-bit word changed by compare-and-swap (see
 * goman/breaker.h). Lock-free on purpose: the word may sit in a file mapped by several
 * processes, and a process killed between two instructions must leave a valid state and
 * no lock behind. Owns no memory; reports state changes to the caller (guard.c logs them).
 *
 * Layout of the word (low bits first):
 *   state 2 | failures 7 | probes 5 | successes 5 | gen 5 | since_ms 40
 */
#include <stdatomic.h>
#include "goman/breaker.h"

#define F_MAX 127u
#define P_MAX 31u
#define G_MASK 31u
#define T_MASK ((UINT64_C(1) << 40) - 1)

static const char *const state_names[] = {"closed", "open", "half-open"};

const char *goman_breaker_state_name(enum goman_breaker_state s)
{
	return (unsigned)s < 3 ? state_names[s] : "unknown";
}

void goman_breaker_unpack(uint64_t w, struct goman_breaker_view *v)
{
	unsigned st = (unsigned)(w & 3);
	/* state 3 cannot be written by us; read it as closed so a damaged word heals */
	v->state = st == 3 ? GOMAN_BREAKER_CLOSED : (enum goman_breaker_state)st;
	v->failures = (unsigned)(w >> 2) & F_MAX;
	v->probes = (unsigned)(w >> 9) & P_MAX;
	v->successes = (unsigned)(w >> 14) & P_MAX;
	v->gen = (unsigned)(w >> 19) & G_MASK;
	v->since_ms = (int64_t)((w >> 24) & T_MASK);
}

static uint64_t pack(const struct goman_breaker_view *v)
{
	uint64_t t = v->since_ms < 0 ? 0 : (uint64_t)v->since_ms & T_MASK;
	return (uint64_t)v->state | (uint64_t)(v->failures & F_MAX) << 2 |
	       (uint64_t)(v->probes & P_MAX) << 9 | (uint64_t)(v->successes & P_MAX) << 14 |
	       (uint64_t)(v->gen & G_MASK) << 19 | t << 24;
}

static unsigned clampu(int64_t v, unsigned lo, unsigned hi)
{
	return v < (int64_t)lo ? lo : v > (int64_t)hi ? hi : (unsigned)v;
}

/* recovery windows from configuration: never negative, never near overflow */
static int64_t clamp_ms(int64_t ms)
{
	return ms < 0 ? 0 : ms > (int64_t)T_MASK ? (int64_t)T_MASK : ms;
}

bool goman_breaker_admit(_Atomic uint64_t *word, const struct goman_breaker_params *p,
			 int64_t now_ms, struct goman_breaker_pass *pass, int64_t *retry_in_ms,
			 struct goman_breaker_change *chg)
{
	unsigned cap = clampu(p->probes, 1, P_MAX);
	int64_t now = now_ms & (int64_t)T_MASK;
	chg->from = chg->to = GOMAN_BREAKER_CLOSED;
	uint64_t w = atomic_load_explicit(word, memory_order_acquire);
	for (;;) {
		struct goman_breaker_view v;
		goman_breaker_unpack(w, &v);
		chg->from = chg->to = v.state;
		if (v.state == GOMAN_BREAKER_CLOSED) {
			pass->probe = false;
			pass->gen = v.gen;
			return true; /* the hot path: no write */
		}
		/* a time later than now is now: a damaged word, or one written before a reboot
		 * restarted the monotonic clock, must not hold the breaker for years. Written
		 * back, so the recovery window runs from here. */
		bool healed = v.since_ms > now;
		if (healed)
			v.since_ms = now;
		int64_t due = v.since_ms + clamp_ms(p->recovery_ms);
		if (v.state == GOMAN_BREAKER_OPEN) {
			if (now < due) {
				if (healed && !atomic_compare_exchange_weak_explicit(
						      word, &w, pack(&v), memory_order_acq_rel,
						      memory_order_acquire))
					continue;
				*retry_in_ms = due - now;
				return false;
			}
			v.state = GOMAN_BREAKER_HALF_OPEN;
			v.probes = 1;
			v.successes = 0;
			v.gen = (v.gen + 1) & G_MASK;
			v.since_ms = now;
		} else if (v.probes < cap) {
			v.probes++;
		} else if (now >= due) {
			/* the probes in flight have had a whole recovery window: their owners are
			 * dead or wedged. A new generation ignores their late answers. */
			v.probes = 1;
			v.gen = (v.gen + 1) & G_MASK;
			v.since_ms = now;
		} else {
			if (healed && !atomic_compare_exchange_weak_explicit(word, &w, pack(&v),
									     memory_order_acq_rel,
									     memory_order_acquire))
				continue;
			*retry_in_ms = due - now;
			return false;
		}
		if (atomic_compare_exchange_weak_explicit(word, &w, pack(&v), memory_order_acq_rel,
							  memory_order_acquire)) {
			chg->to = v.state;
			pass->probe = true;
			pass->gen = v.gen;
			return true;
		}
	}
}

enum goman_breaker_outcome goman_breaker_counts(enum goman_class cls)
{
	switch (cls) {
	case GOMAN_CLASS_NONE: return GOMAN_BREAKER_SUCCESS;
	case GOMAN_CLASS_TRANSIENT:
	case GOMAN_CLASS_TIMEOUT: return GOMAN_BREAKER_FAILURE;
	default:
		/* throttling goes to the rate limiter and the quota; client errors prove the
		 * service answered */
		return GOMAN_BREAKER_NEUTRAL;
	}
}

void goman_breaker_record(_Atomic uint64_t *word, const struct goman_breaker_params *p,
			  const struct goman_breaker_pass *pass, enum goman_breaker_outcome o,
			  int64_t now_ms, struct goman_breaker_change *chg)
{
	uint64_t w = atomic_load_explicit(word, memory_order_acquire);
	for (;;) {
		struct goman_breaker_view v;
		goman_breaker_unpack(w, &v);
		chg->from = chg->to = v.state;
		bool my_probe =
			pass->probe && v.state == GOMAN_BREAKER_HALF_OPEN && pass->gen == v.gen;
		if (v.state == GOMAN_BREAKER_OPEN)
			return; /* late answers of the closed period change nothing */
		if (v.state == GOMAN_BREAKER_HALF_OPEN && !my_probe)
			return; /* not a probe of this half-open period */
		if (o == GOMAN_BREAKER_SUCCESS) {
			if (v.state == GOMAN_BREAKER_CLOSED) {
				if (v.failures == 0)
					return; /* hot path: no write */
				v.failures = 0;
			} else {
				if (v.probes)
					v.probes--;
				v.successes++;
				if ((int64_t)v.successes >= p->success_threshold) {
					v.state = GOMAN_BREAKER_CLOSED;
					v.failures = v.probes = v.successes = 0;
				}
			}
		} else if (o == GOMAN_BREAKER_FAILURE) {
			if (v.state == GOMAN_BREAKER_CLOSED) {
				if (pass->probe)
					return;
				if (v.failures < F_MAX)
					v.failures++;
				if ((int64_t)v.failures >= p->failure_threshold) {
					v.state = GOMAN_BREAKER_OPEN;
					v.since_ms = now_ms;
				}
			} else {
				v.state = GOMAN_BREAKER_OPEN;
				v.probes = v.successes = 0;
				v.since_ms = now_ms;
			}
		} else {
			if (v.state == GOMAN_BREAKER_CLOSED || !v.probes)
				return;
			v.probes--;
		}
		if (atomic_compare_exchange_weak_explicit(word, &w, pack(&v), memory_order_acq_rel,
							  memory_order_acquire)) {
			chg->to = v.state;
			return;
		}
	}
}
