/*
 * creds_process.c - credential_process: run the user's command, read its JSON.
 *
 * The command line is split as the AWS CLI does (shlex: POSIX quotes and backslashes, no
 * variable or glob expansion) and run with posix_spawnp, never through a shell. Nothing of
 * ours goes on its argv (no secret ever does). Its stdin is /dev/null, because goman
 * commands read JSON lines on stdin and the child must not eat them; its stderr is
 * inherited so its prompts and errors reach the user; its stdout (capped) is the JSON:
 * {"Version":1,"AccessKeyId","SecretAccessKey","SessionToken","Expiration"}.
 *
 * The command runs in a process group of its own and has GOMAN_CREDENTIAL_PROCESS_TIMEOUT_MS
 * (default 60 s) to finish: a hung helper (a prompt nobody answers, a dead network) must not
 * hang every goman command with it. On expiry the whole group is killed, so a helper that
 * forked its own children leaves none behind.
 *
 * Ownership: *out is filled for the caller (goman_creds_clear). Secrets read from the pipe
 * are wiped before the buffer is freed.
 * Errors: -1 with ECREDS (bad quoting, spawn failure, non-zero exit, timeout, bad JSON);
 * messages name the command (argv[0]) only, never its output.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cjson/cJSON.h>
#include "creds_int.h"
#include "bytes_int.h"

extern char **environ;

/* Output of a credential_process bigger than this is not credentials. */
#define PROC_MAX_OUT (64u * 1024u)
#define PROC_TIMEOUT_DEFAULT_MS 60000

/* the real clock, not goman's (tests may stop that one) */
static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t proc_timeout_ms(void)
{
	const char *v = gm_env("GOMAN_CREDENTIAL_PROCESS_TIMEOUT_MS");
	char *end;
	errno = 0;
	long long ms = v ? strtoll(v, &end, 10) : 0;
	/* a bad value is the default, not "no timeout" */
	if (!v || errno || end == v || *end || ms <= 0 || ms > INT32_MAX)
		return PROC_TIMEOUT_DEFAULT_MS;
	return ms;
}

void gm_argv_free(char **argv)
{
	if (!argv)
		return;
	for (char **a = argv; *a; a++)
		free(*a);
	free(argv);
}

