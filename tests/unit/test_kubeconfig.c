/*
 * test_kubeconfig.c - a cluster's kubeconfig merged into the user's: other entries kept,
 * goman's replaced in place, the current context only changed when asked or unset, hostile
 * documents refused; files backed up, replaced 0600, locked the way kubectl locks them.
 */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "unit.h"
#include "goman/kubeconfig.h"

static const char k3s[] = "apiVersion: v1\n"
			  "clusters:\n"
			  "- cluster:\n"
			  "    certificate-authority-data: Q0E=\n"
			  "    server: https://127.0.0.1:6443\n"
			  "  name: default\n"
			  "contexts:\n"
			  "- context:\n"
			  "    cluster: default\n"
			  "    user: default\n"
			  "  name: default\n"
			  "current-context: default\n"
			  "kind: Config\n"
			  "preferences: {}\n"
			  "users:\n"
			  "- name: default\n"
			  "  user:\n"
			  "    client-certificate-data: Q0VSVA==\n"
			  "    client-key-data: S0VZ\n";

static const char eks[] = "apiVersion: v1\n"
			  "clusters:\n"
			  "- cluster:\n"
			  "    server: https://ABCD.eks.amazonaws.com\n"
			  "  name: prod-eks\n"
			  "contexts:\n"
			  "- context:\n"
			  "    cluster: prod-eks\n"
			  "    user: prod-eks\n"
			  "    namespace: \"true\"\n"
			  "  name: prod-eks\n"
			  "current-context: prod-eks\n"
			  "kind: Config\n"
			  "preferences: {}\n"
			  "users:\n"
			  "- name: prod-eks\n"
			  "  user:\n"
			  "    exec:\n"
			  "      command: aws\n"
			  "      args: [eks, get-token]\n";

static char *merge(const char *existing, const struct goman_kubeconfig_opts *o, bool *replaced)
{
	char *out = NULL;
	size_t len = 0;
	struct goman_err e = GOMAN_ERR_INIT;
	goman_err_clear(&e);
	int rc = goman_kubeconfig_merge(existing, existing ? strlen(existing) : 0, k3s,
					sizeof(k3s) - 1, o, &out, &len, replaced, &e);
	assert_int_equal(rc, 0);
	assert_int_equal(strlen(out), len);
	return out;
}

static long foreign(const char *doc, const char *keep)
{
	struct goman_err e = GOMAN_ERR_INIT;
	return goman_kubeconfig_foreign(doc, strlen(doc), keep, NULL, 0, &e);
}

static void test_merge_keeps_other_entries_and_adds_goman_named_ones(void **state)
{
	struct goman_kubeconfig_opts o = {.cluster = "box"};
	bool replaced = true;
	char *out = merge(eks, &o, &replaced);
	assert_false(replaced);
	assert_int_equal(foreign(out, "goman-box"), 3);      /* prod-eks cluster, context, user */
	assert_int_equal(foreign(out, "prod-eks"), 3);       /* goman-box cluster, context, user */
	assert_non_null(strstr(out, "namespace: \"true\"")); /* a quoted string stays a string */
	assert_non_null(strstr(out, "args: [eks, get-token]"));
	assert_non_null(strstr(out, "current-context: prod-eks"));
	assert_null(strstr(out, "name: default"));
	free(out);
}

static void test_merge_replaces_its_entries_in_place_on_a_second_run(void **state)
{
	struct goman_kubeconfig_opts o = {.cluster = "box"};
	bool replaced = false;
	char *once = merge(eks, &o, &replaced);
	char *twice = merge(once, &o, &replaced);
	assert_true(replaced);
	assert_string_equal(once, twice);
	assert_int_equal(foreign(twice, NULL), 6);
	free(once);
	free(twice);
}

static void test_current_context_changes_only_with_use_or_when_unset(void **state)
{
	bool replaced;
	struct goman_kubeconfig_opts o = {.cluster = "box", .use = true};
	char *out = merge(eks, &o, &replaced);
	assert_non_null(strstr(out, "current-context: goman-box"));
	free(out);
	o.use = false;
	out = merge(NULL, &o, &replaced); /* a new file: its only context is current */
	assert_non_null(strstr(out, "current-context: goman-box"));
	assert_non_null(strstr(out, "kind: Config"));
	free(out);
}

