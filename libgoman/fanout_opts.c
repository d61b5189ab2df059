/*
 * fanout_opts.c - goman-fanout's options as values: the defaults, the --halt spec and the
 * exit status of a finished run (see goman/fanout.h). Durations are goman(7)'s one grammar,
 * goman_parse_duration_ms (clock.c). No allocation; nothing to free.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "goman/error.h"
#include "goman/fanout.h"

static int parse_ulong(const char *s, unsigned long *out)
{
	if (!s || *s < '0' || *s > '9')
		return -1;
	char *end;
	errno = 0;
	unsigned long v = strtoul(s, &end, 10);
	if (errno || *end)
		return -1;
	*out = v;
	return 0;
}

int goman_fanout_parse_halt(const char *s, enum goman_fanout_halt *halt, unsigned long *fail,
			    bool *percent)
{
	char tmp[64];
	if (!s || strlen(s) >= sizeof(tmp))
		return -1;
	memcpy(tmp, s, strlen(s) + 1);
	enum goman_fanout_halt h = GOMAN_FANOUT_HALT_SOON;
	char *rest = tmp;
	if (!strncmp(tmp, "now", 3) && (tmp[3] == '\0' || tmp[3] == ',')) {
		h = GOMAN_FANOUT_HALT_NOW;
		rest = tmp[3] ? tmp + 4 : tmp + 3;
	} else if (!strncmp(tmp, "soon", 4) && (tmp[4] == '\0' || tmp[4] == ',')) {
		rest = tmp[4] ? tmp + 5 : tmp + 4;
	} else if (strncmp(tmp, "fail=", 5)) {
		return -1;
	}
	unsigned long n = 1;
	bool pct = false;
	if (*rest || (rest > tmp && rest[-1] == ',')) {
		if (strncmp(rest, "fail=", 5))
			return -1;
		rest += 5;
		size_t len = strlen(rest);
		if (len && rest[len - 1] == '%') {
			pct = true;
			rest[len - 1] = '\0';
		}
		if (parse_ulong(rest, &n) || n == 0 || (pct && n > 100))
			return -1;
	} else if (rest == tmp) {
		return -1;
	}
	*halt = h;
	*fail = n;
	*percent = pct;
	return 0;
}

void goman_fanout_opts_init(struct goman_fanout_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->start_jobs = 3;
	o->batch = 1;
	o->grace_ms = 2000;
	o->retry_delay_ms = 100;
	o->joblog_fd = -1;
	o->in_fd = 0;
	o->out_fd = 1;
}

int goman_fanout_exit_code(const struct goman_fanout_stats *st)
{
	if (st->bad_lines)
		return GOMAN_EXIT_DATAERR;
	if (st->halted)
		return GOMAN_EXIT_TEMPFAIL;
	if (st->failed || st->not_run)
		return GOMAN_EXIT_FAILED;
	return GOMAN_EXIT_OK;
}
