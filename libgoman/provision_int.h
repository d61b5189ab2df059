/*
 * provision_int.h - provision.c's node type and GOMAN_TESTABLE steps, for unit tests.
 * Ownership: a struct node owns its spec copy (in), its instance summary and the malloc'd
 * strings labels_tag, taints_tag and sig (NULL when unset); role and cluster point into in.
 */
#ifndef GOMAN_PROVISION_INT_H
#define GOMAN_PROVISION_INT_H
#include <stdbool.h>
#include <stddef.h>
#include "goman/ec2.h"
#include "goman/provision.h"
#include "internal.h"

struct cJSON;
struct group;
struct prun;

#define GM_PROV_MAX_TYPES 8
#define GM_PROV_TAG_MAX 256 /* EC2's limit on a tag value */

struct node {
	cJSON *in; /* spec copy without _line (owned) */
	long line;
	const char *cluster, *role; /* borrowed from in */
	int index;
	char name[128];
	char type[64], ami[256], subnet[64];
	char group[48], via[8];
	char az[48];                       /* of the placed subnet, when known */
	const struct cJSON *subnets;       /* the spec's "subnets" to place over (in
						     n->in); NULL = the default subnets */
	char types[GM_PROV_MAX_TYPES][64]; /* fallback order, types[0] == type */
	int ntypes;
	bool spot, has_spot;
	int volume_gb;                 /* 0 = the AMI's size */
	char *labels_tag, *taints_tag; /* goman:labels / goman:taints values; NULL =
						     the spec does not say */
	bool explicit_type, explicit_ami, explicit_group; /* named, not defaulted: drift */
	char ami_id[64];                                  /* the explicit AMI resolved, for drift */
	char *sig;                                        /* what else a launch group must share */
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
/* Places every node that is not reused and names no subnet: per role, on the subnet whose
 * AZ holds the fewest of that role's nodes so far (reused ones count where they run),
 * ties to the first in sn's order (sorted by AZ). Servers so land in distinct AZs while
 * there are AZs, agents go round-robin. Fills subnet and az. */
void gm_prov_place(struct node **nodes, size_t nn, const struct goman_ec2_subnet *sn, size_t ns);
/* True when a group launch that failed with e should be tried again with the next type
 * of its list (ti is the index of the type that failed, of ntypes). */
bool gm_prov_fallback(const struct goman_err *e, int ti, int ntypes);
/* The drift of a reused node: what the spec names and the instance differs in (type not
 * in the list, explicit AMI, group, labels, taints, spot), as {"key":{"want","have"}};
 * NULL when none. */
struct cJSON *gm_prov_drift(const struct node *n);
/* "k=v,k2=v2" of a labels object, keys sorted; the same for a taints array (entries
 * sorted). Longer than GM_PROV_TAG_MAX: "sha256:<hex>" of that text, so it still compares.
 * malloc'd; NULL on no memory. */
char *gm_prov_compact(const struct cJSON *labels_or_taints);
#endif
#endif
