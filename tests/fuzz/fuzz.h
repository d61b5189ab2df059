/*
 * fuzz.h - what the fuzz targets share: the libFuzzer entry points and a small reader that
 * cuts one input into the pieces a target needs (a byte, a string up to a separator, the
 * rest), so one flat input drives several arguments.
 *
 * Every target builds two ways: with clang and -fsanitize=fuzzer (make fuzz), and with gcc
 * against tests/fuzz/replay.c, which feeds it the saved corpus and regression inputs in
 * `make test`. Targets must therefore be plain C11 and deterministic.
 */
#ifndef GOMAN_FUZZ_H
#define GOMAN_FUZZ_H
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

struct fz {
	const uint8_t *p;
	size_t n;
};

static inline unsigned fz_byte(struct fz *f)
{
	if (!f->n)
		return 0;
	f->n--;
	return *f->p++;
}

/* The bytes up to the next sep (or the end), as a malloc'd NUL-terminated string
 * (embedded NULs end it early, as a C caller would see them). */
static inline char *fz_str(struct fz *f, uint8_t sep)
{
	const uint8_t *e = memchr(f->p, sep, f->n);
	size_t len = e ? (size_t)(e - f->p) : f->n;
	char *s = malloc(len + 1);
	if (!s)
		abort();
	if (len)
		memcpy(s, f->p, len);
	s[len] = '\0';
	f->p += len + (e ? 1 : 0);
	f->n -= len + (e ? 1 : 0);
	return s;
}

/* The rest, malloc'd and NUL-terminated. */
static inline char *fz_rest(struct fz *f, size_t *len)
{
	char *s = malloc(f->n + 1);
	if (!s)
		abort();
	if (f->n)
		memcpy(s, f->p, f->n);
	s[f->n] = '\0';
	if (len)
		*len = f->n;
	f->p += f->n;
	f->n = 0;
	return s;
}

/* A copy of data with a NUL after it (most parsers here take C strings). */
static inline char *fz_cstr(const uint8_t *data, size_t size)
{
	struct fz f = {data, size};
	return fz_rest(&f, NULL);
}

#endif
