/*
 * test_cluster_file.c - the cluster file: good files in YAML and JSON give the same struct
 * and the same normalised JSON; each class of bad file is refused with a message naming
 * the file, the line (YAML) and the key path; node specs come out servers first, indexed
 * per role, each naming the file's subnets (goman-provision places them by AZ).
 */
#include "unit.h"
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <cjson/cJSON.h>
#include "goman/clock.h"
#include "goman/cluster_file.h"

static const char example_yaml[] =
	"name: web\n"
	"region: us-east-1\n"
	"k3s: {version: v1.31.4+k3s1}\n"
	"install: {via: ssm}\n"
	"network: {subnets: [subnet-0a1, subnet-0b2], ssh_cidr: 203.0.113.0/24,\n"
	"          api_cidr: 0.0.0.0/0, api_endpoint: public}\n"
	"groups:\n"
	"  - {name: control, role: server, count: 3, type: t3.medium}\n"
	"  - {name: workers, role: agent, count: 4, type: [t3.large, t3a.large], spot: true,\n"
	"     labels: {tier: web}, taints: [\"dedicated=web:NoSchedule\"], tags: {team: a},\n"
	"     volume_gb: 40}\n";

static const char example_json[] =
	"{\"name\":\"web\",\"region\":\"us-east-1\",\"k3s\":{\"version\":\"v1.31.4+k3s1\"},"
	"\"install\":{\"via\":\"ssm\"},\"network\":{\"subnets\":[\"subnet-0a1\",\"subnet-0b2\"],"
	"\"ssh_cidr\":\"203.0.113.0/24\",\"api_cidr\":\"0.0.0.0/0\",\"api_endpoint\":\"public\"},"
	"\"groups\":[{\"name\":\"control\",\"role\":\"server\",\"count\":3,\"type\":\"t3.medium\"},"
	"{\"name\":\"workers\",\"role\":\"agent\",\"count\":4,\"type\":[\"t3.large\",\"t3a.large\"]"
	","
	"\"spot\":true,\"labels\":{\"tier\":\"web\"},\"taints\":[\"dedicated=web:NoSchedule\"],"
	"\"tags\":{\"team\":\"a\"},\"volume_gb\":40}]}";

static struct goman_cluster_file *parse_ok(const char *text, const char *name)
{
	struct goman_cluster_file *cf = NULL;
	struct goman_err err = GOMAN_ERR_INIT;
	goman_err_clear(&err);
	int r = goman_cluster_file_parse(text, strlen(text), name, NULL, &cf, &err);
	if (r != 0)
		fail_msg("%s: %s", name, err.message);
	return cf;
}

static char *normalised(const struct goman_cluster_file *cf)
{
	cJSON *j = goman_cluster_file_to_json(cf);
	assert_non_null(j);
	char *s = cJSON_PrintUnformatted(j);
	cJSON_Delete(j);
	return s;
}

static void example_yaml_reads_into_the_struct(void **st)
{
	struct goman_cluster_file *cf = parse_ok(example_yaml, "c.yaml");
	assert_string_equal(cf->name, "web");
	assert_string_equal(cf->region, "us-east-1");
	assert_string_equal(cf->k3s_version, "v1.31.4+k3s1");
	assert_null(cf->k3s_channel);
	assert_int_equal(cf->via, GOMAN_CF_VIA_SSM);
	assert_int_equal(cf->nsubnets, 2);
	assert_string_equal(cf->ssh_cidr, "203.0.113.0/24");
	assert_int_equal(cf->api_endpoint, GOMAN_CF_ADDR_PUBLIC);
	assert_int_equal(cf->ngroups, 2);
	const struct goman_cf_group *w = &cf->groups[1];
	assert_true(cf->groups[0].server);
	assert_int_equal(cf->groups[0].count, 3);
	assert_int_equal(cf->groups[0].line, 8);
	assert_false(w->server);
	assert_int_equal(w->ntypes, 2);
	assert_string_equal(w->types[1], "t3a.large");
	assert_true(w->spot);
	assert_string_equal(w->labels[0].key, "tier");
	assert_string_equal(w->taints[0].key, "dedicated");
	assert_string_equal(w->taints[0].value, "web");
	assert_string_equal(w->taints[0].effect, "NoSchedule");
	assert_string_equal(w->tags[0].value, "a");
	assert_int_equal(w->volume_gb, 40);
	goman_cluster_file_free(cf);
}

