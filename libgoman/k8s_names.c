/*
 * k8s_names.c - the Kubernetes naming rules (see goman/k8s_names.h): one home for them, used
 * by the cluster file's checks and by goman-install's.
 */
#include <string.h>
#include "goman/k8s_names.h"

static bool alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

static bool lower_alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

/* a label name or value part: 1-63 of A-Z a-z 0-9 - _ . starting and ending alphanumeric */
static bool name_ok(const char *s, size_t n)
{
	if (n < 1 || n > 63 || !alnum(s[0]) || !alnum(s[n - 1]))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!alnum(s[i]) && s[i] != '-' && s[i] != '_' && s[i] != '.')
			return false;
	return true;
}

bool goman_k8s_dns_subdomain_ok(const char *s, size_t n)
{
	size_t lab = 0;
	if (n < 1 || n > 253)
		return false;
	for (size_t i = 0; i <= n; i++) {
		if (i == n || s[i] == '.') {
			if (!lab || s[i - 1] == '-')
				return false;
			lab = 0;
			continue;
		}
		if (!lower_alnum(s[i]) && !(s[i] == '-' && lab))
			return false;
		lab++;
	}
	return true;
}

bool goman_k8s_label_value_ok(const char *v, size_t n)
{
	return n == 0 || name_ok(v, n);
}

const char *goman_k8s_key_why(const char *k, size_t n)
{
	const char *sl = memchr(k, '/', n);
	if (sl && !goman_k8s_dns_subdomain_ok(k, (size_t)(sl - k)))
		return "has a prefix (before '/') that is not a DNS subdomain (lower case, dots)";
	const char *name = sl ? sl + 1 : k;
	if (!name_ok(name, n - (size_t)(name - k)))
		return "must be [prefix/]name, name 1-63 of A-Z a-z 0-9 - _ . starting and ending "
		       "alphanumeric";
	return NULL;
}

/* the prefix p (n bytes) is dom or a subdomain of it */
static bool domain_is(const char *p, size_t n, const char *dom)
{
	size_t l = strlen(dom);
	return n >= l && !memcmp(p + n - l, dom, l) && (n == l || p[n - l - 1] == '.');
}

const char *goman_k8s_label_key_why(const char *k, size_t n)
{
	const char *why = goman_k8s_key_why(k, n);
	if (why)
		return why;
	const char *sl = memchr(k, '/', n);
	size_t pn = sl ? (size_t)(sl - k) : 0;
	if (sl && (domain_is(k, pn, "kubernetes.io") || domain_is(k, pn, "k8s.io")) &&
	    !domain_is(k, pn, "kubelet.kubernetes.io") && !domain_is(k, pn, "node.kubernetes.io"))
		return "has a reserved prefix (kubernetes.io, k8s.io: a node may set only "
		       "node.kubernetes.io/ and kubelet.kubernetes.io/ labels)";
	return NULL;
}
