/*
 * test_plan.c - the planner as tables: node specs and instances in, changes out (launch,
 * drift, terminate, orphan, each named, in that order) with their tally; bad specs plan
 * nothing; and the export: what it rebuilds from tags, and that the specs of an exported
 * file plan to nothing against the instances it came from.
 * JSON in the tables is written with ' for " (no value here holds a quote).
 */
#include "unit.h"
#include <stdio.h>
#include <string.h>
#include <cjson/cJSON.h>
#include "goman/cluster_file.h"
#include "goman/ec2.h"
#include "goman/plan.h"

static cJSON *json(const char *q)
{
	char *s = strdup(q);
	for (char *p = s; *p; p++)
		if (*p == '\'')
			*p = '"';
	cJSON *j = cJSON_Parse(s);
	if (!j)
		fail_msg("bad JSON in the table: %s", q);
	free(s);
	return j;
}

/* one line per change: "KIND NAME-or-ID [drift fields] {launch placement} (reason)" */
static void describe(const cJSON *changes, char *out, size_t len)
{
	const cJSON *c;
	size_t o = 0;
	out[0] = '\0';
	cJSON_ArrayForEach (c, changes) {
		const char *kind = cJSON_GetStringValue(cJSON_GetObjectItem(c, "change"));
		const char *name = cJSON_GetStringValue(cJSON_GetObjectItem(c, "name"));
		const char *id = cJSON_GetStringValue(cJSON_GetObjectItem(c, "instance_id"));
		o += (size_t)snprintf(out + o, len - o, "%s%s %s", o ? "\n" : "", kind,
				      name ? name : id);
		const cJSON *d = cJSON_GetObjectItem(c, "drift"), *f;
		if (d) {
			o += (size_t)snprintf(out + o, len - o, " [");
			cJSON_ArrayForEach (f, d)
				o += (size_t)snprintf(out + o, len - o, "%s%s",
						      f == d->child ? "" : ",", f->string);
			o += (size_t)snprintf(out + o, len - o, "]");
		}
		const char *sn = cJSON_GetStringValue(cJSON_GetObjectItem(c, "subnet_id"));
		const char *az = cJSON_GetStringValue(cJSON_GetObjectItem(c, "az"));
		if (!strcmp(kind, "launch") && (sn || az))
			o += (size_t)snprintf(out + o, len - o, " {%s %s}", sn ? sn : "-",
					      az ? az : "-");
		const char *why = cJSON_GetStringValue(cJSON_GetObjectItem(c, "reason"));
		if (why)
			o += (size_t)snprintf(out + o, len - o, " (%s)", why);
		assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(c, "cluster")), "web");
	}
}

struct pcase {
	const char *what, *specs, *haves, *want, *counts; /* counts: "L T D O U" */
};

#define S0                                                                                         \
	"{'cluster':'web','role':'server','index':0,'group':'control','instance_type':'t3.medium'" \
	"}"
#define A(i, extra)                                   \
	"{'cluster':'web','role':'agent','index':" #i \
	",'group':'workers','instance_type':'t3.large','types':['t3.large','t3a.large']" extra "}"
#define HS0(extra)                                                                                 \
	"{'instance_id':'i-s0','state':'running','instance_type':'t3.medium','image_id':'ami-1','" \
	"subnet_id':'subnet-a','az':'us-east-1a','tags':{'goman:cluster':'web','goman:role':'"     \
	"server','goman:index':'0','goman:name':'web-server-0'" extra "}}"
#define HA(i, type, extra)                                                                        \
	"{'instance_id':'i-a" #i "','state':'running','instance_type':'" type                     \
	"','image_id':'ami-1','subnet_id':'subnet-b','az':'us-east-1b','tags':{'goman:cluster':'" \
	"web','goman:role':'agent','goman:index':'" #i "','goman:name':'web-agent-" #i "'" extra  \
	"}}"

