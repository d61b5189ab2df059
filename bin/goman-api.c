/*
 * goman-api - the AWS CLI as JSON lines (plumbing). Each input line names a call:
 *   {"service":"ec2","action":"DescribeRegions","params":{...}}
 *   {"service":"ssm","action":"GetParameter","input":{"Name":"..."}}
 *   {"service":"s3","action":"PutObject","bucket":"b","key":"k","body":"text"}
 * and comes back with "response":{"ok","data","http_status","attempts","ms"} added, or as
 * an error record. Calls of a stream run concurrently on the library's loop (up to --jobs);
 * output keeps input order. Flags + the line loop only: protocols live in libgoman.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cjson/cJSON.h>
#include <openssl/evp.h>
#include "goman/aws.h"
#include "goman/jsonl.h"
#include "goman/log.h"
#include "cli.h"

struct slot {
	struct slot *next;
	cJSON *in;  /* the input record (NULL for unparsable lines) */
	cJSON *out; /* the answer, once known */
};

static struct slot *head, **tail = &head;
static unsigned inflight;
static struct goman_outcome outcome;
static int write_failed;

static void usage(FILE *f)
{
	fputs("usage: goman-api [--region R] [--profile P] [--jobs N] <calls.jsonl\n"
	      "One AWS call per input line (ec2, sts, iam, ssm, dynamodb, s3); each line comes\n"
	      "back with \"response\" added, in input order. See goman-api(1).\n",
	      f);
}

static struct slot *slot_new(cJSON *in)
{
	struct slot *s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	s->in = in;
	*tail = s;
	tail = &s->next;
	return s;
}

static void flush_ready(void)
{
	while (head && head->out) {
		struct slot *s = head;
		struct goman_err err = GOMAN_ERR_INIT;
		if (!write_failed && goman_jsonl_write(1, s->out, &err) != 0) {
			goman_log(GOMAN_LOG_ERROR, "API", "cannot write output: %s", err.message);
			write_failed = 1;
		}
		head = s->next;
		if (!head)
			tail = &head;
		cJSON_Delete(s->in);
		cJSON_Delete(s->out);
		free(s);
	}
}

static void answer_error(struct slot *s, const struct goman_err *e, long line)
{
	goman_outcome_add(&outcome, e);
	s->out = goman_jsonl_error_record(s->in, line > 0 ? NULL : "response", e, line);
	if (!s->out)
		s->out = cJSON_CreateObject();
}

static void on_done(struct goman_aws_result *res, void *ud)
{
	struct slot *s = ud;
	inflight--;
	if (res->err.rc != GOMAN_OK) {
		answer_error(s, &res->err, 0);
		cJSON *r = cJSON_GetObjectItemCaseSensitive(s->out, "response");
		cJSON_AddNumberToObject(r, "http_status", res->http_status);
		cJSON_AddNumberToObject(r, "attempts", res->attempts);
		cJSON_AddNumberToObject(r, "ms", (double)res->ms);
		return;
	}
	goman_outcome_add(&outcome, NULL);
	cJSON *out = cJSON_Duplicate(s->in, 1);
	cJSON *r = cJSON_CreateObject();
	cJSON_AddBoolToObject(r, "ok", 1);
	cJSON_AddItemToObject(r, "data", res->data ? res->data : cJSON_CreateObject());
	res->data = NULL; /* taken */
	if (res->raw) {
		/* UTF-8 text without NULs goes out as "body", anything else as "body_base64" */
		if (!memchr(res->raw, 0, res->raw_len) &&
		    goman_utf8_valid(res->raw, res->raw_len)) {
			cJSON_AddStringToObject(r, "body", res->raw);
		} else {
			size_t n = 4 * ((res->raw_len + 2) / 3) + 1;
			unsigned char *b = malloc(n);
			if (b) {
				EVP_EncodeBlock(b, (const unsigned char *)res->raw,
						(int)res->raw_len);
				cJSON_AddStringToObject(r, "body_base64", (char *)b);
				free(b);
			}
		}
	}
	cJSON_AddNumberToObject(r, "http_status", res->http_status);
	cJSON_AddNumberToObject(r, "attempts", res->attempts);
	cJSON_AddNumberToObject(r, "ms", (double)res->ms);
	cJSON_DeleteItemFromObjectCaseSensitive(out, "response");
	cJSON_AddItemToObject(out, "response", r);
	/* top-level ok stays false if an earlier stage failed */
	const cJSON *prev = cJSON_GetObjectItemCaseSensitive(s->in, "ok");
	cJSON_DeleteItemFromObjectCaseSensitive(out, "ok");
	cJSON_AddBoolToObject(out, "ok", !cJSON_IsFalse(prev));
	s->out = out;
}

