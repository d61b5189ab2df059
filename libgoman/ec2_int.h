/*
 * ec2_int.h - ec2.c's GOMAN_TESTABLE functions, seen by unit tests only (static otherwise).
 * Ownership as in goman/ec2.h.
 */
#ifndef GOMAN_EC2_INT_H
#define GOMAN_EC2_INT_H
#include "goman/ec2.h"
#include "internal.h"

#ifdef GOMAN_UNIT_TEST
/* Filter.N.Name / Filter.N.Value.M into params, same-name entries grouped. 0 or -1. */
int gm_ec2_add_filters(struct goman_kvs *params, const struct goman_kvs *filters);
/* Applies one round's result to the poller (the rounds' timer path calls this too). */
void gm_ec2_poller_apply(struct goman_ec2_poller *p, const struct goman_ec2_instances *found,
			 int calls, const struct goman_err *round_err);
/* Marks every pending instance as part of the round about to start. */
void gm_ec2_poller_mark(struct goman_ec2_poller *p);
#endif
#endif