static const struct pcase cases[] = {
	{"nothing exists: every spec is a launch, placed by its subnet (AZ from an "
	 "instance there)",
	 "[" S0 "," A(0, ",'subnet_id':'subnet-b'") "]", "[]",
	 "launch web-server-0\nlaunch web-agent-0 {subnet-b -}", "2 0 0 0 0"},
	{"an AZ is known when some instance lives in the spec's subnet",
	 "[" S0 "," A(0, "") "," A(1, ",'subnet_id':'subnet-b'") "]",
	 "[" HS0("") "," HA(0, "t3.large", "") "]", "launch web-agent-1 {subnet-b us-east-1b}",
	 "1 0 0 0 2"},
	{"everything as asked: no change", "[" S0 "," A(0, "") "]",
	 "[" HS0("") "," HA(0, "t3a.large", "") "]", "", "0 0 0 0 2"},
	{"specs in any order are met the same", "[" A(0, "") "," S0 "]",
	 "[" HA(0, "t3.large", "") "," HS0("") "]", "", "0 0 0 0 2"},
	{"an index beyond the count is a termination, named", "[" S0 "," A(0, "") "]",
	 "[" HS0("") "," HA(0, "t3.large", "") "," HA(1, "t3.large", "") "]",
	 "terminate web-agent-1 (no spec asks for agent 1)", "0 1 0 0 2"},
	{"a group the specs do not have is named as the reason", "[" S0 "]",
	 "[" HS0("") "," HA(0, "t3.large", ",'goman:group':'gone'") "]",
	 "terminate web-agent-0 (its group is not in the specs)", "0 1 0 0 1"},
	{"a type outside the group's types is a drift; one of its fallbacks is not",
	 "[" S0 "," A(0, "") "," A(1, "") "]",
	 "[" HS0("") "," HA(0, "m5.large", "") "," HA(1, "t3a.large", "") "]",
	 "drift web-agent-0 [instance_type]", "0 0 1 0 2"},
	{"an ami- the spec names is compared; an ssm: parameter is not resolved",
	 "[" A(0, ",'ami':'ami-2'") "," A(1, ",'ami':'ssm:/aws/x'") "]",
	 "[" HA(0, "t3.large", "") "," HA(1, "t3.large", "") "]", "drift web-agent-0 [ami]",
	 "0 0 1 0 1"},
	{"spot is compared when the instance tells it (field or goman:spot tag), "
	 "else not",
	 "[" A(0, ",'spot':true") "," A(1, ",'spot':true") "," A(2, ",'spot':true") "]",
	 "[" HA(0, "t3.large", ",'goman:spot':'false'") "," HA(
		 1, "t3.large", "") ","
				    "{'instance_id':'i-a2','state':'running','instance_type':'t3."
				    "large','spot':true,'tags':{'goman:role':'agent','goman:index'"
				    ":'2','goman:name':'web-agent-2'}}]",
	 "drift web-agent-0 [spot]", "0 0 1 0 2"},
	{"labels and taints are compared as sets, in either tag form",
	 "[" A(0,
	       ",'labels':{'a':'1','b':'2'},'taints':['x=y:NoSchedule','z:"
	       "NoExecute']") "," A(1,
				    ",'labels':{'a':'1','b':'2'}") "," A(2,
									 ",'labels':{'a':'1'}") "]",
	 "[" HA(0, "t3.large",
		",'goman:labels':'b=2,a=1','goman:taints':'z:NoExecute,x=y:"
		"NoSchedule'") "," HA(1, "t3.large",
				      ",'goman:labels':'{\\'b\\':\\'2\\',\\'a\\':"
				      "\\'1\\'}'") "," HA(2, "t3.large",
							  ",'goman:labels':'a=2','"
							  "goman:taints':'x=y:"
							  "NoSchedule'") "]",
	 "drift web-agent-2 [labels,taints]", "0 0 1 0 2"},
	{"labels a spec asks for and no tag holds are a drift; a tag that reads as "
	 "nothing too",
	 "[" A(0, ",'labels':{'a':'1'}") "," A(1, "") "]",
	 "[" HA(0, "t3.large", "") "," HA(1, "t3.large", ",'goman:labels':'garbage'") "]",
	 "drift web-agent-0 [labels]\ndrift web-agent-1 [labels]", "0 0 2 0 0"},
	{"a goman:group naming another group is a drift; no goman:group belongs to "
	 "the spec's group",
	 "[" A(0, "") "," A(1, "") "]",
	 "[" HA(0, "t3.large", ",'goman:group':'other'") "," HA(1, "t3.large",
								",'goman:group':'workers'") "]",
	 "drift web-agent-0 [group]", "0 0 1 0 1"},
	{"a role without an index is adopted for the lowest missing index (its "
	 "name drifts)",
	 "[" A(0, "") "," A(1, "") "," A(2, "") "]",
	 "[" HA(1, "t3.large", "") ",{'instance_id':'i-x','state':'pending','instance_type':'t3."
				   "large','tags':{'goman:role':'agent'}}]",
	 "drift web-agent-0 [name]\nlaunch web-agent-2", "1 0 1 0 1"},
	{"orphans: no role, an unknown role, a role with nothing to adopt, a "
	 "duplicate",
	 "[" S0 "]",
	 "[" HS0("") ",{'instance_id':'i-1','state':'running','tags':{}},"
		     "{'instance_id':'i-2','state':'running','tags':{'goman:role':'"
		     "boss','goman:index':'0'}},"
		     "{'instance_id':'i-3','state':'stopped','tags':{'goman:role':'"
		     "server'}},"
		     "{'instance_id':'i-4','state':'running','tags':{'goman:role':'"
		     "server','goman:index':'0','goman:name':'web-server-0'}}]",
	 "orphan i-1 (no goman:role tag)\norphan i-2 (goman:role is neither server "
	 "nor agent)\n"
	 "orphan i-3 (no goman:index tag, and no missing server to adopt it for)\n"
	 "orphan web-server-0 (another instance is server 0)",
	 "0 0 0 4 1"},
	{"going and gone instances are not counted", "[" S0 "]",
	 "[{'instance_id':'i-s9','state':'terminated','tags':{'goman:role':'server'"
	 ",'goman:index':'0','goman:name':'web-server-0'}},"
	 "{'instance_id':'i-s8','state':'shutting-down','tags':{'goman:role':'"
	 "server','goman:index':'1'}}]",
	 "launch web-server-0", "1 0 0 0 0"},
	{"no spec at all: every instance is a termination", "[]", "[" HS0("") "]",
	 "terminate web-server-0 (no spec asks for server 0)", "0 1 0 0 0"},
	{"a stopped or stopping instance is a drift of its state (provision starts "
	 "it)",
	 "[" S0 "," A(0, "") "]",
	 "[{'instance_id':'i-s0','state':'stopped','instance_type':'t3.medium','"
	 "tags':{'goman:role':'server','goman:index':'0','goman:name':'web-server-"
	 "0'}},"
	 "{'instance_id':'i-a0','state':'pending','instance_type':'t3.large','tags'"
	 ":{'goman:role':'agent','goman:index':'0','goman:name':'web-agent-0'}}]",
	 "drift web-server-0 [state]", "0 0 1 0 1"},
	{"a name tag that is not the node's is a drift", "[" S0 "]",
	 "[{'instance_id':'i-s0','state':'running','instance_type':'t3.medium','"
	 "tags':{'goman:role':'server','goman:index':'0','goman:name':'web-server-"
	 "7'}}]",
	 "drift web-server-0 [name]", "0 0 1 0 0"},
};

