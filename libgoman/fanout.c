/*
 * fanout.c - the process pool of goman-fanout (see goman/fanout.h): input, spawning, the
 * poll loop, retries and timers. Beside it: fanout_opts.c (defaults, --halt, exit status),
 * fanout_policy.c (-j auto, halting, throttling), fanout_order.c (whole lines, input order,
 * joblog), fanout_bar.c (the progress bar, a hook the caller installs); fanout_int.h is the
 * seam.
 *
 * One poll(2) loop, no threads. A job is CMD started with posix_spawnp (vfork-based in glibc:
 * no page-table copy), in its own process group so a timeout can TERM/KILL whatever the job
 * started. Its input goes down a pipe (written before the spawn when it fits in PIPE_BUF, so
 * the common job costs no extra poll round), its stdout comes back into a per-job buffer and
 * leaves only as complete lines: each write(2) to out_fd carries whole lines, so a line is
 * never cut, however long. With keep_order a job's output waits until every earlier job is
 * written; a waiting job's buffer stops being read past order_buf bytes (the child then
 * blocks on its pipe), and at most `window` (4 x slots, >= 16) jobs are in flight ahead of
 * the oldest, so memory stays below window x (order_buf + 64 KiB) plus the longest line.
 * Children are reaped from a SIGCHLD self-pipe; a job is finished once it is reaped AND its
 * stdout is at EOF.
 *
 * Ownership: every struct gm_fo_job is owned by the engine from the moment its first line is
 * read until its output is written (then freed). Errors: -1 + struct goman_err, after the running
 * jobs are killed and reaped; the jobs' own failures are records, not errors.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cjson/cJSON.h>
#include "goman/clock.h"
#include "goman/fanout.h"
#include "goman/jsonl.h"
#include "goman/log.h"
#include "bytes_int.h"
#include "fanout_int.h"

extern char **environ;

#define CPU_FACTOR 8
#define RETRY_DELAY_CAP_MS 10000

static int sigfd[2] = {-1, -1};

/* ---- small pieces ------------------------------------------------------------------- */

/* gm_buf's out-of-memory is sticky; here each add is checked where it happens */
static int buf_add(struct gm_buf *b, const char *p, size_t n)
{
	gm_buf_add(b, p, n);
	return b->oom ? -1 : 0;
}

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

static int oom(struct gm_fo *f)
{
	f->fatal = true;
	return gm_err_oom(f->err);
}

/* Count of '\n' in p[0..n). */
static unsigned long count_nl(const char *p, size_t n)
{
	unsigned long c = 0;
	const char *e = p + n;
	while (p < e && (p = memchr(p, '\n', (size_t)(e - p)))) {
		c++;
		p++;
	}
	return c;
}

/* ---- records ------------------------------------------------------------------------ */

/* Appends the record for one input line (text, len) of job j to j->out: an error record
 * when e is set, else the input with "ok":true (--pass). */
static int add_record(struct gm_fo *f, struct gm_fo_job *j, const char *line, size_t len,
		      long lineno, const struct goman_err *e, cJSON *details)
{
	cJSON *in = f->o->raw ? NULL : cJSON_ParseWithLength(line, len);
	cJSON *rec;
	if (e) {
		rec = goman_jsonl_error_record(cJSON_IsObject(in) ? in : NULL, "fanout", e, lineno);
		if (rec && (f->o->raw || !cJSON_IsObject(in))) {
			cJSON *fo = cJSON_GetObjectItemCaseSensitive(rec, "fanout");
			/* the line could not be a record: carry its text, so nothing is lost */
			if (fo && line)
				cJSON_AddItemToObject(fo, "input",
						      cJSON_CreateString(line ? line : ""));
		}
	} else if (cJSON_IsObject(in)) {
		rec = in;
		in = NULL;
		cJSON_DeleteItemFromObjectCaseSensitive(rec, "ok");
		cJSON_AddBoolToObject(rec, "ok", true);
	} else {
		/* --pass --raw: echo the line as it came */
		cJSON_Delete(in);
		return buf_add(&j->out, line, len) || buf_add(&j->out, "\n", 1) ? oom(f) : 0;
	}
	cJSON_Delete(in);
	if (!rec)
		return oom(f);
	if (e && details) {
		cJSON *fo = cJSON_GetObjectItemCaseSensitive(rec, "fanout");
		for (cJSON *d = details->child; d && fo; d = d->next)
			cJSON_AddItemToObject(fo, d->string, cJSON_Duplicate(d, 1));
	}
	char *s = cJSON_PrintUnformatted(rec);
	cJSON_Delete(rec);
	if (!s)
		return oom(f);
	int rc = buf_add(&j->out, s, strlen(s)) || buf_add(&j->out, "\n", 1) ? oom(f) : 0;
	cJSON_free(s);
	f->st->lines_out++;
	return rc;
}

/* One record per input line of j (error or pass). Lines are NUL-split in place then
 * restored, so `in` can be logged afterwards. */
static int add_records(struct gm_fo *f, struct gm_fo_job *j, const struct goman_err *e,
		       cJSON *details)
{
	char *p = j->in.p, *end = j->in.p + j->in.len;
	long lineno = j->first_line;
	size_t k = 0;
	while (p < end) {
		char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);
		if (nl)
			*nl = '\0';
		if (details && j->nlines > 1) {
			cJSON_DeleteItemFromObjectCaseSensitive(details, "batch_index");
			cJSON_AddNumberToObject(details, "batch_index", (double)k);
		}
		int rc = add_record(f, j, p, len, lineno, e, details);
		if (nl)
			*nl = '\n';
		if (rc)
			return rc;
		p += len + 1;
		lineno++;
		k++;
	}
	return 0;
}

