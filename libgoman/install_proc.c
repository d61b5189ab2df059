/*
 * install_proc.c - goman-install over SSH (the OpenSSH client) or on this host.
 *
 * Each node is a child made with posix_spawn: `ssh [opts] host 'bash -s -- FLAGS'` with
 * the script and then the token line on its stdin (bash reads a piped script a byte at a
 * time, so the line after the script is left for the script's own `read`), or locally
 * `sh SCRIPT FLAGS --token-stdin` with only the token on stdin. The token is never in an
 * argv. ssh runs with BatchMode=yes and StrictHostKeyChecking=accept-new, honours
 * ~/.ssh/config (or -F), and gets -p/-i/-l from the options. The child's stdout is a
 * non-blocking pipe read by a 50 ms loop timer (the goman_http loop watches one extra fd
 * only, and that is stdin): GOMAN_PROGRESS lines become [INSTALL] log lines as they come,
 * the whole output is kept for GOMAN_RESULT. stderr is inherited (the script's log lines
 * and ssh's messages reach the operator as they are). A child past the execution timeout
 * gets SIGTERM, then SIGKILL.
 *
 * Ownership: the node owns its fds and stdin buffer (wiped when freed); children still
 * running when the installer is freed are killed and reaped.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <openssl/crypto.h>
#include "goman/addr.h"
#include "goman/clock.h"
#include "goman/http.h"
#include "goman/log.h"
#include "install_int.h"
#include "bytes_int.h"

extern char **environ;

#define TICK_MS 50
#define OUT_CAP (256 * 1024)

/* a node's child (n->tp) */
struct proc_node {
	pid_t pid;
	int out_fd, in_fd;
	char *stdin_data; /* script + token for ssh; token for local (wiped) */
	size_t stdin_len, stdin_off;
	size_t line_off; /* start of the not yet parsed part of out */
	bool exited, eof, timed_out;
	int status;
	int64_t term_at; /* when SIGTERM went at the execution timeout */
};

/* the installer's (in->tp) */
struct proc_inst {
	long timer; /* the 50 ms loop tick */
};

static struct proc_node *PN(const struct gm_inode *n)
{
	return n->tp;
}

static struct proc_inst *PI(const struct gm_install *in)
{
	return in->tp;
}

static void tick(void *ud);

static void arm(struct gm_install *in)
{
	if (!PI(in)->timer)
		PI(in)->timer = goman_http_timer(in->o.http, TICK_MS, tick, in);
}

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

static void wipe_stdin(struct gm_inode *n)
{
	if (PN(n)->stdin_data) {
		OPENSSL_cleanse(PN(n)->stdin_data, PN(n)->stdin_len);
		free(PN(n)->stdin_data);
	}
	PN(n)->stdin_data = NULL;
	PN(n)->stdin_len = PN(n)->stdin_off = 0;
}

/* Parses complete new lines: GOMAN_PROGRESS → log. */
static void scan_lines(struct gm_install *in, struct gm_inode *n)
{
	(void)in;
	while (n->out.p && PN(n)->line_off < n->out.len) {
		char *s = n->out.p + PN(n)->line_off;
		char *e = memchr(s, '\n', n->out.len - PN(n)->line_off);
		if (!e)
			break;
		if (!strncmp(s, "GOMAN_PROGRESS ", 15) && n->kind != GM_K_VERIFY) {
			char *end;
			long v = strtol(s + 15, &end, 10);
			if (end != s + 15 && v >= 0 && v <= 100) {
				n->progress = (int)v;
				while (*end == ' ')
					end++;
				goman_log(GOMAN_LOG_INFO, "INSTALL", "%s: %ld%% %.*s", n->name, v,
					  (int)(e - end), end);
			}
		}
		PN(n)->line_off = (size_t)(e - n->out.p) + 1;
	}
}