static void plan_tables(void **st)
{
	for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
		const struct pcase *c = &cases[i];
		cJSON *specs = json(c->specs), *haves = json(c->haves), *ch = cJSON_CreateArray();
		struct goman_plan_counts n = {-1, -1, -1, -1, -1};
		struct goman_err err = GOMAN_ERR_INIT;
		goman_err_clear(&err);
		if (goman_plan_compute(specs, haves, "web", ch, &n, &err) != 0)
			fail_msg("%s: %s", c->what, err.message);
		char got[2048], counts[64];
		describe(ch, got, sizeof(got));
		snprintf(counts, sizeof(counts), "%ld %ld %ld %ld %ld", n.launch, n.terminate,
			 n.drift, n.orphan, n.unchanged);
		if (strcmp(got, c->want) || strcmp(counts, c->counts))
			fail_msg("%s:\n got  %s [%s]\n want %s [%s]", c->what, got, counts, c->want,
				 c->counts);
		cJSON_Delete(specs);
		cJSON_Delete(haves);
		cJSON_Delete(ch);
	}
}

static void drift_shows_want_and_have(void **st)
{
	cJSON *specs = json("[" A(0, ",'labels':{'a':'1'},'taints':['k:NoSchedule']") "]");
	cJSON *haves = json("[" HA(0, "m5.large", ",'goman:labels':'a=2','goman:group':'old'") "]");
	cJSON *ch = cJSON_CreateArray();
	struct goman_err err = GOMAN_ERR_INIT;
	assert_int_equal(goman_plan_compute(specs, haves, NULL, ch, NULL, &err), 0);
	assert_int_equal(cJSON_GetArraySize(ch), 1);
	cJSON *c = cJSON_GetArrayItem(ch, 0);
	char *s = cJSON_PrintUnformatted(cJSON_GetObjectItem(c, "drift"));
	assert_string_equal(
		s,
		"{\"instance_type\":{\"want\":[\"t3.large\",\"t3a.large\"],\"have\":\"m5.large\"},"
		"\"labels\":{\"want\":{\"a\":\"1\"},\"have\":{\"a\":\"2\"}},"
		"\"taints\":{\"want\":[\"k:NoSchedule\"],\"have\":[]},"
		"\"group\":{\"want\":\"workers\",\"have\":\"old\"}}");
	free(s);
	assert_string_equal(cJSON_GetObjectItem(c, "instance_id")->valuestring, "i-a0");
	assert_string_equal(cJSON_GetObjectItem(c, "role")->valuestring, "agent");
	assert_int_equal(cJSON_GetObjectItem(c, "index")->valueint, 0);
	/* a labels tag that does not read is shown as it is */
	cJSON_Delete(haves);
	cJSON_Delete(ch);
	haves = json("[" HA(0, "t3.large",
			    ",'goman:labels':'nonsense','goman:taints':'k:NoSchedule'") "]");
	ch = cJSON_CreateArray();
	assert_int_equal(goman_plan_compute(specs, haves, NULL, ch, NULL, &err), 0);
	s = cJSON_PrintUnformatted(cJSON_GetObjectItem(cJSON_GetArrayItem(ch, 0), "drift"));
	assert_string_equal(s, "{\"labels\":{\"want\":{\"a\":\"1\"},\"have\":\"nonsense\"}}");
	free(s);
	cJSON_Delete(specs);
	cJSON_Delete(haves);
	cJSON_Delete(ch);
}