/* ---- progress --------------------------------------------------------------------- */

/* Calls the progress hook, at most every progress_ms unless this is the last call. */
static void progress(struct gm_fo *f, bool last)
{
	if (!f->o->progress)
		return;
	int64_t now = goman_mono_ms();
	if (!last && now - f->last_progress < f->o->progress_ms)
		return;
	f->last_progress = now;
	struct goman_fanout_progress p = {
		.done = f->st->jobs,
		.failed = f->st->failed,
		.running = f->nrun,
		.bytes_in = f->bytes_in,
		.bytes_total = f->bytes_total,
		.elapsed_ms = now - f->t0,
		.last = last,
	};
	f->o->progress(&p, f->o->progress_ctx);
}

/* ---- slots ----------------------------------------------------------------------------- */

static void set_slots(struct gm_fo *f, int slots, const char *why)
{
	int64_t now = goman_mono_ms();
	f->st->slot_ms += (double)f->slots * (double)(now - f->last_slot_change);
	f->last_slot_change = now;
	if (slots != f->slots && why)
		goman_log(GOMAN_LOG_INFO, "PARALLEL", "concurrency %d -> %d (%s)", f->slots, slots,
			  why);
	f->slots = slots;
}

/* ---- spawning ----------------------------------------------------------------------------- */

static int feed(struct gm_fo_job *j)
{
	while (j->in_off < j->in.len) {
		ssize_t w = write(j->fd_in, j->in.p + j->in_off, j->in.len - j->in_off);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN)
				return 0;
			/* EPIPE: the job stopped reading; what it read is its business */
			close_fd(&j->fd_in);
			return 0;
		}
		j->in_off += (size_t)w;
	}
	close_fd(&j->fd_in);
	return 0;
}

