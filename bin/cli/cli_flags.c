/* cli_flags — table-driven long flags; see cli_flags.h */
#include "cli_flags.h"

#include <getopt.h>
#include <string.h>

#define MAX_FLAGS 64

int cli_flags_parse(const struct cli_flag *t, size_t n, const char *shorts, bool keep_going,
		    void *args, int argc, char **argv)
{
	struct option longopts[MAX_FLAGS + 3];
	char optstring[2 * MAX_FLAGS + 4] = "";
	size_t ns = shorts ? strlen(shorts) : 0, k = 0;
	int c, rc = CLI_FLAGS_OK;
	if (n > MAX_FLAGS || ns > n)
		return CLI_FLAGS_BAD;
	for (size_t i = 0; i < n; i++)
		longopts[i] = (struct option){t[i].name, t[i].has_arg, NULL, 256 + (int)i};
	longopts[n] = (struct option){"help", no_argument, NULL, 'h'};
	longopts[n + 1] = (struct option){"version", no_argument, NULL, 'V'};
	longopts[n + 2] = (struct option){NULL, 0, NULL, 0};
	for (size_t i = 0; i < ns; i++) {
		optstring[k++] = shorts[i];
		if (t[i].has_arg == required_argument)
			optstring[k++] = ':';
	}
	if (ns)
		memcpy(optstring + k, "hV", 3);
	while ((c = getopt_long(argc, argv, optstring, longopts, NULL)) != -1) {
		const char *sp = c > 0 && c < 256 && ns ? strchr(shorts, c) : NULL;
		long i = sp ? sp - shorts : c - 256;
		if (c == 'h' || c == 'V')
			return c == 'h' ? CLI_FLAGS_HELP : CLI_FLAGS_VERSION;
		int r = i < 0 || i >= (long)n         ? CLI_FLAGS_BAD
			: t[i].set(args, optarg) != 0 ? CLI_FLAGS_FAILED
						      : CLI_FLAGS_OK;
		if (r != CLI_FLAGS_OK && !keep_going)
			return r;
		if (r != CLI_FLAGS_OK)
			rc = r;
	}
	return rc;
}