static void bad_specs_plan_nothing(void **st)
{
	static const char *const bad[][2] = {
		{"[{'cluster':'web','role':'boss','index':0}]", "\"role\""},
		{"[{'cluster':'web','role':'agent'}]", "needs \"index\""},
		{"[{'cluster':'web','role':'agent','index':1.5}]", "\"index\""},
		{"[{'cluster':'web','role':'agent','index':-1}]", "\"index\""},
		{"[{'cluster':'web','role':'agent','index':1,'name':'web-agent-2'}]",
		 "web-agent-1"},
		{"[{'cluster':'other','role':'agent','index':1}]", "is not web"},
		{"[{'cluster':'Bad','role':'agent','index':1}]", "\"cluster\""},
		{"[{'cluster':'web','role':'agent','index':1,'types':[1]}]", "\"types\""},
		{"[{'cluster':'web','role':'agent','index':1,'spot':'yes'}]", "\"spot\""},
		{"[{'cluster':'web','role':'agent','index':1,'labels':{'a':1}}]", "\"labels\""},
		{"[{'cluster':'web','role':'agent','index':1,'labels':{'a':'x,y'}}]", "','"},
		{"[{'cluster':'web','role':'agent','index':1,'taints':'k:NoSchedule'}]",
		 "\"taints\""},
		{"[{'cluster':'web','role':'agent','index':1,'group':''}]", "\"group\""},
		{"[{'cluster':'web','role':'agent','index':1},{'cluster':'web','role':'agent','"
		 "name':'web-agent-1'}]",
		 "two node specs ask for agent 1"},
		{"[7]", "JSON object"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		cJSON *specs = json(bad[i][0]), *haves = json("[" HS0("") "]"),
		      *ch = cJSON_CreateArray();
		struct goman_err err = GOMAN_ERR_INIT;
		goman_err_clear(&err);
		if (goman_plan_compute(specs, haves, "web", ch, NULL, &err) != -1)
			fail_msg("accepted: %s", bad[i][0]);
		assert_int_equal(err.rc, GOMAN_EINVAL);
		assert_string_equal(err.code, "BadInput");
		if (!strstr(err.message, bad[i][1]))
			fail_msg("%s: message '%s' lacks '%s'", bad[i][0], err.message, bad[i][1]);
		assert_int_equal(cJSON_GetArraySize(ch), 0);
		cJSON_Delete(specs);
		cJSON_Delete(haves);
		cJSON_Delete(ch);
	}
	/* the cluster comes from the specs when not given */
	cJSON *specs = json("[{'cluster':'web','role':'agent','name':'web-agent-3'}]"),
	      *ch = cJSON_CreateArray();
	cJSON *none = cJSON_CreateArray();
	struct goman_err err = GOMAN_ERR_INIT;
	assert_int_equal(goman_plan_compute(specs, none, NULL, ch, NULL, &err), 0);
	assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(ch, 0), "name")->valuestring,
			    "web-agent-3");
	cJSON_Delete(specs);
	cJSON_Delete(none);
	cJSON_Delete(ch);
}