static void spawn(struct gm_fo *f, struct gm_fo_job *j)
{
	int pin[2] = {-1, -1}, pout[2] = {-1, -1}, perr[2] = {-1, -1};
	bool cap_err = f->o->jobs == 0;
	j->attempts++;
	j->reaped = j->eof = j->timed_out = j->term_sent = j->throttled = false;
	j->out_lines = 0;
	j->recv = 0;
	j->in_off = 0;
	j->spawn_errno = 0;
	j->status = 0;
	j->out.len = 0;
	j->out_watched = 0;
	j->errb.len = 0;
	j->start_mono = goman_mono_ms();
	j->start_wall = goman_now_ms();
	j->deadline = f->o->timeout_ms > 0 ? j->start_mono + f->o->timeout_ms : 0;
	j->kill_at = 0;
	if (pipe2(pin, O_CLOEXEC) || pipe2(pout, O_CLOEXEC) ||
	    (cap_err && pipe2(perr, O_CLOEXEC))) {
		j->spawn_errno = errno;
		goto fail;
	}
	j->fd_in = pin[1];
	if (j->in.len <= PIPE_BUF) {
		/* fits an empty pipe whatever its size: no poll round for the input */
		feed(j);
	} else {
		fcntl(pin[1], F_SETFL, O_NONBLOCK);
		feed(j);
	}
	posix_spawn_file_actions_t fa;
	if (posix_spawn_file_actions_init(&fa)) {
		j->spawn_errno = ENOMEM;
		goto fail;
	}
	posix_spawn_file_actions_adddup2(&fa, pin[0], 0);
	posix_spawn_file_actions_adddup2(&fa, pout[1], 1);
	if (cap_err)
		posix_spawn_file_actions_adddup2(&fa, perr[1], 2);
	int rc = posix_spawnp(&j->pid, f->o->argv[0], &fa, &f->attr, f->o->argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	close_fd(&pin[0]);
	close_fd(&pout[1]);
	close_fd(&perr[1]);
	if (rc) {
		j->spawn_errno = rc;
		goto fail;
	}
	j->fd_out = pout[0];
	j->fd_err = perr[0];
	j->state = GM_JOB_RUNNING;
	f->run[f->nrun++] = j;
	if ((int)f->nrun > f->st->peak_running)
		f->st->peak_running = (int)f->nrun;
	return;
fail:
	close_fd(&pin[0]);
	close_fd(&pin[1]);
	close_fd(&pout[0]);
	close_fd(&pout[1]);
	close_fd(&perr[0]);
	close_fd(&perr[1]);
	j->fd_in = j->fd_out = j->fd_err = -1;
	j->pid = -1;
	j->reaped = j->eof = true;
	j->end_mono = j->start_mono;
	j->state = GM_JOB_RUNNING;
	f->run[f->nrun++] = j; /* finished at the next sweep, like any other job */
}

/* ---- finishing -------------------------------------------------------------------------- */

static void retry_push(struct gm_fo *f, struct gm_fo_job *j)
{
	j->next = NULL;
	if (f->retry_last)
		f->retry_last->next = j;
	else
		f->retry_first = j;
	f->retry_last = j;
}

static int fail_job(struct gm_fo *f, struct gm_fo_job *j, const struct goman_err *e, int code,
		    int sig)
{
	cJSON *d = cJSON_CreateObject();
	if (!d)
		return oom(f);
	cJSON_AddNumberToObject(d, "seq", (double)j->seq);
	if (code >= 0)
		cJSON_AddNumberToObject(d, "exit", code);
	if (sig)
		cJSON_AddNumberToObject(d, "signal", sig);
	cJSON_AddNumberToObject(d, "attempts", j->attempts);
	cJSON_AddNumberToObject(d, "ms", (double)(j->end_mono - j->start_mono));
	if (j->timed_out)
		cJSON_AddTrueToObject(d, "timed_out");
	if (j->out_lines)
		cJSON_AddNumberToObject(d, "lines_out", (double)j->out_lines);
	int rc = add_records(f, j, e, d);
	cJSON_Delete(d);
	return rc;
}

/* Takes a reaped, drained job out of the running set and decides: retry, ok, or failed. */
static int finish(struct gm_fo *f, size_t idx)
{
	struct gm_fo_job *j = f->run[idx];
	f->run[idx] = f->run[--f->nrun];
	close_fd(&j->fd_in);
	close_fd(&j->fd_out);
	close_fd(&j->fd_err);
	int64_t now = goman_mono_ms();
	f->st->busy_ms += j->end_mono - j->start_mono;
	int code = -1, sig = 0;
	if (!j->spawn_errno) {
		if (WIFEXITED(j->status))
			code = WEXITSTATUS(j->status);
		else if (WIFSIGNALED(j->status))
			sig = WTERMSIG(j->status);
	}
	bool ok = !j->spawn_errno && code == 0 && !j->timed_out && !j->stop_code;
	bool tempfail = code == GOMAN_EXIT_TEMPFAIL;
	if (f->o->jobs == 0) {
		if ((tempfail || j->throttled) && gm_aimd_throttle(&f->aimd, j->start_mono, now))
			set_slots(f, gm_aimd_slots(&f->aimd),
				  tempfail ? "a job exited 75" : "a job reported throttling");
		else if (ok) {
			gm_aimd_ok(&f->aimd);
			if (gm_aimd_slots(&f->aimd) != f->slots)
				set_slots(f, gm_aimd_slots(&f->aimd), "jobs succeed");
		}
	}
	/* retry only what wrote nothing yet, so no record is ever written twice */
	if (!ok && !j->stop_code && !f->stop_input && (j->timed_out || tempfail) &&
	    j->out_lines == 0 && j->attempts <= f->o->retries) {
		int64_t d = f->o->retry_delay_ms;
		for (int a = 1; a < j->attempts && d < RETRY_DELAY_CAP_MS; a++)
			d *= 2;
		if (d > RETRY_DELAY_CAP_MS)
			d = RETRY_DELAY_CAP_MS;
		goman_log(GOMAN_LOG_INFO, "RETRY",
			  "job %lu (line %ld) %s, attempt %d of %d in %lld ms", j->seq,
			  j->first_line, j->timed_out ? "timed out" : "exited 75", j->attempts + 1,
			  f->o->retries + 1, (long long)d);
		f->st->retried++;
		j->not_before = now + d;
		j->state = GM_JOB_WAITING;
		j->out.len = 0;
		retry_push(f, j);
		return 0;
	}
	f->st->jobs++;
	gm_fo_joblog(f, j, code < 0 ? -1 : code, sig);
	if (ok) {
		f->st->ok++;
		if (j->out.len && j->out.p[j->out.len - 1] != '\n') {
			/* a last line without '\n' is still a line */
			if (buf_add(&j->out, "\n", 1))
				return oom(f);
			j->out_lines++;
		}
		f->st->lines_out += j->out_lines;
		if (f->o->pass && j->recv == 0 && add_records(f, j, NULL, NULL))
			return -1;
	} else {
		f->st->failed++;
		if (j->timed_out)
			f->st->timed_out++;
		f->st->lines_out += j->out_lines;
		/* a cut last line of a failed job is not a record: drop it, say so */
		if (j->out.len && j->out.p[j->out.len - 1] != '\n') {
			char *nl = memrchr(j->out.p, '\n', j->out.len);
			size_t keep = nl ? (size_t)(nl - j->out.p) + 1 : 0;
			goman_log(GOMAN_LOG_WARN, "PARALLEL",
				  "job %lu: dropped %zu bytes of an unfinished last line", j->seq,
				  j->out.len - keep);
			j->out.len = keep;
		}
		struct goman_err e = GOMAN_ERR_INIT;
		goman_err_clear(&e);
		if (j->spawn_errno)
			goman_err_set(&e, GOMAN_ECHILD, GOMAN_CLASS_START, "SpawnFailed",
				      "cannot run '%s': %s", f->o->argv[0],
				      strerror(j->spawn_errno));
		else if (j->stop_code)
			goman_err_set(&e, GOMAN_ECHILD, GOMAN_CLASS_NONE, j->stop_code,
				      "job killed: the run was stopped (%s)",
				      !strcmp(j->stop_code, "Halted") ? "--halt now" : "signal");
		else if (j->timed_out)
			goman_err_set(&e, GOMAN_ETIMEOUT, GOMAN_CLASS_TIMEOUT, "JobTimeout",
				      "job timed out after %lld ms", (long long)f->o->timeout_ms);
		else if (sig)
			goman_err_set(&e, GOMAN_ECHILD, GOMAN_CLASS_NONE, "JobKilled",
				      "job killed by signal %d", sig);
		else if (tempfail)
			goman_err_set(&e, GOMAN_ECHILD, GOMAN_CLASS_TRANSIENT, "JobTempFail",
				      "job exited 75 (temporary failure)");
		else
			goman_err_set(&e, GOMAN_ECHILD, GOMAN_CLASS_NONE, "JobFailed",
				      "job exited %d", code);
		e.retryable = j->timed_out || tempfail;
		if (fail_job(f, j, &e, code, sig))
			return -1;
		if (f->o->halt && !f->stop_input &&
		    gm_halt_due(f->o->halt_fail, f->o->halt_percent, f->st->failed, f->st->jobs)) {
			f->st->halted = true;
			f->stop_input = true;
			f->stop_code = "Halted";
			goman_log(GOMAN_LOG_WARN, "PARALLEL",
				  "halting (%s): %lu of %lu jobs failed",
				  f->o->halt == GOMAN_FANOUT_HALT_NOW ? "now" : "soon",
				  f->st->failed, f->st->jobs);
		}
	}
	return gm_fo_settle(f, j);
}

/* Every running job's group gets sig; TERM arms the KILL after the grace period. */
static void kill_all(struct gm_fo *f, const char *why)
{
	int64_t now = goman_mono_ms();
	for (size_t i = 0; i < f->nrun; i++) {
		struct gm_fo_job *j = f->run[i];
		if (j->reaped || j->pid <= 0)
			continue;
		if (!j->stop_code)
			j->stop_code = why;
		if (!j->term_sent) {
			kill(-j->pid, SIGTERM);
			j->term_sent = true;
			j->kill_at = now + f->o->grace_ms;
		}
	}
}

/* ---- input ------------------------------------------------------------------------------ */

static struct gm_fo_job *job_new(struct gm_fo *f)
{
	struct gm_fo_job *j = calloc(1, sizeof(*j));
	if (!j)
		return NULL;
	j->fd_in = j->fd_out = j->fd_err = -1;
	j->pid = -1;
	j->ord = f->next_ord++;
	if (f->o->keep_order)
		f->ring[j->ord % f->window] = j;
	return j;
}

/* A line that is not a JSON object: a BadInput record in its place, no job. */
static int bad_line(struct gm_fo *f, const char *line, size_t len, bool show, long lineno,
		    const struct goman_err *e)
{
	struct gm_fo_job *j = job_new(f);
	if (!j)
		return oom(f);
	f->st->bad_lines++;
	goman_log(GOMAN_LOG_WARN, "PARALLEL", "%s", e->message);
	cJSON *rec = goman_jsonl_error_record(NULL, "fanout", e, lineno);
	cJSON *fo = rec ? cJSON_GetObjectItemCaseSensitive(rec, "fanout") : NULL;
	if (fo && show)
		cJSON_AddItemToObject(fo, "input", cJSON_CreateString(line));
	(void)len;
	char *s = rec ? cJSON_PrintUnformatted(rec) : NULL;
	cJSON_Delete(rec);
	if (!s || buf_add(&j->out, s, strlen(s)) || buf_add(&j->out, "\n", 1)) {
		cJSON_free(s);
		j->state = GM_JOB_DONE;
		if (!f->o->keep_order)
			gm_fo_job_free(j);
		return oom(f);
	}
	cJSON_free(s);
	f->st->lines_out++;
	return gm_fo_settle(f, j);
}

/* Reads one line into the filling job. Returns 0, or -1 on a fatal error. */
static int read_line(struct gm_fo *f)
{
	const char *line;
	size_t len;
	struct goman_err e = GOMAN_ERR_INIT;
	int rc = goman_jsonl_next_raw(f->rd, &line, &len, &e);
	if (rc == GOMAN_JSONL_EOF) {
		f->in_eof = true;
		return 0;
	}
	if (rc == GOMAN_JSONL_AGAIN)
		return 0;
	if (rc == GOMAN_JSONL_IOERR) {
		f->fatal = true;
		*f->err = e;
		return -1;
	}
	long lineno = goman_jsonl_lineno(f->rd);
	f->bytes_in += (long long)len + 1;
	if (rc == GOMAN_JSONL_BAD)
		return bad_line(f, line, len, false, lineno, &e);
	if (!f->o->raw) {
		/* fan-out is for JSON lines: a line that is not an object is refused here, once,
		 * rather than by every job */
		cJSON *o = cJSON_ParseWithLength(line, len);
		bool isobj = cJSON_IsObject(o);
		cJSON_Delete(o);
		if (!isobj) {
			goman_err_clear(&e);
			goman_err_set(&e, GOMAN_EINVAL, GOMAN_CLASS_BAD_INPUT, "BadInput",
				      "line %ld: not a JSON object", lineno);
			return bad_line(f, line, len, true, lineno, &e);
		}
	}
	struct gm_fo_job *j = f->filling;
	if (!j) {
		j = f->filling = job_new(f);
		if (!j)
			return oom(f);
		j->state = GM_JOB_FILLING;
		j->first_line = lineno;
	}
	if (buf_add(&j->in, line, len) || buf_add(&j->in, "\n", 1))
		return oom(f);
	j->nlines++;
	return 0;
}

/* ---- the loop ---------------------------------------------------------------------------- */

static void on_signal(int sig)
{
	int e = errno;
	unsigned char c = (unsigned char)sig;
	ssize_t w = write(sigfd[1], &c, 1);
	(void)w;
	errno = e;
}

static void reap(struct gm_fo *f)
{
	int status;
	pid_t pid;
	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		for (size_t i = 0; i < f->nrun; i++) {
			struct gm_fo_job *j = f->run[i];
			if (j->pid == pid && !j->reaped) {
				j->reaped = true;
				j->status = status;
				j->end_mono = goman_mono_ms();
				break;
			}
		}
	}
}

