/*
 * goman/provision.h - the convergence engine of goman-provision: make a cluster's nodes
 * exist and hand each node record out the moment it reaches the wait state.
 *
 * One run, per cluster named by the specs:
 *   1. list: one paginated DescribeInstances by tag:goman:cluster (pending, running,
 *      stopping, stopped count as existing);
 *   2. plan: a spec whose (role, index) exists is reused; instances with the cluster and
 *      role tags but no goman:index (a run killed between RunInstances and CreateTags) are
 *      adopted for the missing indices, lowest first; instances no spec asks for are named
 *      (stderr, the provision_plan event; records in a dry run) and reused nodes get a
 *      "drift" object for what their spec names and they differ in; missing nodes without
 *      a subnet are placed (DescribeSubnets: the default-for-az subnets, or the spec's
 *      "subnets"), per role on the AZ holding the fewest so far; the rest is grouped by
 *      (role, type, subnet, ami, and the launch's other fields);
 *   3. setup, only when something must be launched: AMI from SSM (ssm:/path), IAM
 *      GetInstanceProfile, security group goman-<cluster> ensured with the K3s rules;
 *   4. launch: one RunInstances per group (MinCount=MaxCount=k, ClientToken from the
 *      idempotency store saved before the send, TagSpecifications goman:cluster,
 *      goman:role, goman:launch=<token>, goman:group, goman:via, goman:labels,
 *      goman:taints + the spec's and --tag tags, IMDSv2 required, instance profile, spot,
 *      the root volume); no capacity for the type → the next type of the spec's list,
 *      all groups at once on the one loop; then per node one CreateTags (goman:name,
 *      goman:index, Name; for reused nodes an older goman launched, goman:group/via)
 *      paced within the CreateTags bucket; stopped nodes get one StartInstances;
 *   5. wait: one poller (goman/ec2.h) for every pending node of the cluster: one paginated
 *      DescribeInstances by tag per round.
 * The idempotency identity of a group launch is {cluster, role, group, type, subnet,
 * indices, existing} (placement is deterministic, so a re-run forms the same groups) where
 * existing is a digest of the cluster's live instance IDs at planning time:
 * a re-run after a crash before RunInstances reached EC2 sees the same cluster and takes
 * over the same key (same ClientToken); a crash after it reached EC2 is healed by adoption
 * (the instances carry the cluster tags), so the key is never asked for again.
 *
 * server_url in a record: https://IP:6443 of the cluster's first server (role server, index
 * 0) as soon as its private IP is known (from the listing when it exists, else from its
 * RunInstances answer); every record written from then on carries it, so installs of the
 * other nodes need not wait for that server's own record.
 *
 * api_calls in a record (what the calls attributable to the node are): its share of the
 * cluster's setup calls (listing, SSM, IAM, VPC/subnet, security group) divided evenly over
 * the cluster's nodes, its group's RunInstances attempts divided by the group size, its own
 * CreateTags attempts, its share of StartInstances, and its share of each describe round it
 * was pending in (the round's attempts divided by the nodes pending in it). Summed over
 * the records they give every HTTP attempt the run made (rounded to 0.01 per record).
 *
 * Ownership: specs are borrowed (copied into each output record, unknown fields passed
 * through). The record handed to emit is borrowed for the call. Errors: per-node failures
 * are error records (stage "provision") through emit with their goman_err; the run itself
 * returns 0, or -1 with *err when it could not run at all (no memory).
 */
#ifndef GOMAN_PROVISION_H
#define GOMAN_PROVISION_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "goman/ec2.h"
#include "goman/error.h"
#include "goman/kv.h"

struct cJSON;
struct goman_aws;
struct goman_idem;

#define GOMAN_AL2023_X86 "ssm:/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64"
#define GOMAN_AL2023_ARM "ssm:/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-arm64"

/* A record is out: rec is the node record or an error record; err NULL on success. */
typedef void (*goman_provision_emit_fn)(const struct cJSON *rec, const struct goman_err *err,
					void *ud);

struct goman_provision_opts {
	const char *cluster;          /* default for specs without "cluster" */
	const char *server_type;      /* default for servers; NULL = "t3.medium" */
	const char *agent_type;       /* default for agents; NULL = "t3.medium" */
	const char *ami;              /* "ami-..." or "ssm:/path"; NULL = AL2023 for the arch */
	const char *subnet;           /* NULL = default subnet of the default VPC */
	const char *security_group;   /* NULL = ensure goman-<cluster> */
	const char *instance_profile; /* NULL = "goman-node"; "" = none */
	const char *key_name;
	const char *ssh_cidr, *api_cidr; /* open 22 / 6443 to these when set */
	const struct goman_kvs *tags;    /* --tag K=V, applied at launch */
	const char *via;                 /* default "via" of specs (ssm|ssh|local): goman:via tag */
	bool wait_none;                  /* records as soon as launched and tagged */
	enum goman_ec2_wait wait;        /* running or status-ok */
	int64_t timeout_ms;              /* per node wait deadline; 0 = 10 min */
	bool dry_run;
	int64_t poll_min_ms, poll_max_ms, poll_per_pending_ms; /* 0 = poller defaults */
	double tags_rate;                                      /* CreateTags per second; 0 = 10 */
	double tags_burst;                                     /* 0 = 100 */
	int tags_inflight; /* CreateTags calls in flight at once; 0 = 10 */
	goman_provision_emit_fn emit;
	void *ud;
};

/* Checks ^[a-z][a-z0-9-]{0,39}$. */
bool goman_cluster_name_ok(const char *name);
/* "server" / "agent" specs (one object per node, index from 0) appended to arr. 0 or -1. */
int goman_provision_specs(struct cJSON *arr, const char *cluster, long servers, long agents);
/* The AL2023 parameter for an instance type's architecture (Graviton types → arm64). */
const char *goman_default_ami_for(const char *instance_type);

/*
 * Runs the engine over specs (a cJSON array of spec objects; each may carry "_line", the
 * input line number, which is removed from the output). Invalid specs become BadInput error
 * records carrying that line; the others are processed. out (may be NULL) tallies outcomes
 * for goman_exit_code(). 0, or -1 with *err when nothing could run.
 */
int goman_provision_run(struct goman_aws *aws, struct goman_idem *idem,
			const struct goman_provision_opts *o, const struct cJSON *specs,
			struct goman_outcome *out, struct goman_err *err);

#endif
