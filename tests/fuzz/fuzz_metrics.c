/*
 * fuzz_metrics.c - goman-metrics' ingestion (metrics.c): node records and event lines, any
 * JSON at all, fed one line at a time; then every output (JSON, table, Prometheus, target
 * check). Numbers from outside (ms, nodes_ready, provision.ms, times) must never reach
 * undefined arithmetic or an out-of-range cast, which the sanitizers of this build report.
 */
#include <stdio.h>
#include <cjson/cJSON.h>
#include "goman/metrics.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = fz_cstr(data, size);
	struct goman_metrics *m = goman_metrics_new(&(struct goman_metrics_opts){.concurrency = 2});
	if (!m)
		abort();
	for (char *l = text, *e; l && *l; l = e ? e + 1 : NULL) {
		e = strchr(l, '\n');
		if (e)
			*e = '\0';
		cJSON *j = cJSON_Parse(l);
		goman_metrics_feed(m, j);
		cJSON_Delete(j);
	}
	cJSON *js = goman_metrics_json(m);
	char *out = cJSON_PrintUnformatted(js);
	if (!out)
		abort();
	cJSON *back = cJSON_Parse(out);
	if (!back)
		abort(); /* the summary is JSON a consumer can read */
	cJSON_Delete(back);
	free(out);
	cJSON_Delete(js);
	free(goman_metrics_table(m));
	free(goman_metrics_prom(m));
	struct goman_targets t;
	goman_targets_default(&t);
	int breaches = 0;
	free(goman_metrics_check(m, &t, &breaches));
	goman_metrics_free(m);
	free(text);
	return 0;
}