static void pump(struct gm_install *in, struct gm_inode *n)
{
	if (PN(n)->in_fd >= 0) {
		while (PN(n)->stdin_off < PN(n)->stdin_len) {
			ssize_t w = write(PN(n)->in_fd, PN(n)->stdin_data + PN(n)->stdin_off,
					  PN(n)->stdin_len - PN(n)->stdin_off);
			if (w > 0) {
				PN(n)->stdin_off += (size_t)w;
				continue;
			}
			if (w < 0 && errno == EINTR)
				continue;
			if (w < 0 && errno == EAGAIN)
				break;
			PN(n)->stdin_off =
				PN(n)->stdin_len; /* EPIPE: the child is gone or stopped reading */
		}
		if (PN(n)->stdin_off >= PN(n)->stdin_len) {
			close_fd(&PN(n)->in_fd);
			wipe_stdin(n);
		}
	}
	if (PN(n)->out_fd >= 0) {
		char buf[8192];
		for (;;) {
			ssize_t r = read(PN(n)->out_fd, buf, sizeof(buf));
			if (r > 0) {
				if (n->out.len < OUT_CAP)
					gm_buf_add(&n->out, buf, (size_t)r);
				continue;
			}
			if (r < 0 && errno == EINTR)
				continue;
			if (r == 0 || (r < 0 && errno != EAGAIN)) {
				close_fd(&PN(n)->out_fd);
				PN(n)->eof = true;
			}
			break;
		}
		scan_lines(in, n);
	}
	if (!PN(n)->exited) {
		int st;
		pid_t p = waitpid(PN(n)->pid, &st, WNOHANG);
		if (p == PN(n)->pid) {
			PN(n)->exited = true;
			PN(n)->status = st;
		}
	}
}

static void finish(struct gm_install *in, struct gm_inode *n)
{
	close_fd(&PN(n)->in_fd);
	close_fd(&PN(n)->out_fd);
	wipe_stdin(n);
	PN(n)->pid = 0;
	struct goman_err e = GOMAN_ERR_INIT;
	goman_err_clear(&e);
	int code = 0;
	if (PN(n)->timed_out) {
		goman_err_set(&e, GOMAN_ETIMEOUT, GOMAN_CLASS_TIMEOUT, "ExecutionTimeout",
			      "no result within the execution timeout (%lld ms)",
			      (long long)in->o.timeout_ms);
	} else if (WIFEXITED(PN(n)->status)) {
		code = WEXITSTATUS(PN(n)->status);
		/* ssh itself failing (connection, auth, host key) is 255 with no script result */
		if (code == 255 && in->o.via == GOMAN_VIA_SSH &&
		    !(n->out.p && strstr(n->out.p, "GOMAN_RESULT ")))
			goman_err_set(&e, GOMAN_ECHILD, GOMAN_CLASS_TRANSIENT, "SshFailed",
				      "ssh to %s failed (exit 255)", n->host);
	} else {
		goman_err_set(&e, GOMAN_ECHILD, GOMAN_CLASS_START, "Killed",
			      "install process ended by signal %d",
			      WIFSIGNALED(PN(n)->status) ? WTERMSIG(PN(n)->status) : 0);
	}
	in->done(in, n, e.rc ? &e : NULL, code);
}

static void check_node(struct gm_install *in, struct gm_inode *n, int64_t now, bool *any)
{
	if (n->state != GM_N_RUNNING || !n->tp || PN(n)->pid <= 0)
		return;
	pump(in, n);
	if (PN(n)->exited && PN(n)->eof) {
		finish(in, n);
		return;
	}
	if (PN(n)->exited && PN(n)->out_fd >= 0) {
		/* a grandchild still holds the pipe: take what is there and stop */
		close_fd(&PN(n)->out_fd);
		PN(n)->eof = true;
		finish(in, n);
		return;
	}
	if (now - n->t_start > in->o.timeout_ms) {
		if (!PN(n)->timed_out) {
			PN(n)->timed_out = true;
			PN(n)->term_at = now;
			kill(PN(n)->pid, SIGTERM);
		} else if (now - PN(n)->term_at > 2000) {
			kill(PN(n)->pid, SIGKILL);
		}
	}
	*any = true;
}

static void tick(void *ud)
{
	struct gm_install *in = ud;
	PI(in)->timer = 0;
	int64_t now = goman_mono_ms();
	bool any = false;
	for (struct gm_inode *n = in->nodes; n; n = n->next)
		check_node(in, n, now, &any);
	if (in->verify)
		check_node(in, in->verify, now, &any);
	if (any || in->running > 0)
		arm(in);
}

static char **push(char **v, size_t *n, const char *s)
{
	char **nv = realloc(v, (*n + 2) * sizeof(*v));
	if (!nv)
		return v;
	nv[*n] = strdup(s);
	if (nv[*n])
		(*n)++;
	nv[*n] = NULL;
	return nv;
}

