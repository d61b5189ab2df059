/*
 * goman/addr.h - what an address field may hold (goman(7), ADDRESSES): the one check for
 * every address that reaches a node, a command line or a systemd unit (private_ip,
 * public_ip, the ssh host, --server-url and the server URL built from a record).
 *
 * An address is an IP literal (IPv4 dotted quad or IPv6, as inet_pton(3) reads them; no
 * brackets, no zone) or a DNS name of RFC 1123 form: dot-separated labels of [A-Za-z0-9-],
 * 1 to 63 characters each, none starting or ending with '-', at most 253 characters in
 * all, no trailing dot, and a last label that is not all digits (that would read as an
 * IPv4 address). Anything else (spaces, control characters, '@', '/', ':', a leading '-')
 * is refused, so an accepted address is safe in argv, shell text, URLs and unit files.
 *
 * Ownership: nothing is kept. Errors: false / -1, never a partial result.
 */
#ifndef GOMAN_ADDR_H
#define GOMAN_ADDR_H
#include <stdbool.h>
#include <stddef.h>

/* True when s is an IPv4 or IPv6 literal or an RFC 1123 host name (above). */
bool goman_addr_ok(const char *s);
/* True when s is an IPv6 literal (needs brackets in a URL). */
bool goman_addr_is_ipv6(const char *s);
/* True when s is exactly https://ADDR:PORT: ADDR as goman_addr_ok (IPv6 in brackets),
 * PORT 1..65535 in decimal without sign or leading zero, nothing after it. */
bool goman_server_url_ok(const char *s);
/* Writes https://ADDR:PORT (IPv6 in brackets) into out. 0, or -1 when addr is not an
 * address, port is out of 1..65535 or out is too small (out is then ""). */
int goman_server_url(char *out, size_t len, const char *addr, int port);

#endif