/* -j auto: looks at each line of p[0..n) (the last one may lack its '\n') for throttling. */
static void watch_lines(struct gm_fo_job *j, const char *p, size_t n)
{
	while (n && !j->throttled) {
		const char *nl = memchr(p, '\n', n);
		size_t len = nl ? (size_t)(nl - p) : n;
		j->throttled = gm_line_reports_throttling(p, len);
		if (!nl)
			break;
		n -= len + 1;
		p = nl + 1;
	}
}

/* Reads what a job wrote on stdout; writes its complete lines when it may. Throttling is
 * decided on whole lines only: a record split across reads is looked at once it is whole. */
static int drain_out(struct gm_fo *f, struct gm_fo_job *j)
{
	bool watch = f->o->jobs == 0;
	ssize_t n = read(j->fd_out, f->scratch, sizeof(f->scratch));
	if (n < 0) {
		if (errno == EINTR || errno == EAGAIN)
			return 0;
		n = 0; /* treat as EOF */
	}
	if (n == 0) {
		j->eof = true;
		close_fd(&j->fd_out);
		if (watch && j->out.len > j->out_watched) /* a last line without its '\n' */
			watch_lines(j, j->out.p + j->out_watched, j->out.len - j->out_watched);
		j->out_watched = j->out.len;
		return 0;
	}
	j->recv += (size_t)n;
	unsigned long nl = count_nl(f->scratch, (size_t)n);
	j->out_lines += nl;
	if (j->out.len == 0 && nl && gm_fo_can_stream(f, j)) {
		/* the usual case: whole lines straight from the read buffer */
		char *last = memrchr(f->scratch, '\n', (size_t)n);
		size_t whole = (size_t)(last - f->scratch) + 1;
		if (watch)
			watch_lines(j, f->scratch, whole - 1);
		if (gm_fo_write_out(f, f->scratch, whole))
			return -1;
		j->out_watched = 0;
		return buf_add(&j->out, f->scratch + whole, (size_t)n - whole) ? oom(f) : 0;
	}
	if (buf_add(&j->out, f->scratch, (size_t)n))
		return oom(f);
	if (watch && nl) {
		char *last = memrchr(j->out.p + j->out_watched, '\n', j->out.len - j->out_watched);
		size_t upto = (size_t)(last - j->out.p);
		watch_lines(j, j->out.p + j->out_watched, upto - j->out_watched);
		j->out_watched = upto + 1;
	}
	return nl ? gm_fo_flush_job(f, j) : 0;
}

