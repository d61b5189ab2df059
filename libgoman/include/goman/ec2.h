/*
 * goman/ec2.h - EC2 helpers shared by goman-provision and goman-batch, over goman/aws.h.
 *
 * - Describe: paginated DescribeInstances (nextToken followed to the end) by filters or by
 *   instance IDs (at most 1000 IDs a call; more are split), into instance summaries.
 * - Poller: a set of instances waited for together. Each round is ONE paginated
 *   DescribeInstances for the whole pending set (by filters when given, else by IDs), and
 *   each instance is reported through on_done the moment it reaches the target state (no
 *   barrier: the first ready instance is handed out while others are still pending). The
 *   interval between rounds may adapt to how many are still pending:
 *       interval = clamp(min_ms + per_pending_ms * pending, min_ms, max_ms)
 *   with per_pending_ms 0 by default (every min_ms: an instance's record waits at most one
 *   interval; a round of 1000 instances is a few pages, far inside EC2's Describe bucket).
 *   InvalidInstanceID.NotFound right after a
 *   launch is eventual consistency: the round is retried within eventual_deadline_ms.
 * - Subnets (DescribeSubnets, sorted by AZ) and an AMI's root device (DescribeImages),
 *   for placement and root volumes.
 * - CreateTags on a set of IDs; StartInstances; security-group ensure (describe by
 *   group-name + vpc-id, create when missing, authorize rules; InvalidPermission.Duplicate
 *   and InvalidGroup.Duplicate are success).
 *
 * Async functions queue calls on the client's loop (goman_aws_submit); drive it with
 * goman_http_run(goman_aws_http(aws), ...). Blocking ones (no _submit) run the loop until
 * their own calls are done: use them before queuing async work, never from a callback.
 *
 * Ownership: struct goman_ec2_instances owns its array and each summary's tags:
 * goman_ec2_instances_clear() (a zeroed struct is valid). Summaries handed to callbacks are
 * borrowed for the callback's duration (copy with goman_ec2_instance_copy()). Filters, IDs
 * and tag lists passed in are borrowed (copied before the call returns).
 * A poller from goman_ec2_poller_new() is freed by goman_ec2_poller_free() (NULL ok; no
 * on_done is called after it; a round in flight then frees the poller when its describe
 * ends, or is dropped with the client). Errors: -1 with *err filled
 * (struct goman_err of goman/error.h); async failures reach the done callback.
 */
#ifndef GOMAN_EC2_H
#define GOMAN_EC2_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "goman/error.h"
#include "goman/kv.h"

struct cJSON;
struct goman_aws;
struct goman_ec2_poller;

struct goman_ec2_instance {
	char instance_id[32];
	char state[24];         /* pending|running|stopping|stopped|shutting-down|terminated */
	char state_reason[128]; /* stateReason.code, e.g. Server.InsufficientInstanceCapacity */
	char private_ip[48];    /* "" when none yet */
	char public_ip[48];
	char az[48];
	char type[48];
	char image_id[32];
	char subnet_id[32];
	char vpc_id[32];
	char launch_time[40];  /* as EC2 gives it (ISO 8601) */
	char lifecycle[16];    /* instanceLifecycle: "spot", "scheduled"; "" = on-demand */
	int launch_index;      /* amiLaunchIndex within its RunInstances call; -1 unknown */
	char status[16];       /* DescribeInstanceStatus "ok"/"initializing"/...; "" unknown */
	struct goman_kvs tags; /* key → value, as EC2 lists them */
};

struct goman_ec2_instances {
	struct goman_ec2_instance *v;
	size_t n, cap;
};

void goman_ec2_instances_clear(struct goman_ec2_instances *l);
/* Appends a deep copy. 0 or -1 (no memory). */
int goman_ec2_instances_add(struct goman_ec2_instances *l, const struct goman_ec2_instance *in);
/* Deep copy into dst (dst's old tags are freed). 0 or -1. */
int goman_ec2_instance_copy(struct goman_ec2_instance *dst, const struct goman_ec2_instance *src);
void goman_ec2_instance_clear(struct goman_ec2_instance *in);
/* Tag value, or NULL (borrowed). */
const char *goman_ec2_tag(const struct goman_ec2_instance *in, const char *key);
/* Reads one converted instance object (an element of instancesSet) into out (cleared first).
 * 0, or -1 when it has no instanceId. */
