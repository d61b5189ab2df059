/*
 * provision_int.h - provision.c's node type and GOMAN_TESTABLE steps, for unit tests.
 * Ownership: a struct node owns its spec copy (in) and its instance summary; role and
 * cluster point into in.
 */
#ifndef GOMAN_PROVISION_INT_H
#define GOMAN_PROVISION_INT_H
#include <stdbool.h>
#include "goman/ec2.h"
#include "goman/provision.h"
#include "internal.h"

struct cJSON;
struct group;
struct prun;

struct node {
	cJSON *in;         /* spec copy without _line (owned) */
	long line;
	const char *cluster, *role; /* borrowed from in */
	int index;
	char name[128];
	char type[64], ami[256], subnet[64];
	struct goman_ec2_instance inst;
	bool reused, adopted, launched, dry;
	bool need_tags, tagged, ready, emitted, starting;
	int tag_tries;
	double calls;
	int64_t t0;           /* monotonic, when the node's work began */
	int64_t running_wall; /* wall ms when seen at the wait state */
	struct group *g;
	struct prun *r;
};

#ifdef GOMAN_UNIT_TEST
/* Validates n->in and fills the node from it (defaults from o). 0, or -1 with BadInput. */
int gm_prov_spec(const struct goman_provision_opts *o, struct node *n, struct goman_err *e);
/* Matches nodes (sorted by role, index) to existing instances: reuse by goman:role +
 * goman:index, then adoption of role-tagged instances without an index for the lowest
 * missing indices. Returns how many nodes are still missing. */
size_t gm_prov_plan(struct node **nodes, size_t nn, const struct goman_ec2_instances *ex);
#endif
#endif
