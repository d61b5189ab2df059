/*
 * goman-sign - the SigV4 signer as a command: one request record per stdin line, the same
 * record signed (and, with --send, answered) on stdout. See goman-sign(1).
 *
 * Glue only: the record shape is libgoman/signreq.c, signing is goman_sigv4_sign(),
 * credentials come from the chain, sending is goman/http.h, error replies are read by
 * goman/aws_error.h. Each output line is one
 * write(2), so a driver reading our stdout sees every answer as soon as it is made.
 * Every heap object made for a line is freed before the next line is read.
 */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <cjson/cJSON.h>
#include "goman/aws_error.h"
#include "goman/creds.h"
#include "goman/error.h"
#include "goman/http.h"
#include "goman/jsonl.h"
#include "goman/log.h"
#include "goman/signreq.h"
#include "goman/sigv4.h"
#include "cli.h"

static const char usage_text[] =
	"usage: goman-sign [--service NAME] [--region REGION] [--profile NAME] [--explain] "
	"[--send]\n"
	"\n"
	"Reads request records, one JSON object per line, on stdin:\n"
	"  {\"method\",\"url\",\"headers\",\"body\",\"service\",\"region\",\"time\",\"presign\",\n"
	"   \"unsigned_payload\",\"sign_body\",\"normalize\",\"omit_session_token\"}\n"
	"and writes each one back signed: headers added (same shape as given), or a presigned "
	"url.\n"
	"\n"
	"  --service NAME   signing name when neither the record nor the URL host gives one\n"
	"  --region REGION  region when neither the record nor the URL host gives one\n"
	"  --profile NAME   credentials and default region from this AWS profile\n"
	"  --explain        also write canonical_request and string_to_sign\n"
	"  --send           perform the request; add "
	"\"response\":{\"status\",\"headers\",\"body\"}\n"
	"  --help, --version\n"
	"\n"
	"Exit: 0 all ok, 1 some records failed, 64 usage, 65 some input lines malformed.\n";

struct signer {
	const char *service, *region, *profile;
	int explain, send;
	struct goman_credchain *chain;
	char *chain_region;
	struct goman_http *http;
};

/* Creates the chain on first use, so --help and bad lines never touch credentials. */
static struct goman_credchain *chain(struct signer *s, struct goman_err *err)
{
	if (!s->chain)
		s->chain = goman_credchain_new(s->profile, err);
	return s->chain;
}

/* --send: performs the signed request and adds "response" to out. */
static int send_one(struct signer *s, const struct goman_signreq *r, const char *service,
		    const char *url, const struct goman_kvs *headers, cJSON *out,
		    struct goman_err *err)
{
	if (!s->http && !(s->http = goman_http_new(NULL, err)))
		return -1;
	struct goman_http_req req = {.method = r->method,
				     .url = url,
				     .headers = headers,
				     .body = r->body,
				     .body_len = r->body_len};
	struct goman_http_resp resp = {0};
	if (goman_http_perform(s->http, &req, &resp, err) || resp.err.rc != GOMAN_OK) {
		if (resp.err.rc != GOMAN_OK)
			*err = resp.err;
		goman_http_resp_clear(&resp);
		return -1;
	}
	cJSON_AddItemToObject(
		out, "response",
		goman_signreq_response_json(resp.status, &resp.headers, resp.body, resp.body_len));
	int rc = 0;
	if (resp.status >= 400) {
		goman_err_clear(err);
		goman_err_set(err, GOMAN_ESERVICE, GOMAN_CLASS_CLIENT, "HttpError",
			      "HTTP status %ld", resp.status);
		err->http_status = (int)resp.status;
		goman_aws_error_parse(resp.body, resp.body_len, &resp.headers, err, NULL);
		goman_err_classify(err, service, NULL);
		rc = -1;
	}
	goman_http_resp_clear(&resp);
	return rc;
}

