/*
 * ec2_int.h - what ec2.c shares with ec2_poll.c and ec2_sg.c (query building, the blocking
 * call), and the GOMAN_TESTABLE functions seen by unit tests only (static otherwise).
 * Ownership as in goman/ec2.h.
 */
#ifndef GOMAN_EC2_INT_H
#define GOMAN_EC2_INT_H
#include <stdio.h>
#include "goman/aws.h"
#include "goman/ec2.h"
#include "internal.h"

/* IDs in one InstanceId.N / ResourceId.N list (the API's maximum) */
#define GM_EC2_IDS_PER_CALL 1000

/* PREFIX.1 .. PREFIX.n = ids into params. 0 or -1 (no memory). */
int gm_ec2_add_ids(struct goman_kvs *params, const char *prefix, const char *const *ids, size_t n);
/* One EC2 query call run to its end (goman_aws_call); *calls (may be NULL) += its attempts;
 * on failure *err (may be NULL) = the call's error. res is the caller's to clear. 0 or -1. */
int gm_ec2_blocking(struct goman_aws *aws, const char *action, const struct goman_kvs *params,
		    struct goman_aws_result *res, int *calls, struct goman_err *err);
/* A reply's string (NULL = "") into a fixed field, truncated to fit. */
static inline void gm_ec2_copy(char *dst, size_t len, const char *src)
{
	snprintf(dst, len, "%s", src ? src : "");
}
/* Filter.N.Name / Filter.N.Value.M into params, same-name entries grouped. 0 or -1. */
int gm_ec2_add_filters(struct goman_kvs *params, const struct goman_kvs *filters);

#ifdef GOMAN_UNIT_TEST
/* Applies one round's result to the poller (the rounds' timer path calls this too). */
void gm_ec2_poller_apply(struct goman_ec2_poller *p, const struct goman_ec2_instances *found,
			 int calls, const struct goman_err *round_err);
/* Marks every pending instance as part of the round about to start. */
void gm_ec2_poller_mark(struct goman_ec2_poller *p);
#endif
#endif
