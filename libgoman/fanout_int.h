/*
 * fanout_int.h - fanout.c's pure decision functions, shared with its unit test only
 * (GOMAN_TESTABLE: static in the library, visible in the unit-test build).
 */
#ifndef GOMAN_FANOUT_INT_H
#define GOMAN_FANOUT_INT_H
#include <stdbool.h>
#include <stdint.h>

/* -j auto: additive increase, multiplicative decrease of the concurrency. Plain data. */
struct gm_aimd {
	double c;            /* current concurrency (slots = floor(c)) */
	int max;             /* CPU count x factor, or --max-jobs */
	int64_t last_cut_ms; /* monotonic time of the last cut */
};

#ifdef GOMAN_UNIT_TEST
void gm_aimd_init(struct gm_aimd *a, int start, int max);
int gm_aimd_slots(const struct gm_aimd *a);
void gm_aimd_ok(struct gm_aimd *a);
bool gm_aimd_throttle(struct gm_aimd *a, int64_t started_ms, int64_t now_ms);
/* True when the line (without its '\n') is a JSON object holding an error record of class
 * "throttling", at its top level or under one stage ({"install":{"error":{...}}}). */
bool gm_line_reports_throttling(const char *line, size_t len);
bool gm_halt_due(unsigned long fail, bool percent, unsigned long failed, unsigned long done);
#endif
#endif
