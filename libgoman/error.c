/*
 * error.c - the one error type, the one classification table, and the mapping of a run's
 * outcomes to sysexits codes (see goman/error.h). Owns no heap memory.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include "goman/error.h"

#include "bytes_int.h"

static const char *const rc_names[GOMAN_RC_MAX] = {
	[GOMAN_OK] = "no error",
	[GOMAN_ENOMEM] = "out of memory",
	[GOMAN_EINVAL] = "invalid argument or input",
	[GOMAN_EIO] = "local I/O error",
	[GOMAN_ETRANSPORT] = "could not reach the endpoint",
	[GOMAN_ETIMEOUT] = "timed out",
	[GOMAN_ESERVICE] = "the service returned an error",
	[GOMAN_ECREDS] = "no usable credentials",
	[GOMAN_ECIRCUIT] = "circuit breaker open",
	[GOMAN_EPARSE] = "could not parse the reply",
	[GOMAN_ECONFLICT] = "conflict",
	[GOMAN_ENOTFOUND] = "not found",
	[GOMAN_EQUOTA] = "retry quota exhausted",
	[GOMAN_ECHILD] = "child process failed",
	[GOMAN_ECONFIG] = "bad configuration",
};

const char *goman_strerror(enum goman_rc rc)
{
	if ((int)rc < 0 || rc >= GOMAN_RC_MAX || !rc_names[rc])
		return "unknown error";
	return rc_names[rc];
}

static const char *const class_names[GOMAN_CLASS_MAX] = {
	[GOMAN_CLASS_NONE] = "",
	[GOMAN_CLASS_THROTTLING] = "throttling",
	[GOMAN_CLASS_TRANSIENT] = "transient",
	[GOMAN_CLASS_CLIENT] = "client",
	[GOMAN_CLASS_AUTH] = "auth",
	[GOMAN_CLASS_CIRCUIT_OPEN] = "circuit_open",
	[GOMAN_CLASS_TIMEOUT] = "timeout",
	[GOMAN_CLASS_BAD_INPUT] = "bad_input",
	[GOMAN_CLASS_PRECHECK] = "precheck",
	[GOMAN_CLASS_DOWNLOAD] = "download",
	[GOMAN_CLASS_CHECKSUM] = "checksum",
	[GOMAN_CLASS_START] = "start",
	[GOMAN_CLASS_UNVERIFIED] = "unverified",
};

const char *goman_class_name(enum goman_class c)
{
	if ((int)c < 0 || c >= GOMAN_CLASS_MAX)
		return "";
	return class_names[c];
}

enum goman_class goman_class_from_name(const char *name)
{
	for (int i = 1; name && i < GOMAN_CLASS_MAX; i++)
		if (strcmp(class_names[i], name) == 0)
			return (enum goman_class)i;
	return GOMAN_CLASS_NONE;
}

void goman_err_clear(struct goman_err *e)
{
	if (!e)
		return;
	memset(e, 0, sizeof(*e));
	e->retry_after_ms = -1;
}

int goman_err_set(struct goman_err *e, enum goman_rc rc, enum goman_class cls, const char *code,
		  const char *fmt, ...)
{
	if (!e)
		return -1;
	goman_err_clear(e);
	e->rc = rc;
	e->cls = cls;
	snprintf(e->code, sizeof(e->code), "%s", code ? code : "");
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(e->message, sizeof(e->message), fmt, ap);
	va_end(ap);
	e->retryable = cls == GOMAN_CLASS_THROTTLING || cls == GOMAN_CLASS_TRANSIENT ||
		       cls == GOMAN_CLASS_TIMEOUT;
	return -1;
}

/* The table. Codes are matched exactly; the service column narrows where a code means
 * different things to different services (NULL = any). */
struct code_class {
	const char *service;
	const char *code;
	enum goman_class cls;
};

