/*
 * test_aws_xml.c - XML → JSON conversion rules, streaming, AWS error replies (EC2, STS/IAM,
 * S3, JSON __type, headers; one table), the query form encoding, S3 URLs and the JSON path
 * helpers.
 */
#include "unit.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>
#include "goman/aws.h"
#include "goman/aws_error.h"
#include "aws_int.h"

static const char ec2_reply[] =
	"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
	"<DescribeInstancesResponse xmlns=\"http://ec2.amazonaws.com/doc/2016-11-15/\">\n"
	"  <requestId>r-1</requestId>\n"
	"  <reservationSet>\n"
	"    <item>\n"
	"      <reservationId>r-0a</reservationId>\n"
	"      <groupSet/>\n"
	"      <instancesSet>\n"
	"        <item>\n"
	"          <instanceId>i-1</instanceId>\n"
	"          <instanceState><code>16</code><name>running</name></instanceState>\n"
	"          <tagSet><item><key>Name</key><value>a &amp; b</value></item></tagSet>\n"
	"          <privateIpAddress/>\n"
	"        </item>\n"
	"        <item><instanceId>i-2</instanceId><tagSet></tagSet></item>\n"
	"      </instancesSet>\n"
	"    </item>\n"
	"  </reservationSet>\n"
	"</DescribeInstancesResponse>\n";

static void check_ec2(cJSON *j)
{
	assert_non_null(j);
	assert_string_equal(goman_json_path_str(j, "requestId"), "r-1");
	cJSON *res = goman_json_path_array(j, "reservationSet");
	assert_non_null(res);
	assert_int_equal(cJSON_GetArraySize(res), 1);
	/* an empty element named *Set is an empty array */
	cJSON *gs = goman_json_path_array(j, "reservationSet.0.groupSet");
	assert_non_null(gs);
	assert_int_equal(cJSON_GetArraySize(gs), 0);
	cJSON *inst = goman_json_path_array(j, "reservationSet.0.instancesSet");
	assert_int_equal(cJSON_GetArraySize(inst), 2);
	cJSON *i1 = cJSON_GetArrayItem(inst, 0);
	assert_string_equal(goman_json_path_str(i1, "instanceId"), "i-1");
	/* numbers stay strings */
	assert_string_equal(goman_json_path_str(i1, "instanceState.code"), "16");
	assert_string_equal(goman_json_path_str(i1, "instanceState.name"), "running");
	assert_string_equal(goman_json_path_str(i1, "tagSet.0.value"), "a & b");
	/* any other empty element is the empty string, and path_array says NULL */
	assert_string_equal(goman_json_path_str(i1, "privateIpAddress"), "");
	assert_null(goman_json_path_array(i1, "privateIpAddress"));
	cJSON *i2 = cJSON_GetArrayItem(inst, 1);
	assert_int_equal(cJSON_GetArraySize(goman_json_path_array(i2, "tagSet")), 0);
	assert_null(goman_json_path_str(j, "reservationSet.5.reservationId"));
	assert_null(goman_json_path_str(j, "nothing.here"));
}

static void test_ec2_reply_converts_items_to_arrays_and_drops_root(void **state)
{
	char root[64];
	cJSON *j = gm_xml_to_json(ec2_reply, strlen(ec2_reply), root, sizeof(root), NULL);
	assert_string_equal(root, "DescribeInstancesResponse");
	assert_null(cJSON_GetObjectItem(j, "DescribeInstancesResponse"));
	check_ec2(j);
	cJSON_Delete(j);
}

static void test_streaming_one_byte_at_a_time_gives_the_same_result(void **state)
{
	struct gm_xml *x = gm_xml_new();
	for (size_t i = 0; i < strlen(ec2_reply); i++)
		assert_int_equal(gm_xml_feed(x, ec2_reply + i, 1, NULL), 0);
	cJSON *j = gm_xml_finish(x, NULL);
	check_ec2(j);
	cJSON *one = gm_xml_to_json(ec2_reply, strlen(ec2_reply), NULL, 0, NULL);
	assert_true(cJSON_Compare(j, one, 1));
	cJSON_Delete(j);
	cJSON_Delete(one);
	gm_xml_free(x);
}

