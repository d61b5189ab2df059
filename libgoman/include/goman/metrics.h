/*
 * goman/metrics.h - KPIs and health computed from node records and event lines.
 *
 * Feed every JSON line (records and events mixed, as goman commands write them); ask for a
 * summary as JSON, a table, or Prometheus text; check it against targets.
 * Memory is constant in the length of the stream: per cluster, one small entry per node
 * name (a re-run's record replaces the node's earlier one); per (service, action), a
 * log-scale histogram of latencies (800 buckets, 2 % wide, so p50/p95/p99 are within 1 %
 * of the exact value) with exact count/sum/max. At most GOMAN_METRICS_MAX_SERIES
 * (service, action) pairs and GOMAN_METRICS_MAX_CLUSTERS clusters are kept apart; past
 * that they are pooled under "other".
 *
 * Ownership: goman_metrics_new() → goman_metrics_free() (NULL ok). goman_metrics_feed()
 * borrows its line. The _json/_table/_prom/_check functions return new objects/strings
 * the caller frees (cJSON_Delete / free).
 */
#ifndef GOMAN_METRICS_H
#define GOMAN_METRICS_H
#include <stdint.h>
#include "goman/error.h"

struct cJSON;
struct goman_metrics;

#define GOMAN_METRICS_MAX_SERIES 256
#define GOMAN_METRICS_MAX_CLUSTERS 64

struct goman_metrics_opts {
	int concurrency; /* slots for parallel efficiency; 0 = 3 (the no-profile default) */
};

/* Targets of the seed; a negative value switches a check off. */
struct goman_targets {
	int64_t creation_ms;      /* < 15 min */
	int64_t installation_ms;  /* < 8 min */
	int64_t configuration_ms; /* < 3 min */
	double success_pct;       /* > 99 */
	double efficiency_pct;    /* > 80 (parallel efficiency) */
	double retry_pct;         /* < 5 */
	int breaker_open_alert;   /* 1: any open breaker is a breach */
};
void goman_targets_default(struct goman_targets *t);

struct goman_metrics *goman_metrics_new(const struct goman_metrics_opts *opts);
void goman_metrics_free(struct goman_metrics *m);
/* Returns 1 when the line was a node record or an event it used, 0 when ignored. */
int goman_metrics_feed(struct goman_metrics *m, const struct cJSON *line);

struct cJSON *goman_metrics_json(const struct goman_metrics *m);
char *goman_metrics_table(const struct goman_metrics *m);
char *goman_metrics_prom(const struct goman_metrics *m);
/* One line per breach ("creation time 16m2s > 15m (cluster demo)"), NULL when none.
 * *breaches gets the count. */
char *goman_metrics_check(const struct goman_metrics *m, const struct goman_targets *t,
			  int *breaches);
/* Writes text to path atomically (temp file in the same directory, fsync, rename). */
int goman_write_file_atomic(const char *path, const char *text, struct goman_err *err);

#endif