static const struct code_class code_table[] = {
	/* throttling: goes to the rate limiter and the retry quota, never to the breaker */
	{NULL, "Throttling", GOMAN_CLASS_THROTTLING},
	{NULL, "ThrottlingException", GOMAN_CLASS_THROTTLING},
	{NULL, "ThrottledException", GOMAN_CLASS_THROTTLING},
	{NULL, "RequestThrottledException", GOMAN_CLASS_THROTTLING},
	{NULL, "TooManyRequestsException", GOMAN_CLASS_THROTTLING},
	{NULL, "ProvisionedThroughputExceededException", GOMAN_CLASS_THROTTLING},
	{NULL, "TransactionInProgressException", GOMAN_CLASS_THROTTLING},
	{NULL, "RequestLimitExceeded", GOMAN_CLASS_THROTTLING},
	{NULL, "BandwidthLimitExceeded", GOMAN_CLASS_THROTTLING},
	{NULL, "LimitExceededException", GOMAN_CLASS_THROTTLING},
	{NULL, "RequestThrottled", GOMAN_CLASS_THROTTLING},
	{NULL, "SlowDown", GOMAN_CLASS_THROTTLING},
	{NULL, "PriorRequestNotComplete", GOMAN_CLASS_THROTTLING},
	{NULL, "EC2ThrottledException", GOMAN_CLASS_THROTTLING},
	/* transient */
	{NULL, "RequestTimeout", GOMAN_CLASS_TRANSIENT},
	{NULL, "RequestTimeoutException", GOMAN_CLASS_TRANSIENT},
	{NULL, "InternalError", GOMAN_CLASS_TRANSIENT},
	{NULL, "InternalFailure", GOMAN_CLASS_TRANSIENT},
	{NULL, "InternalServerError", GOMAN_CLASS_TRANSIENT},
	{NULL, "ServiceUnavailable", GOMAN_CLASS_TRANSIENT},
	{NULL, "Unavailable", GOMAN_CLASS_TRANSIENT},
	{NULL, "InsufficientInstanceCapacity", GOMAN_CLASS_CLIENT},
	/* auth: never retried (an expiring-credential refresh is the caller's business) */
	{NULL, "AuthFailure", GOMAN_CLASS_AUTH},
	{NULL, "SignatureDoesNotMatch", GOMAN_CLASS_AUTH},
	{NULL, "InvalidClientTokenId", GOMAN_CLASS_AUTH},
	{NULL, "UnrecognizedClientException", GOMAN_CLASS_AUTH},
	{NULL, "IncompleteSignature", GOMAN_CLASS_AUTH},
	{NULL, "MissingAuthenticationToken", GOMAN_CLASS_AUTH},
	{NULL, "ExpiredToken", GOMAN_CLASS_AUTH},
	{NULL, "ExpiredTokenException", GOMAN_CLASS_AUTH},
	{NULL, "RequestExpired", GOMAN_CLASS_AUTH},
	{NULL, "InvalidAccessKeyId", GOMAN_CLASS_AUTH},
	{NULL, "AccessDenied", GOMAN_CLASS_AUTH},
	{NULL, "AccessDeniedException", GOMAN_CLASS_AUTH},
	{NULL, "UnauthorizedOperation", GOMAN_CLASS_AUTH},
	{NULL, "InvalidSignatureException", GOMAN_CLASS_AUTH},
};

/* Eventual consistency: a 4xx that means "not yet", retried within its own deadline. */
struct eventual {
	const char *service;
	const char *action; /* NULL = any action of the service */
	const char *code;
};

static const struct eventual eventual_table[] = {
	{"ec2", NULL, "InvalidInstanceID.NotFound"},
	{"ssm", "SendCommand", "InvalidInstanceId"},
	{"ssm", "GetCommandInvocation", "InvocationDoesNotExist"},
};