static void instance_summaries_become_haves(void **st)
{
	struct goman_ec2_instance in;
	memset(&in, 0, sizeof(in));
	snprintf(in.instance_id, sizeof(in.instance_id), "i-1");
	snprintf(in.state, sizeof(in.state), "running");
	snprintf(in.type, sizeof(in.type), "t3.small");
	snprintf(in.image_id, sizeof(in.image_id), "ami-9");
	snprintf(in.subnet_id, sizeof(in.subnet_id), "subnet-a");
	snprintf(in.az, sizeof(in.az), "us-east-1a");
	goman_kvs_add(&in.tags, "goman:role", "agent");
	goman_kvs_add(&in.tags, "goman:index", "0");
	cJSON *h = goman_plan_instance_json(&in);
	assert_non_null(h);
	assert_string_equal(cJSON_GetObjectItem(h, "instance_type")->valuestring, "t3.small");
	assert_string_equal(cJSON_GetObjectItem(h, "image_id")->valuestring, "ami-9");
	assert_string_equal(cJSON_GetObjectItem(h, "subnet_id")->valuestring, "subnet-a");
	assert_string_equal(cJSON_GetObjectItem(h, "az")->valuestring, "us-east-1a");
	assert_string_equal(
		cJSON_GetObjectItem(cJSON_GetObjectItem(h, "tags"), "goman:role")->valuestring,
		"agent");
	cJSON_Delete(h);
	goman_ec2_instance_clear(&in);
}

#define HX(id, role, ix, type, subnet, extra)                                          \
	"{'instance_id':'" id "','state':'running','instance_type':'" type             \
	"','subnet_id':'" subnet "','tags':{'goman:cluster':'web','goman:role':'" role \
	"','goman:index':'" #ix "'" extra "}}"

