/* bytes.c - hex and FNV-1a; see bytes_int.h. No OpenSSL here: a command that only needs
 * hex or a hash table does not link libcrypto for it (digest.c has the SHA-256). */
#include "bytes_int.h"

void gm_hex_encode(const void *bytes, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";
	const unsigned char *d = bytes;
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[d[i] >> 4];
		out[2 * i + 1] = digits[d[i] & 15];
	}
	out[2 * n] = '\0';
}

int gm_hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

uint64_t gm_fnv1a(const void *p, size_t n)
{
	const unsigned char *s = p;
	uint64_t h = GM_FNV1A_INIT;
	for (size_t i = 0; i < n; i++)
		h = gm_fnv1a_step(h, s[i]);
	return h;
}