static void test_server_is_replaced_when_given(void **state)
{
	bool replaced;
	struct goman_kubeconfig_opts o = {.cluster = "box", .server = "https://54.1.2.3:6443"};
	char *out = merge(NULL, &o, &replaced);
	assert_non_null(strstr(out, "server: https://54.1.2.3:6443"));
	assert_null(strstr(out, "127.0.0.1"));
	free(out);
}

static void test_hostile_or_foreign_documents_are_refused(void **state)
{
	static const char *const bad[] = {
		/* anchors and aliases: the billion-laughs shape */
		"a: &a [x, x]\nb: &b [*a, *a]\nc: [*b, *b]\n",
		"- not\n- a\n- mapping\n",
		"clusters: just-a-string\n",
		"clusters:\n- plain\n",
		"{unclosed: [\n",
		"a: 1\n---\nb: 2\n",
	};
	struct goman_kubeconfig_opts o = {.cluster = "box"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char *out = NULL;
		size_t len;
		bool replaced;
		struct goman_err e = GOMAN_ERR_INIT;
		goman_err_clear(&e);
		assert_int_equal(goman_kubeconfig_merge(bad[i], strlen(bad[i]), k3s,
							sizeof(k3s) - 1, &o, &out, &len, &replaced,
							&e),
				 -1);
		assert_null(out);
		assert_string_equal(e.code, "BadInput");
	}
	/* deep nesting is refused before the loader recurses into it */
	char deep[3 + 2 * 100 + 2];
	memcpy(deep, "a: ", 3);
	memset(deep + 3, '[', 100);
	memset(deep + 103, ']', 100);
	memcpy(deep + 203, "\n", 2);
	struct goman_err e = GOMAN_ERR_INIT;
	assert_int_equal(foreign(deep, NULL), -1);
	deep[3 + 40] = '\0'; /* shallow enough: a document, just not a kubeconfig of anything */
	memset(deep + 3 + 20, ']', 20);
	assert_int_equal(foreign(deep, NULL), 0);
	/* an incoming document without a user, and a cluster name goman would not make */
	char *out = NULL;
	size_t len;
	bool replaced;
	const char *no_user = "clusters:\n- cluster: {server: https://x:6443}\n  name: d\n";
	assert_int_equal(goman_kubeconfig_merge(NULL, 0, no_user, strlen(no_user), &o, &out, &len,
						&replaced, &e),
			 -1);
	o.cluster = "Bad Name";
	assert_int_equal(goman_kubeconfig_merge(NULL, 0, k3s, sizeof(k3s) - 1, &o, &out, &len,
						&replaced, &e),
			 -1);
	assert_null(out);
}

/* ---- files ----------------------------------------------------------------------------- */

static char dir[64];

static int make_dir(void **state)
{
	snprintf(dir, sizeof(dir), "/tmp/goman-kc-XXXXXX");
	return mkdtemp(dir) ? 0 : -1;
}

static int remove_dir(void **state)
{
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd);
}

static void put(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	assert_non_null(f);
	char *p = calloc(1, 1 << 16);
	size_t n = fread(p, 1, (1 << 16) - 1, f);
	p[n] = '\0';
	fclose(f);
	return p;
}