static const char export_haves[] =
	"[" HX("i-1", "server", 0, "t3.medium", "subnet-a", ",'goman:group':'control','goman:via':'ssh'") "," HX(
		"i-2", "agent", 2, "t3a.large", "subnet-b",
		",'goman:group':'gpu','team':'b'") "," HX("i-3", "agent", 0, "t3.large", "subnet-a",
							  ",'goman:group':'workers','goman:"
							  "labels':"
							  "'tier=web','goman:taints':'d="
							  "web:"
							  "NoSchedule','team':'a','goman:"
							  "spot':'"
							  "true'") "," HX("i-4", "agent", 1,
									  "t3.large", "subnet-b",
									  ",'goman:group':'"
									  "workers'"
									  ",'goman:labels':"
									  "'tier="
									  "web','goman:"
									  "taints':'d="
									  "web:NoSchedule',"
									  "'team':'"
									  "a','Name':'web-"
									  "agent-1',"
									  "'goman:spot':'"
									  "true'") "," HX("i-"
											  "5",
											  "se"
											  "rv"
											  "e"
											  "r",
											  1,
											  "t3"
											  ".m"
											  "ed"
											  "iu"
											  "m",
											  "su"
											  "bn"
											  "et"
											  "-"
											  "c",
											  ",'"
											  "go"
											  "ma"
											  "n:"
											  "vi"
											  "a'"
											  ":'"
											  "ss"
											  "h"
											  "'") ",{'"
											       "ins"
											       "tan"
											       "ce_"
											       "id'"
											       ":'"
											       "i-"
											       "6',"
											       "'st"
											       "ate"
											       "':'"
											       "run"
											       "nin"
											       "g',"
											       "'ta"
											       "gs'"
											       ":{'"
											       "gom"
											       "an:"
											       "clu"
											       "ste"
											       "r':"
											       "'we"
											       "b'}"
											       "}]";

static void export_rebuilds_the_file_from_tags(void **st)
{
	cJSON *haves = json(export_haves);
	struct goman_cluster_file *cf = NULL;
	struct goman_err err = GOMAN_ERR_INIT;
	goman_err_clear(&err);
	if (goman_plan_export("web", "us-east-1", haves, &cf, &err) != 0)
		fail_msg("%s", err.message);
	cJSON *j = goman_cluster_file_to_json(cf);
	char *s = cJSON_PrintUnformatted(j);
	/* groups: control (server 0) before server (server 1); workers (agents 0-1) before gpu (2) */
	assert_string_equal(
		s, "{\"name\":\"web\",\"region\":\"us-east-1\",\"install\":{\"via\":\"ssh\","
		   "\"address\":\"public\"},"
		   "\"network\":{\"subnets\":[\"subnet-a\",\"subnet-c\",\"subnet-b\"],\"api_"
		   "endpoint\":\"public\"},"
		   "\"groups\":[{\"name\":\"control\",\"role\":\"server\",\"count\":1,\"type\":["
		   "\"t3.medium\"],\"spot\":false,\"labels\":{},\"taints\":[],\"tags\":{}},"
		   "{\"name\":\"server\",\"role\":\"server\",\"count\":1,\"type\":[\"t3.medium\"],"
		   "\"spot\":false,\"labels\":{},\"taints\":[],\"tags\":{}},"
		   "{\"name\":\"workers\",\"role\":\"agent\",\"count\":2,\"type\":[\"t3.large\"],"
		   "\"spot\":true,\"labels\":{\"tier\":\"web\"},\"taints\":[\"d=web:NoSchedule\"],"
		   "\"tags\":{\"team\":\"a\"}},"
		   "{\"name\":\"gpu\",\"role\":\"agent\",\"count\":1,\"type\":[\"t3a.large\"],"
		   "\"spot\":false,\"labels\":{},\"taints\":[],\"tags\":{\"team\":\"b\"}}]}");
	free(s);
	/* its specs plan to nothing but the orphan it could not hold */
	cJSON *specs = cJSON_CreateArray(), *ch = cJSON_CreateArray();
	assert_int_equal(goman_cluster_file_node_specs(cf, specs), 0);
	/* the instances carry no name tag: give them theirs, so only the orphan is left */
	const cJSON *h;
	cJSON_ArrayForEach (h, haves) {
		cJSON *t = cJSON_GetObjectItem(h, "tags");
		const char *r = cJSON_GetStringValue(cJSON_GetObjectItem(t, "goman:role"));
		if (!r)
			continue;
		char nm[64];
		snprintf(nm, sizeof(nm), "web-%s-%s", r,
			 cJSON_GetObjectItem(t, "goman:index")->valuestring);
		cJSON_AddStringToObject(t, "goman:name", nm);
	}
	struct goman_plan_counts n;
	assert_int_equal(goman_plan_compute(specs, haves, NULL, ch, &n, &err), 0);
	char got[512];
	describe(ch, got, sizeof(got));
	assert_string_equal(got, "orphan i-6 (no goman:role tag)");
	assert_int_equal(n.unchanged, 5);
	cJSON_Delete(specs);
	cJSON_Delete(ch);
	cJSON_Delete(j);
	goman_cluster_file_free(cf);
	cJSON_Delete(haves);
}

