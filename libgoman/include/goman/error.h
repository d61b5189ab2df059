/*
 * goman/error.h - one error type for all of libgoman, and the one classification table.
 *
 * Library functions return 0 (or a pointer) on success and -1 (or NULL) on failure, filling
 * a caller-supplied struct goman_err when it is not NULL. The library never exits and never
 * prints. struct goman_err owns no heap memory (fixed buffers), so it needs no free.
 *
 * Every struct goman_err is fully defined at all times, because any of its fields may end up
 * in an output record: each declaration is initialised with GOMAN_ERR_INIT (or cleared with
 * goman_err_clear() before anything else), and goman_err_set() and goman_err_clear() define
 * every field (http_status 0, retry_after_ms -1, empty strings) rather than only some.
 * enum goman_rc is append-only: numbers never change meaning.
 */
#ifndef GOMAN_ERROR_H
#define GOMAN_ERROR_H
#include <stdbool.h>
#include <stdint.h>

enum goman_rc {
	GOMAN_OK = 0,
	GOMAN_ENOMEM = 1,     /* out of memory */
	GOMAN_EINVAL = 2,     /* bad argument or bad input */
	GOMAN_EIO = 3,        /* local I/O (files, pipes) */
	GOMAN_ETRANSPORT = 4, /* connection, DNS, TLS: no HTTP answer */
	GOMAN_ETIMEOUT = 5,   /* deadline or HTTP timeout */
	GOMAN_ESERVICE = 6,   /* the service answered with an error (see code/http_status) */
	GOMAN_ECREDS = 7,     /* no credentials, or the provider failed */
	GOMAN_ECIRCUIT = 8,   /* circuit breaker refused the call */
	GOMAN_EPARSE = 9,     /* a reply we could not parse */
	GOMAN_ECONFLICT = 10, /* idempotency: someone else holds it, or payload mismatch */
	GOMAN_ENOTFOUND = 11, /* a named thing does not exist (profile, file, parameter) */
	GOMAN_EQUOTA = 12,    /* retry quota exhausted */
	GOMAN_ECHILD = 13,    /* a child process failed (install script, ssh) */
	GOMAN_ECONFIG = 14,   /* the configuration (environment, profile) is missing or malformed */
	GOMAN_RC_MAX
};
const char *goman_strerror(enum goman_rc rc);

/* The classes of DESIGN.md's error records. Append-only. */
enum goman_class {
	GOMAN_CLASS_NONE = 0,
	GOMAN_CLASS_THROTTLING,
	GOMAN_CLASS_TRANSIENT,
	GOMAN_CLASS_CLIENT,
	GOMAN_CLASS_AUTH,
	GOMAN_CLASS_CIRCUIT_OPEN,
	GOMAN_CLASS_TIMEOUT,
	GOMAN_CLASS_BAD_INPUT,
	GOMAN_CLASS_PRECHECK,
	GOMAN_CLASS_DOWNLOAD,
	GOMAN_CLASS_CHECKSUM,
	GOMAN_CLASS_START,
	GOMAN_CLASS_UNVERIFIED,
	GOMAN_CLASS_MAX
};
/* "throttling", "transient", ... as in the JSON contract; "" for NONE */
const char *goman_class_name(enum goman_class c);
/* inverse of goman_class_name; GOMAN_CLASS_NONE when unknown */
enum goman_class goman_class_from_name(const char *name);

struct goman_err {
	enum goman_rc rc;
	enum goman_class cls;
	bool retryable;
	int http_status;        /* 0 when no HTTP answer */
	int64_t retry_after_ms; /* -1 when not known */
	char code[96];          /* AWS error code, or our own ("BadInput", "CircuitOpen") */
	char message[512];
	char request_id[96];
};

/* The defined empty state, the same as goman_err_clear() leaves: `struct goman_err e =
 * GOMAN_ERR_INIT;` */
#define GOMAN_ERR_INIT                               \
	{                                            \
		.rc = GOMAN_OK, .retry_after_ms = -1 \
	}

void goman_err_clear(struct goman_err *e);
/* Fills e (if not NULL) and returns -1, so callers can `return goman_err_set(...)`. Every
 * field is defined afresh: what the call does not name (http_status, retry_after_ms,
 * request_id) is reset to its empty value, so callers that know them set them after. */
int goman_err_set(struct goman_err *e, enum goman_rc rc, enum goman_class cls, const char *code,
		  const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/*
 * The one classification table. Given what the service said (HTTP status, AWS error code)
 * and which operation was in view, returns the class. Throttling codes (RequestLimitExceeded,
 * Throttling, ThrottlingException, SlowDown, ProvisionedThroughputExceededException,
 * TooManyRequestsException, 429...) → THROTTLING; 500/502/503/504, RequestTimeout,
 * InternalError, ServiceUnavailable → TRANSIENT; AuthFailure, SignatureDoesNotMatch,
 * InvalidClientTokenId, UnrecognizedClientException, ExpiredToken... → AUTH; other 4xx → CLIENT.
 * http_status 0 with rc ETRANSPORT → TRANSIENT, ETIMEOUT → TIMEOUT.
 */
enum goman_class goman_classify(const char *service, const char *action, int http_status,
				const char *code);
/* Eventual-consistency codes retried within their own deadline for this operation:
 * EC2 InvalidInstanceID.NotFound (after launch), SSM InvalidInstanceId (agent not yet
 * registered), SSM InvocationDoesNotExist (just after SendCommand). */
bool goman_is_eventual(const char *service, const char *action, const char *code);
/* Fills class and retryable of e from its rc/http_status/code. */
void goman_err_classify(struct goman_err *e, const char *service, const char *action);

/* sysexits of DESIGN.md */
enum {
	GOMAN_EXIT_OK = 0,
	GOMAN_EXIT_FAILED = 1,
	GOMAN_EXIT_USAGE = 64,
	GOMAN_EXIT_DATAERR = 65,
	GOMAN_EXIT_UNAVAILABLE = 69,
	GOMAN_EXIT_IOERR = 74, /* standard output (or input) failed: records were lost */
	GOMAN_EXIT_TEMPFAIL = 75,
	GOMAN_EXIT_CONFIG = 78, /* no credentials, credentials refused, bad configuration */
};
/* Tally of a command's run; goman_exit_code() applies "first match wins": 64, 74, 78, 65, 69,
 * 75, 1, 0. A failed output comes right after usage: whatever else happened, a reader of the
 * output did not get every record. Configuration comes next: with no credentials, or ones
 * the service refuses, every other record failed for that one reason, and retrying cannot
 * help until the operator fixes it. */
struct goman_outcome {
	unsigned long usage_errors, bad_lines, unavailable, tempfail, failed, ok;
	unsigned long output_errors; /* writes to standard output that failed */
	unsigned long config_errors; /* rc ECREDS or ECONFIG, or class auth */
};
/* Counts one finished record's error (NULL or rc OK = success). */
void goman_outcome_add(struct goman_outcome *o, const struct goman_err *e);
int goman_exit_code(const struct goman_outcome *o);

#endif
