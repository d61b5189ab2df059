/*
 * goman-idem - look at and tidy the idempotency store that guards launches (plumbing): list
 * its records as JSON lines, forget records so the next run starts afresh, remove expired
 * ones. Flags and the line loop only: the store is libgoman/idem*.c. See goman-idem(1).
 */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>
#include "goman/error.h"
#include "goman/idem.h"
#include "goman/jsonl.h"
#include "goman/log.h"

static int usage(int rc)
{
	fputs("usage: goman-idem list [--all]\n"
	      "       goman-idem forget [--force] [KEY...]   (no KEY: JSON lines with \"id\" on "
	      "stdin)\n"
	      "       goman-idem cleanup\n"
	      "Looks at and tidies the idempotency store that goman-provision guards launches "
	      "with.\n"
	      "  list      one JSON line per record (expired ones too with --all)\n"
	      "  forget    removes records, so the next run starts afresh with a new ClientToken;\n"
	      "            writes {\"id\",\"forgotten\"} per key; a live run's INPROGRESS record "
	      "is\n"
	      "            refused without --force\n"
	      "  cleanup   removes expired records; writes {\"cleaned\":N}\n"
	      "  --dir DIR     the file store's directory (default $GOMAN_IDEMPOTENCY_DIR, else\n"
	      "                $XDG_STATE_HOME/goman/idempotency)\n"
	      "  --table NAME  a DynamoDB table instead (default $GOMAN_IDEMPOTENCY_TABLE)\n"
	      "  --help, --version\n"
	      "Exit: 0 ok, 1 some record not forgotten, 64 usage, 65 bad input lines,\n"
	      "69 unavailable, 75 temporary failure. See goman-idem(1).\n",
	      rc ? stderr : stdout);
	return rc;
}

struct out {
	int write_failed;
	struct goman_outcome outcome;
};

static void put(struct out *o, const cJSON *rec)
{
	struct goman_err e = GOMAN_ERR_INIT;
	if (!o->write_failed && goman_jsonl_write(1, rec, &e) != 0) {
		goman_log(GOMAN_LOG_ERROR, "IDEMPOTENCY", "cannot write output: %s", e.message);
		o->write_failed = 1;
	}
}

static int list_one(const cJSON *rec, void *ctx)
{
	struct out *o = ctx;
	put(o, rec);
	return o->write_failed; /* a closed pipe ends the listing */
}

/* One key: a {"id","forgotten"} record, or input with an error record. */
static void forget_one(struct goman_idem *s, const char *key, const cJSON *input, bool force,
		       long line, struct out *o)
{
	struct goman_err e = GOMAN_ERR_INIT;
	goman_err_clear(&e);
	int rc = goman_idem_forget(s, key, force, &e);
	cJSON *rec;
	if (rc < 0) {
		cJSON *in = input ? NULL : cJSON_CreateObject();
		if (in)
			cJSON_AddStringToObject(in, "id", key);
		rec = goman_jsonl_error_record(input ? input : in, NULL, &e, line);
		cJSON_Delete(in);
		goman_outcome_add(&o->outcome, &e);
	} else {
		rec = cJSON_CreateObject();
		cJSON_AddStringToObject(rec, "id", key);
		cJSON_AddBoolToObject(rec, "forgotten", rc == 1);
		goman_outcome_add(&o->outcome, NULL);
	}
	if (rec)
		put(o, rec);
	cJSON_Delete(rec);
}

static void forget_stdin(struct goman_idem *s, bool force, struct out *o)
{
	struct goman_jsonl_reader *r = goman_jsonl_reader_new(0, GOMAN_JSONL_DEFAULT_MAX);
	struct goman_err e = GOMAN_ERR_INIT;
	cJSON *in;
	int rc;
	while (r && (rc = goman_jsonl_next(r, &in, &e)) != GOMAN_JSONL_EOF) {
		if (rc == GOMAN_JSONL_IOERR) {
			goman_log(GOMAN_LOG_ERROR, "IDEMPOTENCY", "%s", e.message);
			goman_outcome_add(&o->outcome, &e);
			break;
		}
		long line = goman_jsonl_lineno(r);
		const cJSON *id = rc == GOMAN_JSONL_RECORD
					  ? cJSON_GetObjectItemCaseSensitive(in, "id")
					  : NULL;
		if (rc == GOMAN_JSONL_RECORD && cJSON_IsString(id)) {
			forget_one(s, id->valuestring, in, force, line, o);
		} else {
			if (rc == GOMAN_JSONL_RECORD)
				goman_err_set(&e, GOMAN_EINVAL, GOMAN_CLASS_BAD_INPUT, "BadInput",
					      "line %ld: a record key is needed in \"id\"", line);
			cJSON *rec = goman_jsonl_error_record(in, NULL, &e, line);
			if (rec)
				put(o, rec);
			cJSON_Delete(rec);
			goman_outcome_add(&o->outcome, &e);
		}
		if (rc == GOMAN_JSONL_RECORD)
			cJSON_Delete(in);
	}
	goman_jsonl_reader_free(r);
}

