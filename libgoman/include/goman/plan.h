/*
 * goman/plan.h - what it would take to make a cluster match its node specs, and the
 * cluster file of a cluster that exists. Pure functions over JSON: no call is made here
 * (goman-plan lists the instances and hands them in).
 *
 * Inputs:
 *   specs: node specs as goman-spec writes them (goman_cluster_file_node_specs()): cluster,
 *     role, index, name, group, instance_type, types, ami, spot, labels, taints, subnet_id,
 *     az (each but role and index/name optional).
 *   haves: one object per existing instance (goman_plan_instance_json() makes one from an
 *     instance summary): instance_id, state, instance_type, image_id, subnet_id, az,
 *     spot (optional bool), tags (object). Instances in state shutting-down or terminated
 *     are not counted.
 * Tags read: goman:role, goman:index, goman:name, goman:group, goman:labels ("k=v,k2=v2" or
 * a JSON object), goman:taints ("k=v:Effect,k:Effect" or a JSON array), goman:spot
 * ("true"/"false", when a have carries no spot field). Every tag is outside input: a value
 * that does not read as what it should is shown as it is, never trusted.
 *
 * Matching is goman-provision's: a spec is met by the instance with its (role, goman:index);
 * an instance with a role but no index is adopted for the lowest missing index (a drift of
 * its name: provision would tag it). An instance without goman:group belongs to whatever
 * group asks for its role and index.
 *
 * Changes (each a new object appended to the caller's array, in this order):
 *   launch     a spec no instance meets: name, group, role, index, instance_type,
 *              subnet_id/az when the spec (or an instance in that subnet) tells them
 *   drift      a met spec whose instance differs: "drift":{field:{"want","have"}} over
 *              instance_type (not among types), ami (only when the spec names an ami-ID;
 *              an ssm: parameter is not resolved), spot (when known), labels, taints,
 *              group (a goman:group tag naming another group), name, state (stopped or
 *              stopping: goman-provision would start it)
 *   terminate  an instance with a role and index no spec asks for ("reason" says why)
 *   orphan     an instance of the cluster with no goman:role (or an unknown one), a role
 *              but no index and nothing to adopt it for, or a duplicate (role, index)
 * Every change carries cluster and change; those about an instance carry instance_id.
 *
 * Ownership: inputs are borrowed; changes are appended to the caller's array (cJSON_Delete
 * it). goman_plan_export() returns a struct the caller frees with goman_cluster_file_free().
 * Errors: -1 with *err (EINVAL BadInput for a bad spec, ENOMEM).
 */
#ifndef GOMAN_PLAN_H
#define GOMAN_PLAN_H
#include <stdbool.h>
#include <stddef.h>
#include "goman/error.h"

struct cJSON;
struct goman_ec2_instance;
struct goman_cluster_file;

struct goman_plan_counts {
	long launch, terminate, drift, orphan, unchanged;
};

/* A have object from an instance summary (tags included). NULL when out of memory. */
struct cJSON *goman_plan_instance_json(const struct goman_ec2_instance *in);

/* Checks one node spec (see above); cluster, when not NULL, is the one it must name.
 * 0, or -1 with err (EINVAL, BadInput, a message naming the field). */
int goman_plan_spec_check(const struct cJSON *spec, const char *cluster, struct goman_err *err);

/*
 * The changes from haves to specs, appended to changes (a cJSON array); counts (may be
 * NULL) gets their tally. cluster names the cluster in every change (the specs' own when
 * NULL; with no spec and no cluster it is ""). Every spec is checked first: one bad spec
 * and nothing is appended (-1). Two specs with the same role and index are a bad spec.
 */
int goman_plan_compute(const struct cJSON *specs, const struct cJSON *haves, const char *cluster,
		       struct cJSON *changes, struct goman_plan_counts *counts,
		       struct goman_err *err);

/*
 * The cluster file of what exists: groups by goman:group (else the role's name: "server",
 * "agent"), each group's role, count, types (most common first), spot (the majority, when
 * known), labels and taints (the most common tags), tags (user tags every member carries);
 * network.subnets (the subnets in use, servers' first, by index); install.via from goman:via
 * (the most common, when it is ssm, ssh or local); region when not NULL. The AMI, the K3s
 * version and volume_gb are not written (no tag holds them). Groups of a role are ordered by
 * their lowest index, so the specs of the file name the nodes that exist. Instances without
 * a usable role are left out (they stay orphans). The result is checked by the cluster file
 * parser before it is returned: a tag value the file cannot hold is an error naming it
 * (EINVAL, BadInput). No instance at all is GOMAN_ENOTFOUND.
 */
int goman_plan_export(const char *cluster, const char *region, const struct cJSON *haves,
		      struct goman_cluster_file **out, struct goman_err *err);

#endif
