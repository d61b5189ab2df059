/*
 * test_install_presign.c - the air-gap URLs goman-install hands to nodes (goman_s3_presign):
 * virtual-host style against AWS's own endpoints for DNS-safe buckets, path style for
 * dotted buckets and custom endpoints; every URL and signature what botocore 1.43
 * generate_presigned_url gives for the same keys, time and lifetime (computed once; botocore
 * puts X-Amz-Expires before X-Amz-SignedHeaders, the order of query parameters is free).
 */
#include "unit.h"
#include <string.h>
#include "goman/error.h"
#include "goman/s3.h"

#define T0 1767323045000LL /* 2026-01-02T03:04:05Z */
#define Q                                                                                         \
	"?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIDEXAMPLE%2F20260102%2Fus-east-1%"  \
	"2Fs3%2Faws4_request&X-Amz-Date=20260102T030405Z&X-Amz-SignedHeaders=host&X-Amz-Expires=" \
	"3600&X-Amz-Signature="

static struct goman_creds creds = {.access_key_id = "AKIDEXAMPLE",
				   .secret_access_key = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"};

static char *presign(const char *ep, const char *bucket, const char *key)
{
	struct goman_err err = GOMAN_ERR_INIT;
	struct goman_s3_presign p = {.endpoint = ep,
				     .region = "us-east-1",
				     .bucket = bucket,
				     .key = key,
				     .expires_s = 3600,
				     .time_ms = T0};
	return goman_s3_presign(&p, &creds, &err);
}

static void test_a_dns_safe_bucket_on_aws_gets_a_virtual_host_url(void **s)
{
	char *u = presign("https://s3.us-east-1.amazonaws.com", "my-bucket", "k3s/v1.31/k3s");
	assert_string_equal(u, "https://my-bucket.s3.us-east-1.amazonaws.com/k3s/v1.31/k3s" Q
			       "2deb8b0daeda3fedcb2fa817ec9b018b728c833c6d48c8be6dcb18e2898233ef");
	free(u);
}

static void test_a_dotted_bucket_on_aws_stays_path_style(void **s)
{
	char *u = presign("https://s3.us-east-1.amazonaws.com", "my.dotted.bucket", "k3s/k3s");
	assert_string_equal(u, "https://s3.us-east-1.amazonaws.com/my.dotted.bucket/k3s/k3s" Q
			       "094683db262ef1d7b93956e659a5e4a99e612ffba41951f48909facd597e985b");
	free(u);
}

static void test_a_custom_endpoint_gets_path_style_and_keys_are_encoded_once(void **s)
{
	char *u = presign("http://127.0.0.1:5000", "my-bucket", "a b/k3s");
	assert_string_equal(u, "http://127.0.0.1:5000/my-bucket/a%20b/k3s" Q
			       "10a59b4bcdbc13f21ea597f2c938c7f0ad31b844a577205a4a3b2ec6683e06a8");
	free(u);
}

static void test_aws_endpoints_are_told_from_others(void **s)
{
	assert_true(goman_s3_endpoint_is_aws("https://s3.eu-west-1.amazonaws.com"));
	assert_true(goman_s3_endpoint_is_aws("https://S3.US-EAST-1.AMAZONAWS.COM:443/"));
	assert_false(goman_s3_endpoint_is_aws("http://127.0.0.1:5000"));
	assert_false(goman_s3_endpoint_is_aws("https://minio.example.com"));
	assert_false(goman_s3_endpoint_is_aws("https://amazonaws.com.evil.example"));
	assert_false(goman_s3_endpoint_is_aws(NULL));
}

static void test_credentials_about_to_expire_are_refused(void **s)
{
	struct goman_creds c = creds;
	c.expires_ms = T0 + 30000;
	struct goman_err err = GOMAN_ERR_INIT;
	struct goman_s3_presign p = {.endpoint = "https://s3.us-east-1.amazonaws.com",
				     .region = "us-east-1",
				     .bucket = "b-1",
				     .key = "k",
				     .expires_s = 3600,
				     .time_ms = T0};
	assert_null(goman_s3_presign(&p, &c, &err));
	assert_string_equal(err.code, "CredentialsExpiring");
	p.key = "";
	assert_null(goman_s3_presign(&p, &creds, &err));
	assert_string_equal(err.code, "BadInput");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_a_dns_safe_bucket_on_aws_gets_a_virtual_host_url),
		cmocka_unit_test(test_a_dotted_bucket_on_aws_stays_path_style),
		cmocka_unit_test(test_a_custom_endpoint_gets_path_style_and_keys_are_encoded_once),
		cmocka_unit_test(test_aws_endpoints_are_told_from_others),
		cmocka_unit_test(test_credentials_about_to_expire_are_refused),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
