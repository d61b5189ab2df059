/*
 * install_int.h - what install.c (the scheduler), install_ssm.c (SSM Run Command) and
 * install_proc.c (ssh and local child processes) share. gm_inst_ names; nothing public.
 *
 * Ownership: struct gm_install owns every node (and each node its record, its output
 * buffer and its child's fds). Transports never free nodes: they report the end of a node
 * with gm_inst_node_done(), which emits and marks it done; nodes are freed with the
 * installer.
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

struct gm_inode {
	struct gm_install *in;  /* the owner (timers and callbacks get the node) */
	struct gm_inode *next;  /* all nodes, in arrival order */
	struct gm_inode *qnext; /* ready queue / SSM group / poll queue */
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
	/* ssm */
	char command_id[64];
	int64_t t_send, deliver_until, exec_until;
	int64_t retry_ms; /* back-off of the next SendCommand retry / failed poll */
	long timer;
	int polls, sends, rejects; /* rejects: InvalidInstanceId answers */
	bool queued;               /* in a group or the poll queue */
	/* proc */
	pid_t pid;
	int out_fd, in_fd;
	char *stdin_data; /* script + token for ssh; token for local (wiped) */
	size_t stdin_len, stdin_off;
	size_t line_off; /* start of the not yet parsed part of out */
	bool exited, eof;
	int status;
	/* output */
	struct gm_buf out;
};

struct gm_install {
	struct goman_install_opts o; /* strings below are owned copies */
	char *token;                 /* ssh/local token (wiped at free) */
	char cluster[64];
	char token_param[160];
	char airgap_param[160]; /* ssm: the SecureString holding the air-gap URLs */
	char server_url[300];
	char *script; /* the script text (ssm, ssh) */
	size_t script_len;
	struct gm_inode *nodes, **tail;
	struct gm_inode *first; /* the first server (index 0) */
	struct gm_inode *verify;
	struct gm_inode *ready_head, **ready_tail; /* proc: waiting for a slot */
	int running; /* proc: children; ssm: SendCommand + GetCommandInvocation
				      * calls in flight (at most o.concurrency) */
	bool input_done, cluster_init_decided, cluster_init, verified_done, finished;
	bool token_failed, first_ok;
	/* action: the first server (where kubectl runs) is known */
	bool server_known;
	char server_iid[32], server_host[256];
	struct goman_err token_err;
	int servers_seen, nodes_total, nodes_done, nodes_ok;
	int64_t t0;
	struct goman_outcome oc;
	/* ssm */
	struct gm_inode *group[GM_K_MAX];
	int group_n[GM_K_MAX];
	long group_timer[GM_K_MAX];
	struct gm_inode *pollq_head, **pollq_tail;
	int64_t learned_ms;     /* shortest install seen so far (send → done) */
	int64_t learned_reg_ms; /* shortest arrival → accepted of a node SSM first did not
				      * know (InvalidInstanceId): when young instances register */
	unsigned long ssm_sends, ssm_polls;
	/* proc */
	long proc_timer;
	long first_timer;
	struct gm_batch *batches; /* SendCommands in flight (freed with the installer) */
	struct gm_batch *sendq;   /* SendCommands waiting for a slot (sent before polls) */
};

/* scheduler (install.c) */
void gm_inst_node_done(struct gm_install *in, struct gm_inode *n, const struct goman_err *e,
		       int exit_code);
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
/* the cordon/drain/uncordon command of an action node (shell text, malloc'd) */
char *gm_inst_action_cmd(struct gm_install *in, const struct gm_inode *n);

/* SSM transport (install_ssm.c) */
void gm_inst_ssm_enqueue(struct gm_install *in, struct gm_inode *n);
/* the input ended: groups waiting for their batch window go now (nothing else will join) */
void gm_inst_ssm_input_done(struct gm_install *in);
void gm_inst_ssm_free(struct gm_install *in);

/* ssh/local transport (install_proc.c) */
int gm_inst_proc_start(struct gm_install *in, struct gm_inode *n, struct goman_err *err);
void gm_inst_proc_free(struct gm_install *in);

/* the AWS submit of the SSM transport: goman_aws_submit, replaced by unit tests */
typedef int (*gm_inst_submit_fn)(struct goman_aws *a, const struct goman_aws_call *call,
				 goman_aws_done_fn done, void *ud, struct goman_err *err);
extern gm_inst_submit_fn gm_inst_aws_submit;

#endif
