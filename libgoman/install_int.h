/*
 * install_int.h - what install.c (the scheduler), install_ssm.c (SSM Run Command),
 * install_proc.c (ssh and local child processes) and install_text.c (the commands and
 * flags they send) share. gm_inst_ names; nothing public. Dependencies point down only:
 * install.c -> transports (through their ops tables) -> install_text.c.
 *
 * Ownership: struct gm_install owns every node (and each node its record and output
 * buffer; the transport's fields hang off n->tp and in->tp and are freed by its ops).
 * Transports never free nodes: they report the end of a node through in->done, which
 * emits and marks it done; nodes are freed with the installer.
 */
#ifndef GOMAN_INSTALL_INT_H
#define GOMAN_INSTALL_INT_H
#include "buf_int.h"
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include "goman/aws.h"
#include "goman/error.h"
#include "goman/install.h"
#include "internal.h"

struct cJSON;

/* what a node does; SSM groups nodes of one kind into one SendCommand (same text) */
/* GM_K_ACTION: a cordon/drain/uncordon of one node, run on the first server; its text names
 * the node, so it goes alone (one instance per SendCommand) */
enum gm_kind { GM_K_FIRST = 0, GM_K_JOIN, GM_K_AGENT, GM_K_VERIFY, GM_K_ACTION, GM_K_MAX };
enum gm_nstate { GM_N_WAIT = 0, GM_N_READY, GM_N_RUNNING, GM_N_DONE };

#define GM_SSM_MAX_IDS 50
/* the largest node index (goman-provision names and tags no more) */
#define GM_INST_MAX_INDEX 99999
/* the longest duration option (ms), as goman_parse_duration_ms() allows */
#define GM_INST_MAX_MS 9000000000000000LL

struct gm_install;
struct gm_inode;

/* A transport's end of a node (or of the verification): the scheduler's callback, handed
 * to every transport in struct gm_install, so no transport names install.c's functions.
 * e NULL (or rc GOMAN_OK) with exit_code 0 is success; n->out holds what the node printed. */
typedef void (*gm_inst_done_fn)(struct gm_install *in, struct gm_inode *n,
				const struct goman_err *e, int exit_code);

/* A transport (SSM, ssh/local): the scheduler calls start() for each node whose turn came
 * (at most o.concurrency at once when `slots`; an SSM install queues its own API calls),
 * and the transport reports the end through in->done. free releases what the transport
 * keeps in in->tp (n->tp is one malloc'd block the scheduler frees); annotate adds its fields to a finished record's
 * "install"/"drain" object. */
struct gm_inst_ops {
	int (*start)(struct gm_install *in, struct gm_inode *n, struct goman_err *err);
	void (*input_done)(struct gm_install *in); /* NULL: nothing waits for the input */
	void (*annotate)(const struct gm_inode *n, struct cJSON *st); /* NULL: nothing */
	void (*free)(struct gm_install *in);
	bool slots; /* the scheduler holds nodes beyond o.concurrency in its ready queue */
};

extern const struct gm_inst_ops gm_inst_ssm_ops;  /* install_ssm.c */
extern const struct gm_inst_ops gm_inst_proc_ops; /* install_proc.c: ssh and local */

struct gm_inode {
	struct gm_install *in;  /* the owner (timers and callbacks get the node) */
	struct gm_inode *next;  /* all nodes, in arrival order */
	struct gm_inode *qnext; /* ready queue / the transport's own queues */
	struct cJSON *rec;      /* the input record (owned) */
	long line;
	enum gm_kind kind;
	enum gm_nstate state;
	char name[128], role[16], iid[32], ip[256], host[256]; /* ip, host: goman_addr_ok */
	/* GM_K_ACTION: iid and host are the first server's (where kubectl runs); name is
	 * the node acted on */
	int64_t t_arrive, t_start; /* mono ms */
	int64_t t_start_wall;      /* epoch ms of t_start (t.install_start in the record) */
	int progress;
	bool ok; /* finished without error */
	/* the record's "server_url" (checked): the first server's address, known to the
	 * provisioner before that server's own record arrives */
	char server_url[300];
	void *tp; /* the transport's own fields (one malloc'd block, freed with the node) */
	struct gm_buf out; /* what the node printed */
};

