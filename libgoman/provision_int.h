/*
 * provision_int.h - what goman-provision's files share: the node, launch group and run
 * types, and the steps each file gives the engine (provision.c): spec validation
 * (provision_spec.c), planning (provision_plan.c), setup calls (provision_setup.c) and the
 * CreateTags pacing (provision_tags.c). The engine calls them; none calls back into it.
 * Ownership: a struct node owns its spec copy (in), its instance summary and the malloc'd
 * strings labels_tag, taints_tag and sig (NULL when unset); role and cluster point into in.
 * A struct prun owns its groups, its pacing queue and its pollers (prun_clear in the
 * engine); its nodes are freed by the entry point.
 */
#ifndef GOMAN_PROVISION_INT_H
#define GOMAN_PROVISION_INT_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "goman/ec2.h"
#include "goman/idem.h"
#include "goman/provision.h"
#include "internal.h"

struct cJSON;
struct group;
struct prun;

#define GM_PROV_MAX_TYPES 8
#define GM_PROV_TAG_MAX 256 /* EC2's limit on a tag value */
#define GM_PROV_DEFAULT_PROFILE "goman-node"
#define GM_PROV_RETRY_MS 1000     /* base pause before a call is sent again by us */
#define GM_PROV_K3S_API_PORT 6443 /* where servers listen and nodes join */

struct node {
	struct cJSON *in; /* spec copy without _line (owned) */
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

/* CreateTags pacing: a token bucket (rate per second, burst) with a cap on calls in flight,
 * its timer on the run's loop. send returns 0 when the call went out (the caller's done
 * callback then calls gm_pace_done), or -1 with e set (fail then gets the item). */
typedef int (*gm_pace_send_fn)(void *item, void *ctx, struct goman_err *e);
typedef void (*gm_pace_fail_fn)(void *item, void *ctx, const struct goman_err *e);
struct gm_pace {
	void **q;
	size_t n, cap;
	size_t urgent; /* q[0..urgent) were promoted (sent first, in promotion order) */
	double tokens, rate, burst;
	int64_t at;
	long timer;
	int inflight, max_inflight;
	struct goman_http *http;
	gm_pace_send_fn send;
	gm_pace_fail_fn fail;
	void *ctx;
};
/* rate/burst/max_inflight <= 0: 10 per s, 100, 10. The bucket starts full. */
void gm_pace_init(struct gm_pace *p, struct goman_http *http, double rate, double burst,
		  int max_inflight, gm_pace_send_fn send, gm_pace_fail_fn fail, void *ctx);
/* Queues an item (sent by the next pump). 0, or -1 on no memory (the item is not queued). */
int gm_pace_push(struct gm_pace *p, void *item);
/* Moves a queued item ahead of the others not promoted before it (a node seen running
 * waits for its tags before its record goes out; one still booting can wait). */
void gm_pace_promote(struct gm_pace *p, void *item);
/* Sends what the bucket and the in-flight cap allow; arms the timer for the rest. */
void gm_pace_pump(struct gm_pace *p);
/* One call sent by send is over, after `attempts` requests (its retries took tokens from
 * the server's bucket too: they are taken from ours, so a throttled call does not start a
 * cascade of them). */
void gm_pace_done(struct gm_pace *p, int attempts);
/* Cancels the timer and frees the queue (queued items are the caller's). */
void gm_pace_clear(struct gm_pace *p);

struct group {
	char role[8], type[64], subnet[64], ami[256];
	char types[GM_PROV_MAX_TYPES][64]; /* fallback order; type == types[ti] */
	char amis[GM_PROV_MAX_TYPES][64];  /* resolved AMI per type */
	char roots[GM_PROV_MAX_TYPES][32]; /* its root device, when a volume size is set */
	int ntypes, ti;
	char tried[GM_PROV_MAX_TYPES][64]; /* types that had no capacity */
	int ntried;
	struct node **v;
	size_t n, cap;
	struct goman_idem_ticket t;
	bool have_ticket;
	int tries;
	struct prun *r;
};

struct prun {
	struct goman_aws *aws;
	struct goman_idem *idem;
	const struct goman_provision_opts *o;
	struct goman_outcome *out;
	char cluster[48];
	struct node **nodes;
	size_t nn;
	struct group **groups;
	size_t ng;
	struct goman_ec2_poller *poller;
	struct goman_ec2_poller *stop_poller; /* reused nodes that were stopping */
	char sg[64];
	int setup_calls;
	struct gm_pace tags; /* CreateTags of the nodes */
	int stats_run, stats_tags, stats_start;
	char ami_spec[8][256], ami_val[8][64];
	int nami;
	char root_ami[8][64], root_dev[8][32];
	int nroot;
	char digest[17];
	char vpc[32];        /* of the subnets placed on; "" = not known */
	bool vpc_mixed;      /* the subnets span VPCs: one security group cannot cover them */
	char server_url[80]; /* https://IP:6443 of the first server once known; "" before */
};

/* ---- provision_spec.c ---- */
/* Validates n->in and fills the node from it (defaults from o). 0, or -1 with BadInput. */
int gm_prov_spec(const struct goman_provision_opts *o, struct node *n, struct goman_err *e);
/* BadInput with fmt (two %s: a and b, NULL = ""). Returns -1. */
int gm_prov_bad(struct goman_err *e, const char *fmt, const char *a, const char *b);
/* "k=v,k2=v2" of a labels object, keys sorted; the same for a taints array (entries
 * sorted). Longer than GM_PROV_TAG_MAX: "sha256:<hex>" of that text, so it still compares.
 * malloc'd; NULL on no memory. */
char *gm_prov_compact(const struct cJSON *labels_or_taints);
/* Frees a node and what it owns (NULL ok). */
void gm_prov_node_free(struct node *n);

/* ---- provision_plan.c ---- */
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
/* goman:index of an instance, or -1 when it has none (or not a number). */
int gm_prov_tag_index(const struct goman_ec2_instance *in);
/* pending, running, stopping or stopped: a state a node can be reused from */
bool gm_prov_reusable_state(const char *state);

/* ---- provision_setup.c ---- */
/* True (after a pause) when a failed blocking call should be made again: retryable and
 * tried fewer than the setup retries. */
bool gm_prov_again(int *tries, int rc, const struct goman_err *e);
/* An AMI spec (ami-..., or ssm:/path asked once per run) into out. 0 or -1. */
int gm_prov_resolve_ami(struct prun *r, const char *spec, char *out, size_t len,
			struct goman_err *e);
/* GetInstanceProfile; NoSuchEntity says how to create it. 0 or -1. */
int gm_prov_check_profile(struct prun *r, const char *profile, struct goman_err *e);
/* The cluster's security group (--security-group, or goman-<cluster> with the K3s rules and
 * the --ssh-cidr/--api-cidr ones) into r->sg. 0 or -1. */
int gm_prov_ensure_sg(struct prun *r, struct goman_err *e);
/* Subnets and AZs for the nodes to launch (described, or the default-for-az ones). */
int gm_prov_place_nodes(struct prun *r, struct goman_err *e);
/* The AMI (and root device) of every type of the group's list. 0 or -1. */
int gm_prov_group_amis(struct prun *r, struct group *g, struct goman_err *e);

#endif