static void export_refusals_name_the_cause(void **st)
{
	struct {
		const char *haves, *msg;
		int rc;
	} bad[] = {
		{"[]", "no instance with a goman:role tag", GOMAN_ENOTFOUND},
		{"[{'instance_id':'i-6','state':'running','tags':{'goman:role':'boss'}}]",
		 "no instance", GOMAN_ENOTFOUND},
		{"[" HX("i-1", "server", 0, "t3.medium", "subnet-a", ",'goman:group':'g'") "," HX(
			 "i-2", "agent", 0, "t3.medium", "subnet-a", ",'goman:group':'g'") "]",
		 "group g holds servers and agents", GOMAN_EINVAL},
		{"[" HX("i-1", "server", 0, "t3.medium", "subnet-a",
			",'goman:labels':'bad key!=x'") "]",
		 "labels", GOMAN_EINVAL},
		{"[" HX("i-1", "server", 0, "t3.medium", "subnet-a",
			",'goman:taints':'k:Sometimes'") "]",
		 "taints[0]", GOMAN_EINVAL},
		/* the servers are gone: a file without a server is not a cluster file */
		{"[" HX("i-2", "agent", 0, "t3.medium", "subnet-a", "") "]", "at least one server",
		 GOMAN_EINVAL},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		cJSON *haves = json(bad[i].haves);
		struct goman_cluster_file *cf = (void *)1;
		struct goman_err err = GOMAN_ERR_INIT;
		goman_err_clear(&err);
		assert_int_equal(goman_plan_export("web", NULL, haves, &cf, &err), -1);
		assert_null(cf);
		assert_int_equal(err.rc, bad[i].rc);
		if (!strstr(err.message, bad[i].msg))
			fail_msg("case %zu: '%s' lacks '%s'", i, err.message, bad[i].msg);
		cJSON_Delete(haves);
	}
	/* a group tag that is not a group name falls back to the role */
	cJSON *haves = json("[" HX("i-1", "server", 0, "t3.medium", "subnet-a",
				   ",'goman:group':'Not A Name'") "]");
	struct goman_cluster_file *cf = NULL;
	struct goman_err err = GOMAN_ERR_INIT;
	if (goman_plan_export("web", NULL, haves, &cf, &err) != 0)
		fail_msg("%s", err.message);
	assert_string_equal(cf->groups[0].name, "server");
	assert_null(cf->region);
	goman_cluster_file_free(cf);
	cJSON_Delete(haves);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(plan_tables),
		cmocka_unit_test(drift_shows_want_and_have),
		cmocka_unit_test(bad_specs_plan_nothing),
		cmocka_unit_test(instance_summaries_become_haves),
		cmocka_unit_test(export_rebuilds_the_file_from_tags),
		cmocka_unit_test(export_refusals_name_the_cause),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