static void test_update_backs_up_then_replaces_with_mode_0600(void **state)
{
	char path[128];
	snprintf(path, sizeof(path), "%s/config", dir);
	put(path, eks);
	chmod(path, 0644);
	struct goman_kubeconfig_opts o = {.cluster = "box"};
	struct goman_kubeconfig_result r;
	struct goman_err e = GOMAN_ERR_INIT;
	assert_int_equal(goman_kubeconfig_update(path, k3s, sizeof(k3s) - 1, &o, false, &r, &e), 0);
	assert_non_null(r.backup_path);
	char *backup = slurp(r.backup_path);
	assert_string_equal(backup, eks);
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(stat(r.backup_path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	char *now = slurp(path);
	assert_int_equal(foreign(now, NULL), 6);
	free(backup);
	free(now);
	goman_kubeconfig_result_free(&r);
}

static void test_update_refuses_while_kubectls_lock_is_held(void **state)
{
	char path[128], lock[140];
	snprintf(path, sizeof(path), "%s/locked", dir);
	snprintf(lock, sizeof(lock), "%s.lock", path);
	put(path, eks);
	put(lock, "");
	struct goman_kubeconfig_opts o = {.cluster = "box"};
	struct goman_kubeconfig_result r;
	struct goman_err e = GOMAN_ERR_INIT;
	assert_int_equal(goman_kubeconfig_update(path, k3s, sizeof(k3s) - 1, &o, false, &r, &e),
			 -1);
	assert_string_equal(e.code, "KubeconfigLocked");
	char *still = slurp(path);
	assert_string_equal(still, eks);
	free(still);
	assert_int_equal(access(lock, F_OK), 0); /* someone else's lock is not ours to remove */
}

static void test_standalone_write_refuses_a_file_with_other_entries(void **state)
{
	char path[128];
	snprintf(path, sizeof(path), "%s/other", dir);
	put(path, eks);
	struct goman_kubeconfig_opts o = {.cluster = "box"};
	struct goman_kubeconfig_result r;
	struct goman_err e = GOMAN_ERR_INIT;
	assert_int_equal(goman_kubeconfig_update(path, k3s, sizeof(k3s) - 1, &o, true, &r, &e), -1);
	assert_string_equal(e.code, "KubeconfigInUse");
	assert_non_null(strstr(e.message, "prod-eks"));
	char *still = slurp(path);
	assert_string_equal(still, eks);
	free(still);
	/* a file holding only goman-box is replaced */
	snprintf(path, sizeof(path), "%s/own", dir);
	assert_int_equal(goman_kubeconfig_update(path, k3s, sizeof(k3s) - 1, &o, true, &r, &e), 0);
	assert_null(r.backup_path); /* nothing was there */
	goman_kubeconfig_result_free(&r);
	assert_int_equal(goman_kubeconfig_update(path, k3s, sizeof(k3s) - 1, &o, true, &r, &e), 0);
	assert_true(r.replaced == false); /* standalone starts from nothing */
	assert_non_null(r.backup_path);
	goman_kubeconfig_result_free(&r);
}

static void test_a_symbolic_link_is_written_through(void **state)
{
	char real[128], link[128];
	snprintf(real, sizeof(real), "%s/real-config", dir);
	snprintf(link, sizeof(link), "%s/link-config", dir);
	put(real, eks);
	assert_int_equal(symlink(real, link), 0);
	struct goman_kubeconfig_opts o = {.cluster = "box"};
	struct goman_kubeconfig_result r;
	struct goman_err e = GOMAN_ERR_INIT;
	assert_int_equal(goman_kubeconfig_update(link, k3s, sizeof(k3s) - 1, &o, false, &r, &e), 0);
	struct stat st;
	assert_int_equal(lstat(link, &st), 0);
	assert_true(S_ISLNK(st.st_mode));
	char *now = slurp(real);
	assert_int_equal(foreign(now, NULL), 6);
	free(now);
	goman_kubeconfig_result_free(&r);
}

static void test_default_path_is_the_first_kubeconfig_entry(void **state)
{
	setenv("KUBECONFIG", "/a/one:/b/two", 1);
	char *p = goman_kubeconfig_default_path();
	assert_string_equal(p, "/a/one");
	free(p);
	unsetenv("KUBECONFIG");
	setenv("HOME", "/home/op", 1);
	p = goman_kubeconfig_default_path();
	assert_string_equal(p, "/home/op/.kube/config");
	free(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_merge_keeps_other_entries_and_adds_goman_named_ones),
		cmocka_unit_test(test_merge_replaces_its_entries_in_place_on_a_second_run),
		cmocka_unit_test(test_current_context_changes_only_with_use_or_when_unset),
		cmocka_unit_test(test_server_is_replaced_when_given),
		cmocka_unit_test(test_hostile_or_foreign_documents_are_refused),
		cmocka_unit_test(test_update_backs_up_then_replaces_with_mode_0600),
		cmocka_unit_test(test_update_refuses_while_kubectls_lock_is_held),
		cmocka_unit_test(test_standalone_write_refuses_a_file_with_other_entries),
		cmocka_unit_test(test_a_symbolic_link_is_written_through),
		cmocka_unit_test(test_default_path_is_the_first_kubeconfig_entry),
	};
	return cmocka_run_group_tests_name("kubeconfig", tests, make_dir, remove_dir);
}
