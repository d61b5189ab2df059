/*
 * creds_client.c - goman_credchain_new: a chain for callers without an AWS client of their
 * own (goman-sign, goman-install's presigner). Its STS and SSO calls go through a client
 * made on the first call that needs one (gm_aws_new_on_chain: the chain's endpoint
 * settings, a loop and a guard of its own) and kept for the chain's life. A goman_aws
 * does not use this: it builds its chain with gm_credchain_new and installs itself.
 *
 * This file sits above both aws.c and creds.c, so neither names the other's constructor.
 *
 * Ownership: the client belongs to the chain (freed with it).
 * Errors: those of gm_credchain_new, and of the client's creation on first use.
 */
#include <stdlib.h>
#include "aws_int.h"
#include "bytes_int.h"
#include "creds_int.h"

struct lazy {
	struct goman_credchain *cc;
	struct goman_aws *aws;
};

static int lazy_call(void *ctx, const struct gm_cc_call *call, struct cJSON **reply,
		     struct goman_err *err)
{
	struct lazy *l = ctx;
	if (!l->aws && !(l->aws = gm_aws_new_on_chain(l->cc, err)))
		return -1;
	return gm_aws_creds_call(l->aws, call, reply, err);
}

static void lazy_free(void *ctx)
{
	struct lazy *l = ctx;
	goman_aws_free(l->aws);
	free(l);
}

struct goman_credchain *goman_credchain_new(const char *profile, struct goman_err *err)
{
	struct goman_credchain *cc = gm_credchain_new(profile, err);
	struct lazy *l = cc ? calloc(1, sizeof(*l)) : NULL;
	if (cc && !l) {
		gm_err_oom(err);
		goman_credchain_free(cc);
		return NULL;
	}
	if (l) {
		l->cc = cc;
		gm_credchain_set_caller(cc, lazy_call, l, lazy_free);
	}
	return cc;
}
