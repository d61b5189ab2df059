/*
 * goman/install.h - K3s on every node the moment its record arrives (goman-install).
 *
 * An installer takes node records one at a time (goman_install_add), decides each node's
 * part (first server with or without --cluster-init, joining server, agent), starts it as
 * soon as what it needs is known (agents: the first server's private IP, nothing more unless
 * wait_server), runs scripts/k3s-install.sh on it over SSM Run Command, SSH or locally, and
 * hands every finished record to the emit callback. After the input ended and every node is
 * done it verifies the cluster from the first server (`k3s kubectl get nodes`) and emits the
 * `cluster` event. Everything runs on the goman_http loop: the caller drives goman_http_run()
 * (with stdin as extra_fd) until goman_install_finished().
 *
 * Ownership: goman_install_new() copies every string of the options it keeps except aws
 * and http, which are borrowed and must outlive the installer; goman_install_free() (NULL
 * ok) kills and reaps child processes still running. goman_install_add() consumes rec.
 * The record passed to emit belongs to the installer; the callback writes it and returns.
 * Errors: per node, as an error record (stage "install") through emit; _new and _add
 * return -1 with err only for misuse or out of memory.
 */
#ifndef GOMAN_INSTALL_H
#define GOMAN_INSTALL_H
#include <stdbool.h>
#include <stdint.h>
#include "goman/error.h"
#include "goman/s3.h"

struct cJSON;
struct goman_aws;
struct goman_http;
struct goman_install;

enum goman_install_via { GOMAN_VIA_SSM = 0, GOMAN_VIA_SSH, GOMAN_VIA_LOCAL };
/* INSTALL: K3s on each node. The others act on the node each record names (its Kubernetes
 * node name is the record's "name", as the install sets --node-name) with
 * `k3s kubectl cordon|drain|uncordon` run on the first server through the same transport;
 * no token, no script, no verification. */
enum goman_install_action {
	GOMAN_ACTION_INSTALL = 0,
	GOMAN_ACTION_CORDON,
	GOMAN_ACTION_DRAIN,
	GOMAN_ACTION_UNCORDON,
	/* drain (with --force: the node is going away), then `kubectl delete node`; a node
	 * Kubernetes does not know (it never joined) is already deleted */
	GOMAN_ACTION_DELETE
};

/* emit: one finished node record (or the error record of a bad line). Borrowed. */
typedef void (*goman_install_emit_fn)(const struct cJSON *rec, void *ud);

struct goman_install_opts {
	enum goman_install_via via;
	struct goman_aws *aws;   /* ssm: required; borrowed */
	struct goman_http *http; /* the loop; borrowed (ssm: goman_aws_http(aws)) */
	const char *script_path; /* k3s-install.sh on this host */
	const char *cluster;     /* NULL = from the first record */
	const char *token;       /* ssh/local: token text sent on stdin; borrowed, not copied */
	const char *token_param; /* ssm: NULL = /goman/<cluster>/token */
	const char *region;      /* passed to the node for its SSM calls; NULL = none */
	/* K3s release and source (non-secret; go into the command text) */
	const char *k3s_version, *channel, *mirror, *tls_san;
	/* presigned (they carry the session token): never in command text or argv; ssm puts
	 * them in the SecureString /goman/<cluster>/airgap the node reads, ssh/local send them
	 * on the script's stdin before the token */
	const char *airgap_binary_url, *airgap_checksum_url;
	/* cluster shape */
	const char *server_url; /* agents-only input joins this server */
	int servers;            /* > 0: number of servers (decides --cluster-init) */
	bool wait_server;       /* joiners wait until the first server reports ready */
	bool verify;            /* run the verification after the last node */
	bool store_kubeconfig;  /* the first server puts its kubeconfig in SSM (ssm; ssh/local
				    * only with aws set) */
	/* testing aids passed to the script */
	const char *prefix;
	bool no_services;
	/* timing */
	int concurrency;             /* ssh/local: scripts at once; ssm: API calls in flight */
	int64_t timeout_ms;          /* execution timeout per node */
	int64_t delivery_timeout_ms; /* ssm: how long an instance may stay unknown to SSM */
	int64_t poll_ms;             /* ssm: poll interval near the expected end (default 2000) */
	int64_t poll_floor_ms;       /* ssm: first poll this long after the send until an install
				      time was learned (default 10000) */
	int64_t batch_window_ms;     /* ssm: nodes arriving this close share a SendCommand */
	int64_t verify_wait_ms;      /* how long the verification waits for nodes to be Ready */
	/* ssh */
	const char *ssh_bin, *ssh_user, *ssh_key, *ssh_config;
	int ssh_port;
	bool ssh_public_ip; /* host = public_ip (default private_ip) */
	bool ssh_sudo;      /* run the script under `sudo -n` */
	/* cordon/drain/uncordon (action != INSTALL): where the kubectl command runs when the
	 * input holds no first server record (role server, index 0): ssh its address (else
	 * the host of server_url), ssm its instance ID; local runs here */
	enum goman_install_action action;
	int64_t drain_timeout_ms; /* kubectl drain --timeout (default 5m) */
	const char *server_address, *server_instance;
	goman_install_emit_fn emit;
	void *ud;
};

