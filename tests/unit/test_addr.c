/*
 * test_addr.c - what an address field and a server URL may hold (goman/addr.h).
 */
#include "unit.h"
#include <stdio.h>
#include <string.h>
#include "goman/addr.h"

static void test_ip_literals_and_rfc1123_names_are_addresses(void **state)
{
	const char *good[] = {"10.0.0.5",
			      "127.0.0.1",
			      "::1",
			      "fd00::5",
			      "2001:db8::1:2",
			      "::ffff:10.0.0.1",
			      "ip-10-0-0-5.ec2.internal",
			      "node1",
			      "a",
			      "A-b.C-d",
			      "x1.y2.z3",
			      "9node.example.com"};
	for (size_t i = 0; i < sizeof(good) / sizeof(*good); i++)
		if (!goman_addr_ok(good[i]))
			fail_msg("refused: %s", good[i]);
	char l63[64], name253[254];
	memset(l63, 'a', 63);
	l63[63] = '\0';
	assert_true(goman_addr_ok(l63));
	/* 4 labels of 63 + 3 dots = 255; cut to 253 with a 61-character last label */
	snprintf(name253, sizeof(name253), "%s.%s.%s.%.61s", l63, l63, l63, l63);
	assert_int_equal(strlen(name253), 253);
	assert_true(goman_addr_ok(name253));
}

static void test_injections_and_malformed_names_are_not_addresses(void **state)
{
	const char *bad[] = {"10.0.0.5\nExecStart=/bin/sh -c 'id >/root/PWNED'\nX=",
			     "10.0.0.5\n",
			     "10.0.0.5 ",
			     " 10.0.0.5",
			     "10.0.0.5\r",
			     "10.0.0.5\t",
			     "-oProxyCommand=id",
			     "root@10.0.0.5",
			     "10.0.0.5:22",
			     "[::1]",
			     "fe80::1%eth0",
			     "10.0.0.256",
			     "1.2.3",
			     "10.0.0.5/24",
			     "a..b",
			     ".a",
			     "a.",
			     "-a",
			     "a-",
			     "a.-b",
			     "a_b",
			     "a b",
			     "a;b",
			     "$(id)",
			     "`id`",
			     "a\"b",
			     "h\xc3\xa9.example",
			     "",
			     "x\x7f",
			     "https://10.0.0.5:6443"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++)
		if (goman_addr_ok(bad[i]))
			fail_msg("accepted: %s", bad[i]);
	assert_false(goman_addr_ok(NULL));
	char l64[65], name254[255], l63[64];
	memset(l64, 'a', 64);
	l64[64] = '\0';
	assert_false(goman_addr_ok(l64));
	memset(l63, 'a', 63);
	l63[63] = '\0';
	snprintf(name254, sizeof(name254), "%s.%s.%s.%.62s", l63, l63, l63, l63);
	assert_int_equal(strlen(name254), 254);
	assert_false(goman_addr_ok(name254));
}

static void test_server_urls_are_https_addr_port_and_nothing_else(void **state)
{
	const char *good[] = {"https://10.0.0.5:6443", "https://[fd00::5]:6443",
			      "https://k3s.example.com:443", "https://h:1", "https://h:65535"};
	for (size_t i = 0; i < sizeof(good) / sizeof(*good); i++)
		if (!goman_server_url_ok(good[i]))
			fail_msg("refused: %s", good[i]);
	const char *bad[] = {"https://10.0.0.5\nExecStart=/bin/sh:6443",
			     "http://10.0.0.5:6443",
			     "https://10.0.0.5",
			     "https://10.0.0.5:",
			     "https://10.0.0.5:0",
			     "https://10.0.0.5:65536",
			     "https://10.0.0.5:06443",
			     "https://10.0.0.5:+6443",
			     "https://10.0.0.5:6443/",
			     "https://10.0.0.5:6443\n",
			     "https://fd00::5:6443",
			     "https://[10.0.0.5]:6443",
			     "https://[fd00::5]6443",
			     "https://u@10.0.0.5:6443",
			     "https://:6443",
			     "",
			     "https://10.0.0.5:6443 --token x",
			     "HTTPS://10.0.0.5:6443"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++)
		if (goman_server_url_ok(bad[i]))
			fail_msg("accepted: %s", bad[i]);
	assert_false(goman_server_url_ok(NULL));
}

static void test_server_url_is_built_only_from_an_address(void **state)
{
	char u[64];
	assert_int_equal(goman_server_url(u, sizeof(u), "10.0.0.5", 6443), 0);
	assert_string_equal(u, "https://10.0.0.5:6443");
	assert_true(goman_server_url_ok(u));
	assert_int_equal(goman_server_url(u, sizeof(u), "fd00::5", 6443), 0);
	assert_string_equal(u, "https://[fd00::5]:6443");
	assert_true(goman_server_url_ok(u));
	assert_int_equal(goman_server_url(u, sizeof(u), "10.0.0.5\nExecStart=/bin/sh", 6443), -1);
	assert_string_equal(u, "");
	assert_int_equal(goman_server_url(u, sizeof(u), "10.0.0.5", 0), -1);
	assert_int_equal(goman_server_url(u, 10, "10.0.0.5", 6443), -1);
	assert_string_equal(u, "");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ip_literals_and_rfc1123_names_are_addresses),
		cmocka_unit_test(test_injections_and_malformed_names_are_not_addresses),
		cmocka_unit_test(test_server_urls_are_https_addr_port_and_nothing_else),
		cmocka_unit_test(test_server_url_is_built_only_from_an_address),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
