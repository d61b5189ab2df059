/*
 * fanout_policy.c - goman-fanout's decisions, as plain functions of plain data (see
 * fanout_int.h): the -j auto concurrency (AIMD, as TCP congestion avoidance), when a run
 * halts, and whether a job's output line reports throttling. No I/O, no allocation beyond a
 * parse of a line that may hold a throttling record.
 */
#include <math.h>
#include <stdint.h>
#include <string.h>
#include <cjson/cJSON.h>
#include "fanout_int.h"

/* ---- adaptive concurrency (AIMD) ------------------------------------------------------ */

void gm_aimd_init(struct gm_aimd *a, int start, int max)
{
	a->max = max < 1 ? 1 : max;
	a->c = start < 1 ? 1 : start > a->max ? a->max : start;
	a->last_cut_ms = INT64_MIN;
}

int gm_aimd_slots(const struct gm_aimd *a)
{
	return (int)floor(a->c + 1e-9);
}

/* A job succeeded: c += 1/c, about one slot more per window of `slots` successes (TCP
 * congestion avoidance). */
void gm_aimd_ok(struct gm_aimd *a)
{
	a->c += 1.0 / a->c;
	if (a->c > a->max)
		a->c = a->max;
}

/* A job started at started_ms was throttled (exit 75 or a throttling record). Halves the
 * concurrency, once per congestion event: a job started before the last cut saw the old
 * concurrency, so its throttle is already answered. Returns true when it cut. */
bool gm_aimd_throttle(struct gm_aimd *a, int64_t started_ms, int64_t now_ms)
{
	if (started_ms <= a->last_cut_ms)
		return false;
	a->c = a->c / 2;
	if (a->c < 1)
		a->c = 1;
	a->last_cut_ms = now_ms;
	return true;
}

/* ---- halting and throttling ---------------------------------------------------------- */

/* fail=N / fail=N%: should the run halt after `failed` of `done` finished jobs?  A percent
 * is only judged once ceil(100/N) jobs have finished, so one early failure does not stop a
 * run at fail=10%. */
bool gm_halt_due(unsigned long fail, bool percent, unsigned long failed, unsigned long done)
{
	if (!fail || !failed)
		return false;
	if (!percent)
		return failed >= fail;
	unsigned long min_done = (100 + fail - 1) / fail;
	return done >= min_done && failed * 100 >= fail * done;
}

/* see fanout_int.h */
bool gm_line_reports_throttling(const char *line, size_t len)
{
	/* without a backslash nothing is escaped, so the class must be there literally: most
	 * lines are decided without parsing them */
	if (!memchr(line, '\\', len) && !memmem(line, len, "throttling", 10))
		return false;
	cJSON *rec = cJSON_ParseWithLength(line, len);
	bool yes = false;
	if (cJSON_IsObject(rec)) {
		/* {"error":{...}} of a plain record, or {"<stage>":{"error":{...}}} */
		const cJSON *err = cJSON_GetObjectItemCaseSensitive(rec, "error");
		const cJSON *st = rec->child;
		while (!yes) {
			const cJSON *cls = cJSON_GetObjectItemCaseSensitive(err, "class");
			yes = cJSON_IsString(cls) && strcmp(cls->valuestring, "throttling") == 0;
			while (st && !cJSON_IsObject(st))
				st = st->next;
			if (!st)
				break;
			err = cJSON_GetObjectItemCaseSensitive(st, "error");
			st = st->next;
		}
	}
	cJSON_Delete(rec);
	return yes;
}
