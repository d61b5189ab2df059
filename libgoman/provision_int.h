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
/* The listing filter of one cluster (with_states: only reusable states). 0, or -1 when an
 * add failed (f is then incomplete and must not be used). */
int gm_prov_filter(struct goman_kvs *f, const char *cluster, bool with_states);
/* Matches nodes (sorted by role, index) to existing instances: reuse by goman:role +
 * goman:index, then adoption of role-tagged instances without an index for the lowest
 * missing indices; only instances tagged with the node's cluster, in a reusable state.
 * *missing gets how many nodes are still missing. -1 (e set, nothing matched) when filter
 * is not the complete listing filter of the nodes' cluster, or on no memory. */
int gm_prov_plan(struct node **nodes, size_t nn, const struct goman_kvs *filter,
		 const struct goman_ec2_instances *ex, size_t *missing, struct goman_err *e);
#endif
#endif