static void test_repeated_names_become_arrays_single_stays_object(void **state)
{
	static const char s3[] = "<ListBucketResult><Name>b</Name>"
				 "<Contents><Key>a</Key><Size>1</Size></Contents>"
				 "<Contents><Key>b</Key><Size>2</Size></Contents>"
				 "<Contents><Key>c</Key></Contents>"
				 "<Owner><ID>x</ID></Owner></ListBucketResult>";
	cJSON *j = gm_xml_to_json(s3, strlen(s3), NULL, 0, NULL);
	cJSON *c = goman_json_path_array(j, "Contents");
	assert_non_null(c);
	assert_int_equal(cJSON_GetArraySize(c), 3);
	assert_string_equal(goman_json_path_str(j, "Contents.2.Key"), "c");
	assert_true(cJSON_IsObject(cJSON_GetObjectItem(j, "Owner")));
	assert_string_equal(goman_json_path_str(j, "Owner.ID"), "x");
	cJSON_Delete(j);
}

static void test_repeated_child_whose_value_is_an_array_is_not_merged(void **state)
{
	/* two <x> each holding an item list: an array of two arrays, not one flat list */
	static const char doc[] = "<R><x><item>1</item></x><x><item>2</item><item>3</item></x></R>";
	cJSON *j = gm_xml_to_json(doc, strlen(doc), NULL, 0, NULL);
	cJSON *x = cJSON_GetObjectItem(j, "x");
	assert_int_equal(cJSON_GetArraySize(x), 2);
	assert_int_equal(cJSON_GetArraySize(cJSON_GetArrayItem(x, 1)), 2);
	cJSON_Delete(j);
}

static void test_member_lists_attributes_and_prefixes(void **state)
{
	static const char iam[] =
		"<ListUsersResponse xmlns=\"https://iam.amazonaws.com/doc/2010-05-08/\">"
		"<ListUsersResult><Users><member><UserName>u1</UserName></member>"
		"<member><UserName>u2</UserName></member></Users>"
		"<IsTruncated attr=\"ignored\">false</IsTruncated></ListUsersResult>"
		"<a:Prefixed xmlns:a=\"urn:x\">v</a:Prefixed></ListUsersResponse>";
	cJSON *j = gm_xml_to_json(iam, strlen(iam), NULL, 0, NULL);
	assert_string_equal(goman_json_path_str(j, "ListUsersResult.Users.1.UserName"), "u2");
	assert_string_equal(goman_json_path_str(j, "ListUsersResult.IsTruncated"), "false");
	assert_string_equal(goman_json_path_str(j, "Prefixed"), "v");
	cJSON_Delete(j);
}

static void test_text_root_goes_under_its_name(void **state)
{
	static const char doc[] = "<LocationConstraint>eu-west-1</LocationConstraint>";
	cJSON *j = gm_xml_to_json(doc, strlen(doc), NULL, 0, NULL);
	assert_string_equal(goman_json_path_str(j, "LocationConstraint"), "eu-west-1");
	cJSON_Delete(j);
}

static void test_broken_xml_is_a_parse_error(void **state)
{
	struct goman_err err = GOMAN_ERR_INIT;
	goman_err_clear(&err);
	static const char doc[] = "<a><b></a>";
	assert_null(gm_xml_to_json(doc, strlen(doc), NULL, 0, &err));
	assert_int_equal(err.rc, GOMAN_EPARSE);
	goman_err_clear(&err);
	assert_null(gm_xml_to_json("", 0, NULL, 0, &err));
	assert_int_equal(err.rc, GOMAN_EPARSE);
}

