/*
 * fuzz_cluster_file.c - libFuzzer target for the cluster file: the same bytes are read as
 * YAML and as JSON; whatever parses must also print (normalised and as node specs) and
 * read back from its normalised form to the same normalised form.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>
#include "goman/cluster_file.h"

static char *normalised(const struct goman_cluster_file *cf)
{
	cJSON *j = goman_cluster_file_to_json(cf);
	char *s = j ? cJSON_PrintUnformatted(j) : NULL;
	cJSON_Delete(j);
	return s;
}

static void one(const uint8_t *data, size_t size, enum goman_cf_format f)
{
	struct goman_cf_opts o = {.format = f, .max_groups = 8};
	struct goman_cluster_file *cf = NULL;
	struct goman_err err = GOMAN_ERR_INIT;
	goman_err_clear(&err);
	if (goman_cluster_file_parse((const char *)data, size, "fuzz", &o, &cf, &err) != 0) {
		if (!memchr(err.message, '\0', sizeof(err.message)) || !err.message[0])
			abort(); /* every refusal says why */
		return;
	}
	char *a = normalised(cf);
	cJSON *specs = cJSON_CreateArray();
	/* counts can be large; specs for big files are the slow path, not the interesting one */
	long total = 0;
	for (size_t i = 0; i < cf->ngroups; i++)
		total += cf->groups[i].count;
	if (total <= 64 && goman_cluster_file_node_specs(cf, specs) != 0)
		abort();
	cJSON_Delete(specs);
	if (a) {
		struct goman_cluster_file *again = NULL;
		struct goman_cf_opts oj = {.format = GOMAN_CF_JSON, .max_groups = 8};
		if (goman_cluster_file_parse(a, strlen(a), "again", &oj, &again, &err) != 0)
			abort(); /* the normalised form of a good file is a good file */
		char *b = normalised(again);
		if (!b || strcmp(a, b))
			abort();
		free(b);
		goman_cluster_file_free(again);
	}
	free(a);
	goman_cluster_file_free(cf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	one(data, size, GOMAN_CF_YAML);
	one(data, size, GOMAN_CF_JSON);
	return 0;
}
