/*
 * clock.c - the injectable clock (see goman/clock.h). Tests pin wall and monotonic time
 * and replace sleeping, as curl's CURL_FORCETIME does for signatures.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "goman/clock.h"

static int64_t (*wall_fn)(void *);
static int64_t (*mono_fn)(void *);
static void (*sleep_fn)(int64_t, void *);
static void *clock_ctx;

void goman_clock_override(int64_t (*wall)(void *ctx), int64_t (*mono)(void *ctx), void *ctx)
{
	wall_fn = wall;
	mono_fn = mono;
	clock_ctx = ctx;
}

void goman_clock_override_sleep(void (*sleeper)(int64_t ms, void *ctx))
{
	sleep_fn = sleeper;
}

int64_t goman_now_ms(void)
{
	if (wall_fn)
		return wall_fn(clock_ctx);
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t goman_mono_ms(void)
{
	if (mono_fn)
		return mono_fn(clock_ctx);
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void goman_sleep_ms(int64_t ms)
{
	if (ms <= 0)
		return;
	if (sleep_fn) {
		sleep_fn(ms, clock_ctx);
		return;
	}
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000};
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

char *goman_rfc3339(int64_t epoch_ms, char *buf, size_t len)
{
	/* floor division: the milliseconds of a time before 1970 are never negative */
	int msec = (int)(epoch_ms % 1000);
	time_t secs = (time_t)(epoch_ms / 1000);
	if (msec < 0)
		msec += 1000, secs--;
	struct tm tm;
	if (!gmtime_r(&secs, &tm) || tm.tm_year > 9999 - 1900 || tm.tm_year < -1900) {
		/* beyond what RFC 3339's four-digit year can say */
		snprintf(buf, len, "%s",
			 epoch_ms < 0 ? "0000-01-01T00:00:00.000Z" : "9999-12-31T23:59:59.999Z");
		return buf;
	}
	snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
		 tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, msec);
	return buf;
}

static int digits(const char **p, int n, int *out)
{
	int v = 0;
	for (int i = 0; i < n; i++) {
		if (**p < '0' || **p > '9')
			return -1;
		v = v * 10 + (**p - '0');
		(*p)++;
	}
	*out = v;
	return 0;
}

static int skip(const char **p, char c)
{
	if (**p == c) {
		(*p)++;
		return 1;
	}
	return 0;
}

int goman_parse_time(const char *s, int64_t *epoch_ms)
{
	int y, mo, d, h, mi, se, ms = 0;
	const char *p = s;
	if (!s || digits(&p, 4, &y))
		return -1;
	skip(&p, '-');
	if (digits(&p, 2, &mo))
		return -1;
	skip(&p, '-');
	if (digits(&p, 2, &d) || !(skip(&p, 'T') || skip(&p, 't') || skip(&p, ' ')))
		return -1;
	if (digits(&p, 2, &h))
		return -1;
	skip(&p, ':');
	if (digits(&p, 2, &mi))
		return -1;
	skip(&p, ':');
	if (digits(&p, 2, &se))
		return -1;
	if (skip(&p, '.')) {
		int scale = 100;
		while (*p >= '0' && *p <= '9') {
			ms += (*p - '0') * scale;
			scale /= 10;
			p++;
		}
	}
	if (!(skip(&p, 'Z') || skip(&p, 'z') || strcmp(p, "+00:00") == 0 || *p == '\0'))
		return -1;
	if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || se > 60)
		return -1;
	/* days from civil (Howard Hinnant), no timegm() needed */
	y -= mo <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	int64_t yoe = y - era * 400;
	int64_t doy = (153 * (mo + (mo > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	int64_t days = era * 146097 + doe - 719468;
	*epoch_ms = ((days * 86400) + h * 3600 + mi * 60 + se) * 1000 + ms;
	return 0;
}

int goman_parse_duration_ms(const char *s, int64_t *ms)
{
	if (!s || !*s)
		return -1;
	double total = 0;
	const char *p = s;
	int parts = 0;
	while (*p) {
		char *end;
		/* decimal digits only: strtod would also take "nan", "inf", hex floats, a sign
		 * and leading blanks, none of which is a duration */
		if (!((*p >= '0' && *p <= '9') || *p == '.'))
			return -1;
		errno = 0;
		double v = strtod(p, &end);
		if (end == p || errno || !isfinite(v) || v < 0)
			return -1;
		for (const char *q = p; q < end; q++)
			if (!strchr("0123456789.eE+-", *q))
				return -1;
		p = end;
		double unit;
		if (strncmp(p, "ms", 2) == 0)
			unit = 1, p += 2;
		else if (*p == 's')
			unit = 1000, p++;
		else if (*p == 'm')
			unit = 60000, p++;
		else if (*p == 'h')
			unit = 3600000, p++;
		else if (*p == 'd')
			unit = 86400000, p++;
		else if (*p == '\0' && parts == 0)
			unit = 1000; /* bare number: seconds */
		else
			return -1;
		total += v * unit;
		parts++;
	}
	if (!(total <= 9.0e15)) /* also refuses a NaN or infinite sum */
		return -1;
	*ms = (int64_t)(total + 0.5);
	return 0;
}
