/*
 * shared_state_int.h - the per-user state file shared by goman processes (library-internal).
 *
 * A small file mapped MAP_SHARED by every goman process of one user: a header and a fixed
 * table of slots, one per (service, region, endpoint). A slot holds the breaker word and the
 * retry quota (changed only by compare-and-swap: no lock to leave held) and the adaptive
 * limiter (a few doubles, changed under an fcntl open-file-description lock on the slot's
 * byte, which the kernel drops when the holder dies). Readers validate what they read, so a
 * writer killed mid-update leaves a state that is repaired, never one that wedges.
 *
 * A slot also holds the shared MaxConcurrent: one word per unit of the cap, 0 when free,
 * else its owner (pid << 32 | the low 32 bits of the process's start time in clock ticks,
 * so a pid used again is another owner). A unit is taken and given back by compare-and-swap
 * (no lock on the path); one whose owner is dead (gone, a zombie, or its pid now another
 * process) is taken back by whoever finds the cap full (gm_slot_reap()).
 *
 * Ownership: gm_state_open() returns a handle freed by gm_state_close() (NULL ok). Slots are
 * borrowed pointers into the mapping, valid until the close.
 */
#ifndef GOMAN_SHARED_STATE_INT_H
#define GOMAN_SHARED_STATE_INT_H
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include "goman/error.h"
#include "goman/retry.h"

#define GM_STATE_SLOTS 128
#define GM_STATE_NAME 104
#define GM_STATE_UNITS 96 /* the largest MaxConcurrent held in the file; more is capped */

struct gm_slot {
	_Atomic uint64_t key;     /* FNV-1a of the name, 0 = free */
	_Atomic uint64_t breaker; /* goman/breaker.h word */
	struct goman_quota quota;
	char name[GM_STATE_NAME];       /* "service|region|endpoint", informative */
	struct goman_adaptive adaptive; /* under gm_state_lock() */
	/* the process that found the cap full and waits its turn (owner word, 0 = none), and
	 * when it last said so (mono ms): a hint, so a process whose own calls keep taking the
	 * units it frees leaves one to it */
	_Atomic uint64_t waiter;
	_Atomic int64_t waiter_ms;
	char pad[256 - 8 - 8 - 8 - GM_STATE_NAME - sizeof(struct goman_adaptive) - 16];
	_Atomic uint64_t unit[GM_STATE_UNITS]; /* owner word, 0 = free */
};

struct gm_state;

struct gm_state *gm_state_open(const char *path, struct goman_err *err);
void gm_state_close(struct gm_state *s);
/* before touching slots: a file cut short (or re-made) since the last look turns the table
 * into this process's own (slot pointers stay valid), with a warning; NULL ok */
void gm_state_check(struct gm_state *s);
bool gm_state_detached(const struct gm_state *s);
/* finds or claims the slot for name; NULL when the table is full */
struct gm_slot *gm_state_slot(struct gm_state *s, const char *name);
/* exclusive lock on the slot's adaptive part (blocks); -1 on error */
int gm_state_lock(struct gm_state *s, struct gm_slot *slot);
void gm_state_unlock(struct gm_state *s, struct gm_slot *slot);
const char *gm_state_path(const struct gm_state *s);
/* this process's owner word (see above), fixed at gm_state_open() */
uint64_t gm_state_owner(const struct gm_state *s);
/* Takes a free unit among the slot's first cap (at most GM_STATE_UNITS), looking first at
 * `from`: its index, or -1 when all are held. */
int gm_slot_take(struct gm_slot *sl, int cap, uint64_t owner, unsigned from);
/* Gives unit back (a no-op when it is no longer owner's: taken back, or the file reset). */
void gm_slot_give(struct gm_slot *sl, int unit, uint64_t owner);
/* Fairness between processes. owner found the cap full at now_ms: it becomes the waiter
 * unless another one said so within fresh_ms. */
void gm_slot_wait(struct gm_slot *sl, uint64_t owner, int64_t now_ms, int64_t fresh_ms);
/* owner holds a unit it may keep: false when another process waits its turn (said so
 * within fresh_ms) and no other unit among the first cap is free, so the unit should be
 * given back for it; clears owner's own waiting. */
bool gm_slot_may_keep(struct gm_slot *sl, int cap, uint64_t owner, int64_t now_ms,
		      int64_t fresh_ms);
/* Frees the units among the first cap whose owner is dead; returns how many. Reads
 * /proc/PID/stat once per owner it looks at: not for the hot path. */
int gm_slot_reap(struct gm_slot *sl, int cap);
/* owner word's process is gone, a zombie, or its pid now belongs to another process */
bool gm_owner_dead(uint64_t owner);
/* owner word of pid (0 when it cannot be read) */
uint64_t gm_owner_of(pid_t pid);
uint64_t gm_hash(const char *s);
/* Opens dir (O_DIRECTORY) after checking it and every directory above it: owned by the
 * user or root, not writable by group or others (above dir itself, a sticky directory is
 * allowed). Returns the fd, or -1 with errno (EPERM for an unsafe one) and why filled. */
int gm_private_dir(const char *dir, char *why, size_t whylen);

#endif