int goman_ec2_instance_from_json(const struct cJSON *item, struct goman_ec2_instance *out);
/* Appends every instance of a DescribeInstances / RunInstances reply (reservationSet or
 * instancesSet). Returns how many were added, or -1 on no memory. */
int goman_ec2_instances_from_reply(const struct cJSON *reply, struct goman_ec2_instances *out);
/* Adds the instance summary fields to obj: instance_id, state, private_ip, public_ip (when
 * known), az, subnet_id, instance_type. 0 or -1. */
int goman_ec2_instance_to_json(const struct goman_ec2_instance *in, struct cJSON *obj);

/* Filters for DescribeInstances: a goman_kvs of (name, value); entries with the same name
 * are one Filter with several values ("instance-state-name" → "pending", "running"). */

struct goman_ec2_describe_stats {
	int calls; /* HTTP attempts, all pages (what api_call events counted) */
	int pages;
};

typedef void (*goman_ec2_describe_fn)(struct goman_ec2_instances *found,
				      const struct goman_err *err,
				      const struct goman_ec2_describe_stats *st, void *ud);

/* Queues a paginated DescribeInstances: by filters (may be NULL) and/or IDs (nids may be
 * 0). done gets every instance of every page (found is the callback's to clear or keep: it
 * is freed after the callback returns unless the callback moved it out by zeroing it).
 * eventual_deadline_ms > 0 retries InvalidInstanceID.NotFound that long. */
int goman_ec2_describe_submit(struct goman_aws *aws, const struct goman_kvs *filters,
			      const char *const *ids, size_t nids, int64_t eventual_deadline_ms,
			      goman_ec2_describe_fn done, void *ud, struct goman_err *err);
/* Blocking form. out is appended to. st may be NULL. 0 or -1. */
int goman_ec2_describe(struct goman_aws *aws, const struct goman_kvs *filters,
		       const char *const *ids, size_t nids, struct goman_ec2_instances *out,
		       struct goman_ec2_describe_stats *st, struct goman_err *err);

/* Blocking. The live instances of a cluster: tagged goman:cluster=cluster (cluster NULL:
 * every instance that has a goman:cluster tag) in state pending, running, stopping or
 * stopped, and shutting-down too when shutting_down is set (one paginated describe). The
 * tag is checked again on the reply. out is appended to. 0 or -1. */
int goman_ec2_cluster_instances(struct goman_aws *aws, const char *cluster, bool shutting_down,
				struct goman_ec2_instances *out, struct goman_err *err);

/* ---- poller ---------------------------------------------------------------------------- */

enum goman_ec2_wait {
	GOMAN_EC2_WAIT_RUNNING = 0, /* state running */
	GOMAN_EC2_WAIT_STATUS_OK,   /* running, then DescribeInstanceStatus instance+system ok */
	GOMAN_EC2_WAIT_STOPPED,
	GOMAN_EC2_WAIT_TERMINATED,
};
/* "running", "status-ok", "stopped", "terminated"; parse returns -1 when unknown */
const char *goman_ec2_wait_name(enum goman_ec2_wait w);
int goman_ec2_wait_parse(const char *s, enum goman_ec2_wait *out);

/* Called once per instance: reached the target (err NULL), or failed (err set: the
 * instance went to a state it cannot come back from, e.g. terminated while waiting for
 * running — code = its stateReason code; or its deadline passed — GOMAN_ETIMEOUT; or the
 * describe call gave up — the call's error). inst is borrowed. calls_share is this
 * instance's share of the describe calls made while it was pending (each round's calls
 * divided by the instances pending in that round). */
typedef void (*goman_ec2_poll_fn)(const char *instance_id, const struct goman_ec2_instance *inst,
				  const struct goman_err *err, double calls_share, void *ud);

struct goman_ec2_poller_opts {
	enum goman_ec2_wait target;
	int64_t min_interval_ms;      /* default 2000 */
	int64_t max_interval_ms;      /* default 15000 */
	int64_t per_pending_ms;       /* default 0: every min_interval_ms */
	int64_t first_delay_ms;       /* before the first round; default min_interval_ms */
	int64_t eventual_deadline_ms; /* default 60000 */
	int give_up_rounds;           /* a round whose call failed is retried this many times before
				      the pending instances get that error; default 3 */
	const struct goman_kvs *filters; /* when set, rounds describe by these filters (the
				      result is matched against the pending IDs); else by IDs */
	goman_ec2_poll_fn on_done;
	void *ud;
};