struct gm_install {
	struct goman_install_opts o; /* strings below are owned copies */
	const struct gm_inst_ops *ops;
	gm_inst_done_fn done; /* the scheduler's end of a node, for the transport */
	void *tp;             /* the transport's own fields (its free frees them) */
	char *token;          /* ssh/local token (wiped at free) */
	char cluster[64];
	char token_param[160];
	char airgap_param[160]; /* ssm: the SecureString holding the air-gap URLs */
	char server_url[300];
	char *script; /* the script text (ssm, ssh) */
	size_t script_len;
	struct gm_inode *nodes, **tail;
	struct gm_inode *first; /* the first server (index 0) */
	struct gm_inode *verify;
	struct gm_inode *ready_head, **ready_tail; /* slots: waiting for one */
	int running;                               /* slots: nodes started and not done */
	bool input_done, cluster_init_decided, cluster_init, verified_done, finished;
	bool token_failed, first_ok;
	/* action: the first server (where kubectl runs) is known */
	bool server_known;
	char server_iid[32], server_host[256];
	struct goman_err token_err;
	int servers_seen, nodes_total, nodes_done, nodes_ok;
	int64_t t0;
	struct goman_outcome oc;
	long first_timer;
};

/* The server a (non-first) node joins: --server-url, else its record's "server_url", else
 * the first server's private IP (empty while unknown). */
static inline const char *gm_inst_server_url(const struct gm_install *in, const struct gm_inode *n)
{
	return in->o.server_url || !n->server_url[0] ? in->server_url : n->server_url;
}

/* The back-off of a failed poll or check: --poll-interval, then doubled, at most 4 x. */
static inline int64_t gm_inst_poll_backoff(const struct gm_install *in, int64_t prev)
{
	int64_t d = prev > 0 ? prev * 2 : in->o.poll_ms;
	return d > 4 * in->o.poll_ms ? 4 * in->o.poll_ms : d;
}

/* What the transports send (install_text.c): below the scheduler and the transports. */
/* the script's flags for this node (non-secret), NULL-terminated, malloc'd strings;
 * free with gm_inst_argv_free() */
char **gm_inst_script_args(struct gm_install *in, const struct gm_inode *n);
void gm_inst_argv_free(char **argv);
/* True when the run installs from air-gap URLs. */
bool gm_inst_airgap(const struct gm_install *in);
/* "BINARY_URL CHECKSUM_URL" (malloc'd; it holds the session token: wipe, then free), or
 * NULL without air-gap or on no memory. */
char *gm_inst_airgap_line(const struct gm_install *in);
/* the per-node flags (--node-name, --node-label, --node-taint; from the record checked on
 * arrival), NULL-terminated, malloc'd; free with gm_inst_argv_free() */
char **gm_inst_node_args(const struct gm_inode *n);
/* the verification command (shell text, malloc'd) */
char *gm_inst_verify_cmd(struct gm_install *in);
/* the cordon/drain/uncordon/delete command of an action node (shell text, malloc'd) */
char *gm_inst_action_cmd(struct gm_install *in, const struct gm_inode *n);
/* "install", "cordon", ... by enum goman_install_action */
extern const char *const gm_inst_action_names[];

/* SSM transport internals the unit tests look at: SendCommands waiting for a slot, polls
 * due and waiting for one */
bool gm_inst_ssm_sends_waiting(const struct gm_install *in);
bool gm_inst_ssm_polls_waiting(const struct gm_install *in);

/* the AWS submit of the SSM transport: goman_aws_submit, replaced by unit tests */
typedef int (*gm_inst_submit_fn)(struct goman_aws *a, const struct goman_aws_call *call,
				 goman_aws_done_fn done, void *ud, struct goman_err *err);
extern gm_inst_submit_fn gm_inst_aws_submit;

#endif
