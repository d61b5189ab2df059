/* bytes.c - hex, SHA-256 hex, FNV-1a and the out-of-memory error; see bytes_int.h */
#include "bytes_int.h"

#include <openssl/evp.h>

#include <goman/error.h>

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

int gm_sha256_hex(const void *p, size_t n, char out[65])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int len = 0;
	if (!EVP_Digest(p, n, md, &len, EVP_sha256(), NULL) || len != 32)
		return -1;
	gm_hex_encode(md, 32, out);
	return 0;
}

uint64_t gm_fnv1a(const void *p, size_t n)
{
	const unsigned char *s = p;
	uint64_t h = GM_FNV1A_INIT;
	for (size_t i = 0; i < n; i++)
		h = gm_fnv1a_step(h, s[i]);
	return h;
}

int gm_err_oom(struct goman_err *err)
{
	return goman_err_set(err, GOMAN_ENOMEM, GOMAN_CLASS_NONE, "", "out of memory");
}
