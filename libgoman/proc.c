/* proc.c - a process's state and start time from /proc; see proc_int.h */
#include "proc_int.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

int gm_proc_stat(pid_t pid, char *state, unsigned long long *start)
{
	char p[64], buf[1024];
	unsigned long long t;
	snprintf(p, sizeof(p), "/proc/%ld/stat", (long)pid);
	FILE *f = fopen(p, "re");
	if (!f)
		return -1;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = 0;
	/* the command name may hold spaces and parentheses: fields start after the last ')' */
	const char *r = strrchr(buf, ')');
	if (!r || sscanf(r + 1, " %c%*s%*s%*s%*s%*s%*s%*s%*s%*s%*s%*s%*s%*s%*s%*s%*s%*s%*s%llu",
			 state, &t) != 2)
		return errno = EINVAL, -1;
	*start = t;
	return 0;
}