enum goman_class goman_classify(const char *service, const char *action, int http_status,
				const char *code)
{
	(void)action;
	if (code && *code) {
		for (size_t i = 0; i < sizeof(code_table) / sizeof(code_table[0]); i++) {
			const struct code_class *c = &code_table[i];
			if (strcmp(c->code, code) == 0 &&
			    (!c->service || (service && strcmp(c->service, service) == 0)))
				return c->cls;
		}
	}
	if (http_status == 429)
		return GOMAN_CLASS_THROTTLING;
	if (http_status == 500 || http_status == 502 || http_status == 503 || http_status == 504)
		return GOMAN_CLASS_TRANSIENT;
	if (http_status == 401 || http_status == 403)
		return GOMAN_CLASS_AUTH;
	if (http_status >= 400 && http_status < 500)
		return GOMAN_CLASS_CLIENT;
	if (http_status >= 500)
		return GOMAN_CLASS_TRANSIENT;
	return GOMAN_CLASS_NONE;
}

bool goman_is_eventual(const char *service, const char *action, const char *code)
{
	if (!service || !code)
		return false;
	for (size_t i = 0; i < sizeof(eventual_table) / sizeof(eventual_table[0]); i++) {
		const struct eventual *ev = &eventual_table[i];
		if (strcmp(ev->service, service) == 0 && strcmp(ev->code, code) == 0 &&
		    (!ev->action || (action && strcmp(ev->action, action) == 0)))
			return true;
	}
	return false;
}

void goman_err_classify(struct goman_err *e, const char *service, const char *action)
{
	if (!e)
		return;
	switch (e->rc) {
	case GOMAN_OK: e->cls = GOMAN_CLASS_NONE; break;
	case GOMAN_ETRANSPORT: e->cls = GOMAN_CLASS_TRANSIENT; break;
	case GOMAN_ETIMEOUT: e->cls = GOMAN_CLASS_TIMEOUT; break;
	case GOMAN_ECIRCUIT: e->cls = GOMAN_CLASS_CIRCUIT_OPEN; break;
	case GOMAN_ESERVICE:
		e->cls = goman_classify(service, action, e->http_status, e->code);
		break;
	default:
		if (e->cls == GOMAN_CLASS_NONE)
			e->cls = GOMAN_CLASS_CLIENT;
		break;
	}
	e->retryable = e->cls == GOMAN_CLASS_THROTTLING || e->cls == GOMAN_CLASS_TRANSIENT ||
		       e->cls == GOMAN_CLASS_TIMEOUT ||
		       (e->rc == GOMAN_ESERVICE && goman_is_eventual(service, action, e->code));
}

void goman_outcome_add(struct goman_outcome *o, const struct goman_err *e)
{
	if (!e || e->rc == GOMAN_OK) {
		o->ok++;
		return;
	}
	if (e->rc == GOMAN_ECREDS || e->rc == GOMAN_ECONFIG || e->cls == GOMAN_CLASS_AUTH)
		o->config_errors++;
	else if (e->cls == GOMAN_CLASS_BAD_INPUT)
		o->bad_lines++;
	else if (e->cls == GOMAN_CLASS_CIRCUIT_OPEN || e->rc == GOMAN_ECIRCUIT)
		o->unavailable++;
	else if (e->retryable || e->rc == GOMAN_EQUOTA)
		o->tempfail++;
	else
		o->failed++;
}

int goman_exit_code(const struct goman_outcome *o)
{
	if (o->usage_errors)
		return GOMAN_EXIT_USAGE;
	if (o->output_errors)
		return GOMAN_EXIT_IOERR;
	if (o->config_errors)
		return GOMAN_EXIT_CONFIG;
	if (o->bad_lines)
		return GOMAN_EXIT_DATAERR;
	if (o->unavailable)
		return GOMAN_EXIT_UNAVAILABLE;
	if (o->tempfail)
		return GOMAN_EXIT_TEMPFAIL;
	if (o->failed)
		return GOMAN_EXIT_FAILED;
	return GOMAN_EXIT_OK;
}

/* declared in bytes_int.h: error.o is in every command already */
int gm_err_oom(struct goman_err *err)
{
	return goman_err_set(err, GOMAN_ENOMEM, GOMAN_CLASS_NONE, "", "out of memory");
}
