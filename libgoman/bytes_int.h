/*
 * bytes_int.h - the library's one home for small byte encodings and digests (gm_ names, not
 * exported): lowercase hex, SHA-256 as hex, FNV-1a, and the out-of-memory error.
 *
 * Nothing here allocates; callers give the output buffers (hex needs 2n+1 bytes). Errors:
 * gm_sha256_hex returns -1 only when OpenSSL fails; gm_err_oom always fills err and returns -1.
 */
#ifndef GOMAN_BYTES_INT_H
#define GOMAN_BYTES_INT_H
#include <stddef.h>
#include <stdint.h>

struct goman_err;

/* n bytes as 2n lowercase hex digits and a NUL */
void gm_hex_encode(const void *bytes, size_t n, char *out);
/* 0-15 for a hex digit (either case), -1 otherwise */
int gm_hex_value(char c);
/* SHA-256 of p[0..n) as 64 hex digits and a NUL; 0, or -1 when the digest failed (digest.c) */
int gm_sha256_hex(const void *p, size_t n, char out[65]);

/* FNV-1a, 64 bits: fast, not cryptographic (hash tables, torn-line checksums) */
#define GM_FNV1A_INIT UINT64_C(14695981039346656037)
#define GM_FNV1A_PRIME UINT64_C(1099511628211)
static inline uint64_t gm_fnv1a_step(uint64_t h, unsigned char c)
{
	return (h ^ c) * GM_FNV1A_PRIME;
}
uint64_t gm_fnv1a(const void *p, size_t n);

/* GOMAN_ENOMEM, "out of memory": the one wording of the one error; returns -1 (error.c) */
int gm_err_oom(struct goman_err *err);

#endif