static void test_entity_declarations_are_refused(void **state)
{
	static const char doc[] = "<?xml version=\"1.0\"?><!DOCTYPE r [<!ENTITY a \"aaaaaaaa\">"
				  "<!ENTITY b \"&a;&a;&a;&a;\">]><r>&b;</r>";
	struct goman_err err = GOMAN_ERR_INIT;
	goman_err_clear(&err);
	assert_null(gm_xml_to_json(doc, strlen(doc), NULL, 0, &err));
	assert_int_equal(err.rc, GOMAN_EPARSE);
}

/* One row per error reply goman meets: the body, the headers that came with it (name=value
 * pairs split on '\n'), and what the parser must read from them. */
struct err_row {
	const char *what, *body, *headers;
	int rc;
	const char *code, *message, *request_id;
};

static const struct err_row err_rows[] = {
	{"EC2 <Response><Errors><Error>",
	 "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Errors><Error>"
	 "<Code>AuthFailure</Code><Message>AWS was not able to validate the provided access "
	 "credentials</Message></Error></Errors><RequestID>req-ec2</RequestID></Response>",
	 NULL, 0, "AuthFailure", "AWS was not able to validate the provided access credentials",
	 "req-ec2"},
	{"STS/IAM <ErrorResponse><Error>",
	 "<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><Error>"
	 "<Type>Sender</Type><Code>InvalidClientTokenId</Code><Message>bad token</Message>"
	 "</Error><RequestId>req-sts</RequestId></ErrorResponse>",
	 NULL, 0, "InvalidClientTokenId", "bad token", "req-sts"},
	{"moto's refused signature: <ErrorResponse><Errors><Error>",
	 "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<ErrorResponse><Errors>"
	 "<Error><Code>AuthFailure</Code><Message>no</Message><Type>Sender</Type>"
	 "</Error></Errors></ErrorResponse>",
	 NULL, 0, "AuthFailure", "no", ""},
	{"another root around <Errors> reads as EC2's",
	 "<Wrapper><Errors><Error><Code>Throttling</Code><Message>slow down</Message>"
	 "</Error></Errors></Wrapper>",
	 NULL, 0, "Throttling", "slow down", ""},
	{"S3 <Error>",
	 "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>SignatureDoesNotMatch</Code>"
	 "<Message>The request signature we calculated does not match</Message>"
	 "<RequestId>req-s3</RequestId><HostId>h</HostId></Error>",
	 NULL, 0, "SignatureDoesNotMatch", "The request signature we calculated does not match",
	 "req-s3"},
	{"XML after blanks, request id from the header when the body has none",
	 " \r\n<Error><Code>NoSuchKey</Code></Error>", "x-amz-request-id=hdr-s3", 0, "NoSuchKey",
	 "", "hdr-s3"},
	{"the body's request id wins over the header's",
	 "<Error><Code>NoSuchKey</Code><RequestId>body-id</RequestId></Error>",
	 "x-amz-request-id=hdr-id", 0, "NoSuchKey", "", "body-id"},
	{"a success document is not an error",
	 "<DescribeInstancesResponse><requestId>r-1"
	 "</requestId></DescribeInstancesResponse>",
	 NULL, -1, "", "", ""},
	{"JSON: namespace stripped, message",
	 "{\"__type\":\"com.amazonaws.dynamodb.v20120810#ResourceNotFoundException\","
	 "\"message\":\"Requested resource not found\"}",
	 NULL, 0, "ResourceNotFoundException", "Requested resource not found", ""},
	{"JSON: Message spelled with a capital",
	 "{\"__type\":\"ParameterNotFound\",\"Message\":\"no such parameter\"}", NULL, 0,
	 "ParameterNotFound", "no such parameter", ""},
	{"JSON: \"code\" and a \":http...\" tail",
	 "{\"code\":\"ValidationException:http://internal.amazon.com/\",\"message\":\"m\"}", NULL,
	 0, "ValidationException", "m", ""},
	{"JSON without a code: the x-amzn-ErrorType header names it", "{\"message\":\"bad input\"}",
	 "x-amzn-ErrorType=InvalidRequestException:http://internal.amazon.com/\n"
	 "x-amzn-RequestId=hdr-json",
	 0, "InvalidRequestException", "bad input", "hdr-json"},
	{"XML without an error document: the header still names it", "<html>busy</html>",
	 "x-amzn-ErrorType=ServiceUnavailable", 0, "ServiceUnavailable", "", ""},
	{"not JSON, no header", "not json", NULL, -1, "", "", ""},
	{"an empty object", "{}", NULL, -1, "", "", ""},
	{"an empty body", "", NULL, -1, "", "", ""},
};