static void yaml_and_json_give_the_same_normalised_file(void **st)
{
	struct goman_cluster_file *y = parse_ok(example_yaml, "c.yaml");
	struct goman_cluster_file *j = parse_ok(example_json, "c.json");
	char *a = normalised(y), *b = normalised(j);
	assert_string_equal(a, b);
	/* and the normalised file reads back to itself */
	struct goman_cluster_file *again = parse_ok(a, "n.json");
	char *c = normalised(again);
	assert_string_equal(a, c);
	free(a);
	free(b);
	free(c);
	goman_cluster_file_free(y);
	goman_cluster_file_free(j);
	goman_cluster_file_free(again);
}

static void defaults_fill_what_the_file_leaves_out(void **st)
{
	struct goman_cluster_file *cf =
		parse_ok("name: a\ngroups: [{name: s, role: server, count: 1}]\n", "min.yaml");
	assert_null(cf->region);
	assert_null(cf->k3s_version);
	assert_null(cf->k3s_channel);
	assert_int_equal(cf->via, GOMAN_CF_VIA_SSM);
	assert_int_equal(cf->api_endpoint, GOMAN_CF_ADDR_PUBLIC);
	assert_int_equal(cf->groups[0].ntypes, 1);
	assert_string_equal(cf->groups[0].types[0], "t3.medium");
	assert_false(cf->groups[0].spot);
	assert_int_equal(cf->groups[0].volume_gb, 0);
	goman_cluster_file_free(cf);
}

static void ssh_install_and_dns_endpoint_are_read(void **st)
{
	struct goman_cluster_file *cf = parse_ok(
		"name: a\n"
		"k3s: {channel: stable}\n"
		"install: {via: ssh, user: ec2-user, key: ~/.ssh/id_ed25519, address: private}\n"
		"network: {api_endpoint: k8s.example.com}\n"
		"groups: [{name: s, role: server, count: 1, ami: ami-0abc,\n"
		"  labels: {node.kubernetes.io/pool: a, example.com/empty: \"\"},\n"
		"  taints: [\"only:NoExecute\"]}]\n",
		"ssh.yaml");
	assert_string_equal(cf->k3s_channel, "stable");
	assert_int_equal(cf->via, GOMAN_CF_VIA_SSH);
	assert_string_equal(cf->ssh_user, "ec2-user");
	assert_string_equal(cf->ssh_key, "~/.ssh/id_ed25519");
	assert_int_equal(cf->ssh_address, GOMAN_CF_ADDR_PRIVATE);
	assert_int_equal(cf->api_endpoint, GOMAN_CF_ADDR_DNS);
	assert_string_equal(cf->api_dns, "k8s.example.com");
	assert_string_equal(cf->groups[0].ami, "ami-0abc");
	assert_string_equal(cf->groups[0].labels[1].value, "");
	assert_string_equal(cf->groups[0].taints[0].value, "");
	char *n = normalised(cf);
	assert_non_null(strstr(n, "\"taints\":[\"only:NoExecute\"]"));
	assert_non_null(strstr(n, "\"address\":\"private\""));
	free(n);
	goman_cluster_file_free(cf);
}

static const char *const good_files[] = {
	example_yaml,
	example_json,
	"name: a\ngroups: [{name: s, role: server, count: 1}]\n",
	"name: a\ninstall: {via: ssh, user: u, key: k, address: private}\nk3s: {channel: stable}\n"
	"network: {api_endpoint: a.b.c}\n"
	"groups: [{name: s, role: server, count: 1, ami: \"ssm:/x/y\", taints: [\"k:NoExecute\"], "
	"labels: {a/b: \"\"}}]\n",
	"name: a\ninstall: {via: local}\nnetwork: {ssh_cidr: 10.0.0.0/8}\n"
	"groups: [{name: s, role: server, count: 0}, {name: t, role: server, count: 1, volume_gb: "
	"16384}]\n",
};

