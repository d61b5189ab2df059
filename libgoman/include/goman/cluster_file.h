/*
 * goman/cluster_file.h - the cluster file: one declarative description of a cluster
 * (name, region, K3s version or channel, install transport, network, node groups), read
 * from YAML or JSON into plain C structs. The schema and its rules are goman-cluster(5).
 *
 * Strictness: every key is known or the file is refused; values are checked against the
 * rules AWS, K3s and Kubernetes apply later (so a bad file fails before anything is
 * launched). YAML is read as a tree of plain scalars, sequences and mappings: anchors,
 * aliases, explicit tags, complex keys, duplicate keys and multiple documents are refused;
 * booleans are exactly `true` or `false`.
 *
 * Bounds: the file is read up to o->max_bytes (default GOMAN_CF_MAX_BYTES) and refused
 * beyond; at most o->max_groups groups (default GOMAN_CF_MAX_GROUPS); the per-group list
 * caps below are fixed by what EC2 and K3s accept.
 *
 * Ownership: goman_cluster_file_parse()/_read() hand out one struct goman_cluster_file
 * the caller owns, with every string and array inside it; goman_cluster_file_free() frees
 * all of it (NULL is fine). The struct is not changed by any other function here. The
 * cJSON values returned by _to_json()/_node_specs() belong to the caller (cJSON_Delete).
 *
 * Errors: -1 with struct goman_err filled (nothing is printed). A bad file is GOMAN_EINVAL,
 * class BAD_INPUT, code "BadClusterFile", and the message names where:
 *   "FILE:LINE: KEY.PATH: what is wrong"   (YAML; LINE is the value's or the key's line)
 *   "FILE: KEY.PATH: what is wrong"        (JSON; syntax errors carry a line too)
 * KEY.PATH is like groups[1].type[0]. A missing or unreadable file is GOMAN_ENOTFOUND
 * (resp. GOMAN_EIO) with the file name and strerror.
 */
#ifndef GOMAN_CLUSTER_FILE_H
#define GOMAN_CLUSTER_FILE_H
#include <stdbool.h>
#include <stddef.h>
#include "goman/error.h"

struct cJSON;

#define GOMAN_CF_MAX_BYTES (1024 * 1024) /* default cap on the file size */
#define GOMAN_CF_MAX_GROUPS 64           /* default cap on the number of groups */
#define GOMAN_CF_MAX_COUNT 10000         /* nodes per group (as goman-provision --servers) */
#define GOMAN_CF_MAX_TYPES 8             /* instance types per group (fallback order) */
#define GOMAN_CF_MAX_SUBNETS 32
#define GOMAN_CF_MAX_LABELS 64
#define GOMAN_CF_MAX_TAINTS 32
#define GOMAN_CF_MAX_TAGS 40 /* EC2 allows 50 per instance; goman sets up to 10 itself */
#define GOMAN_CF_VOLUME_MIN 8
#define GOMAN_CF_VOLUME_MAX 16384

enum goman_cf_format { GOMAN_CF_AUTO = 0, GOMAN_CF_YAML, GOMAN_CF_JSON };
enum goman_cf_via { GOMAN_CF_VIA_SSM = 0, GOMAN_CF_VIA_SSH, GOMAN_CF_VIA_LOCAL };
/* which address of a node: its public IP, its private IP, or (api_endpoint only) a DNS name */
enum goman_cf_addr { GOMAN_CF_ADDR_PUBLIC = 0, GOMAN_CF_ADDR_PRIVATE, GOMAN_CF_ADDR_DNS };

struct goman_cf_pair {
	char *key, *value;
};

/* A taint "key=value:Effect" (value may be empty: "key:Effect"). */
struct goman_cf_taint {
	char *key, *value, *effect;
};

struct goman_cf_group {
	char *name;   /* unique in the file; the cluster name rule */
	bool server;  /* role: server (true) or agent */
	long count;   /* 0 .. GOMAN_CF_MAX_COUNT */
	char **types; /* 1 .. GOMAN_CF_MAX_TYPES, fallback order; default {"t3.medium"} */
	size_t ntypes;
	char *ami; /* "ami-..." or "ssm:/path"; NULL = goman-provision's default */
	bool spot;
	struct goman_cf_pair *labels; /* Kubernetes node labels, file order */
	size_t nlabels;
	struct goman_cf_taint *taints;
	size_t ntaints;
	struct goman_cf_pair *tags; /* EC2 tags, file order */
	size_t ntags;
	int volume_gb; /* root volume size; 0 = the AMI's default */
	unsigned line; /* where the group starts (YAML), 0 for JSON */
};

struct goman_cluster_file {
	char *source; /* the file name as given ("-" reads as "<stdin>") */
	char *name;
	char *region;      /* NULL = the AWS config chain */
	char *k3s_version; /* exactly one of version / channel is set; both NULL = the */
	char *k3s_channel; /* installer's default channel (the k3s key is absent) */
	enum goman_cf_via via;
	char *ssh_user;                 /* via ssh; NULL = goman-install's default */
	char *ssh_key;                  /* via ssh; private key file; NULL = agent/ssh config */
	enum goman_cf_addr ssh_address; /* via ssh: PUBLIC or PRIVATE */
	char **subnets;                 /* NULL/0 = the default VPC's default subnet */
	size_t nsubnets;
	char *ssh_cidr, *api_cidr;       /* NULL = not opened */
	enum goman_cf_addr api_endpoint; /* default PUBLIC */
	char *api_dns;                   /* when api_endpoint is DNS */
	struct goman_cf_group *groups;
	size_t ngroups;
};

struct goman_cf_opts {
	enum goman_cf_format format; /* AUTO: by suffix (.json/.yaml/.yml), else by first byte */
	size_t max_bytes;            /* 0 = GOMAN_CF_MAX_BYTES */
	size_t max_groups;           /* 0 = GOMAN_CF_MAX_GROUPS */
};

/* Parses len bytes of buf (no NUL needed); source names the file in messages. */
int goman_cluster_file_parse(const char *buf, size_t len, const char *source,
			     const struct goman_cf_opts *o, struct goman_cluster_file **out,
			     struct goman_err *err);
/* Reads path ("-" = standard input) within the size cap, then parses it. */
int goman_cluster_file_read(const char *path, const struct goman_cf_opts *o,
			    struct goman_cluster_file **out, struct goman_err *err);
void goman_cluster_file_free(struct goman_cluster_file *cf);

/* The normalised file as one JSON object (every default written out, type always a list);
 * reading it back gives the same struct. NULL when out of memory. */
struct cJSON *goman_cluster_file_to_json(const struct goman_cluster_file *cf);
/*
 * One node spec per node, servers then agents, in group order; index counts per role
 * across groups as goman-provision names nodes (<cluster>-<role>-<index>). Each spec has
 * cluster, role, index, name, instance_type (the first type), subnet_id (round-robin per
 * role over network.subnets, when any), ami and tags (when set) - the fields goman-provision
 * reads - plus group, types, spot, labels, taints, volume_gb, and region when set.
 * Appended to arr (a cJSON array). 0, or -1 when out of memory.
 */
int goman_cluster_file_node_specs(const struct goman_cluster_file *cf, struct cJSON *arr);

#endif
