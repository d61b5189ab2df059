/* cli — flag helpers shared by the commands; see cli.h */
#include "cli.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include <goman/clock.h>
#include <goman/error.h>

static const char *prog_name = "goman";

void cli_init(const char *prog)
{
	if (prog && *prog)
		prog_name = prog;
}

const char *cli_prog(void)
{
	return prog_name;
}

int cli_usage_error(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "%s: ", prog_name);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	return GOMAN_EXIT_USAGE;
}

int cli_parse_long(const char *s, long min, long max, long *out)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

const char *cli_shown(const char *s)
{
	for (const char *p = s; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			return "(a value with a control character)";
	return s;
}

int cli_duration(const char *flag, const char *s, int64_t *ms)
{
	if (goman_parse_duration_ms(s, ms) == 0)
		return 0;
	fprintf(stderr, "%s: bad duration for --%s: '%s'\n", prog_name, flag, cli_shown(s));
	return -1;
}
