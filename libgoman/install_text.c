/*
 * install_text.c - what goman-install sends to a node, whatever the transport: the
 * script's flags (gm_inst_script_args), a node's own flags (name, labels, taints), the
 * air-gap line, and the shell text of the verification and of cordon/drain/uncordon/delete;
 * and the reading of what the installer prints back (goman_install_parse_output).
 * Below the scheduler (install.c) and the transports (install_ssm.c, install_proc.c), so
 * they all use it and none of them depends on another.
 *
 * Ownership: every function returns malloc'd memory the caller frees (argv lists with
 * gm_inst_argv_free; the air-gap line holds the session token: wipe it first).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>
#include "install_int.h"

const char *const gm_inst_action_names[] = {"install", "cordon", "drain", "uncordon", "delete"};

static void add_k3s(struct gm_buf *b, const struct gm_install *in);

static char **argv_push(char **v, size_t *n, const char *s)
{
	char **nv = realloc(v, (*n + 2) * sizeof(*v));
	if (!nv)
		return v;
	nv[*n] = strdup(s ? s : "");
	if (nv[*n])
		(*n)++;
	nv[*n] = NULL;
	return nv;
}

void gm_inst_argv_free(char **argv)
{
	for (size_t i = 0; argv && argv[i]; i++)
		free(argv[i]);
	free(argv);
}

bool gm_inst_airgap(const struct gm_install *in)
{
	return in->o.airgap_binary_url && *in->o.airgap_binary_url && in->o.airgap_checksum_url &&
	       *in->o.airgap_checksum_url;
}

char *gm_inst_airgap_line(const struct gm_install *in)
{
	if (!gm_inst_airgap(in))
		return NULL;
	size_t n = strlen(in->o.airgap_binary_url) + strlen(in->o.airgap_checksum_url) + 2;
	char *s = malloc(n);
	if (s)
		snprintf(s, n, "%s %s", in->o.airgap_binary_url, in->o.airgap_checksum_url);
	return s;
}

char **gm_inst_script_args(struct gm_install *in, const struct gm_inode *n)
{
	const struct goman_install_opts *o = &in->o;
	char **v = NULL;
	size_t c = 0;
	v = argv_push(v, &c, "--role");
	v = argv_push(v, &c, n->kind == GM_K_AGENT ? "agent" : "server");
	if (n->kind == GM_K_FIRST && in->cluster_init)
		v = argv_push(v, &c, "--cluster-init");
	if (n->kind != GM_K_FIRST) {
		v = argv_push(v, &c, "--server-url");
		v = argv_push(v, &c, gm_inst_server_url(in, n));
	}
	if (o->tls_san && n->kind != GM_K_AGENT) {
		v = argv_push(v, &c, "--tls-san");
		v = argv_push(v, &c, o->tls_san);
	}
	/* The first server stores its kubeconfig in SSM itself (the script's own SSM client:
	 * the aws CLI, else curl --aws-sigv4 with the instance role). Over SSM the node has a
	 * role by definition; over ssh/local only when this run talks to AWS at all (the token
	 * came from SSM), else nothing is stored (goman-install(1)). */
	if (n->kind == GM_K_FIRST && o->store_kubeconfig && (o->via == GOMAN_VIA_SSM || o->aws) &&
	    in->cluster[0]) {
		char kp[200];
		snprintf(kp, sizeof(kp), "/goman/%s/kubeconfig", in->cluster);
		v = argv_push(v, &c, "--kubeconfig-ssm-param");
		v = argv_push(v, &c, kp);
		if (n->ip[0]) {
			v = argv_push(v, &c, "--kubeconfig-server");
			v = argv_push(v, &c, n->ip);
		}
		if (o->region && o->via != GOMAN_VIA_SSM) {
			v = argv_push(v, &c, "--region");
			v = argv_push(v, &c, o->region);
		}
	}
	if (o->via == GOMAN_VIA_SSM) {
		v = argv_push(v, &c, "--token-ssm-param");
		v = argv_push(v, &c, in->token_param);
		if (o->region) {
			v = argv_push(v, &c, "--region");
			v = argv_push(v, &c, o->region);
		}
	} else {
		v = argv_push(v, &c, "--token-stdin");
	}
	const char *pairs[][2] = {{"--k3s-version", o->k3s_version},
				  {"--channel", o->channel},
				  {"--mirror", o->mirror},
				  {"--prefix", o->prefix}};
	for (size_t i = 0; i < sizeof(pairs) / sizeof(pairs[0]); i++)
		if (pairs[i][1] && *pairs[i][1]) {
			v = argv_push(v, &c, pairs[i][0]);
			v = argv_push(v, &c, pairs[i][1]);
		}
	/* the URLs themselves never: they carry the session token */
	if (gm_inst_airgap(in)) {
		if (o->via == GOMAN_VIA_SSM) {
			v = argv_push(v, &c, "--airgap-ssm-param");
			v = argv_push(v, &c, in->airgap_param);
		} else {
			v = argv_push(v, &c, "--airgap-stdin");
		}
	}
	if (o->no_services)
		v = argv_push(v, &c, "--no-services");
	if (o->timeout_ms > 0) {
		char s[32];
		/* readiness gets what is left of the execution timeout after a download */
		snprintf(s, sizeof(s), "%lld", (long long)(o->timeout_ms / 1000 * 3 / 4 + 1));
		v = argv_push(v, &c, "--ready-timeout");
		v = argv_push(v, &c, s);
	}
	return v;
}