/* -j auto: a job's stderr is read to see throttling; its lines go on to our stderr whole. */
static void drain_err(struct gm_fo *f, struct gm_fo_job *j)
{
	ssize_t n = read(j->fd_err, f->scratch, sizeof(f->scratch));
	if (n <= 0) {
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			return;
		if (j->errb.len) {
			watch_lines(j, j->errb.p, j->errb.len); /* a last line without its '\n' */
			if (buf_add(&j->errb, "\n", 1) == 0) {
				ssize_t w = write(2, j->errb.p, j->errb.len);
				(void)w;
			}
			j->errb.len = 0;
		}
		close_fd(&j->fd_err);
		return;
	}
	if (buf_add(&j->errb, f->scratch, (size_t)n))
		return;
	char *last = memrchr(j->errb.p, '\n', j->errb.len);
	if (last) {
		size_t whole = (size_t)(last - j->errb.p) + 1;
		watch_lines(j, j->errb.p, whole - 1);
		ssize_t w = write(2, j->errb.p, whole);
		(void)w;
		gm_buf_shift(&j->errb, whole);
	} else if (j->errb.len > GM_FO_SCRATCH) {
		ssize_t w = write(2, j->errb.p, j->errb.len);
		(void)w;
		j->errb.len = 0;
	}
}

static bool head_blocked(const struct gm_fo *f)
{
	/* the oldest job waits for a retry while every slot holds a younger job that cannot
	 * write: let it run beyond the limit, or keep_order could wait forever */
	return f->o->keep_order && f->retry_first && f->retry_first->ord == f->head_ord;
}

static bool want_input(const struct gm_fo *f)
{
	if (f->stop_input || f->in_eof || f->fatal)
		return false;
	if (f->filling && f->filling->nlines >= f->o->batch)
		return false;
	if ((int)f->nrun >= f->slots)
		return false;
	if (f->o->keep_order && f->next_ord - f->head_ord >= f->window)
		return false;
	return true;
}

static void start_jobs(struct gm_fo *f)
{
	int64_t now = goman_mono_ms();
	while (f->retry_first && f->retry_first->not_before <= now &&
	       ((int)f->nrun < f->slots || (head_blocked(f) && f->nrun < f->run_cap))) {
		struct gm_fo_job *j = f->retry_first;
		f->retry_first = j->next;
		if (!f->retry_first)
			f->retry_last = NULL;
		spawn(f, j);
	}
	struct gm_fo_job *j = f->filling;
	if (j && (j->nlines >= f->o->batch || (f->in_eof && j->nlines)) &&
	    (int)f->nrun < f->slots) {
		f->filling = NULL;
		j->seq = ++f->next_seq;
		spawn(f, j);
	}
}

/* After a halt or signal: what was read but not run, and what waits for a retry, is
 * written as records now. */
