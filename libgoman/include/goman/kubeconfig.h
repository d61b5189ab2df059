/*
 * goman/kubeconfig.h - a cluster's kubeconfig merged into the user's own, the way kubectl
 * would leave it: other clusters, users, contexts and top-level keys untouched, goman's
 * entries named goman-NAME, the file backed up first and replaced atomically (0600).
 *
 * Documents are YAML (kubectl writes YAML; JSON is YAML too). Anchors and aliases are
 * refused: kubectl never writes them, and expanding them is how a small file becomes a
 * huge one. A document is capped at GOMAN_KUBECONFIG_MAX bytes.
 *
 * Ownership: every char ** out-parameter is a new string the caller frees with free(3).
 * Errors: -1 with err filled (BadInput for documents we cannot use, EIO for files,
 * ECONFLICT for a locked file or a file that holds other clusters).
 */
#ifndef GOMAN_KUBECONFIG_H
#define GOMAN_KUBECONFIG_H
#include <stdbool.h>
#include <stddef.h>
#include "goman/error.h"

#define GOMAN_KUBECONFIG_MAX (16u * 1024 * 1024)

struct goman_kubeconfig_opts {
	const char *cluster; /* goman's cluster name; entries are named "goman-<cluster>" */
	const char *server;  /* the API server URL to write, or NULL to keep the incoming one */
	bool use;            /* make goman-<cluster> the current context */
};

/*
 * Merges the first cluster and user of incoming (a kubeconfig as K3s writes it) into
 * existing (NULL or empty: a new kubeconfig). Entries of existing named goman-<cluster> are
 * replaced in place; everything else is kept in order. The current context becomes
 * goman-<cluster> when o->use is set or existing had none. *replaced says whether an
 * entry of that name was there before.
 */
int goman_kubeconfig_merge(const char *existing, size_t existing_len, const char *incoming,
			   size_t incoming_len, const struct goman_kubeconfig_opts *o, char **out,
			   size_t *out_len, bool *replaced, struct goman_err *err);

/*
 * Counts the cluster, user and context names of doc other than keep (NULL: all of them),
 * so a caller can refuse to replace a file that holds someone else's clusters. Writes the
 * first such name into first (may be NULL). Returns the count, or -1 (BadInput).
 */
long goman_kubeconfig_foreign(const char *doc, size_t len, const char *keep, char *first,
			      size_t first_size, struct goman_err *err);

struct goman_kubeconfig_result {
	char *path;        /* the file written (a symbolic link's target) */
	char *backup_path; /* the copy of what was there, or NULL when there was nothing */
	bool replaced;     /* goman-<cluster> entries were there and were replaced */
};
void goman_kubeconfig_result_free(struct goman_kubeconfig_result *r);

/*
 * Writes a cluster's kubeconfig (incoming) to path, under kubectl's lock: <path>.lock
 * created exclusively (ECONFLICT KubeconfigLocked while another writer holds it). Merged
 * into what is there, or with standalone set, a file of goman's entries only, refused
 * (ECONFLICT KubeconfigInUse) when the file holds any other entry. What was there is first
 * copied to <path>.goman-<UTC time>.bak (0600); the new content goes to a temporary file
 * beside it, is fsynced and renamed over path, mode 0600. A symbolic link at path is
 * written through (the link stays); a missing directory is created 0700.
 * res is filled on success (free with goman_kubeconfig_result_free) and empty on error.
 */
int goman_kubeconfig_update(const char *path, const char *incoming, size_t incoming_len,
			    const struct goman_kubeconfig_opts *o, bool standalone,
			    struct goman_kubeconfig_result *res, struct goman_err *err);

/* The file kubectl would write: the first entry of $KUBECONFIG (':'-separated), else
 * $HOME/.kube/config. New string, or NULL when neither is set. */
char *goman_kubeconfig_default_path(void);

#endif
