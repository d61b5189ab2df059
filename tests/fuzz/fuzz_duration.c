/*
 * fuzz_duration.c - the duration and time parsers behind flags and records (clock.c):
 * goman_parse_duration_ms accepts only finite, non-negative durations up to its limit
 * (never NaN or infinity cast to an integer), goman_parse_time gives a time that prints
 * (goman_rfc3339) and parses back to itself, and goman_rfc3339 takes any epoch value.
 */
#include <stdio.h>
#include "goman/clock.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = fz_cstr(data, size);
	int64_t ms = -12345;
	if (goman_parse_duration_ms(s, &ms) == 0) {
		if (ms < 0 || ms > 9000000000000000LL)
			abort();
	} else if (ms != -12345) {
		abort(); /* a refused duration leaves the output alone */
	}
	int64_t t;
	if (goman_parse_time(s, &t) == 0 && t >= 0) {
		char buf[64];
		int64_t back;
		goman_rfc3339(t, buf, sizeof(buf));
		if (goman_parse_time(buf, &back) != 0 || back != t) {
			fprintf(stderr, "'%s' -> %lld -> '%s'\n", s, (long long)t, buf);
			abort();
		}
	}
	if (size >= 8) {
		int64_t any;
		memcpy(&any, data, sizeof(any));
		char buf[64];
		goman_rfc3339(any, buf, sizeof(buf));
	}
	free(s);
	return 0;
}
