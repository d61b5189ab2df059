/*
 * install_ssm_reg.h - the SSM transport's registration check (install_ssm_reg.c): nodes
 * wait here until SSM knows their instance, so a SendCommand never names one it does not.
 *
 * Ownership: the struct is embedded in the SSM installer and zeroed by it; the nodes are
 * borrowed (linked through n->qnext while they wait: a waiting node is in no other queue).
 * Errors: none come back; an endpoint without the check, or one that fails it for good,
 * turns it off and hands every waiting node on (SendCommand's own InvalidInstanceId
 * retries and delivery deadline then apply).
 */
#ifndef GOMAN_INSTALL_SSM_REG_H
#define GOMAN_INSTALL_SSM_REG_H

#include <stdbool.h>
#include <stdint.h>
#include "install_int.h"

/* a node may be sent now: checked = SSM listed it as Online in a check (the caller then
 * sends the nodes of one answer together, in after()); false = the check is off */
typedef void (*gm_ssm_reg_ready_fn)(struct gm_inode *n, bool checked);
/* a check ended (nodes may have been handed on, a slot is free) */
typedef void (*gm_ssm_reg_after_fn)(struct gm_install *in);

struct gm_ssm_reg {
	struct gm_install *in;
	gm_ssm_reg_ready_fn ready;
	gm_ssm_reg_after_fn after;
	struct gm_inode *head, **tail; /* waiting, oldest first */
	int waiting;
	int round_left; /* nodes the current round has still to ask about */
	enum { GM_REG_TRY = 0, GM_REG_ON, GM_REG_OFF } mode;
	bool due;      /* a check should go out (pump submits it when a slot is free) */
	bool inflight; /* one check at a time */
	long timer;
	int64_t last_round;  /* mono ms of the last check sent */
	int64_t retry_ms;    /* back-off after a failed check */
	unsigned long calls; /* DescribeInstanceInformation calls answered */
};

void gm_ssm_reg_init(struct gm_ssm_reg *r, struct gm_install *in, gm_ssm_reg_ready_fn ready,
		     gm_ssm_reg_after_fn after);
/* A node waits for its registration (or goes on at once when the check is off); the
 * check that asks about it comes within window ms (nodes arriving close together share
 * one), never sooner than a batch window (--poll-interval without one) after the last. */
void gm_ssm_reg_add(struct gm_ssm_reg *r, struct gm_inode *n, int64_t window);
/* True when a check is due and none is in flight: the caller has a free slot for it. */
bool gm_ssm_reg_due(const struct gm_ssm_reg *r);
/* Sends the due check (one call, up to 50 instance IDs). */
void gm_ssm_reg_submit(struct gm_ssm_reg *r);
/* Cancels the timer (the nodes are the installer's). */
void gm_ssm_reg_clear(struct gm_ssm_reg *r);

#endif