char *gm_inst_verify_cmd(struct gm_install *in)
{
	struct gm_buf b = {0};
	char num[64];
	add_k3s(&b, in);
	/* poll on the node (one SSM command, not many) until every installed node is Ready */
	snprintf(num, sizeof(num), "; want=%d; n=%lld; ", in->nodes_ok,
		 (long long)((in->o.verify_wait_ms + 999) / 1000));
	gm_buf_adds(&b, num);
	gm_buf_adds(&b,
		    "while :; do out=$(\"$k\" kubectl get nodes --no-headers 2>&1); "
		    "r=$(printf '%s\\n' \"$out\" | awk '$2 == \"Ready\"' | wc -l); "
		    "[ \"$r\" -ge \"$want\" ] && break; n=$((n - 1)); [ \"$n\" -le 0 ] && break; "
		    "sleep 1; done; printf '%s\\n' \"$out\"");
	return b.p;
}

char **gm_inst_node_args(const struct gm_inode *n)
{
	char **v = NULL;
	size_t c = 0;
	v = argv_push(v, &c, "--node-name");
	v = argv_push(v, &c, n->name);
	const cJSON *e;
	cJSON_ArrayForEach (e, cJSON_GetObjectItemCaseSensitive(n->rec, "labels")) {
		if (!cJSON_IsString(e))
			continue;
		size_t l = strlen(e->string) + strlen(e->valuestring) + 2;
		char *kv = malloc(l);
		if (!kv)
			continue;
		snprintf(kv, l, "%s=%s", e->string, e->valuestring);
		v = argv_push(v, &c, "--node-label");
		v = argv_push(v, &c, kv);
		free(kv);
	}
	cJSON_ArrayForEach (e, cJSON_GetObjectItemCaseSensitive(n->rec, "taints")) {
		if (!cJSON_IsString(e))
			continue;
		v = argv_push(v, &c, "--node-taint");
		v = argv_push(v, &c, e->valuestring);
	}
	return v;
}

static void add_k3s(struct gm_buf *b, const struct gm_install *in)
{
	gm_buf_adds(b, "k=");
	if (in->o.prefix && *in->o.prefix) {
		struct gm_buf p = {0};
		gm_buf_adds(&p, in->o.prefix);
		gm_buf_adds(&p, "/usr/local/bin/k3s");
		gm_buf_quote(b, p.p ? p.p : "");
		gm_buf_free(&p);
	} else {
		gm_buf_adds(b, "k3s");
	}
}

char *gm_inst_action_cmd(struct gm_install *in, const struct gm_inode *n)
{
	struct gm_buf b = {0};
	char num[96];
	enum goman_install_action a = in->o.action;
	bool del = a == GOMAN_ACTION_DELETE;
	add_k3s(&b, in);
	gm_buf_adds(&b, del ? "; o=$(\"$k\" kubectl drain" : "; \"$k\" kubectl ");
	if (!del)
		gm_buf_adds(&b, gm_inst_action_names[a]);
	if (a == GOMAN_ACTION_DRAIN || del) {
		/* a node being deleted loses its unmanaged pods anyway: --force lets the drain
		 * evict them instead of refusing */
		snprintf(num, sizeof(num),
			 " --ignore-daemonsets --delete-emptydir-data%s --timeout=%llds",
			 del ? " --force" : "", (long long)((in->o.drain_timeout_ms + 999) / 1000));
		gm_buf_adds(&b, num);
	}
	gm_buf_adds(&b, " ");
	gm_buf_quote(&b, n->name);
	gm_buf_adds(&b, " 2>&1");
	if (del) {
		/* a node Kubernetes does not know (it never joined, or a re-run deleted it) is
		 * already what a delete wants */
		gm_buf_adds(&b,
			    "); r=$?; printf '%s\\n' \"$o\"; if [ $r -ne 0 ]; then case \"$o\" in "
			    "*NotFound*) exit 0 ;; esac; exit $r; fi; \"$k\" kubectl delete node ");
		gm_buf_quote(&b, n->name);
		gm_buf_adds(&b, " 2>&1");
	}
	return b.p;
}

/* The GOMAN_PROGRESS and last GOMAN_RESULT lines of an installer's output. */
cJSON *goman_install_parse_output(const char *out, int *progress)
{
	cJSON *res = NULL;
	if (progress)
		*progress = -1;
	for (const char *l = out; l && *l;) {
		const char *e = strchr(l, '\n');
		size_t n = e ? (size_t)(e - l) : strlen(l);
		if (n > 15 && !strncmp(l, "GOMAN_PROGRESS ", 15) && progress) {
			char *end;
			long v = strtol(l + 15, &end, 10);
			if (end != l + 15 && v >= 0 && v <= 100)
				*progress = (int)v;
		} else if (n > 13 && !strncmp(l, "GOMAN_RESULT ", 13)) {
			cJSON *j = cJSON_ParseWithLength(l + 13, n - 13);
			if (cJSON_IsObject(j)) {
				cJSON_Delete(res);
				res = j;
			} else {
				cJSON_Delete(j);
			}
		}
		l = e ? e + 1 : NULL;
	}
	return res;
}