static void normalised_form_of_every_good_file_reads_back_unchanged(void **st)
{
	for (size_t i = 0; i < sizeof(good_files) / sizeof(good_files[0]); i++) {
		struct goman_cluster_file *cf =
			parse_ok(good_files[i], i == 1 ? "g.json" : "g.yaml");
		char *a = normalised(cf);
		struct goman_cluster_file *again = parse_ok(a, "normalised.json");
		char *b = normalised(again);
		assert_string_equal(a, b);
		free(a);
		free(b);
		goman_cluster_file_free(cf);
		goman_cluster_file_free(again);
	}
}

/* each bad file: the text, the name it is read as, and what the message must hold */
struct bad {
	const char *what, *file, *text, *msg;
};

#define G1 "groups: [{name: s, role: server, count: 1}]\n"
static const struct bad bads[] = {
	{"unknown top key", "c.yaml", "name: a\nnmae: b\n" G1, "c.yaml:2: nmae: unknown key"},
	{"unknown group key", "c.yaml",
	 "name: a\ngroups:\n  - name: s\n    role: server\n    count: 1\n    typo: 1\n",
	 "c.yaml:6: groups[0].typo: unknown key"},
	{"unknown network key", "c.yaml", "name: a\nnetwork:\n  subnet: [subnet-1]\n" G1,
	 "c.yaml:3: network.subnet: unknown key"},
	{"alias", "c.yaml", "name: &n a\ngroups: [{name: *n, role: server, count: 1}]\n",
	 "c.yaml:1: anchors"},
	{"alias alone", "c.yaml", "name: a\nregion: *r\n" G1, "c.yaml:2:"},
	{"explicit tag", "c.yaml", "name: !!str a\n" G1, "c.yaml:1: explicit tags"},
	{"two documents", "c.yaml", "name: a\n" G1 "---\nname: b\n",
	 "c.yaml:3: only one YAML document"},
	{"NUL in a key", "c.yaml", "name: a\n\"groups\\0x\": 1\n" G1,
	 "c.yaml:2: NUL characters are not allowed"},
	{"NUL in a value", "c.yaml", "name: \"a\\0b\"\n" G1,
	 "c.yaml:1: NUL characters are not allowed"},
	{"duplicate key", "c.yaml", "name: a\nname: b\n" G1, "c.yaml:2: name: duplicate key"},
	{"yaml syntax", "c.yaml", "name: a\ngroups: [\n", "c.yaml:3: YAML syntax"},
	{"empty file", "c.yaml", "", "c.yaml: the file is empty"},
	{"not a mapping", "c.yaml", "- a\n", "c.yaml:1: the file must be a mapping"},
	{"missing name", "c.yaml", G1, "c.yaml:1: missing key 'name'"},
	{"missing groups", "c.yaml", "name: a\n", "missing key 'groups'"},
	{"bad cluster name", "c.yaml", "name: Web\n" G1, "c.yaml:1: name: 'Web' must match"},
	{"bad region", "c.yaml", "name: a\nregion: eu west\n" G1,
	 "c.yaml:2: region: 'eu west' is not a region"},
	{"region with a trailing dash", "c.yaml", "name: a\nregion: eu-\n" G1, "region: 'eu-'"},
	{"version and channel", "c.yaml",
	 "name: a\nk3s: {version: v1.31.4+k3s1, channel: stable}\n" G1,
	 "c.yaml:2: k3s: give exactly one of version or channel"},
	{"neither version nor channel", "c.yaml", "name: a\nk3s: {}\n" G1, "k3s: give exactly one"},
	{"bad version", "c.yaml", "name: a\nk3s: {version: 1.31}\n" G1,
	 "c.yaml:2: k3s.version: '1.31' is not a K3s version"},
	{"bad via", "c.yaml", "name: a\ninstall: {via: winrm}\n" G1,
	 "install.via: must be one of ssm ssh local, not 'winrm'"},
	{"ssh key without ssh", "c.yaml", "name: a\ninstall: {via: ssm, user: x}\n" G1,
	 "install.user: only with via: ssh"},
	{"bad ssh address", "c.yaml", "name: a\ninstall: {via: ssh, address: elastic}\n" G1,
	 "install.address: must be one of public private"},
	{"bad subnet", "c.yaml", "name: a\nnetwork: {subnets: [subnet-0a1, sg-1]}\n" G1,
	 "c.yaml:2: network.subnets[1]: 'sg-1' is not a subnet ID"},
	{"subnet twice", "c.yaml", "name: a\nnetwork: {subnets: [subnet-1, subnet-1]}\n" G1,
	 "network.subnets[1]: 'subnet-1' is listed twice"},
	{"subnets not a list", "c.yaml", "name: a\nnetwork: {subnets: subnet-1}\n" G1,
	 "network.subnets: must be a list"},
	{"bad cidr", "c.yaml", "name: a\nnetwork: {ssh_cidr: 10.0.0.0/33}\n" G1,
	 "network.ssh_cidr: '10.0.0.0/33' must be an IPv4 CIDR"},
	{"cidr with host bits", "c.yaml", "name: a\nnetwork: {api_cidr: 10.1.2.3/16}\n" G1,
	 "network.api_cidr: '10.1.2.3/16' has host bits set (the network is 10.1.0.0/16)"},
	{"misspelt endpoint", "c.yaml", "name: a\nnetwork: {api_endpoint: pubilc}\n" G1,
	 "network.api_endpoint: 'pubilc' must be public, private or a DNS name"},
	{"no groups", "c.yaml", "name: a\ngroups: []\n",
	 "c.yaml:2: groups: must hold 1 to 64 groups"},
	{"no server", "c.yaml",
	 "name: a\ngroups: [{name: w, role: agent, count: 2}, {name: s, role: server, count: 0}]\n",
	 "groups: the groups must have at least one server in total"},
	{"group without count", "c.yaml", "name: a\ngroups:\n  - {name: s, role: server}\n",
	 "c.yaml:3: groups[0]: missing key 'count'"},
	{"bad role", "c.yaml", "name: a\ngroups: [{name: s, role: master, count: 1}]\n",
	 "groups[0].role: must be one of server agent"},
	{"duplicate group", "c.yaml",
	 "name: a\ngroups:\n  - {name: s, role: server, count: 1}\n  - {name: s, role: agent, "
	 "count: 1}\n",
	 "c.yaml:4: groups[1].name: 's' is the name of groups[0] too"},
	{"negative count", "c.yaml", "name: a\ngroups: [{name: s, role: server, count: -1}]\n",
	 "groups[0].count: must be an integer from 0 to 10000, not '-1'"},
	{"count with a leading zero", "c.yaml",
	 "name: a\ngroups: [{name: s, role: server, count: 010}]\n",
	 "groups[0].count: must be an integer from 0 to 10000, not '010'"},
	{"huge count", "c.yaml", "name: a\ngroups: [{name: s, role: server, count: 10001}]\n",
	 "groups[0].count: must be an integer"},
	{"quoted count", "c.yaml", "name: a\ngroups: [{name: s, role: server, count: \"1\"}]\n",
	 "not the string \"1\""},
	{"yes is no boolean", "c.yaml",
	 "name: a\ngroups: [{name: s, role: server, count: 1, spot: yes}]\n",
	 "groups[0].spot: must be true or false, not 'yes'"},
	{"True is no boolean", "c.yaml",
	 "name: a\ngroups: [{name: s, role: server, count: 1, spot: True}]\n",
	 "must be true or false"},
	{"bad type", "c.yaml",
	 "name: a\ngroups: [{name: s, role: server, count: 1, type: [t3.large, t3large]}]\n",
	 "groups[0].type[1]: 't3large' is not an instance type"},
	{"too many types", "c.yaml",
	 "name: a\ngroups: [{name: s, role: server, count: 1, type: [a.b, c.d, e.f, g.h, i.j, k.l, "
	 "m.n, o.p, q.r]}]\n",
	 "groups[0].type: must hold 1 to 8 entries"},
	{"bad label key", "c.yaml",
	 "name: a\ngroups: [{name: s, role: server, count: 1, labels: {-x: a}}]\n",
	 "groups[0].labels.-x: key must be [prefix/]name"},
	{"reserved label prefix", "c.yaml",
	 "name: a\ngroups: [{name: s, role: server, count: 1, labels: "
	 "{node-role.kubernetes.io/worker: \"true\"}}]\n",
	 "groups[0].labels[\"node-role.kubernetes.io/worker\"]: key has a reserved prefix"},
	{"bad label value", "c.yaml",
	 "name: a\ngroups: [{name: s, role: server, count: 1, labels: {tier: web server}}]\n",
	 "groups[0].labels.tier: value 'web server' must be empty or 1-63"},
	{"bad taint effect", "c.yaml",
	 "name: a\ngroups: [{name: s, role: server, count: 1, taints: [\"a=b:NoSchedul\"]}]\n",
	 "groups[0].taints[0]: 'a=b:NoSchedul' Effect must be NoSchedule, PreferNoSchedule or "
	 "NoExecute"},
	{"taint without effect", "c.yaml",
	 "name: a\ngroups: [{name: s, role: server, count: 1, taints: [a=b]}]\n",
	 "groups[0].taints[0]: 'a=b' must be key=value:Effect"},
	{"aws tag", "c.yaml",
	 "name: a\ngroups: [{name: s, role: server, count: 1, tags: {\"AWS:x\": y}}]\n",
	 "groups[0].tags[\"AWS:x\"]: key must not start with aws:"},
	{"goman tag", "c.yaml",
	 "name: a\ngroups: [{name: s, role: server, count: 1, tags: {\"goman:group\": y}}]\n",
	 "key must not start with goman:"},
	{"Name tag", "c.yaml",
	 "name: a\ngroups: [{name: s, role: server, count: 1, tags: {Name: y}}]\n",
	 "key must not be Name"},
	{"long tag value", "c.yaml",
	 "name: a\ngroups: [{name: s, role: server, count: 1, tags: {k: "
	 "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	 "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	 "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	 "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa}}]\n",
	 "groups[0].tags.k: value"},
	{"small volume", "c.yaml",
	 "name: a\ngroups: [{name: s, role: server, count: 1, volume_gb: 7}]\n",
	 "groups[0].volume_gb: must be an integer from 8 to 16384, not '7'"},
	{"bad ami", "c.yaml", "name: a\ngroups: [{name: s, role: server, count: 1, ami: ubuntu}]\n",
	 "groups[0].ami: 'ubuntu' is not an AMI ID"},
	{"null string", "c.yaml", "name: a\nregion: ~\n" G1, "region: must be a string, not null"},
	{"json unknown key", "c.json",
	 "{\"name\":\"a\",\"groups\":[{\"name\":\"s\",\"role\":\"server\",\"count\":1,\"sopt\":"
	 "true}]}",
	 "c.json: groups[0].sopt: unknown key"},
	{"json count as string", "c.json",
	 "{\"name\":\"a\",\"groups\":[{\"name\":\"s\",\"role\":\"server\",\"count\":\"1\"}]}",
	 "c.json: groups[0].count: must be an integer from 0 to 10000, not the string \"1\""},
	{"json fractional count", "c.json",
	 "{\"name\":\"a\",\"groups\":[{\"name\":\"s\",\"role\":\"server\",\"count\":1.5}]}",
	 "groups[0].count: must be an integer"},
	{"json boolean as string", "c.json",
	 "{\"name\":\"a\",\"groups\":[{\"name\":\"s\",\"role\":\"server\",\"count\":1,\"spot\":"
	 "\"true\"}]}",
	 "groups[0].spot: must be true or false"},
	{"json number as tag", "c.json",
	 "{\"name\":\"a\",\"groups\":[{\"name\":\"s\",\"role\":\"server\",\"count\":1,\"tags\":{"
	 "\"x\":1}}]}",
	 "c.json: groups[0].tags.x: must be a string, not a number"},
	{"json duplicate key", "c.json", "{\"name\":\"a\",\"name\":\"b\",\"groups\":[]}",
	 "c.json: name: duplicate key"},
	{"json syntax", "c.json", "{\"name\":\"a\",\n\"groups\": [\n{\"name\" \"s\"}]}",
	 "c.json:3: JSON syntax error"},
	{"json trailing text", "c.json", "{\"name\":\"a\"}\n{}",
	 "c.json:2: JSON: text after the object"},
	{"json found by its first brace", "stdin-file", "  {\"name\":\"a\",\"x\":1}",
	 "stdin-file: x: unknown key"},
	{"deep nesting", "c.yaml",
	 "name: [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]\n",
	 "nested deeper than 32"},
};

