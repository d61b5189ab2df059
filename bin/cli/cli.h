/*
 * cli — the flag helpers every goman-* command shares (program name in messages, strict
 * numbers, durations, printable echoes of bad values).
 *
 * Owns: nothing allocated; the program name given to cli_init() is borrowed for the life of
 * the process (pass argv[0]'s basename or a literal).
 * Errors: every parser returns 0, or -1 after one "PROG: ..." line on stderr; the caller
 * decides the exit code (GOMAN_EXIT_USAGE for a bad flag, as goman(7) says).
 * Not part of libgoman: it is linked into the commands only, and never into the library.
 */
#ifndef GOMAN_CLI_H
#define GOMAN_CLI_H

#include <stdint.h>

void cli_init(const char *prog);
const char *cli_prog(void);

/* "PROG: " + the formatted message + "\n" on stderr; returns GOMAN_EXIT_USAGE */
int cli_usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* a whole decimal number in [min, max]; no sign games, no trailing bytes */
int cli_parse_long(const char *s, long min, long max, long *out);

/* --FLAG DUR in goman(7)'s one duration grammar (goman_parse_duration_ms) */
int cli_duration(const char *flag, const char *s, int64_t *ms);

/* a flag value echoed in a message: the value itself if printable, else a placeholder */
const char *cli_shown(const char *s);

#endif
