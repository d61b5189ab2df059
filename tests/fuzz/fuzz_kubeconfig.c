/*
 * fuzz_kubeconfig.c - the kubeconfig merge on hostile documents, both as the user's file and
 * as the incoming one. Properties: no crash or leak, and a merge that succeeded is a fixed
 * point (merging the same cluster into its own output changes nothing), so a second
 * `goman cluster kubeconfig --merge` never rewrites what the first one wrote.
 */
#include <stdlib.h>
#include <string.h>
#include "goman/kubeconfig.h"
#include "fuzz.h"

static const char k3s[] = "apiVersion: v1\n"
			  "clusters:\n- cluster: {certificate-authority-data: Q0E=, server: "
			  "'https://127.0.0.1:6443'}\n  name: default\n"
			  "users:\n- name: default\n  user: {token: t}\n";

static void fixed_point(const char *out, size_t len, const struct goman_kubeconfig_opts *o)
{
	char *again = NULL;
	size_t again_len = 0;
	bool replaced;
	struct goman_err e = GOMAN_ERR_INIT;
	if (goman_kubeconfig_merge(out, len, k3s, sizeof(k3s) - 1, o, &again, &again_len, &replaced,
				   &e) != 0 ||
	    !replaced || again_len != len || memcmp(out, again, len) != 0)
		abort();
	free(again);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct goman_kubeconfig_opts o = {.cluster = "fz", .use = size > 0 && (data[0] & 1)};
	char *out = NULL;
	size_t len = 0;
	bool replaced;
	struct goman_err e = GOMAN_ERR_INIT;
	if (goman_kubeconfig_merge((const char *)data, size, k3s, sizeof(k3s) - 1, &o, &out, &len,
				   &replaced, &e) == 0) {
		fixed_point(out, len, &o);
		free(out);
	}
	if (goman_kubeconfig_merge(NULL, 0, (const char *)data, size, &o, &out, &len, &replaced,
				   &e) == 0)
		free(out);
	char first[64];
	goman_kubeconfig_foreign((const char *)data, size, "goman-fz", first, sizeof(first), &e);
	return 0;
}