static const char *str_field(const cJSON *o, const char *name, const char **bad)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
	if (v && !cJSON_IsString(v))
		*bad = name;
	return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* Object of scalars → name/value list (numbers and booleans as the CLI would send them). */
static int to_kvs(const cJSON *o, struct goman_kvs *kv)
{
	const cJSON *it;
	cJSON_ArrayForEach (it, o) {
		char num[64];
		const char *v;
		if (cJSON_IsString(it))
			v = it->valuestring;
		else if (cJSON_IsBool(it))
			v = cJSON_IsTrue(it) ? "true" : "false";
		else if (cJSON_IsNumber(it) && isfinite(it->valuedouble) &&
			 snprintf(num, sizeof(num), "%.17g", it->valuedouble) > 0)
			v = num;
		else
			return -1;
		if (goman_kvs_add(kv, it->string, v) != 0)
			return -1;
	}
	return 0;
}

static void submit_line(struct goman_aws *aws, const struct goman_err *setup_err, struct slot *s,
			long line)
{
	struct goman_err err = GOMAN_ERR_INIT;
	goman_err_clear(&err);
	const char *bad = NULL;
	struct goman_aws_call c = {0};
	struct goman_kvs params = {0}, headers = {0};
	c.service = str_field(s->in, "service", &bad);
	c.action = str_field(s->in, "action", &bad);
	c.region = str_field(s->in, "region", &bad);
	c.bucket = str_field(s->in, "bucket", &bad);
	c.key = str_field(s->in, "key", &bad);
	c.method = str_field(s->in, "method", &bad);
	c.query = str_field(s->in, "query", &bad);
	const char *body = str_field(s->in, "body", &bad);
	const cJSON *p = cJSON_GetObjectItemCaseSensitive(s->in, "params");
	const cJSON *h = cJSON_GetObjectItemCaseSensitive(s->in, "headers");
	const cJSON *input = cJSON_GetObjectItemCaseSensitive(s->in, "input");
	const cJSON *dl = cJSON_GetObjectItemCaseSensitive(s->in, "eventual_deadline_ms");
	if (p && (!cJSON_IsObject(p) || to_kvs(p, &params)))
		bad = "params";
	if (h && (!cJSON_IsObject(h) || to_kvs(h, &headers)))
		bad = "headers";
	if (input && !cJSON_IsObject(input))
		bad = "input";
	if (dl && !goman_aws_deadline_ok(dl))
		bad = "eventual_deadline_ms";
	if (bad) {
		goman_err_set(&err, GOMAN_EINVAL, GOMAN_CLASS_BAD_INPUT, "BadInput",
			      "line %ld: field \"%s\" has the wrong type or is out of range", line,
			      bad);
	} else if (!c.service || !c.action) {
		goman_err_set(&err, GOMAN_EINVAL, GOMAN_CLASS_BAD_INPUT, "BadInput",
			      "line %ld: \"service\" and \"action\" are required", line);
	} else if (!aws) {
		err = *setup_err;
	} else {
		/* an absent field stays NULL: the library refuses fields of another protocol */
		c.params = p ? &params : NULL;
		c.headers = h ? &headers : NULL;
		c.json = input;
		c.body = body;
		c.body_len = body ? strlen(body) : 0;
		c.eventual_deadline_ms = dl ? (int64_t)dl->valuedouble : 0;
		if (goman_aws_submit(aws, &c, on_done, s, &err) == 0)
			inflight++;
	}
	goman_kvs_clear(&params);
	goman_kvs_clear(&headers);
	if (err.rc != GOMAN_OK)
		answer_error(s, &err, err.cls == GOMAN_CLASS_BAD_INPUT ? line : 0);
}

