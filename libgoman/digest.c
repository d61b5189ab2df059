/* digest.c - SHA-256 as hex (OpenSSL), apart from bytes.c so that hex and FNV-1a users do
 * not link libcrypto; see bytes_int.h */
#include "bytes_int.h"

#include <openssl/evp.h>

int gm_sha256_hex(const void *p, size_t n, char out[65])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int len = 0;
	if (!EVP_Digest(p, n, md, &len, EVP_sha256(), NULL) || len != 32)
		return -1;
	gm_hex_encode(md, 32, out);
	return 0;
}