struct goman_install *goman_install_new(const struct goman_install_opts *o, struct goman_err *err);
void goman_install_free(struct goman_install *in);
/* One input record (consumed); line is its input line number. */
int goman_install_add(struct goman_install *in, struct cJSON *rec, long line,
		      struct goman_err *err);
/* The input ended: nodes still waiting for a server that never came fail. */
void goman_install_input_done(struct goman_install *in);
/* True once every node was emitted and the verification (if any) ended. */
bool goman_install_finished(const struct goman_install *in);
/* Outcome tally of the emitted records. */
const struct goman_outcome *goman_install_outcome(const struct goman_install *in);

/* What the script printed: the last GOMAN_RESULT object (new, caller deletes) or NULL;
 * *progress gets the last GOMAN_PROGRESS percentage (or -1). */
struct cJSON *goman_install_parse_output(const char *out, int *progress);
/* Nodes whose STATUS column is "Ready" in `kubectl get nodes` output; -1 when there is no
 * table at all (empty output). */
int goman_install_count_ready(const char *out);
/* Is the node `name` a row of that table with STATUS "Ready"? */
bool goman_install_node_ready(const char *out, const char *name);

/* Node labels and taints of a record ("labels": {k: v}, "taints": ["k=v:Effect"]), checked
 * as Kubernetes does: NULL when fine, else why not (static text). A label key is
 * [prefix/]name (prefix a DNS subdomain, name 1-63 of A-Z a-z 0-9 - _ . starting and
 * ending alphanumeric), outside kubernetes.io and k8s.io except node.kubernetes.io/ and
 * kubelet.kubernetes.io/ (NodeRestriction); a value is empty or a name; a taint is
 * key[=value]:NoSchedule|PreferNoSchedule|NoExecute. */
const char *goman_install_label_why(const char *key, const char *value);
const char *goman_install_taint_why(const char *taint);
/* A Kubernetes node name (DNS subdomain: lower case alphanumerics, '-', '.'; 1-253). */
bool goman_install_node_name_ok(const char *name);
/* A K3s release (vMAJOR.MINOR.PATCH[-PRE]+k3sN) / a channel name (stable, latest,
 * testing, v1.31: 1-64 of a-z 0-9 . -). */
bool goman_install_version_ok(const char *v);
bool goman_install_channel_ok(const char *c);

/* goman_presign_lifetime (the life of the air-gap URLs): goman/s3.h */

/* PutParameter SecureString name = value with Overwrite (Advanced tier past 4 KB). The
 * request is wiped after the call. 0, or -1 with err. */
int goman_secret_put(struct goman_aws *aws, const char *name, const char *value,
		     const char *description, struct goman_err *err);

/* Cluster token: get-or-create the SecureString `name` (PutParameter without Overwrite,
 * so concurrent and repeated runs agree). want_value: also read it back with decryption
 * into *value (malloc'd, caller frees; wipe it). *created says whether this run made it. */
int goman_token_ensure(struct goman_aws *aws, const char *name, bool want_value, char **value,
		       bool *created, struct goman_err *err);

#endif
