/*
 * log.c - tagged human log lines through a sink, and event lines appended to $GOMAN_EVENTS
 * (see goman/log.h). The default sink writes "[TAG] message" to stderr, coloured only on a
 * terminal without NO_COLOR.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cjson/cJSON.h>
#include "goman/clock.h"
#include "goman/jsonl.h"
#include "goman/log.h"

static goman_log_sink log_sink;
static void *log_ctx;
static int log_level = -1;
static char event_cmd[64] = "goman";
static int events_fd = -2; /* -2: not opened yet, -1: none */
static int events_failed;

static void stderr_sink(enum goman_level lvl, const char *tag, const char *msg, void *ctx)
{
	(void)ctx;
	static int colour = -1;
	if (colour < 0) {
		const char *nc = getenv("NO_COLOR");
		colour = isatty(2) && !(nc && *nc);
	}
	const char *on = "", *off = "";
	if (colour && lvl <= GOMAN_LOG_WARN) {
		on = lvl == GOMAN_LOG_ERROR ? "\033[31m" : "\033[33m";
		off = "\033[0m";
	}
	char line[2048];
	int n = snprintf(line, sizeof(line), "%s[%s]%s ", on, tag, off);
	if (n < 0 || (size_t)n >= sizeof(line))
		return;
	/* messages carry what services and input lines said: control bytes (terminal escapes,
	 * CR rewriting the line, newlines forging another log line) are shown as '?' */
	for (const unsigned char *p = (const unsigned char *)msg;
	     *p && (size_t)n < sizeof(line) - 1; p++)
		line[n++] = (*p < 0x20 && *p != '\t') || *p == 0x7f ? '?' : (char)*p;
	line[n++] = '\n';
	ssize_t w = write(2, line, (size_t)n);
	(void)w;
}

void goman_log_set_sink(goman_log_sink sink, void *ctx)
{
	log_sink = sink;
	log_ctx = ctx;
}

void goman_log_set_level(enum goman_level lvl)
{
	log_level = (int)lvl;
}

static int current_level(void)
{
	if (log_level < 0) {
		const char *e = getenv("GOMAN_LOG");
		log_level = GOMAN_LOG_INFO;
		if (e) {
			if (!strcmp(e, "debug"))
				log_level = GOMAN_LOG_DEBUG;
			else if (!strcmp(e, "warn"))
				log_level = GOMAN_LOG_WARN;
			else if (!strcmp(e, "error"))
				log_level = GOMAN_LOG_ERROR;
		}
	}
	return log_level;
}

void goman_vlog(enum goman_level lvl, const char *tag, const char *fmt, va_list ap)
{
	if ((int)lvl > current_level())
		return;
	char msg[1536];
	vsnprintf(msg, sizeof(msg), fmt, ap);
	(log_sink ? log_sink : stderr_sink)(lvl, tag, msg, log_ctx);
}

void goman_log(enum goman_level lvl, const char *tag, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	goman_vlog(lvl, tag, fmt, ap);
	va_end(ap);
}

void goman_events_init(const char *cmd)
{
	snprintf(event_cmd, sizeof(event_cmd), "%s", cmd ? cmd : "goman");
	if (events_fd >= 0)
		close(events_fd);
	events_fd = -2;
}

static int events_open(void)
{
	if (events_fd == -2) {
		const char *path = getenv("GOMAN_EVENTS");
		events_fd = -1;
		if (path && *path) {
			events_fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
			if (events_fd < 0)
				goman_log(GOMAN_LOG_WARN, "METRICS",
					  "cannot open GOMAN_EVENTS '%s': %s", path,
					  strerror(errno));
		}
	}
	return events_fd;
}

int goman_event(const char *event, cJSON *obj)
{
	if (!obj)
		return -1;
	int fd = events_open();
	if (fd < 0) {
		cJSON_Delete(obj);
		return 0;
	}
	/* ts, cmd and event first, so the line reads well */
	char ts[32];
	goman_rfc3339(goman_now_ms(), ts, sizeof(ts));
	cJSON *line = cJSON_CreateObject();
	cJSON_AddStringToObject(line, "ts", ts);
	cJSON_AddStringToObject(line, "cmd", event_cmd);
	cJSON_AddStringToObject(line, "event", event);
	cJSON *it = obj->child;
	while (it) {
		cJSON *next = it->next;
		cJSON_DetachItemViaPointer(obj, it);
		if (cJSON_GetObjectItemCaseSensitive(line, it->string))
			cJSON_Delete(it);
		else
			cJSON_AddItemToObject(line, it->string, it);
		it = next;
	}
	cJSON_Delete(obj);
	char *text = cJSON_PrintUnformatted(line);
	cJSON_Delete(line);
	if (!text)
		return -1;
	/* the JSON-lines writer: one write, one line, valid UTF-8 whatever a service said */
	int rc = goman_jsonl_write_raw(fd, text, strlen(text), NULL);
	int e = errno;
	cJSON_free(text);
	if (rc) {
		if (!events_failed++)
			goman_log(GOMAN_LOG_WARN, "METRICS", "event write failed: %s", strerror(e));
		return -1;
	}
	return 0;
}