static void test_error_replies_table(void **state)
{
	for (size_t i = 0; i < sizeof(err_rows) / sizeof(err_rows[0]); i++) {
		const struct err_row *r = &err_rows[i];
		struct goman_kvs h = {0};
		for (const char *p = r->headers; p && *p;) {
			size_t n = strcspn(p, "\n"), k = strcspn(p, "=");
			assert_int_equal(goman_kvs_addn(&h, p, k, p + k + 1, n - k - 1), 0);
			p += n + (p[n] == '\n');
		}
		struct goman_err e = GOMAN_ERR_INIT;
		goman_err_clear(&e);
		cJSON *doc = NULL;
		int rc = goman_aws_error_parse(r->body, strlen(r->body), &h, &e, &doc);
		if (rc != r->rc || strcmp(e.code, r->code) || strcmp(e.message, r->message) ||
		    strcmp(e.request_id, r->request_id))
			fail_msg("%s: rc %d code '%s' message '%s' request id '%s'", r->what, rc,
				 e.code, e.message, e.request_id);
		/* the JSON body that named the error comes back parsed; nothing else does */
		bool by_header = r->headers && strstr(r->headers, "x-amzn-ErrorType");
		bool json_named = rc == 0 && r->body[0] == '{' && !by_header;
		if (json_named != (doc != NULL))
			fail_msg("%s: doc %s", r->what, doc ? "given" : "missing");
		cJSON_Delete(doc);
		goman_kvs_clear(&h);
	}
}

/* the AWS client streams XML replies and hands the parser the converted document */
static void test_error_from_streamed_xml_matches_the_whole_body(void **state)
{
	for (size_t i = 0; i < sizeof(err_rows) / sizeof(err_rows[0]); i++) {
		const struct err_row *r = &err_rows[i];
		if (r->body[0] != '<' || r->headers)
			continue;
		char root[64];
		cJSON *j = gm_xml_to_json(r->body, strlen(r->body), root, sizeof(root), NULL);
		struct goman_err e = GOMAN_ERR_INIT;
		goman_err_clear(&e);
		assert_int_equal(goman_aws_error_xml(root, j, &e), r->rc);
		assert_string_equal(e.code, r->code);
		assert_string_equal(e.request_id, r->request_id);
		cJSON_Delete(j);
	}
	struct goman_err e = GOMAN_ERR_INIT;
	assert_int_equal(goman_aws_error_xml("Error", NULL, &e), -1);
	assert_int_equal(goman_aws_error_xml(NULL, NULL, &e), -1);
}

static void test_query_form_encodes_every_reserved_byte(void **state)
{
	struct goman_kvs p = {0};
	goman_kvs_add(&p, "Filter.1.Name", "tag:goman:role");
	goman_kvs_add(&p, "Filter.1.Value.1", "a b+c/ü~_.-");
	goman_kvs_add(&p, "Action", "Sneaky");
	size_t len;
	char *f = gm_query_form("DescribeInstances", gm_query_version("ec2"), &p, &len);
	assert_string_equal(f, "Action=DescribeInstances&Version=2016-11-15"
			       "&Filter.1.Name=tag%3Agoman%3Arole"
			       "&Filter.1.Value.1=a+b%2Bc%2F%C3%BC~_.-");
	assert_int_equal(len, strlen(f));
	free(f);
	goman_kvs_clear(&p);
	assert_string_equal(gm_query_version("sts"), "2011-06-15");
	assert_string_equal(gm_query_version("iam"), "2010-05-08");
	assert_null(gm_query_version("ssm"));
}

