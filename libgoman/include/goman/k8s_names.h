/*
 * goman/k8s_names.h - the Kubernetes naming rules of what goman hands to K3s: label keys
 * and values (also the key and value of a taint) and DNS subdomains (label key prefixes,
 * node names). The cluster file and goman-install check with the same rules, so a file
 * goman-spec accepts is never refused on the node.
 *
 * Strings are given with their length (a key inside a taint is not NUL-terminated). The
 * *_why functions return NULL when fine, else a static text saying why not (it reads after
 * the thing's name: "label key x has a prefix ..."). Nothing is allocated.
 */
#ifndef GOMAN_K8S_NAMES_H
#define GOMAN_K8S_NAMES_H
#include <stdbool.h>
#include <stddef.h>

/* a qualified name: [prefix/]name, prefix a DNS subdomain, name a label value of 1-63 */
const char *goman_k8s_key_why(const char *k, size_t n);
/* a qualified name a node may set on itself (NodeRestriction keeps kubernetes.io and k8s.io
 * prefixes but node.kubernetes.io/ and kubelet.kubernetes.io/ for the control plane) */
const char *goman_k8s_label_key_why(const char *k, size_t n);
/* empty, or 1-63 of A-Z a-z 0-9 - _ . starting and ending alphanumeric */
bool goman_k8s_label_value_ok(const char *v, size_t n);
/* dot-separated lower case labels of [a-z0-9-], none starting or ending with '-', max 253 */
bool goman_k8s_dns_subdomain_ok(const char *s, size_t n);

#endif
