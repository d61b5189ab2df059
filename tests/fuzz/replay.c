/*
 * replay.c - main() for the gcc builds of the fuzz targets: runs LLVMFuzzerTestOneInput on
 * every file named (directories are walked one level), so `make test` replays the seed
 * corpora and the regression inputs without clang. Prints one line per failure; a crash
 * or sanitizer report ends the process, which tests/run counts as the target failing.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "fuzz.h"

/* Optional in a target: a weak reference resolves to NULL when it is not defined. */
#pragma weak LLVMFuzzerInitialize

static int run_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	if (!f) {
		fprintf(stderr, "replay: cannot open %s\n", path);
		return -1;
	}
	size_t cap = 4096, len = 0;
	uint8_t *buf = malloc(cap);
	size_t r;
	while (buf && (r = fread(buf + len, 1, cap - len, f)) > 0) {
		len += r;
		if (len == cap) {
			uint8_t *nb = realloc(buf, cap *= 2);
			if (!nb) {
				free(buf);
				buf = NULL;
			}
			buf = nb;
		}
	}
	fclose(f);
	if (!buf) {
		fprintf(stderr, "replay: out of memory reading %s\n", path);
		return -1;
	}
	/* an exact-size copy, so ASan sees a read past the input as one */
	uint8_t *in = malloc(len ? len : 1);
	if (!in) {
		free(buf);
		return -1;
	}
	memcpy(in, buf, len);
	free(buf);
	LLVMFuzzerTestOneInput(in, len);
	free(in);
	return 0;
}

static int cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int main(int argc, char **argv)
{
	int files = 0, bad = 0;
	if (LLVMFuzzerInitialize)
		LLVMFuzzerInitialize(&argc, &argv);
	for (int i = 1; i < argc; i++) {
		struct stat st;
		if (stat(argv[i], &st) < 0)
			continue; /* an absent regress/ directory is no inputs */
		if (!S_ISDIR(st.st_mode)) {
			bad += run_file(argv[i]) < 0;
			files++;
			continue;
		}
		DIR *d = opendir(argv[i]);
		if (!d) {
			bad++;
			continue;
		}
		char **names = NULL;
		size_t n = 0;
		struct dirent *de;
		while ((de = readdir(d))) {
			if (de->d_name[0] == '.')
				continue;
			char **nn = realloc(names, (n + 1) * sizeof(*names));
			if (!nn)
				break;
			names = nn;
			size_t l = strlen(argv[i]) + strlen(de->d_name) + 2;
			if (!(names[n] = malloc(l)))
				break;
			snprintf(names[n], l, "%s/%s", argv[i], de->d_name);
			n++;
		}
		closedir(d);
		qsort(names, n, sizeof(*names), cmp);
		for (size_t j = 0; j < n; j++) {
			bad += run_file(names[j]) < 0;
			files++;
			free(names[j]);
		}
		free(names);
	}
	printf("%d inputs replayed\n", files);
	return bad ? 1 : 0;
}
