/*
 * idem_dynamo.c - the idempotency store's DynamoDB backend (see goman/idem.h).
 * NEEDSWORK: placeholder until the generic AWS call path (aws.c) lands; every entry point
 * answers GOMAN_EINVAL "not available" so the file backend can be used meanwhile.
 */
#include <stddef.h>
#include "goman/idem.h"
#include "idem_int.h"

static int unavailable(struct goman_err *err)
{
	return goman_err_set(err, GOMAN_EINVAL, GOMAN_CLASS_BAD_INPUT, "NotAvailable",
			     "idempotency: the DynamoDB backend is not built yet");
}

int gm_idem_dynamo_open(struct goman_idem *s, const char *table, struct goman_aws *aws,
			struct goman_err *err)
{
	(void)s, (void)table, (void)aws;
	return unavailable(err);
}

void gm_idem_dynamo_close(struct goman_idem *s)
{
	(void)s;
}

int gm_idem_dynamo_begin(struct goman_idem *s, struct gm_idem_rec *mine, struct gm_idem_rec *found,
			 enum gm_idem_verdict *verdict, struct goman_err *err)
{
	(void)s, (void)mine, (void)found, (void)verdict;
	return unavailable(err);
}

int gm_idem_dynamo_finish(struct goman_idem *s, const struct goman_idem_ticket *t,
			  const char *status, const struct cJSON *result, const struct cJSON *error,
			  struct goman_err *err)
{
	(void)s, (void)t, (void)status, (void)result, (void)error;
	return unavailable(err);
}

int gm_idem_dynamo_cleanup(struct goman_idem *s, size_t *removed, struct goman_err *err)
{
	(void)s;
	*removed = 0;
	return unavailable(err);
}

int goman_idem_dynamo_create_table(struct goman_aws *aws, const char *table, struct goman_err *err)
{
	(void)aws, (void)table;
	return unavailable(err);
}