static int drop_pending(struct gm_fo *f)
{
	struct goman_err e = GOMAN_ERR_INIT;
	if (f->filling) {
		struct gm_fo_job *j = f->filling;
		f->filling = NULL;
		j->seq = ++f->next_seq;
		goman_err_clear(&e);
		goman_err_set(&e, GOMAN_ECHILD, GOMAN_CLASS_NONE, "NotRun",
			      "not run: the run was stopped");
		f->st->not_run++;
		if (fail_job(f, j, &e, -1, 0) || gm_fo_settle(f, j))
			return -1;
	}
	while (f->retry_first) {
		struct gm_fo_job *j = f->retry_first;
		f->retry_first = j->next;
		f->st->jobs++;
		f->st->failed++;
		goman_err_clear(&e);
		goman_err_set(&e, GOMAN_ECHILD, GOMAN_CLASS_NONE, "NotRun",
			      "retry not run: the run was stopped");
		if (fail_job(f, j, &e, -1, 0) || gm_fo_settle(f, j))
			return -1;
	}
	f->retry_last = NULL;
	return 0;
}

static int64_t next_timer(struct gm_fo *f, int64_t now)
{
	int64_t t = -1;
#define EARLIER(x)                                 \
	do {                                       \
		if ((x) > 0 && (t < 0 || (x) < t)) \
			t = (x);                   \
	} while (0)
	for (size_t i = 0; i < f->nrun; i++) {
		struct gm_fo_job *j = f->run[i];
		if (!j->timed_out && !j->term_sent)
			EARLIER(j->deadline);
		if (j->term_sent)
			EARLIER(j->kill_at);
	}
	if (f->retry_first && ((int)f->nrun < f->slots || head_blocked(f)))
		EARLIER(f->retry_first->not_before);
	if (f->o->progress)
		EARLIER(f->last_progress + f->o->progress_ms);
#undef EARLIER
	if (t < 0)
		return -1;
	return t <= now ? 0 : t - now;
}

static void timers(struct gm_fo *f)
{
	int64_t now = goman_mono_ms();
	for (size_t i = 0; i < f->nrun; i++) {
		struct gm_fo_job *j = f->run[i];
		if (j->pid <= 0)
			continue;
		if (!j->reaped && !j->term_sent && j->deadline && now >= j->deadline) {
			goman_log(GOMAN_LOG_INFO, "PARALLEL", "job %lu (line %ld) timed out, TERM",
				  j->seq, j->first_line);
			j->timed_out = true;
			j->term_sent = true;
			j->kill_at = now + f->o->grace_ms;
			kill(-j->pid, SIGTERM);
		} else if (j->term_sent && j->kill_at && now >= j->kill_at) {
			/* KILL the group; if the group is gone and something outside it still holds
			 * the pipe, stop waiting for that EOF */
			if (kill(-j->pid, SIGKILL) < 0 && j->reaped && !j->eof) {
				close_fd(&j->fd_out);
				j->eof = true;
			}
			j->kill_at = j->reaped ? 0 : now + f->o->grace_ms;
		}
	}
}

/* Reads the input a job can take, starts what can start and settles finished jobs (reaped
 * and drained). 0, or -1 on a fatal error. */
static int step(struct gm_fo *f)
{
	while (want_input(f) && (f->in_ready || goman_jsonl_buffered(f->rd))) {
		f->in_ready = false;
		if (read_line(f))
			return -1;
		if (!want_input(f))
			break;
	}
	if (!f->stop_input)
		start_jobs(f);
	for (size_t i = 0; i < f->nrun;) {
		struct gm_fo_job *j = f->run[i];
		if (j->reaped && j->eof) {
			if (finish(f, i))
				return -1;
			continue; /* run[i] now holds another job */
		}
		i++;
	}
	if (f->fatal || (f->stop_input && drop_pending(f)))
		return -1;
	if (f->st->halted && f->o->halt == GOMAN_FANOUT_HALT_NOW)
		kill_all(f, "Halted");
	return 0;
}

/* A job can start now: go round again without polling. */
static bool can_start_now(const struct gm_fo *f)
{
	return !f->stop_input && f->nrun < (size_t)f->slots &&
	       (f->retry_first ||
		(f->filling && (f->filling->nlines >= f->o->batch || f->in_eof))) &&
	       (!f->retry_first || f->retry_first->not_before <= goman_mono_ms());
}

/* The poll set: the signal pipe first, stdin when a job can take a line, then each running
 * job's pipes (a --keep-order job holding order_buf bytes is left unread: backpressure). */
static nfds_t poll_set(struct gm_fo *f, struct pollfd *pfd, struct gm_fo_job **who, nfds_t *in_slot)
{
	nfds_t n = 0;
	pfd[n] = (struct pollfd){.fd = sigfd[0], .events = POLLIN};
	who[n++] = NULL;
	*in_slot = (nfds_t)-1;
	if (want_input(f)) {
		*in_slot = n;
		pfd[n] = (struct pollfd){.fd = f->o->in_fd, .events = POLLIN};
		who[n++] = NULL;
	}
	for (size_t i = 0; i < f->nrun; i++) {
		struct gm_fo_job *j = f->run[i];
		if (j->fd_out >= 0) {
			bool hold = f->o->keep_order && !gm_fo_can_stream(f, j) &&
				    j->out.len >= f->o->order_buf;
			/* -1: poll skips it */
			pfd[n] = (struct pollfd){.fd = hold ? -1 : j->fd_out, .events = POLLIN};
			who[n++] = j;
		}
		if (j->fd_in >= 0) {
			pfd[n] = (struct pollfd){.fd = j->fd_in, .events = POLLOUT};
			who[n++] = j;
		}
		if (j->fd_err >= 0) {
			pfd[n] = (struct pollfd){.fd = j->fd_err, .events = POLLIN};
			who[n++] = j;
		}
	}
	return n;
}