/* botocore's urlencode (quote_plus): space '+', the unreserved four as they are, every
 * other byte %XX, in names and values alike */
static void test_query_form_spells_space_as_plus_like_botocore(void **state)
{
	struct goman_kvs p = {0};
	goman_kvs_add(&p, "GroupDescription", "a b  c");
	goman_kvs_add(&p, "Tag.1 Key", "x+y&z=1 100%\t\"'*!()#?/:@[]");
	goman_kvs_add(&p, "Empty", "");
	char *f = gm_query_form("CreateSecurityGroup", gm_query_version("ec2"), &p, NULL);
	assert_string_equal(
		f, "Action=CreateSecurityGroup&Version=2016-11-15"
		   "&GroupDescription=a+b++c"
		   "&Tag.1+Key=x%2By%26z%3D1+100%25%09%22%27%2A%21%28%29%23%3F%2F%3A%40%5B%5D"
		   "&Empty=");
	free(f);
	goman_kvs_clear(&p);
}

static void test_json_targets_and_content_types(void **state)
{
	const char *t, *ct;
	assert_true(gm_json_service("ssm", &t, &ct));
	assert_string_equal(t, "AmazonSSM");
	assert_string_equal(ct, "application/x-amz-json-1.1");
	assert_true(gm_json_service("dynamodb", &t, &ct));
	assert_string_equal(t, "DynamoDB_20120810");
	assert_string_equal(ct, "application/x-amz-json-1.0");
	assert_false(gm_json_service("ec2", &t, &ct));

	struct goman_aws_call call = {.service = "ssm", .action = "GetParameter"};
	struct gm_aws_req r = {0};
	assert_int_equal(gm_json_prepare(&call, "https://ssm.eu-west-1.amazonaws.com", &r, NULL),
			 0);
	assert_string_equal(goman_kvs_get(&r.headers, "X-Amz-Target"), "AmazonSSM.GetParameter");
	assert_string_equal(r.body, "{}");
	assert_string_equal(r.url, "https://ssm.eu-west-1.amazonaws.com/");
	gm_aws_req_clear(&r);
}

static void test_s3_urls_path_and_virtual_host(void **state)
{
	char *u = gm_s3_url("https://s3.us-east-1.amazonaws.com", "my-bucket", "a b+c/%/ü//x", NULL,
			    false);
	assert_string_equal(u,
			    "https://my-bucket.s3.us-east-1.amazonaws.com/a%20b%2Bc/%25/%C3%BC//x");
	free(u);
	u = gm_s3_url("http://127.0.0.1:5000", "my-bucket", "k", "uploads", true);
	assert_string_equal(u, "http://127.0.0.1:5000/my-bucket/k?uploads");
	free(u);
	/* not a DNS label: path style even on AWS */
	u = gm_s3_url("https://s3.us-east-1.amazonaws.com", "My.Bucket", NULL, NULL, false);
	assert_string_equal(u, "https://s3.us-east-1.amazonaws.com/My.Bucket");
	free(u);
	u = gm_s3_url("https://s3.us-east-1.amazonaws.com", NULL, NULL, NULL, false);
	assert_string_equal(u, "https://s3.us-east-1.amazonaws.com/");
	free(u);
	assert_true(gm_s3_bucket_dns_ok("abc-123"));
	assert_false(gm_s3_bucket_dns_ok("ab"));
	assert_false(gm_s3_bucket_dns_ok("-abc"));
	assert_false(gm_s3_bucket_dns_ok("a.b.c"));
}

