/*
 * fuzz_plan.c - libFuzzer target for the planner: the input is node specs (a JSON array),
 * a newline, then instances (a JSON array) - both outside input, the specs from a pipe and
 * the instances' tags from EC2. Whatever plans must tally: one change per launch, drift,
 * termination and orphan; every spec is launched, drifted or unchanged. Whatever exports
 * must read back through the cluster file parser and give specs that plan.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>
#include "goman/cluster_file.h"
#include "goman/plan.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static cJSON *array_of(const uint8_t *p, size_t n)
{
	char *s = malloc(n + 1);
	if (!s)
		return NULL;
	memcpy(s, p, n);
	s[n] = '\0';
	cJSON *j = cJSON_Parse(s);
	free(s);
	if (j && !cJSON_IsArray(j)) {
		cJSON_Delete(j);
		return NULL;
	}
	return j;
}

static void plan(const cJSON *specs, const cJSON *haves, const char *cluster)
{
	cJSON *ch = cJSON_CreateArray();
	struct goman_plan_counts n;
	struct goman_err err = GOMAN_ERR_INIT;
	goman_err_clear(&err);
	if (goman_plan_compute(specs, haves, cluster, ch, &n, &err) != 0) {
		if (!err.message[0] || cJSON_GetArraySize(ch))
			abort(); /* a refusal says why and appends nothing */
	} else {
		if (cJSON_GetArraySize(ch) != n.launch + n.drift + n.terminate + n.orphan ||
		    cJSON_GetArraySize(specs) != n.launch + n.drift + n.unchanged)
			abort();
		const cJSON *c;
		cJSON_ArrayForEach (c, ch)
			if (!cJSON_GetStringValue(cJSON_GetObjectItem(c, "change")) ||
			    !cJSON_GetStringValue(cJSON_GetObjectItem(c, "cluster")))
				abort();
	}
	cJSON_Delete(ch);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *nl = memchr(data, '\n', size);
	size_t a = nl ? (size_t)(nl - data) : size;
	cJSON *specs = array_of(data, a);
	cJSON *haves = nl ? array_of(nl + 1, size - a - 1) : cJSON_CreateArray();
	if (specs && haves && cJSON_GetArraySize(specs) <= 256 &&
	    cJSON_GetArraySize(haves) <= 256) {
		plan(specs, haves, NULL);
		plan(specs, haves, "web");
		struct goman_cluster_file *cf = NULL;
		struct goman_err err = GOMAN_ERR_INIT;
		goman_err_clear(&err);
		if (goman_plan_export("web", "us-east-1", haves, &cf, &err) == 0) {
			cJSON *again = cJSON_CreateArray();
			if (goman_cluster_file_node_specs(cf, again) != 0)
				abort();
			plan(again, haves, NULL);
			cJSON_Delete(again);
			goman_cluster_file_free(cf);
		} else if (!err.message[0] || cf) {
			abort();
		}
	}
	cJSON_Delete(specs);
	cJSON_Delete(haves);
	return 0;
}