/* Signs one parsed record; *out gets the record to print (also on a send failure). */
static int sign_one(struct signer *s, const cJSON *in, cJSON **out, struct goman_err *err)
{
	struct goman_signreq r;
	struct goman_creds cr = {0};
	struct goman_sigv4_out so = {0};
	char *gsvc = NULL, *greg = NULL;
	int rc = -1;
	if (goman_signreq_parse(in, &r, err))
		return -1;
	goman_signreq_guess(r.url, &gsvc, &greg);
	const char *svc = r.service ? r.service : gsvc ? gsvc : s->service;
	const char *reg = r.region ? r.region : greg ? greg : s->region;
	if (!svc) {
		goman_err_set(
			err, GOMAN_EINVAL, GOMAN_CLASS_BAD_INPUT, "BadInput",
			"the URL host does not name the service: give \"service\" or --service");
		goto done;
	}
	if (!chain(s, err) || goman_credchain_get(s->chain, &cr, err))
		goto done;
	if (!reg && !s->chain_region)
		s->chain_region = goman_credchain_region(s->chain, err);
	if (!reg && !(reg = s->chain_region))
		goto done;
	bool s3 = strcmp(svc, "s3") == 0;
	struct goman_sigv4_params p = {
		.method = r.method,
		.url = r.url,
		.body = r.body,
		.body_len = r.body_len,
		.service = svc,
		.region = reg,
		.time_ms = r.time_ms,
		.presign_expires = r.presign,
		.s3 = s3,
		.sign_body = r.sign_body == 1 || (r.sign_body < 0 && s3 && !r.presign),
		.unsigned_payload = r.unsigned_payload == 1 || (s3 && r.presign),
		.normalize = r.normalize,
		.omit_session_token = r.omit_session_token};
	if (goman_sigv4_sign(&p, &cr, &r.headers, s->explain, &so, err))
		goto done;
	if (!(*out = cJSON_Duplicate(in, 1)))
		goto done;
	if (so.url)
		cJSON_ReplaceItemInObjectCaseSensitive(*out, "url", cJSON_CreateString(so.url));
	if (!so.url || cJSON_GetObjectItemCaseSensitive(in, "headers")) {
		cJSON *h = goman_signreq_headers_json(&r.headers, r.headers_array);
		cJSON_DeleteItemFromObjectCaseSensitive(*out, "headers");
		cJSON_AddItemToObject(*out, "headers", h);
	}
	if (s->explain) {
		cJSON_AddStringToObject(*out, "canonical_request", so.canonical_request);
		cJSON_AddStringToObject(*out, "string_to_sign", so.string_to_sign);
	}
	rc = s->send ? send_one(s, &r, svc, so.url ? so.url : r.url, &r.headers, *out, err) : 0;
done:
	goman_sigv4_out_clear(&so);
	goman_creds_clear(&cr);
	goman_signreq_clear(&r);
	free(gsvc);
	free(greg);
	return rc;
}

static int usage(int rc)
{
	fputs(usage_text, rc ? stderr : stdout);
	return rc;
}

int main(int argc, char **argv)
{
	static const struct option flags[] = {
		{"service", required_argument, NULL, 's'}, {"region", required_argument, NULL, 'r'},
		{"profile", required_argument, NULL, 'p'}, {"explain", no_argument, NULL, 'e'},
		{"send", no_argument, NULL, 'S'},          {"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},       {NULL, 0, NULL, 0}};
	struct signer s = {0};
	int c;
	cli_init("goman-sign");
	while ((c = getopt_long(argc, argv, "", flags, NULL)) != -1) {
		switch (c) {
		case 's': s.service = optarg; break;
		case 'r': s.region = optarg; break;
		case 'p': s.profile = optarg; break;
		case 'e': s.explain = 1; break;
		case 'S': s.send = 1; break;
		case 'h': return usage(0);
		case 'V': printf("goman-sign %s\n", GOMAN_VERSION); return 0;
		default: return usage(GOMAN_EXIT_USAGE);
		}
	}
	if (optind < argc) {
		cli_usage_error("unexpected argument '%s'", cli_shown(argv[optind]));
		return usage(GOMAN_EXIT_USAGE);
	}
	if (s.region && !goman_region_ok(s.region))
		return cli_usage_error("--region wants a region name (letters, digits and '-')");
	signal(SIGPIPE, SIG_IGN);
	goman_events_init("goman-sign");
	struct goman_jsonl_reader *rd = goman_jsonl_reader_new(0, 0);
	struct goman_outcome oc = {0};
	struct goman_err err = GOMAN_ERR_INIT;
	int rc, wfail = 0;
	while (rd && !wfail) {
		cJSON *in = NULL, *out = NULL;
		goman_err_clear(&err);
		rc = goman_jsonl_next(rd, &in, &err);
		if (rc == GOMAN_JSONL_EOF)
			break;
		if (rc == GOMAN_JSONL_IOERR) {
			goman_log(GOMAN_LOG_ERROR, "SIGN", "reading stdin: %s", err.message);
			oc.failed++;
			break;
		}
		if (rc == GOMAN_JSONL_RECORD && sign_one(&s, in, &out, &err) == 0) {
			goman_err_clear(&err);
		} else {
			long line = err.cls == GOMAN_CLASS_BAD_INPUT ? goman_jsonl_lineno(rd) : 0;
			cJSON *rec = goman_jsonl_error_record(out ? out : in, NULL, &err, line);
			cJSON_Delete(out);
			out = rec;
		}
		if (out && !cJSON_GetObjectItemCaseSensitive(out, "ok"))
			cJSON_AddTrueToObject(out, "ok");
		goman_outcome_add(&oc, &err);
		if (!out || goman_jsonl_write(1, out, NULL)) {
			goman_log(GOMAN_LOG_ERROR, "SIGN", "writing stdout failed");
			wfail = 1;
		}
		cJSON_Delete(in);
		cJSON_Delete(out);
	}
	if (wfail)
		oc.output_errors++;
	if (!rd)
		oc.failed++;
	goman_jsonl_reader_free(rd);
	goman_http_free(s.http);
	goman_credchain_free(s.chain);
	free(s.chain_region);
	return goman_exit_code(&oc);
}