/* ssh argv up to and including the host; the remote command is added by the caller */
static char **ssh_argv(struct gm_install *in, const struct gm_inode *n, size_t *c)
{
	const struct goman_install_opts *o = &in->o;
	char **v = NULL;
	char port[16];
	v = push(v, c, o->ssh_bin ? o->ssh_bin : "ssh");
	v = push(v, c, "-T");
	v = push(v, c, "-o");
	v = push(v, c, "BatchMode=yes");
	v = push(v, c, "-o");
	v = push(v, c, "StrictHostKeyChecking=accept-new");
	v = push(v, c, "-o");
	v = push(v, c, "ConnectTimeout=15");
	if (o->ssh_config) {
		v = push(v, c, "-F");
		v = push(v, c, o->ssh_config);
	}
	if (o->ssh_port > 0) {
		snprintf(port, sizeof(port), "%d", o->ssh_port);
		v = push(v, c, "-p");
		v = push(v, c, port);
	}
	if (o->ssh_key) {
		v = push(v, c, "-i");
		v = push(v, c, o->ssh_key);
	}
	if (o->ssh_user) {
		v = push(v, c, "-l");
		v = push(v, c, o->ssh_user);
	}
	v = push(v, c, "--");
	v = push(v, c, n->host);
	return v;
}

/* The child's argv (ssh or sh) and what goes to its stdin (the script over ssh, the air-gap
 * line, the token); NULL on no memory. */
static char **child_argv(struct gm_install *in, struct gm_inode *n, struct gm_buf *in_data)
{
	const struct goman_install_opts *o = &in->o;
	char **argv = NULL;
	size_t c = 0;
	struct gm_buf remote = {0};
	if (n->kind == GM_K_VERIFY || n->kind == GM_K_ACTION) {
		char *cmd =
			n->kind == GM_K_VERIFY ? gm_inst_verify_cmd(in) : gm_inst_action_cmd(in, n);
		if (!cmd)
			return NULL;
		if (o->via == GOMAN_VIA_SSH) {
			argv = ssh_argv(in, n, &c);
			gm_buf_adds(&remote, o->ssh_sudo ? "sudo -n sh -c " : "sh -c ");
			gm_buf_quote(&remote, cmd);
			argv = push(argv, &c, remote.p ? remote.p : "");
		} else {
			argv = push(argv, &c, "sh");
			argv = push(argv, &c, "-c");
			argv = push(argv, &c, cmd);
		}
		free(cmd);
		gm_buf_free(&remote);
		return argv;
	}
	char **args = gm_inst_script_args(in, n);
	char **nargs = gm_inst_node_args(n);
	if (o->via == GOMAN_VIA_SSH) {
		argv = ssh_argv(in, n, &c);
		gm_buf_adds(&remote, o->ssh_sudo ? "sudo -n bash -s --" : "bash -s --");
		for (size_t i = 0; args && args[i]; i++) {
			gm_buf_adds(&remote, " ");
			gm_buf_quote(&remote, args[i]);
		}
		for (size_t i = 0; nargs && nargs[i]; i++) {
			gm_buf_adds(&remote, " ");
			gm_buf_quote(&remote, nargs[i]);
		}
		argv = push(argv, &c, remote.p ? remote.p : "");
		gm_buf_add(in_data, in->script, in->script_len);
		if (in->script_len && in->script[in->script_len - 1] != '\n')
			gm_buf_adds(in_data, "\n");
	} else {
		argv = push(argv, &c, "sh");
		argv = push(argv, &c, o->script_path);
		for (size_t i = 0; args && args[i]; i++)
			argv = push(argv, &c, args[i]);
		for (size_t i = 0; nargs && nargs[i]; i++)
			argv = push(argv, &c, nargs[i]);
	}
	gm_inst_argv_free(args);
	gm_inst_argv_free(nargs);
	/* the script reads the air-gap line first, then the token line */
	char *ag = gm_inst_airgap_line(in);
	if (ag) {
		gm_buf_adds(in_data, ag);
		gm_buf_adds(in_data, "\n");
		OPENSSL_cleanse(ag, strlen(ag));
		free(ag);
	}
	if (in->token) {
		gm_buf_adds(in_data, in->token);
		gm_buf_adds(in_data, "\n");
	}
	gm_buf_free(&remote);
	return argv;
}