/* The signal pipe: SIGINT/SIGTERM stop the run (running jobs are killed), SIGCHLD reaps. */
static void on_signals(struct gm_fo *f)
{
	unsigned char sigs[64];
	ssize_t got = read(sigfd[0], sigs, sizeof(sigs));
	for (ssize_t s = 0; s < got; s++) {
		if (sigs[s] != SIGINT && sigs[s] != SIGTERM)
			continue;
		if (!f->st->signal)
			goman_log(GOMAN_LOG_WARN, "PARALLEL", "%s: stopping, killing %zu jobs",
				  strsignal(sigs[s]), f->nrun);
		f->st->signal = sigs[s];
		f->stop_input = true;
		kill_all(f, "Interrupted");
	}
	reap(f);
}

/* Acts on what poll reported. 0, or -1 on a fatal error. */
static int dispatch(struct gm_fo *f, const struct pollfd *pfd, struct gm_fo_job *const *who,
		    nfds_t n, nfds_t in_slot)
{
	for (nfds_t k = 0; k < n; k++) {
		short re = pfd[k].revents;
		if (!re)
			continue;
		if (k == 0) {
			on_signals(f);
			continue;
		}
		if (k == in_slot) {
			f->in_ready = true;
			continue;
		}
		struct gm_fo_job *j = who[k];
		if (pfd[k].fd == j->fd_in && (re & (POLLOUT | POLLERR | POLLHUP)))
			feed(j);
		else if (pfd[k].fd == j->fd_out && (re & (POLLIN | POLLHUP | POLLERR))) {
			if (drain_out(f, j))
				return -1;
		} else if (pfd[k].fd == j->fd_err && (re & (POLLIN | POLLHUP | POLLERR)))
			drain_err(f, j);
	}
	return 0;
}

static int loop(struct gm_fo *f)
{
	struct pollfd *pfd = calloc(f->run_cap * 3 + 2, sizeof(*pfd));
	struct gm_fo_job **who = calloc(f->run_cap * 3 + 2, sizeof(*who));
	int rc = pfd && who ? 0 : oom(f);
	while (rc == 0) {
		if (step(f)) {
			rc = -1;
			break;
		}
		if (want_input(f) && goman_jsonl_buffered(f->rd))
			continue; /* lines already read, poll would not say so */
		bool more_input = !f->in_eof && !f->stop_input;
		if (!f->nrun && !f->retry_first && !f->filling && !more_input)
			break;
		if (can_start_now(f))
			continue;
		nfds_t in_slot;
		nfds_t n = poll_set(f, pfd, who, &in_slot);
		int64_t t = next_timer(f, goman_mono_ms());
		int pr = poll(pfd, n, t < 0 ? -1 : t > 1000000 ? 1000000 : (int)t);
		if (pr < 0 && errno != EINTR)
			rc = goman_err_set(f->err, GOMAN_EIO, GOMAN_CLASS_NONE, "PollError",
					   "poll: %s", strerror(errno));
		else if (pr > 0 && dispatch(f, pfd, who, n, in_slot))
			rc = -1;
		if (rc == 0) {
			timers(f);
			progress(f, false);
		}
	}
	free(pfd);
	free(who);
	return rc;
}

/* On a fatal error: kill, reap and free everything still held. */
static void cleanup(struct gm_fo *f)
{
	for (size_t i = 0; i < f->nrun; i++) {
		struct gm_fo_job *j = f->run[i];
		if (j->pid > 0 && !j->reaped) {
			kill(-j->pid, SIGKILL);
			waitpid(j->pid, NULL, 0);
		}
		close_fd(&j->fd_in);
		close_fd(&j->fd_out);
		close_fd(&j->fd_err);
		if (!f->o->keep_order)
			gm_fo_job_free(j);
	}
	f->nrun = 0;
	while (f->retry_first) {
		struct gm_fo_job *j = f->retry_first;
		f->retry_first = j->next;
		if (!f->o->keep_order)
			gm_fo_job_free(j);
	}
	if (f->filling && !f->o->keep_order)
		gm_fo_job_free(f->filling);
	f->filling = NULL;
	if (f->ring) {
		for (size_t i = 0; i < f->window; i++)
			gm_fo_job_free(f->ring[i]);
	}
}

/* -j N, or -j auto's AIMD bounded by CPU count x factor and by --max-jobs, whichever is
 * lower. */
static void init_slots(struct gm_fo *f)
{
	const struct goman_fanout_opts *o = f->o;
	if (o->jobs > 0) {
		f->max_slots = f->slots = o->jobs;
	} else {
		long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
		f->max_slots = (int)(ncpu < 1 ? 1 : ncpu) * CPU_FACTOR;
		if (o->max_jobs > 0 && o->max_jobs < f->max_slots)
			f->max_slots = o->max_jobs;
		gm_aimd_init(&f->aimd, o->start_jobs, f->max_slots);
		f->slots = gm_aimd_slots(&f->aimd);
	}
	f->run_cap = (size_t)f->max_slots + 1;
	f->window = (size_t)f->max_slots * 4 < 16 ? 16 : (size_t)f->max_slots * 4;
}

