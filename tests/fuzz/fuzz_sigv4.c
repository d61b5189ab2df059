/*
 * fuzz_sigv4.c - SigV4 signing (sigv4.c) with random method, URL, headers and body, in
 * header and presign mode, S3 rules or not. Property: reordering headers with distinct
 * names never changes the signature (only the order of values under one name matters,
 * as the AWS vector get-header-value-order shows): abort() if it does.
 * Input: a flags byte, then method, URL, service, region separated by '\n', then header
 * lines "name:value" up to an empty line, then the body.
 */
#include <ctype.h>
#include <stdio.h>
#include <strings.h>
#include "goman/sigv4.h"
#include "fuzz.h"

#define MAX_HEADERS 24

/* Names the property holds for: what a header name can be on the wire (an HTTP token). */
static int token_name(const char *s)
{
	if (!*s)
		return 0;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && !strchr("!#$%&'*+-.^_`|~", *s))
			return 0;
	return 1;
}

static int sign(const struct goman_sigv4_params *p, const struct goman_creds *c, const char **names,
		const char **values, const size_t *order, size_t n, bool explain, char sig[65],
		char **url)
{
	struct goman_kvs h = {0};
	struct goman_sigv4_out out = {0};
	struct goman_err err;
	goman_err_clear(&err);
	for (size_t i = 0; i < n; i++)
		if (goman_kvs_add(&h, names[order[i]], values[order[i]]) < 0)
			abort();
	int rc = goman_sigv4_sign(p, c, &h, explain, &out, &err);
	if (rc == 0) {
		memcpy(sig, out.signature, 65);
		if (url)
			*url = out.url ? strdup(out.url) : NULL;
	} else if (err.rc == GOMAN_OK) {
		abort(); /* a failure says why */
	}
	goman_sigv4_out_clear(&out);
	goman_kvs_clear(&h);
	return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fz f = {data, size};
	unsigned flags = fz_byte(&f);
	char *method = fz_str(&f, '\n'), *url = fz_str(&f, '\n');
	char *service = fz_str(&f, '\n'), *region = fz_str(&f, '\n');
	char *hn[MAX_HEADERS], *hv[MAX_HEADERS];
	size_t n = 0;
	while (f.n && n < MAX_HEADERS) {
		char *line = fz_str(&f, '\n');
		if (!*line) {
			free(line);
			break;
		}
		char *colon = strchr(line, ':');
		hv[n] = strdup(colon ? colon + 1 : "");
		if (colon)
			*colon = '\0';
		hn[n] = line;
		if (!hv[n])
			abort();
		n++;
	}
	size_t body_len;
	char *body = fz_rest(&f, &body_len);
	struct goman_sigv4_params p = {
		.method = method,
		.url = url,
		.body = body,
		.body_len = body_len,
		.service = *service ? service : "ec2",
		.region = *region ? region : "us-east-1",
		.time_ms = 1440938160000LL,
		.presign_expires = (flags & 1) ? 86400 : 0,
		.s3 = flags & 2,
		.sign_body = flags & 4,
		.unsigned_payload = flags & 8,
		.normalize = (int)((flags >> 4) % 3) - 1,
		.omit_session_token = flags & 64,
	};
	struct goman_creds c = {
		.access_key_id = "AKIDEXAMPLE",
		.secret_access_key = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
		.session_token = (flags & 128) ? "FQoGZXIvYXdzEXAMPLETOKEN" : NULL,
	};

	/* every header as given, in order: must not crash */
	const char *names[MAX_HEADERS], *values[MAX_HEADERS];
	size_t order[MAX_HEADERS], m = 0;
	for (size_t i = 0; i < n; i++)
		names[i] = hn[i], values[i] = hv[i], order[i] = i;
	char s1[65], s2[65];
	char *u1 = NULL, *u2 = NULL;
	if (n)
		sign(&p, &c, names, values, order, n, flags & 32, s1, NULL);

	/* the property: distinct token names, signed forwards and backwards */
	for (size_t i = 0; i < n; i++) {
		if (!token_name(hn[i]))
			continue;
		int dup = 0;
		for (size_t j = 0; j < m && !dup; j++)
			dup = strcasecmp(names[j], hn[i]) == 0;
		if (dup)
			continue;
		names[m] = hn[i];
		values[m] = hv[i];
		m++;
	}
	if (m >= 2) {
		size_t fwd[MAX_HEADERS], rev[MAX_HEADERS];
		for (size_t i = 0; i < m; i++)
			fwd[i] = i, rev[i] = m - 1 - i;
		int r1 = sign(&p, &c, names, values, fwd, m, false, s1, &u1);
		int r2 = sign(&p, &c, names, values, rev, m, false, s2, &u2);
		if (r1 != r2)
			abort();
		if (r1 == 0 && strcmp(s1, s2) != 0) {
			fprintf(stderr, "signature depends on header order:\n%s\n%s\n", s1, s2);
			abort();
		}
		if (r1 == 0 && (!u1 != !u2 || (u1 && strcmp(u1, u2) != 0))) {
			fprintf(stderr, "presigned URL depends on header order:\n%s\n%s\n", u1, u2);
			abort();
		}
	}
	free(u1);
	free(u2);
	for (size_t i = 0; i < n; i++) {
		free(hn[i]);
		free(hv[i]);
	}
	free(method);
	free(url);
	free(service);
	free(region);
	free(body);
	return 0;
}
