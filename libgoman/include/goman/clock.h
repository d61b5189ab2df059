/*
 * goman/clock.h - the one clock of libgoman, injectable for tests.
 *
 * Everything that reads time (sigv4 dates, breaker windows, retry deadlines, rate limiter,
 * idempotency expiry, record timestamps) goes through here, so a test can pin it.
 * No allocation; nothing to free.
 */
#ifndef GOMAN_CLOCK_H
#define GOMAN_CLOCK_H
#include <stdint.h>
#include <stddef.h>

/* wall clock, milliseconds since the Unix epoch (UTC) */
int64_t goman_now_ms(void);
/* monotonic clock in milliseconds, for durations and deadlines */
int64_t goman_mono_ms(void);
/* Tests: replace the clocks (NULL restores the real one). Both get ctx. */
void goman_clock_override(int64_t (*wall)(void *ctx), int64_t (*mono)(void *ctx), void *ctx);
/* Sleep in ms through the override-aware path (tests with a fake clock advance it instead). */
void goman_sleep_ms(int64_t ms);
void goman_clock_override_sleep(void (*sleeper)(int64_t ms, void *ctx));

/* RFC 3339 UTC with milliseconds: 2026-11-26T17:39:28.123Z. buf >= 25 bytes. Returns buf. */
char *goman_rfc3339(int64_t epoch_ms, char *buf, size_t len);
/* Parses ISO 8601 / RFC 3339 UTC ("20150830T123600Z", "2015-08-30T12:36:00Z", with
 * optional fraction and Z or +00:00). Returns 0 and sets *epoch_ms, or -1. */
int goman_parse_time(const char *s, int64_t *epoch_ms);

/* Durations, goman(7)'s one grammar: every command's duration flags are read here:
 * "250ms", "90s", "15m", "2h", "1d", "1h30m", or a bare number of seconds ("30", "0.5",
 * "0"). Returns 0 and sets *ms, or -1 for anything else (negative, junk, overflow). */
int goman_parse_duration_ms(const char *s, int64_t *ms);

#endif