struct goman_ec2_poller *goman_ec2_poller_new(struct goman_aws *aws,
					      const struct goman_ec2_poller_opts *opts,
					      struct goman_err *err);
void goman_ec2_poller_free(struct goman_ec2_poller *p);
/* Adds an instance to the pending set with its own deadline (monotonic ms; 0 = none).
 * Starts a round timer when none is scheduled. 0 or -1. */
int goman_ec2_poller_add(struct goman_ec2_poller *p, const char *instance_id,
			 int64_t deadline_mono_ms, struct goman_err *err);
size_t goman_ec2_poller_pending(const struct goman_ec2_poller *p);
/* Rounds made and HTTP attempts they took. */
void goman_ec2_poller_stats(const struct goman_ec2_poller *p, int *rounds, int *calls);
/* The interval the adaptive rule gives for this many pending (exposed for tests/docs). */
int64_t goman_ec2_poll_interval(const struct goman_ec2_poller_opts *o, size_t pending);

/* ---- mutations ------------------------------------------------------------------------- */

typedef void (*goman_ec2_call_fn)(const struct goman_err *err, int calls, void *ud);

/* CreateTags on ids with tags (kvs key → value). done gets the outcome and attempts. */
int goman_ec2_create_tags_submit(struct goman_aws *aws, const char *const *ids, size_t nids,
				 const struct goman_kvs *tags, goman_ec2_call_fn done, void *ud,
				 struct goman_err *err);
/* StartInstances on ids (≤ 1000). */
int goman_ec2_start_submit(struct goman_aws *aws, const char *const *ids, size_t nids,
			   goman_ec2_call_fn done, void *ud, struct goman_err *err);

struct goman_ec2_sg_rule {
	const char *proto; /* "tcp" / "udp" */
	int from, to;
	const char *cidr; /* NULL = self-referencing (the group itself) */
};

/* Blocking. The default VPC's id into vpc (size len). 0, or -1 (GOMAN_ENOTFOUND when none). */
int goman_ec2_default_vpc(struct goman_aws *aws, char *vpc, size_t len, int *calls,
			  struct goman_err *err);
/* Blocking. The VPC of a subnet. 0 or -1. */
int goman_ec2_subnet_vpc(struct goman_aws *aws, const char *subnet, char *vpc, size_t len,
			 int *calls, struct goman_err *err);
/* A subnet as DescribeSubnets gives it. */
struct goman_ec2_subnet {
	char subnet_id[32];
	char az[48];
	char vpc_id[32];
	bool default_for_az;
};
/* Blocking. DescribeSubnets by filters (may be NULL; nextToken followed) or by IDs (nids
 * > 0, at most 1000, one call). *out (malloc'd, the caller frees) gets them sorted by AZ,
 * then subnet ID, so every run orders them the same way. An ID that does not exist is the
 * call's error (InvalidSubnetID.NotFound). 0 or -1. */
int goman_ec2_subnets(struct goman_aws *aws, const struct goman_kvs *filters,
		      const char *const *ids, size_t nids, struct goman_ec2_subnet **out, size_t *n,
		      int *calls, struct goman_err *err);
/* Blocking. The root device name of an AMI (DescribeImages rootDeviceName, e.g. /dev/xvda)
 * into dev. 0 or -1 (GOMAN_ENOTFOUND when the image is unknown). */
int goman_ec2_root_device(struct goman_aws *aws, const char *ami, char *dev, size_t len, int *calls,
			  struct goman_err *err);

/* Blocking. Ensures group `name` in vpc with the rules (duplicates are fine); the group id
 * into group_id (≥ 32 bytes). *calls (may be NULL) gets the attempts made. 0 or -1. */
int goman_ec2_ensure_sg(struct goman_aws *aws, const char *name, const char *description,
			const char *vpc, const struct goman_ec2_sg_rule *rules, size_t nrules,
			char *group_id, size_t len, int *calls, struct goman_err *err);

#endif