static void bad_files_name_file_line_and_key(void **st)
{
	int failed = 0;
	for (size_t i = 0; i < sizeof(bads) / sizeof(bads[0]); i++) {
		const struct bad *b = &bads[i];
		struct goman_cluster_file *cf = (struct goman_cluster_file *)1;
		struct goman_err err = GOMAN_ERR_INIT;
		goman_err_clear(&err);
		int r = goman_cluster_file_parse(b->text, strlen(b->text), b->file, NULL, &cf,
						 &err);
		if (r != -1 || cf != NULL) {
			print_error("%s: accepted\n", b->what);
			failed++;
		} else if (err.rc != GOMAN_EINVAL || strcmp(err.code, "BadClusterFile") ||
			   err.cls != GOMAN_CLASS_BAD_INPUT) {
			print_error("%s: rc %d code %s\n", b->what, err.rc, err.code);
			failed++;
		} else if (!strstr(err.message, b->msg)) {
			print_error("%s: message \"%s\" lacks \"%s\"\n", b->what, err.message,
				    b->msg);
			failed++;
		}
	}
	assert_int_equal(failed, 0);
}

static void a_huge_mapping_is_refused_quickly(void **st)
{
	/* 20000 distinct keys: quadratic duplicate checks would take seconds */
	for (int json = 0; json < 2; json++) {
		size_t cap = 20000 * 16 + 64, l = 0;
		char *t = malloc(cap);
		l += (size_t)snprintf(t + l, cap - l,
				      json ? "{\"name\":\"a\",\"labels\":{" : "name: a\nlabels:\n");
		for (int i = 0; i < 20000; i++)
			if (json)
				l += (size_t)snprintf(t + l, cap - l, "%s\"k%d\":\"v\"",
						      i ? "," : "", i);
			else
				l += (size_t)snprintf(t + l, cap - l, "  k%d: v\n", i);
		if (json)
			l += (size_t)snprintf(t + l, cap - l, "}}");
		struct goman_cluster_file *cf = NULL;
		struct goman_err err = GOMAN_ERR_INIT;
		goman_err_clear(&err);
		int64_t t0 = goman_mono_ms();
		assert_int_equal(goman_cluster_file_parse(t, l, json ? "big.json" : "big.yaml",
							  NULL, &cf, &err),
				 -1);
		assert_true(goman_mono_ms() - t0 < 1000);
		assert_non_null(strstr(err.message, "a mapping of more than 256 keys"));
		free(t);
	}
}