static void test_s3_prepare_methods_and_location_body(void **state)
{
	struct goman_aws_call call = {
		.service = "s3", .action = "GetObject", .bucket = "b", .key = "k"};
	struct gm_aws_req r = {0};
	assert_int_equal(gm_s3_prepare(&call, "http://127.0.0.1:1", "us-east-1", true, &r, NULL),
			 0);
	assert_string_equal(r.method, "GET");
	assert_true(r.raw_reply);
	assert_true(r.s3);
	gm_aws_req_clear(&r);
	struct goman_aws_call cb = {.service = "s3", .action = "CreateBucket", .bucket = "b"};
	assert_int_equal(gm_s3_prepare(&cb, "http://127.0.0.1:1", "eu-west-1", true, &r, NULL), 0);
	assert_string_equal(r.method, "PUT");
	assert_non_null(strstr(r.body, "<LocationConstraint>eu-west-1</LocationConstraint>"));
	gm_aws_req_clear(&r);
	struct goman_aws_call bad = {.service = "s3", .action = "PutObject", .bucket = "b"};
	struct goman_err e = GOMAN_ERR_INIT;
	goman_err_clear(&e);
	assert_int_equal(gm_s3_prepare(&bad, "http://127.0.0.1:1", "us-east-1", true, &r, &e), -1);
	assert_int_equal(e.cls, GOMAN_CLASS_BAD_INPUT);
	gm_aws_req_clear(&r);
}

/* <R><e0>v</e0><e1>v</e1>...</R> with n distinct names, plus n repeats of one name */
static char *siblings_doc(int n)
{
	size_t cap = (size_t)n * 48 + 64, len = 0;
	char *d = malloc(cap);
	assert_non_null(d);
	len += (size_t)snprintf(d + len, cap - len, "<R>");
	for (int i = 0; i < n; i++)
		len += (size_t)snprintf(d + len, cap - len, "<e%d>v</e%d><same>%d</same>", i, i, i);
	len += (size_t)snprintf(d + len, cap - len, "</R>");
	return d;
}

static unsigned long compares_for(int n)
{
	char *d = siblings_doc(n);
	gm_xml_name_compares = 0;
	cJSON *j = gm_xml_to_json(d, strlen(d), NULL, 0, NULL);
	assert_non_null(j);
	assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(j, "same")), n);
	char name[32];
	snprintf(name, sizeof(name), "e%d", n - 1);
	assert_string_equal(goman_json_path_str(j, name), "v");
	cJSON_Delete(j);
	free(d);
	return gm_xml_name_compares;
}

static void test_sibling_elements_cost_constant_work_each(void **state)
{
	/* linear: 8 times the siblings, about 8 times the work (quadratic would be 64) */
	unsigned long small = compares_for(2000), big = compares_for(16000);
	assert_true(small > 0);
	assert_true(big < small * 12);
	/* and a bounded amount per sibling */
	assert_true(big < 16000ul * 2 * 8);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ec2_reply_converts_items_to_arrays_and_drops_root),
		cmocka_unit_test(test_streaming_one_byte_at_a_time_gives_the_same_result),
		cmocka_unit_test(test_repeated_names_become_arrays_single_stays_object),
		cmocka_unit_test(test_repeated_child_whose_value_is_an_array_is_not_merged),
		cmocka_unit_test(test_member_lists_attributes_and_prefixes),
		cmocka_unit_test(test_text_root_goes_under_its_name),
		cmocka_unit_test(test_broken_xml_is_a_parse_error),
		cmocka_unit_test(test_entity_declarations_are_refused),
		cmocka_unit_test(test_error_replies_table),
		cmocka_unit_test(test_error_from_streamed_xml_matches_the_whole_body),
		cmocka_unit_test(test_query_form_encodes_every_reserved_byte),
		cmocka_unit_test(test_query_form_spells_space_as_plus_like_botocore),
		cmocka_unit_test(test_json_targets_and_content_types),
		cmocka_unit_test(test_s3_urls_path_and_virtual_host),
		cmocka_unit_test(test_s3_prepare_methods_and_location_body),
		cmocka_unit_test(test_sibling_elements_cost_constant_work_each),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
