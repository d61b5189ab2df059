/*
 * addr.c - the address and server URL checks of goman/addr.h.
 *
 * One definition for every address field: a record's private_ip can become a server URL
 * in a systemd unit, an ssh host and shell text on a node, so the check is strict and
 * positive (what is allowed, not what is known to be dangerous).
 *
 * Ownership: nothing is allocated. Errors: false / -1.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include "goman/addr.h"

#define NAME_MAX_LEN 253
#define LABEL_MAX_LEN 63

static bool alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

static bool hostname_ok(const char *s, size_t n)
{
	if (n < 1 || n > NAME_MAX_LEN)
		return false;
	size_t start = 0;
	bool all_digits = true;
	for (size_t i = 0; i <= n; i++) {
		if (i < n && s[i] != '.') {
			if (!alnum(s[i]) && s[i] != '-')
				return false;
			if (s[i] < '0' || s[i] > '9')
				all_digits = false;
			continue;
		}
		size_t len = i - start;
		if (len < 1 || len > LABEL_MAX_LEN || s[start] == '-' || s[i - 1] == '-')
			return false;
		if (i == n && all_digits)
			return false;
		start = i + 1;
		all_digits = true;
	}
	return true;
}

static bool ip_ok(const char *s, size_t n, int af)
{
	char tmp[INET6_ADDRSTRLEN + 1];
	unsigned char bin[sizeof(struct in6_addr)];
	if (n < 2 || n >= sizeof(tmp))
		return false;
	memcpy(tmp, s, n);
	tmp[n] = '\0';
	return inet_pton(af, tmp, bin) == 1;
}

static bool addr_ok_n(const char *s, size_t n)
{
	return ip_ok(s, n, AF_INET) || ip_ok(s, n, AF_INET6) || hostname_ok(s, n);
}

bool goman_addr_ok(const char *s)
{
	return s && addr_ok_n(s, strlen(s));
}

bool goman_addr_is_ipv6(const char *s)
{
	return s && ip_ok(s, strlen(s), AF_INET6);
}

bool goman_server_url_ok(const char *s)
{
	static const char scheme[] = "https://";
	if (!s || strncmp(s, scheme, sizeof(scheme) - 1))
		return false;
	const char *h = s + sizeof(scheme) - 1, *colon;
	bool ok;
	if (*h == '[') {
		const char *close = strchr(h, ']');
		if (!close || close[1] != ':')
			return false;
		ok = ip_ok(h + 1, (size_t)(close - h - 1), AF_INET6);
		colon = close + 1;
	} else {
		/* an IPv6 literal without brackets leaves an empty host or a bad port */
		colon = strchr(h, ':');
		ok = colon && addr_ok_n(h, (size_t)(colon - h));
	}
	if (!ok)
		return false;
	const char *p = colon + 1;
	size_t digits = strspn(p, "0123456789");
	if (digits < 1 || digits > 5 || p[digits] || *p == '0')
		return false;
	long port = 0;
	for (size_t i = 0; i < digits; i++)
		port = port * 10 + (p[i] - '0');
	return port >= 1 && port <= 65535;
}

int goman_server_url(char *out, size_t len, const char *addr, int port)
{
	if (!out || !len)
		return -1;
	out[0] = '\0';
	if (!goman_addr_ok(addr) || port < 1 || port > 65535)
		return -1;
	bool v6 = goman_addr_is_ipv6(addr);
	int n = snprintf(out, len, v6 ? "https://[%s]:%d" : "https://%s:%d", addr, port);
	if (n < 0 || (size_t)n >= len) {
		out[0] = '\0';
		return -1;
	}
	return 0;
}
