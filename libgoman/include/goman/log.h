/*
 * goman/log.h - human log lines and machine event lines.
 *
 * The library never writes to stdout. Log lines go to a sink the command installs (default:
 * stderr, "[TAG] message\n", colour only when stderr is a tty and NO_COLOR is unset).
 * Event lines are compact JSON appended to $GOMAN_EVENTS (O_APPEND, one write(2) per line),
 * each with "ts", "cmd" and "event" fields.
 * Ownership: goman_event() consumes (frees) the cJSON object it is given.
 */
#ifndef GOMAN_LOG_H
#define GOMAN_LOG_H
#include <stdarg.h>

struct cJSON;

enum goman_level { GOMAN_LOG_ERROR, GOMAN_LOG_WARN, GOMAN_LOG_INFO, GOMAN_LOG_DEBUG };

typedef void (*goman_log_sink)(enum goman_level lvl, const char *tag, const char *msg, void *ctx);

/* Installs the sink (NULL restores the stderr sink). */
void goman_log_set_sink(goman_log_sink sink, void *ctx);
/* Lines above this level are dropped (default INFO; GOMAN_LOG=debug|info|warn|error). */
void goman_log_set_level(enum goman_level lvl);
/* tag without brackets: "CIRCUIT", "RETRY", "PROVISION" ... */
void goman_log(enum goman_level lvl, const char *tag, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void goman_vlog(enum goman_level lvl, const char *tag, const char *fmt, va_list ap);

/* Name of the running command, put in events as "cmd" (e.g. "goman-provision"). */
void goman_events_init(const char *cmd);
/* Adds ts/cmd/event to obj and appends it as one line to $GOMAN_EVENTS if set.
 * Always consumes obj. Returns 0, or -1 if the write failed (logged once). */
int goman_event(const char *event, struct cJSON *obj);

#endif