/* A job starts with default signal handling (we ignore SIGPIPE, and ignored stays ignored
 * across exec) in its own process group. 0, or -1 when the attributes cannot be made. */
static int init_spawn_attr(struct gm_fo *f)
{
	if (posix_spawnattr_init(&f->attr))
		return -1;
	sigset_t def, none;
	sigemptyset(&none);
	sigemptyset(&def);
	int sigs[] = {SIGPIPE, SIGINT, SIGTERM, SIGCHLD, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2};
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		sigaddset(&def, sigs[i]);
	posix_spawnattr_setsigdefault(&f->attr, &def);
	posix_spawnattr_setsigmask(&f->attr, &none);
	posix_spawnattr_setpgroup(&f->attr, 0);
	posix_spawnattr_setflags(&f->attr, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK |
						   POSIX_SPAWN_SETPGROUP);
	return 0;
}

struct saved_signals {
	struct sigaction chld, intr, term;
};

/* SIGCHLD, SIGINT and SIGTERM into the self-pipe for the run. 0, or -1 with *f->err. */
static int take_signals(struct gm_fo *f, struct saved_signals *old)
{
	if (pipe2(sigfd, O_CLOEXEC | O_NONBLOCK))
		return goman_err_set(f->err, GOMAN_EIO, GOMAN_CLASS_NONE, "PipeError", "pipe: %s",
				     strerror(errno));
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sa.sa_flags = SA_RESTART | SA_NOCLDSTOP;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGCHLD, &sa, &old->chld);
	sigaction(SIGINT, &sa, &old->intr);
	sigaction(SIGTERM, &sa, &old->term);
	return 0;
}

static void give_back_signals(const struct saved_signals *old)
{
	sigaction(SIGCHLD, &old->chld, NULL);
	sigaction(SIGINT, &old->intr, NULL);
	sigaction(SIGTERM, &old->term, NULL);
}

/* A progress hook is told the input's size when stdin is a file (for a percentage). */
static void measure_input(struct gm_fo *f)
{
	struct stat sb;
	if (f->o->progress && fstat(f->o->in_fd, &sb) == 0 && S_ISREG(sb.st_mode)) {
		off_t pos = lseek(f->o->in_fd, 0, SEEK_CUR);
		f->bytes_total = (long long)sb.st_size - (pos > 0 ? (long long)pos : 0);
	}
}

/* Wall time, the final concurrency and the efficiency of a finished run. */
static void sum_up(struct gm_fo *f)
{
	struct goman_fanout_stats *st = f->st;
	set_slots(f, f->slots, NULL);
	st->wall_ms = goman_mono_ms() - f->t0;
	st->final_jobs = f->slots;
	/* fewer jobs than slots cannot fill them: judge against the slots they could use */
	double slot_ms = st->slot_ms;
	if (st->jobs + st->retried < (unsigned long)f->slots && st->wall_ms > 0)
		slot_ms = (double)st->wall_ms * (double)(st->jobs + st->retried);
	st->efficiency = slot_ms > 0 ? (double)st->busy_ms / slot_ms : 0;
	if (st->efficiency > 1)
		st->efficiency = 1;
}

int goman_fanout_run(const struct goman_fanout_opts *o, struct goman_fanout_stats *st,
		     struct goman_err *err)
{
	struct goman_err dummy = GOMAN_ERR_INIT;
	if (!err)
		err = &dummy;
	goman_err_clear(err);
	memset(st, 0, sizeof(*st));
	if (!o->argv || !o->argv[0] || o->batch < 1 || o->jobs < 0)
		return goman_err_set(err, GOMAN_EINVAL, GOMAN_CLASS_NONE, "Usage",
				     "fanout: no command, or bad batch/jobs");
	struct goman_fanout_opts oc = *o;
	if (!oc.order_buf)
		oc.order_buf = 1024 * 1024;
	if (oc.progress_ms <= 0)
		oc.progress_ms = 200;
	struct gm_fo *f = calloc(1, sizeof(*f));
	if (!f)
		return gm_err_oom(err);
	f->o = &oc;
	f->st = st;
	f->err = err;
	init_slots(f);
	f->run = calloc(f->run_cap, sizeof(*f->run));
	f->ring = oc.keep_order ? calloc(f->window, sizeof(*f->ring)) : NULL;
	f->rd = goman_jsonl_reader_new(oc.in_fd, oc.max_line);
	f->cmdline = gm_fo_cmdline(oc.argv);
	int rc = -1;
	bool attr_ok = false, sig_ok = false;
	struct saved_signals old;
	if (!f->run || (oc.keep_order && !f->ring) || !f->rd || !f->cmdline ||
	    !(attr_ok = init_spawn_attr(f) == 0)) {
		oom(f);
	} else if (take_signals(f, &old) == 0) {
		sig_ok = true;
		measure_input(f);
		gm_fo_joblog_header(f);
		f->t0 = f->last_slot_change = goman_mono_ms();
		rc = loop(f);
		sum_up(f);
		progress(f, true);
	}
	if (rc || f->ring)
		cleanup(f); /* a clean run leaves nothing, but the ring is cheap to be sure of */
	if (sig_ok)
		give_back_signals(&old);
	close_fd(&sigfd[0]);
	close_fd(&sigfd[1]);
	if (attr_ok)
		posix_spawnattr_destroy(&f->attr);
	goman_jsonl_reader_free(f->rd);
	free(f->cmdline);
	free(f->run);
	free(f->ring);
	free(f);
	return rc;
}
