/*
 * cli_flags — a command's long flags as a table (name, takes a value or not, the setter
 * that takes it), parsed with getopt_long, so a main holds no switch over its flags.
 *
 * Owns: nothing; the table and the args the setters fill are the caller's.
 * Errors: a setter returns 0, or -1 after printing its own "PROG: ..." line; an unknown
 * flag is getopt's message.
 */
#ifndef GOMAN_CLI_FLAGS_H
#define GOMAN_CLI_FLAGS_H

#include <stdbool.h>
#include <stddef.h>

struct cli_flag {
	const char *name;
	int has_arg; /* no_argument or required_argument (getopt.h) */
	int (*set)(void *args, const char *value);
};

enum { CLI_FLAGS_OK, CLI_FLAGS_HELP, CLI_FLAGS_VERSION, CLI_FLAGS_BAD, CLI_FLAGS_FAILED };

/*
 * Parses argv's options over the table (at most 64 entries) plus --help and --version.
 * shorts: getopt short options that stand for the table's first entries, in order (e.g.
 * "csat" for -c -s -a -t; -h and -V come with them), or NULL. keep_going: an unknown flag
 * or a setter that refused does not stop the parse (every bad flag is said; the last
 * failure is returned). CLI_FLAGS_HELP / _VERSION as soon as one is seen; CLI_FLAGS_BAD for
 * an unknown flag (getopt said it); CLI_FLAGS_FAILED when a setter refused; else
 * CLI_FLAGS_OK, with optind at the first operand.
 */
int cli_flags_parse(const struct cli_flag *t, size_t n, const char *shorts, bool keep_going,
		    void *args, int argc, char **argv);

#endif