static bool readable(int fd)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	return poll(&p, 1, 0) > 0;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"region", required_argument, NULL, 'r'}, {"profile", required_argument, NULL, 'p'},
		{"jobs", required_argument, NULL, 'j'},   {"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},      {NULL, 0, NULL, 0},
	};
	struct goman_aws_opts opts = {0};
	unsigned long jobs = 16;
	int c;
	signal(SIGPIPE, SIG_IGN);
	cli_init("goman-api");
	while ((c = getopt_long(argc, argv, "r:p:j:hV", longopts, NULL)) != -1) {
		long n;
		switch (c) {
		case 'r': opts.region = optarg; break;
		case 'p': opts.profile = optarg; break;
		case 'j':
			/* strict: strtoul would read "-1" as the largest number */
			if (cli_parse_long(optarg, 1, LONG_MAX, &n) < 0)
				return cli_usage_error("--jobs wants a positive number");
			jobs = (unsigned long)n;
			break;
		case 'h': usage(stdout); return 0;
		case 'V': printf("goman-api %s\n", GOMAN_VERSION); return 0;
		default: usage(stderr); return GOMAN_EXIT_USAGE;
		}
	}
	if (optind < argc) {
		usage(stderr);
		return GOMAN_EXIT_USAGE;
	}
	goman_events_init("goman-api");
	struct goman_err setup_err = GOMAN_ERR_INIT;
	goman_err_clear(&setup_err);
	struct goman_aws *aws = goman_aws_new(&opts, &setup_err);
	if (!aws) {
		goman_err_classify(&setup_err, NULL, NULL);
		goman_log(GOMAN_LOG_ERROR, "API", "%s", setup_err.message);
	}
	struct goman_jsonl_reader *rd = goman_jsonl_reader_new(0, GOMAN_JSONL_DEFAULT_MAX);
	bool eof = !rd;
	while (!eof || inflight) {
		if (write_failed)
			eof = true; /* nobody reads our answers: stop taking lines */
		/* take lines while there is room; block on stdin only when nothing is in flight */
		while (!eof && inflight < jobs && !write_failed &&
		       (inflight == 0 || goman_jsonl_buffered(rd) || readable(0))) {
			cJSON *rec = NULL;
			struct goman_err err = GOMAN_ERR_INIT;
			int rc = goman_jsonl_next(rd, &rec, &err);
			if (rc == GOMAN_JSONL_EOF || rc == GOMAN_JSONL_IOERR) {
				if (rc == GOMAN_JSONL_IOERR)
					goman_log(GOMAN_LOG_ERROR, "API", "%s", err.message);
				eof = true;
				break;
			}
			if (rc == GOMAN_JSONL_AGAIN)
				break;
			struct slot *s = slot_new(rec);
			if (!s) {
				cJSON_Delete(rec);
				eof = true;
				break;
			}
			if (rc == GOMAN_JSONL_BAD)
				answer_error(s, &err, goman_jsonl_lineno(rd));
			else
				submit_line(aws, &setup_err, s, goman_jsonl_lineno(rd));
			flush_ready();
		}
		flush_ready();
		if (!inflight)
			continue;
		goman_http_run(goman_aws_http(aws), -1, !eof && inflight < jobs ? 0 : -1);
		flush_ready();
	}
	flush_ready();
	goman_jsonl_reader_free(rd);
	goman_aws_free(aws);
	if (write_failed)
		outcome.output_errors++;
	return goman_exit_code(&outcome);
}