static void size_and_group_caps_are_enforced(void **st)
{
	struct goman_cluster_file *cf = NULL;
	struct goman_err err = GOMAN_ERR_INIT;
	struct goman_cf_opts o = {.max_bytes = 16};
	goman_err_clear(&err);
	assert_int_equal(goman_cluster_file_parse(example_yaml, strlen(example_yaml), "c.yaml", &o,
						  &cf, &err),
			 -1);
	assert_non_null(strstr(err.message, "c.yaml: larger than 16 bytes"));
	o = (struct goman_cf_opts){.max_groups = 1};
	assert_int_equal(goman_cluster_file_parse(example_yaml, strlen(example_yaml), "c.yaml", &o,
						  &cf, &err),
			 -1);
	assert_non_null(strstr(err.message, "groups: must hold 1 to 1 groups, not 2"));
	assert_null(cf);
}

static void read_refuses_a_file_over_the_cap_and_names_a_missing_one(void **st)
{
	char path[] = "/tmp/test_cluster_file_XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, example_yaml, strlen(example_yaml)),
			 (ssize_t)strlen(example_yaml));
	close(fd);
	struct goman_cluster_file *cf = NULL;
	struct goman_err err = GOMAN_ERR_INIT;
	struct goman_cf_opts o = {.format = GOMAN_CF_YAML, .max_bytes = strlen(example_yaml)};
	goman_err_clear(&err);
	/* exactly the cap is fine, one byte less is not */
	assert_int_equal(goman_cluster_file_read(path, &o, &cf, &err), 0);
	goman_cluster_file_free(cf);
	o.max_bytes--;
	assert_int_equal(goman_cluster_file_read(path, &o, &cf, &err), -1);
	assert_non_null(strstr(err.message, "larger than"));
	unlink(path);
	assert_int_equal(goman_cluster_file_read(path, NULL, &cf, &err), -1);
	assert_int_equal(err.rc, GOMAN_ENOTFOUND);
	assert_non_null(strstr(err.message, path));
}