static int proc_start(struct gm_install *in, struct gm_inode *n, struct goman_err *err)
{
	if ((!in->tp && !(in->tp = calloc(1, sizeof(struct proc_inst)))) ||
	    (!n->tp && !(n->tp = calloc(1, sizeof(struct proc_node)))))
		return gm_err_oom(err);
	PN(n)->out_fd = PN(n)->in_fd = -1;
	struct gm_buf in_data = {0};
	/* records are checked on arrival; this is the last stop before a host gets the token */
	if (in->o.via == GOMAN_VIA_SSH && !goman_addr_ok(n->host))
		return goman_err_set(err, GOMAN_EINVAL, GOMAN_CLASS_BAD_INPUT, "BadInput", "%s",
				     "the ssh host is not an IP address or host name");
	char **argv = child_argv(in, n, &in_data);
	int pin[2] = {-1, -1}, pout[2] = {-1, -1};
	posix_spawn_file_actions_t fa;
	bool fa_ok = false;
	int rc = -1;
	if (!argv || pipe2(pin, O_CLOEXEC) || pipe2(pout, O_CLOEXEC)) {
		goman_err_set(err, GOMAN_EIO, GOMAN_CLASS_NONE, "Spawn", "pipe: %s",
			      strerror(errno));
		goto out;
	}
	if (posix_spawn_file_actions_init(&fa) == 0)
		fa_ok = true;
	if (!fa_ok || posix_spawn_file_actions_adddup2(&fa, pin[0], 0) ||
	    posix_spawn_file_actions_adddup2(&fa, pout[1], 1)) {
		gm_err_oom(err);
		goto out;
	}
	/* we ignore SIGPIPE; the child gets the default back */
	posix_spawnattr_t at;
	sigset_t def;
	posix_spawnattr_init(&at);
	sigemptyset(&def);
	sigaddset(&def, SIGPIPE);
	posix_spawnattr_setsigdefault(&at, &def);
	posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGDEF);
	pid_t pid;
	int e = posix_spawnp(&pid, argv[0], &fa, &at, argv, environ);
	posix_spawnattr_destroy(&at);
	if (e) {
		goman_err_set(err, GOMAN_ECHILD, GOMAN_CLASS_PRECHECK, "Spawn", "cannot run %s: %s",
			      argv[0], strerror(e));
		goto out;
	}
	PN(n)->pid = pid;
	PN(n)->in_fd = pin[1];
	PN(n)->out_fd = pout[0];
	pin[1] = pout[0] = -1;
	fcntl(PN(n)->in_fd, F_SETFL, O_NONBLOCK);
	fcntl(PN(n)->out_fd, F_SETFL, O_NONBLOCK);
	PN(n)->stdin_data = in_data.p;
	PN(n)->stdin_len = in_data.len;
	PN(n)->stdin_off = 0;
	in_data.p = NULL;
	PN(n)->exited = PN(n)->eof = false;
	PN(n)->timed_out = false;
	pump(in, n);
	arm(in);
	rc = 0;
out:
	if (fa_ok)
		posix_spawn_file_actions_destroy(&fa);
	for (int i = 0; i < 2; i++) {
		close_fd(&pin[i]);
		close_fd(&pout[i]);
	}
	if (in_data.p)
		OPENSSL_cleanse(in_data.p, in_data.len);
	gm_buf_free(&in_data);
	gm_inst_argv_free(argv);
	return rc;
}

static void reap(struct gm_inode *n)
{
	if (!n->tp)
		return;
	if (PN(n)->pid > 0 && !PN(n)->exited) {
		kill(PN(n)->pid, SIGTERM);
		waitpid(PN(n)->pid, NULL, 0);
	}
	PN(n)->pid = 0;
	close_fd(&PN(n)->in_fd);
	close_fd(&PN(n)->out_fd);
	wipe_stdin(n);
}

static void proc_free(struct gm_install *in)
{
	if (!in->tp)
		return;
	if (PI(in)->timer)
		goman_http_timer_cancel(in->o.http, PI(in)->timer);
	for (struct gm_inode *n = in->nodes; n; n = n->next)
		reap(n);
	if (in->verify)
		reap(in->verify);
	free(in->tp);
	in->tp = NULL;
}

const struct gm_inst_ops gm_inst_proc_ops = {
	.start = proc_start,
	.free = proc_free,
	.slots = true,
};