int main(int argc, char **argv)
{
	static const struct option flags[] = {{"all", no_argument, NULL, 'a'},
					      {"force", no_argument, NULL, 'f'},
					      {"dir", required_argument, NULL, 'd'},
					      {"table", required_argument, NULL, 't'},
					      {"help", no_argument, NULL, 'h'},
					      {"version", no_argument, NULL, 'V'},
					      {NULL, 0, NULL, 0}};
	struct goman_idem_opts io = {0};
	const char *dir = NULL, *table = NULL;
	bool all = false, force = false;
	int c;
	while ((c = getopt_long(argc, argv, "", flags, NULL)) != -1) {
		switch (c) {
		case 'a': all = true; break;
		case 'f': force = true; break;
		case 'd': dir = optarg; break;
		case 't': table = optarg; break;
		case 'h': return usage(0);
		case 'V': printf("goman-idem %s\n", GOMAN_VERSION); return 0;
		default: return usage(GOMAN_EXIT_USAGE);
		}
	}
	if (dir && table) {
		fprintf(stderr, "goman-idem: --dir and --table name two different stores\n");
		return GOMAN_EXIT_USAGE;
	}
	io.dir = dir;
	io.table = dir ? "" : table; /* --dir means the file store even if a table is set */
	const char *verb = optind < argc ? argv[optind++] : "";
	bool list = !strcmp(verb, "list"), forget = !strcmp(verb, "forget"),
	     cleanup = !strcmp(verb, "cleanup");
	if (!list && !forget && !cleanup) {
		fprintf(stderr, "goman-idem: %s\n", *verb ? "unknown verb" : "a verb is needed");
		return usage(GOMAN_EXIT_USAGE);
	}
	if ((!forget && optind < argc) || (all && !list) || (force && !forget)) {
		fprintf(stderr, "goman-idem: %s does not take '%s'\n", verb,
			optind < argc ? argv[optind]
			: all         ? "--all"
				      : "--force");
		return GOMAN_EXIT_USAGE;
	}
	signal(SIGPIPE, SIG_IGN);
	goman_events_init("goman-idem");
	struct goman_err err = GOMAN_ERR_INIT;
	struct goman_idem *s = goman_idem_open(&io, &err);
	if (!s) {
		fprintf(stderr, "goman-idem: %s\n", err.message);
		return GOMAN_EXIT_UNAVAILABLE;
	}
	struct out o = {0};
	int rc = 0;
	if (list) {
		rc = goman_idem_list(s, all, list_one, &o, &err);
	} else if (cleanup) {
		size_t n = 0;
		rc = goman_idem_cleanup(s, &n, &err);
		cJSON *rec = rc ? NULL : cJSON_CreateObject();
		if (rec) {
			cJSON_AddNumberToObject(rec, "cleaned", (double)n);
			put(&o, rec);
			cJSON_Delete(rec);
		}
	} else if (optind < argc) {
		for (int i = optind; i < argc; i++)
			forget_one(s, argv[i], NULL, force, 0, &o);
	} else {
		forget_stdin(s, force, &o);
	}
	if (rc) {
		fprintf(stderr, "goman-idem: %s\n", err.message);
		goman_outcome_add(&o.outcome, &err);
		if (!o.outcome.unavailable && !o.outcome.tempfail)
			o.outcome.unavailable++; /* the store itself failed */
	}
	goman_idem_close(s);
	if (o.write_failed)
		o.outcome.output_errors++;
	return goman_exit_code(&o.outcome);
}