GOMAN_TESTABLE char **gm_split_args(const char *s, struct goman_err *err)
{
	size_t n = 0, cap = 4, slen = strlen(s);
	char **argv = calloc(cap, sizeof(*argv));
	char *word = malloc(slen + 1);
	if (!argv || !word)
		goto nomem;
	const char *p = s;
	for (;;) {
		while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
			p++;
		if (!*p)
			break;
		size_t w = 0;
		while (*p && !(*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')) {
			if (*p == '\'') {
				const char *q = strchr(p + 1, '\'');
				if (!q)
					goto badquote;
				memcpy(word + w, p + 1, (size_t)(q - p - 1));
				w += (size_t)(q - p - 1);
				p = q + 1;
			} else if (*p == '"') {
				p++;
				while (*p && *p != '"') {
					/* inside double quotes a backslash escapes only these */
					if (*p == '\\' && p[1] && strchr("\\\"$`\n", p[1]))
						p++;
					word[w++] = *p++;
				}
				if (*p != '"')
					goto badquote;
				p++;
			} else if (*p == '\\') {
				if (!p[1])
					goto badquote;
				word[w++] = p[1];
				p += 2;
			} else {
				word[w++] = *p++;
			}
		}
		if (n + 2 > cap) {
			cap *= 2;
			char **na = realloc(argv, cap * sizeof(*na));
			if (!na)
				goto nomem;
			argv = na;
		}
		if (!(argv[n] = malloc(w + 1)))
			goto nomem;
		memcpy(argv[n], word, w);
		argv[n][w] = '\0';
		argv[++n] = NULL;
	}
	free(word);
	if (n == 0) {
		gm_argv_free(argv);
		goman_err_set(err, GOMAN_ECREDS, GOMAN_CLASS_AUTH, "CredentialProcessFailed",
			      "credential_process is empty");
		return NULL;
	}
	return argv;
badquote:
	free(word);
	gm_argv_free(argv);
	goman_err_set(err, GOMAN_ECREDS, GOMAN_CLASS_AUTH, "CredentialProcessFailed",
		      "credential_process has an unterminated quote or trailing backslash");
	return NULL;
nomem:
	free(word);
	gm_argv_free(argv);
	gm_err_oom(err);
	return NULL;
}

/* Runs argv; returns its stdout (malloc'd, NUL-terminated) or NULL with err. */
static char *run_capture(char **argv, size_t *outlen, struct goman_err *err)
{
	int fds[2];
	if (pipe2(fds, O_CLOEXEC) < 0) {
		goman_err_set(err, GOMAN_ECREDS, GOMAN_CLASS_AUTH, "CredentialProcessFailed",
			      "pipe: %s", strerror(errno));
		return NULL;
	}
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
	/* a command that ignores SIGPIPE because we do must not inherit that */
	posix_spawnattr_t at;
	posix_spawnattr_init(&at);
	sigset_t def;
	sigemptyset(&def);
	sigaddset(&def, SIGPIPE);
	posix_spawnattr_setsigdefault(&at, &def);
	/* its own process group: on a timeout the group goes, grandchildren included */
	posix_spawnattr_setpgroup(&at, 0);
	posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP);
	pid_t pid;
	int rc = posix_spawnp(&pid, argv[0], &fa, &at, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&at);
	close(fds[1]);
	if (rc != 0) {
		close(fds[0]);
		goman_err_set(err, GOMAN_ECREDS, GOMAN_CLASS_AUTH, "CredentialProcessFailed",
			      "credential_process '%s': %s", argv[0], strerror(rc));
		return NULL;
	}
	char *buf = malloc(PROC_MAX_OUT + 1);
	size_t len = 0;
	bool toobig = false, timedout = false;
	int64_t limit = proc_timeout_ms();
	int64_t deadline = mono_ms() + limit;
	for (;;) {
		int64_t left = deadline - mono_ms();
		struct pollfd pfd = {.fd = fds[0], .events = POLLIN};
		int pr = left > 0 ? poll(&pfd, 1, (int)left) : 0;
		if (pr < 0 && errno == EINTR)
			continue;
		if (pr == 0) {
			timedout = true;
			break;
		}
		char scratch[4096];
		char *dst = buf && len < PROC_MAX_OUT ? buf + len : scratch;
		size_t room = buf && len < PROC_MAX_OUT ? PROC_MAX_OUT - len : sizeof(scratch);
		ssize_t r = read(fds[0], dst, room);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		if (dst == scratch)
			toobig = true; /* keep draining so the child is not stuck on a full pipe */
		else
			len += (size_t)r;
	}
	close(fds[0]);
	int status = 0;
	if (!timedout) {
		/* its stdout is closed but it may still run: the rest of the time is its own */
		for (;;) {
			pid_t w = waitpid(pid, &status, WNOHANG);
			if (w == pid || (w < 0 && errno != EINTR))
				break;
			if (mono_ms() >= deadline) {
				timedout = true;
				break;
			}
			struct timespec ts = {0, 10 * 1000 * 1000};
			nanosleep(&ts, NULL);
		}
	}
	if (timedout) {
		kill(-pid, SIGKILL);
		while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
			;
	}
	if (!buf) {
		gm_err_oom(err);
		return NULL;
	}
	buf[len] = '\0';
	const char *why = NULL;
	char whybuf[64];
	if (timedout) {
		snprintf(whybuf, sizeof(whybuf), "did not finish within %lld ms (killed)",
			 (long long)limit);
		why = whybuf;
	} else if (WIFSIGNALED(status)) {
		snprintf(whybuf, sizeof(whybuf), "was killed by signal %d", WTERMSIG(status));
		why = whybuf;
	} else if (WEXITSTATUS(status) != 0) {
		snprintf(whybuf, sizeof(whybuf), "exited %d", WEXITSTATUS(status));
		why = whybuf;
	} else if (toobig) {
		why = "wrote more than 64 KiB";
	}
	if (why) {
		explicit_bzero(buf, len);
		free(buf);
		goman_err_set(err, GOMAN_ECREDS, GOMAN_CLASS_AUTH, "CredentialProcessFailed",
			      "credential_process '%s' %s", argv[0], why);
		return NULL;
	}
	*outlen = len;
	return buf;
}

int gm_creds_process(const char *cmdline, struct goman_creds *out, struct goman_err *err)
{
	char **argv = gm_split_args(cmdline, err);
	if (!argv)
		return -1;
	size_t len = 0;
	char *text = run_capture(argv, &len, err);
	int rc = -1;
	cJSON *j = NULL;
	if (!text)
		goto done;
	j = cJSON_ParseWithLength(text, len);
	if (!cJSON_IsObject(j)) {
		goman_err_set(err, GOMAN_ECREDS, GOMAN_CLASS_AUTH, "CredentialProcessFailed",
			      "credential_process '%s' did not print a JSON object", argv[0]);
		goto done;
	}
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, "Version");
	if (!cJSON_IsNumber(v) || v->valuedouble != 1) {
		goman_err_set(err, GOMAN_ECREDS, GOMAN_CLASS_AUTH, "CredentialProcessFailed",
			      "credential_process '%s': unsupported Version (want 1)", argv[0]);
		goto done;
	}
	if (gm_creds_from_json(j, "SessionToken", "process", out, err) < 0)
		goto done;
	rc = 0;
done:
	if (j) {
		/* the tree holds copies of the secret: wipe them before freeing */
		cJSON *s = cJSON_GetObjectItemCaseSensitive(j, "SecretAccessKey");
		if (cJSON_IsString(s))
			explicit_bzero(s->valuestring, strlen(s->valuestring));
		cJSON_Delete(j);
	}
	if (text) {
		explicit_bzero(text, len);
		free(text);
	}
	gm_argv_free(argv);
	return rc;
}
