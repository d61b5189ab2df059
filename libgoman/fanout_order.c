/*
 * fanout_order.c - what leaves goman-fanout's engine (see fanout_int.h): a job's stdout as
 * whole lines only (each write(2) carries whole lines, so a line is never cut however long),
 * in input order with --keep-order (a job waits in the ring until every earlier one is
 * written), and the GNU parallel style joblog. It calls nothing in fanout.c.
 *
 * Ownership: gm_fo_settle() frees a job once it is written. Errors: -1 after setting
 * f->fatal and f->err (a failed write to stdout ends the run); the joblog is best effort.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "fanout_int.h"

void gm_fo_job_free(struct gm_fo_job *j)
{
	if (!j)
		return;
	gm_buf_free(&j->in);
	gm_buf_free(&j->out);
	gm_buf_free(&j->errb);
	free(j);
}

int gm_fo_write_out(struct gm_fo *f, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(f->o->out_fd, p, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN) {
				struct pollfd pfd = {.fd = f->o->out_fd, .events = POLLOUT};
				(void)poll(&pfd, 1, -1);
				continue;
			}
			f->fatal = true;
			return goman_err_set(f->err, GOMAN_EIO, GOMAN_CLASS_NONE, "WriteError",
					     "write to stdout: %s", strerror(errno));
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Writes the complete lines of j->out (all of it once the job is done) if j may speak now. */
int gm_fo_flush_job(struct gm_fo *f, struct gm_fo_job *j)
{
	if (!gm_fo_can_stream(f, j) || !j->out.len)
		return 0;
	size_t n = j->out.len;
	if (j->state != GM_JOB_DONE) {
		char *nl = memrchr(j->out.p, '\n', j->out.len);
		if (!nl)
			return 0;
		n = (size_t)(nl - j->out.p) + 1;
	}
	int rc = gm_fo_write_out(f, j->out.p, n);
	gm_buf_shift(&j->out, n);
	j->out_watched = j->out_watched > n ? j->out_watched - n : 0;
	if (j->out.cap > GM_FO_SCRATCH && j->out.len < GM_FO_SCRATCH / 4) {
		/* a long line passed: give its memory back */
		char *q = realloc(j->out.p, j->out.len + 1);
		if (q) {
			j->out.p = q;
			j->out.cap = j->out.len + 1;
		}
	}
	return rc;
}

/* keep_order: writes and frees every finished job at the head, then flushes the new head. */
static int advance_ring(struct gm_fo *f)
{
	for (;;) {
		struct gm_fo_job *j = f->ring[f->head_ord % f->window];
		if (!j)
			return 0;
		if (gm_fo_flush_job(f, j))
			return -1;
		if (j->state != GM_JOB_DONE)
			return 0;
		f->ring[f->head_ord % f->window] = NULL;
		gm_fo_job_free(j);
		f->head_ord++;
	}
}

/* A job is done: write it (or queue it behind the head). */
int gm_fo_settle(struct gm_fo *f, struct gm_fo_job *j)
{
	j->state = GM_JOB_DONE;
	if (f->o->keep_order)
		return advance_ring(f);
	int rc = gm_fo_flush_job(f, j);
	gm_fo_job_free(j);
	return rc;
}

void gm_fo_joblog(const struct gm_fo *f, const struct gm_fo_job *j, int code, int sig)
{
	if (f->o->joblog_fd < 0)
		return;
	char line[4096];
	double rt = (double)(j->end_mono - j->start_mono) / 1000.0;
	int n = snprintf(line, sizeof(line), "%lu\t:\t%.3f\t%.3f\t%zu\t%zu\t%d\t%d\t%s\n", j->seq,
			 (double)j->start_wall / 1000.0, rt < 0 ? 0 : rt, j->in.len, j->recv, code,
			 sig, f->cmdline);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(line)) {
		n = sizeof(line) - 1;
		line[n - 1] = '\n';
	}
	ssize_t w = write(f->o->joblog_fd, line, (size_t)n);
	(void)w;
}

void gm_fo_joblog_header(const struct gm_fo *f)
{
	static const char hdr[] = "Seq\tHost\tStarttime\tJobRuntime\tSend\tReceive\tExitval"
				  "\tSignal\tCommand\n";
	if (f->o->joblog_fd < 0)
		return;
	ssize_t w = write(f->o->joblog_fd, hdr, sizeof(hdr) - 1);
	(void)w;
}

char *gm_fo_cmdline(char *const *argv)
{
	size_t n = 1;
	for (char *const *a = argv; *a; a++)
		n += strlen(*a) + 1;
	char *s = malloc(n), *p = s;
	if (!s)
		return NULL;
	for (char *const *a = argv; *a; a++) {
		size_t l = strlen(*a);
		memcpy(p, *a, l);
		p += l;
		*p++ = ' ';
	}
	if (p > s)
		p--;
	*p = '\0';
	/* the joblog is TSV: no tab or newline inside a column */
	for (p = s; *p; p++)
		if (*p == '\t' || *p == '\n')
			*p = ' ';
	return s;
}