static void node_specs_are_servers_then_agents_indexed_per_role(void **st)
{
	struct goman_cluster_file *cf =
		parse_ok("name: web\nnetwork: {subnets: [subnet-a, subnet-b]}\n"
			 "groups:\n"
			 "  - {name: w, role: agent, count: 2, type: [m5.large, m5a.large], tags: "
			 "{team: a}}\n"
			 "  - {name: c, role: server, count: 2}\n"
			 "  - {name: w2, role: agent, count: 1, spot: true, volume_gb: 20}\n"
			 "  - {name: none, role: agent, count: 0}\n",
			 "s.yaml");
	cJSON *arr = cJSON_CreateArray();
	assert_int_equal(goman_cluster_file_node_specs(cf, arr), 0);
	assert_int_equal(cJSON_GetArraySize(arr), 5);
	static const char *const names[] = {"web-server-0", "web-server-1", "web-agent-0",
					    "web-agent-1", "web-agent-2"};
	static const char *const groups[] = {"c", "c", "w", "w", "w2"};
	for (int i = 0; i < 5; i++) {
		cJSON *n = cJSON_GetArrayItem(arr, i);
		assert_string_equal(cJSON_GetObjectItem(n, "name")->valuestring, names[i]);
		assert_string_equal(cJSON_GetObjectItem(n, "cluster")->valuestring, "web");
		assert_string_equal(cJSON_GetObjectItem(n, "group")->valuestring, groups[i]);
		cJSON *sl = cJSON_GetObjectItem(n, "subnets");
		assert_int_equal(cJSON_GetArraySize(sl), 2);
		assert_string_equal(cJSON_GetArrayItem(sl, 1)->valuestring, "subnet-b");
		assert_null(cJSON_GetObjectItem(n, "subnet_id"));
		assert_string_equal(cJSON_GetObjectItem(n, "via")->valuestring, "ssm");
		assert_int_equal(cJSON_GetObjectItem(n, "index")->valueint, i < 2 ? i : i - 2);
	}
	cJSON *a0 = cJSON_GetArrayItem(arr, 2);
	assert_string_equal(cJSON_GetObjectItem(a0, "instance_type")->valuestring, "m5.large");
	assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(a0, "types")), 2);
	assert_string_equal(
		cJSON_GetObjectItem(cJSON_GetObjectItem(a0, "tags"), "team")->valuestring, "a");
	cJSON *a2 = cJSON_GetArrayItem(arr, 4);
	assert_true(cJSON_IsTrue(cJSON_GetObjectItem(a2, "spot")));
	assert_int_equal(cJSON_GetObjectItem(a2, "volume_gb")->valueint, 20);
	assert_null(cJSON_GetObjectItem(a0, "volume_gb"));
	cJSON_Delete(arr);
	goman_cluster_file_free(cf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(example_yaml_reads_into_the_struct),
		cmocka_unit_test(yaml_and_json_give_the_same_normalised_file),
		cmocka_unit_test(defaults_fill_what_the_file_leaves_out),
		cmocka_unit_test(ssh_install_and_dns_endpoint_are_read),
		cmocka_unit_test(normalised_form_of_every_good_file_reads_back_unchanged),
		cmocka_unit_test(bad_files_name_file_line_and_key),
		cmocka_unit_test(a_huge_mapping_is_refused_quickly),
		cmocka_unit_test(size_and_group_caps_are_enforced),
		cmocka_unit_test(read_refuses_a_file_over_the_cap_and_names_a_missing_one),
		cmocka_unit_test(node_specs_are_servers_then_agents_indexed_per_role),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
