/*
 * metrics.c - KPIs and health from node records and event lines (see goman/metrics.h).
 *
 * Owns: per-cluster node tables (one entry per node name, so re-runs do not double count),
 * per-(service, action) latency histograms, breaker states, counters. Everything is
 * computed at output time from these bounded tables; nothing grows with stream length.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cjson/cJSON.h>
#include "goman/clock.h"
#include "goman/metrics.h"
#include "buf_int.h"
#include "bytes_int.h"

#define HBUCKETS 800
#define HGROWTH 1.02
#define MAX_BREAKERS 64
/* Durations from records are clamped here (about 285 000 years): far above any real one,
 * and small enough that sums of them over every node stay exact int64 arithmetic. */
#define MAX_MS 9.0e15

enum { OUT_OK, OUT_THROTTLED, OUT_TRANSIENT, OUT_CLIENT, OUT_AUTH, OUT_CIRCUIT, OUT_N };
static const char *const outcome_names[OUT_N] = {"ok",     "throttled", "transient",
						 "client", "auth",      "circuit_open"};

struct series {
	char service[24];
	char action[64];
	uint64_t count;
	double sum_ms, max_ms;
	uint64_t outcomes[OUT_N];
	uint32_t bucket[HBUCKETS];
};

struct node {
	char *name;
	char role[8];
	int64_t launched, running, installed; /* epoch ms, -1 = unknown */
	int64_t prov_ms, inst_ms;             /* -1 = unknown */
	int ok;
};

struct cluster {
	char name[48];
	struct node *nodes;
	size_t n, cap;
	size_t *slots; /* open addressing over node indices + 1; 0 = empty */
	size_t nslots;
	int64_t ready_ts; /* -1 until a ready event */
	int nodes_ready;
};

struct breaker {
	char key[96]; /* service/region */
	char state[16];
	uint64_t opens;
};

struct goman_metrics {
	int concurrency;
	struct series *series;
	size_t nseries;
	struct cluster *clusters;
	size_t nclusters;
	struct breaker breakers[MAX_BREAKERS];
	size_t nbreakers;
	uint64_t api_calls, retries;
	uint64_t idem_hit, idem_miss, idem_mismatch, idem_in_progress;
	int64_t first_ts, last_ts;
};

void goman_targets_default(struct goman_targets *t)
{
	t->creation_ms = 15 * 60000;
	t->installation_ms = 8 * 60000;
	t->configuration_ms = 3 * 60000;
	t->success_pct = 99;
	t->efficiency_pct = 80;
	t->retry_pct = 5;
	t->breaker_open_alert = 1;
}

struct goman_metrics *goman_metrics_new(const struct goman_metrics_opts *opts)
{
	struct goman_metrics *m = calloc(1, sizeof(*m));
	if (!m)
		return NULL;
	m->series = calloc(GOMAN_METRICS_MAX_SERIES, sizeof(*m->series));
	m->clusters = calloc(GOMAN_METRICS_MAX_CLUSTERS, sizeof(*m->clusters));
	if (!m->series || !m->clusters) {
		goman_metrics_free(m);
		return NULL;
	}
	m->concurrency = opts && opts->concurrency > 0 ? opts->concurrency : 3;
	m->first_ts = m->last_ts = -1;
	return m;
}

void goman_metrics_free(struct goman_metrics *m)
{
	if (!m)
		return;
	for (size_t i = 0; m->clusters && i < m->nclusters; i++) {
		struct cluster *c = &m->clusters[i];
		for (size_t j = 0; j < c->n; j++)
			free(c->nodes[j].name);
		free(c->nodes);
		free(c->slots);
	}
	free(m->clusters);
	free(m->series);
	free(m);
}

/* ---- small JSON readers --------------------------------------------------------- */

static const char *jstr(const cJSON *o, const char *k)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
	return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* Only finite numbers: cJSON reads 1e999 as infinity, and nothing from a line may carry an
 * infinity or NaN into a cast or a sum. */
static double jnum(const cJSON *o, const char *k, double dflt)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
	return cJSON_IsNumber(v) && isfinite(v->valuedouble) ? v->valuedouble : dflt;
}

/* A duration field: -1 when absent or negative, else clamped to MAX_MS before the cast. */
static int64_t jms(const cJSON *o, const char *k)
{
	double v = jnum(o, k, -1);
	if (v < 0)
		return -1;
	return (int64_t)(v > MAX_MS ? MAX_MS : v);
}

/* a + b for non-negative a, b, stuck at INT64_MAX rather than wrapping */
static int64_t sat_add(int64_t a, int64_t b)
{
	return a > INT64_MAX - b ? INT64_MAX : a + b;
}

static int64_t jtime(const cJSON *o, const char *k)
{
	int64_t t;
	const char *s = jstr(o, k);
	return s && goman_parse_time(s, &t) == 0 ? t : -1;
}

/* ---- latency histogram ------------------------------------------------------------ */

static int bucket_of(double ms)
{
	if (!(ms >= 1))
		return 0;
	double b = 1 + log(ms) / log(HGROWTH);
	return b >= HBUCKETS - 1 ? HBUCKETS - 1 : (int)b;
}

static double quantile(const struct series *s, double q)
{
	if (!s->count)
		return 0;
	uint64_t rank = (uint64_t)ceil(q * (double)s->count), seen = 0;
	if (rank < 1)
		rank = 1;
	for (int b = 0; b < HBUCKETS; b++) {
		seen += s->bucket[b];
		if (seen >= rank) {
			/* geometric middle of [g^(b-1), g^b): within 1 % of any value in it */
			double v = b == 0 ? 0.5 : pow(HGROWTH, b - 0.5);
			return v > s->max_ms ? s->max_ms : v;
		}
	}
	return s->max_ms;
}

static struct series *series_for(struct goman_metrics *m, const char *service, const char *action)
{
	if (!service)
		service = "unknown";
	if (!action)
		action = "unknown";
	for (size_t i = 0; i < m->nseries; i++)
		if (!strcmp(m->series[i].service, service) && !strcmp(m->series[i].action, action))
			return &m->series[i];
	if (m->nseries == GOMAN_METRICS_MAX_SERIES) {
		/* pooled: the last slot becomes "other" */
		struct series *o = &m->series[GOMAN_METRICS_MAX_SERIES - 1];
		snprintf(o->service, sizeof(o->service), "other");
		snprintf(o->action, sizeof(o->action), "other");
		return o;
	}
	struct series *s = &m->series[m->nseries++];
	snprintf(s->service, sizeof(s->service), "%s", service);
	snprintf(s->action, sizeof(s->action), "%s", action);
	return s;
}

/* ---- clusters and nodes --------------------------------------------------------- */

static struct cluster *cluster_for(struct goman_metrics *m, const char *name)
{
	for (size_t i = 0; i < m->nclusters; i++)
		if (!strcmp(m->clusters[i].name, name))
			return &m->clusters[i];
	if (m->nclusters == GOMAN_METRICS_MAX_CLUSTERS)
		name = "other";
	for (size_t i = 0; i < m->nclusters; i++)
		if (!strcmp(m->clusters[i].name, name))
			return &m->clusters[i];
	if (m->nclusters == GOMAN_METRICS_MAX_CLUSTERS)
		return &m->clusters[GOMAN_METRICS_MAX_CLUSTERS - 1];
	struct cluster *c = &m->clusters[m->nclusters++];
	snprintf(c->name, sizeof(c->name), "%s", name);
	c->ready_ts = -1;
	return c;
}

static size_t hash_str(const char *s)
{
	return (size_t)gm_fnv1a(s, strlen(s));
}

static int rehash(struct cluster *c, size_t nslots)
{
	size_t *slots = calloc(nslots, sizeof(*slots));
	if (!slots)
		return -1;
	for (size_t i = 0; i < c->n; i++) {
		size_t h = hash_str(c->nodes[i].name) & (nslots - 1);
		while (slots[h])
			h = (h + 1) & (nslots - 1);
		slots[h] = i + 1;
	}
	free(c->slots);
	c->slots = slots;
	c->nslots = nslots;
	return 0;
}

static struct node *node_for(struct cluster *c, const char *name)
{
	if (c->nslots) {
		size_t h = hash_str(name) & (c->nslots - 1);
		while (c->slots[h]) {
			struct node *n = &c->nodes[c->slots[h] - 1];
			if (!strcmp(n->name, name))
				return n;
			h = (h + 1) & (c->nslots - 1);
		}
	}
	if (c->n == c->cap) {
		size_t cap = c->cap ? c->cap * 2 : 16;
		struct node *nodes = realloc(c->nodes, cap * sizeof(*nodes));
		if (!nodes)
			return NULL;
		c->nodes = nodes;
		c->cap = cap;
	}
	if ((c->n + 1) * 2 > c->nslots && rehash(c, c->nslots ? c->nslots * 2 : 32) < 0)
		return NULL;
	struct node *n = &c->nodes[c->n];
	memset(n, 0, sizeof(*n));
	n->name = strdup(name);
	if (!n->name)
		return NULL;
	size_t h = hash_str(name) & (c->nslots - 1);
	while (c->slots[h])
		h = (h + 1) & (c->nslots - 1);
	c->slots[h] = ++c->n;
	return n;
}

static void feed_node(struct goman_metrics *m, const cJSON *rec, const char *cluster,
		      const char *name)
{
	struct node *n = node_for(cluster_for(m, cluster), name);
	if (!n)
		return;
	/* the latest record of a node wins: a re-run's record replaces the earlier one */
	const char *role = jstr(rec, "role");
	snprintf(n->role, sizeof(n->role), "%s", role ? role : "");
	const cJSON *t = cJSON_GetObjectItemCaseSensitive(rec, "t");
	n->launched = jtime(t, "launched");
	n->running = jtime(t, "running");
	n->installed = jtime(t, "installed");
	const cJSON *prov = cJSON_GetObjectItemCaseSensitive(rec, "provision");
	const cJSON *inst = cJSON_GetObjectItemCaseSensitive(rec, "install");
	n->prov_ms = jms(prov, "ms");
	n->inst_ms = jms(inst, "ms");
	n->ok = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(rec, "ok"));
}

static int outcome_index(const char *o)
{
	for (int i = 0; o && i < OUT_N; i++)
		if (!strcmp(outcome_names[i], o))
			return i;
	return -1;
}

static void feed_event(struct goman_metrics *m, const cJSON *ev, const char *event)
{
	int64_t ts = jtime(ev, "ts");
	if (ts >= 0) {
		if (m->first_ts < 0 || ts < m->first_ts)
			m->first_ts = ts;
		if (ts > m->last_ts)
			m->last_ts = ts;
	}
	if (!strcmp(event, "api_call")) {
		struct series *s = series_for(m, jstr(ev, "service"), jstr(ev, "action"));
		double ms = jnum(ev, "ms", 0);
		ms = ms < 0 ? 0 : ms > MAX_MS ? MAX_MS : ms;
		int oi = outcome_index(jstr(ev, "outcome"));
		m->api_calls++;
		s->count++;
		s->sum_ms += ms;
		if (ms > s->max_ms)
			s->max_ms = ms;
		s->bucket[bucket_of(ms)]++;
		if (oi >= 0)
			s->outcomes[oi]++;
	} else if (!strcmp(event, "retry")) {
		m->retries++;
	} else if (!strcmp(event, "breaker")) {
		const char *svc = jstr(ev, "service"), *reg = jstr(ev, "region"),
			   *to = jstr(ev, "to");
		char key[96];
		snprintf(key, sizeof(key), "%s/%s", svc ? svc : "unknown", reg ? reg : "-");
		struct breaker *b = NULL;
		for (size_t i = 0; i < m->nbreakers; i++)
			if (!strcmp(m->breakers[i].key, key))
				b = &m->breakers[i];
		if (!b && m->nbreakers < MAX_BREAKERS) {
			b = &m->breakers[m->nbreakers++];
			snprintf(b->key, sizeof(b->key), "%s", key);
		}
		if (b && to) {
			snprintf(b->state, sizeof(b->state), "%s", to);
			if (!strcmp(to, "open"))
				b->opens++;
		}
	} else if (!strcmp(event, "idempotency")) {
		const char *r = jstr(ev, "result");
		if (!r)
			return;
		if (!strcmp(r, "hit"))
			m->idem_hit++;
		else if (!strcmp(r, "miss"))
			m->idem_miss++;
		else if (!strcmp(r, "mismatch"))
			m->idem_mismatch++;
		else if (!strcmp(r, "in_progress"))
			m->idem_in_progress++;
	} else if (!strcmp(event, "cluster")) {
		const char *name = jstr(ev, "cluster"), *phase = jstr(ev, "phase");
		if (name && phase && !strcmp(phase, "ready")) {
			struct cluster *c = cluster_for(m, name);
			c->ready_ts = ts;
			double nr = jnum(ev, "nodes_ready", 0);
			c->nodes_ready = nr < 0 ? 0 : nr > INT_MAX ? INT_MAX : (int)nr;
		}
	}
}

int goman_metrics_feed(struct goman_metrics *m, const cJSON *line)
{
	if (!cJSON_IsObject(line))
		return 0;
	const char *event = jstr(line, "event");
	if (event) {
		feed_event(m, line, event);
		return 1;
	}
	const char *cluster = jstr(line, "cluster"), *name = jstr(line, "name");
	if (cluster && name) {
		feed_node(m, line, cluster, name);
		return 1;
	}
	return 0;
}

/* ---- KPIs ------------------------------------------------------------------------- */

struct kpi {
	size_t nodes, ok;
	int64_t creation_ms, installation_ms, configuration_ms, critical_ms; /* -1 = unknown */
	double success_pct, parallel_pct, schedule_pct;                      /* < 0 = unknown */
};

static int64_t launch_of(const struct node *n)
{
	if (n->launched >= 0)
		return n->launched;
	if (n->running >= 0 && n->prov_ms >= 0)
		return n->running - n->prov_ms;
	return -1;
}

struct edge {
	int64_t t;
	int d; /* +1 a node starts working, -1 it stops */
};

static int cmp_edge(const void *a, const void *b)
{
	const struct edge *x = a, *y = b;
	return x->t < y->t ? -1 : x->t > y->t;
}

/* [a, b) clipped to [start, end] as two edges, when anything is left of it */
static void add_span(struct edge *e, size_t *ne, int64_t a, int64_t b, int64_t start, int64_t end)
{
	a = a < start ? start : a;
	b = b > end ? end : b;
	if (a < b) {
		e[(*ne)++] = (struct edge){a, 1};
		e[(*ne)++] = (struct edge){b, -1};
	}
}

/* Parallel efficiency: the slot-time that held work over the slot-time there was. At each
 * moment of [start, end] the nodes provisioning (launch to launch + provision.ms) or
 * installing (installed - install.ms to installed) are counted, at most slots of them, so
 * the result is never above 100 % (summing durations was: provisioning is not bounded by
 * the install concurrency). A node whose times are unknown adds nothing. -1 when unknown. */
static double parallel_pct(const struct cluster *c, int64_t start, int64_t end, size_t slots)
{
	struct edge *e = malloc((4 * c->n + 1) * sizeof(*e));
	if (!e || end <= start || !slots) {
		free(e);
		return -1;
	}
	size_t ne = 0;
	for (size_t i = 0; i < c->n; i++) {
		const struct node *n = &c->nodes[i];
		int64_t l = launch_of(n);
		if (l >= 0 && n->prov_ms > 0)
			add_span(e, &ne, l, sat_add(l, n->prov_ms), start, end);
		if (n->installed >= 0 && n->inst_ms > 0)
			add_span(e, &ne, n->installed - n->inst_ms, n->installed, start, end);
	}
	qsort(e, ne, sizeof(*e), cmp_edge);
	double held = 0;
	int64_t prev = start;
	size_t active = 0;
	for (size_t i = 0; i < ne; i++) {
		held += (double)(e[i].t - prev) * (double)(active < slots ? active : slots);
		prev = e[i].t;
		active += (size_t)e[i].d; /* wraps back on -1: every -1 follows its +1 */
	}
	free(e);
	return 100.0 * held / ((double)(end - start) * (double)slots);
}

static void cluster_kpi(const struct goman_metrics *m, const struct cluster *c, struct kpi *k)
{
	int64_t start = -1, last_running = -1, inst_first = -1, inst_last = -1;
	int64_t server_prov = -1, critical = -1;
	memset(k, 0, sizeof(*k));
	k->creation_ms = k->installation_ms = k->configuration_ms = k->critical_ms = -1;
	k->success_pct = k->parallel_pct = k->schedule_pct = -1;
	k->nodes = c->n;
	/* the first server's provisioning bounds when any agent can start installing */
	for (size_t i = 0; i < c->n; i++)
		if (!strcmp(c->nodes[i].role, "server") && c->nodes[i].prov_ms >= 0 &&
		    (server_prov < 0 || c->nodes[i].prov_ms < server_prov))
			server_prov = c->nodes[i].prov_ms;
	for (size_t i = 0; i < c->n; i++) {
		const struct node *n = &c->nodes[i];
		int64_t l = launch_of(n);
		k->ok += n->ok ? 1 : 0;
		if (l >= 0 && (start < 0 || l < start))
			start = l;
		if (n->running > last_running)
			last_running = n->running;
		if (n->installed >= 0) {
			int64_t s = n->inst_ms >= 0 ? n->installed - n->inst_ms : n->installed;
			if (inst_first < 0 || s < inst_first)
				inst_first = s;
			if (n->installed > inst_last)
				inst_last = n->installed;
		}
		int64_t ready_at = n->prov_ms >= 0 ? n->prov_ms : 0;
		if (!strcmp(n->role, "agent") && server_prov > ready_at)
			ready_at = server_prov; /* agents join no earlier than the server runs */
		int64_t path = sat_add(ready_at, n->inst_ms > 0 ? n->inst_ms : 0);
		if (path > critical)
			critical = path;
	}
	if (k->nodes)
		k->success_pct = 100.0 * (double)k->ok / (double)k->nodes;
	int64_t end = c->ready_ts >= 0 ? c->ready_ts : inst_last >= 0 ? inst_last : last_running;
	if (start >= 0 && end >= start)
		k->creation_ms = end - start;
	if (inst_first >= 0 && inst_last >= inst_first)
		k->installation_ms = inst_last - inst_first;
	if (c->ready_ts >= 0 && inst_last >= 0 && c->ready_ts >= inst_last)
		k->configuration_ms = c->ready_ts - inst_last;
	k->critical_ms = critical;
	if (k->creation_ms > 0 && k->nodes) {
		size_t slots =
			(size_t)m->concurrency < k->nodes ? (size_t)m->concurrency : k->nodes;
		k->parallel_pct = parallel_pct(c, start, end, slots);
		if (critical > 0)
			k->schedule_pct = 100.0 * (double)critical / (double)k->creation_ms;
	}
}

static double retry_pct(const struct goman_metrics *m)
{
	return m->api_calls ? 100.0 * (double)m->retries / (double)m->api_calls : -1;
}

static double hit_pct(const struct goman_metrics *m)
{
	uint64_t d = m->idem_hit + m->idem_miss;
	return d ? 100.0 * (double)m->idem_hit / (double)d : -1;
}

static double ops_per_min(const struct goman_metrics *m)
{
	if (m->last_ts <= m->first_ts)
		return -1;
	return (double)m->api_calls * 60000.0 / (double)(m->last_ts - m->first_ts);
}

static double round2(double v)
{
	return round(v * 100.0) / 100.0;
}

static void add_ms(cJSON *o, const char *k, int64_t v)
{
	if (v >= 0)
		cJSON_AddNumberToObject(o, k, (double)v);
}

static void add_pct(cJSON *o, const char *k, double v)
{
	if (v >= 0)
		cJSON_AddNumberToObject(o, k, round2(v));
}

cJSON *goman_metrics_json(const struct goman_metrics *m)
{
	cJSON *root = cJSON_CreateObject();
	cJSON *cls = cJSON_AddArrayToObject(root, "clusters");
	for (size_t i = 0; i < m->nclusters; i++) {
		struct kpi k;
		cluster_kpi(m, &m->clusters[i], &k);
		cJSON *c = cJSON_CreateObject();
		cJSON_AddStringToObject(c, "cluster", m->clusters[i].name);
		cJSON_AddNumberToObject(c, "nodes", (double)k.nodes);
		cJSON_AddNumberToObject(c, "nodes_ok", (double)k.ok);
		if (m->clusters[i].ready_ts >= 0)
			cJSON_AddNumberToObject(c, "nodes_ready", m->clusters[i].nodes_ready);
		add_pct(c, "success_pct", k.success_pct);
		add_ms(c, "creation_ms", k.creation_ms);
		add_ms(c, "installation_ms", k.installation_ms);
		add_ms(c, "configuration_ms", k.configuration_ms);
		add_ms(c, "critical_path_ms", k.critical_ms);
		add_pct(c, "parallel_efficiency_pct", k.parallel_pct);
		add_pct(c, "schedule_efficiency_pct", k.schedule_pct);
		cJSON_AddItemToArray(cls, c);
	}
	cJSON *h = cJSON_AddObjectToObject(root, "health");
	cJSON *br = cJSON_AddObjectToObject(h, "breakers");
	for (size_t i = 0; i < m->nbreakers; i++)
		cJSON_AddStringToObject(br, m->breakers[i].key, m->breakers[i].state);
	cJSON_AddNumberToObject(h, "api_calls", (double)m->api_calls);
	cJSON_AddNumberToObject(h, "retries", (double)m->retries);
	add_pct(h, "retry_pct", retry_pct(m));
	cJSON *id = cJSON_AddObjectToObject(h, "idempotency");
	cJSON_AddNumberToObject(id, "hit", (double)m->idem_hit);
	cJSON_AddNumberToObject(id, "miss", (double)m->idem_miss);
	cJSON_AddNumberToObject(id, "mismatch", (double)m->idem_mismatch);
	cJSON_AddNumberToObject(id, "in_progress", (double)m->idem_in_progress);
	add_pct(id, "hit_pct", hit_pct(m));
	cJSON *lat = cJSON_AddArrayToObject(h, "latency");
	for (size_t i = 0; i < m->nseries; i++) {
		const struct series *s = &m->series[i];
		cJSON *o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "service", s->service);
		cJSON_AddStringToObject(o, "action", s->action);
		cJSON_AddNumberToObject(o, "count", (double)s->count);
		cJSON_AddNumberToObject(o, "p50_ms", round2(quantile(s, 0.50)));
		cJSON_AddNumberToObject(o, "p95_ms", round2(quantile(s, 0.95)));
		cJSON_AddNumberToObject(o, "p99_ms", round2(quantile(s, 0.99)));
		cJSON_AddNumberToObject(o, "max_ms", round2(s->max_ms));
		cJSON *oc = cJSON_AddObjectToObject(o, "outcomes");
		for (int j = 0; j < OUT_N; j++)
			if (s->outcomes[j])
				cJSON_AddNumberToObject(oc, outcome_names[j],
							(double)s->outcomes[j]);
		cJSON_AddItemToArray(lat, o);
	}
	double tp = ops_per_min(m);
	if (tp >= 0)
		cJSON_AddNumberToObject(h, "throughput_ops_per_min", round2(tp));
	return root;
}

/* ---- text output -------------------------------------------------------------------- */

static const char *dur(int64_t ms, char *out, size_t len)
{
	if (ms < 0)
		snprintf(out, len, "-");
	else if (ms < 1000)
		snprintf(out, len, "%lldms", (long long)ms);
	else if (ms < 60000)
		snprintf(out, len, "%.1fs", (double)ms / 1000.0);
	else if (ms < 3600000)
		snprintf(out, len, "%lldm%.1fs", (long long)(ms / 60000),
			 (double)(ms % 60000) / 1000.0);
	else
		snprintf(out, len, "%lldh%lldm", (long long)(ms / 3600000),
			 (long long)(ms % 3600000 / 60000));
	return out;
}

static const char *pct(double v, char *out, size_t len)
{
	if (v < 0)
		snprintf(out, len, "-");
	else
		snprintf(out, len, "%.1f%%", v);
	return out;
}

char *goman_metrics_table(const struct goman_metrics *m)
{
	struct gm_buf b = {0};
	char d1[32], d2[32];
	for (size_t i = 0; i < m->nclusters; i++) {
		struct kpi k;
		cluster_kpi(m, &m->clusters[i], &k);
		gm_buf_printf(&b, "cluster %s: %zu nodes, %zu ok\n", m->clusters[i].name, k.nodes,
			      k.ok);
		gm_buf_printf(&b, "  %-22s %12s\n", "creation time",
			      dur(k.creation_ms, d1, sizeof(d1)));
		gm_buf_printf(&b, "  %-22s %12s\n", "installation time",
			      dur(k.installation_ms, d1, sizeof(d1)));
		gm_buf_printf(&b, "  %-22s %12s\n", "configuration time",
			      dur(k.configuration_ms, d1, sizeof(d1)));
		gm_buf_printf(&b, "  %-22s %12s\n", "success rate",
			      pct(k.success_pct, d1, sizeof(d1)));
		gm_buf_printf(&b, "  %-22s %12s\n", "parallel efficiency",
			      pct(k.parallel_pct, d1, sizeof(d1)));
		gm_buf_printf(&b, "  %-22s %12s  (critical path %s)\n", "schedule efficiency",
			      pct(k.schedule_pct, d1, sizeof(d1)),
			      dur(k.critical_ms, d2, sizeof(d2)));
	}
	gm_buf_printf(&b, "health\n");
	if (!m->nbreakers)
		gm_buf_printf(&b, "  %-22s %12s\n", "breakers", "no changes seen");
	for (size_t i = 0; i < m->nbreakers; i++)
		gm_buf_printf(&b, "  breaker %-14s %12s\n", m->breakers[i].key,
			      m->breakers[i].state);
	gm_buf_printf(&b, "  %-22s %12s  (%llu of %llu calls)\n", "retry rate",
		      pct(retry_pct(m), d1, sizeof(d1)), (unsigned long long)m->retries,
		      (unsigned long long)m->api_calls);
	gm_buf_printf(&b, "  %-22s %12s  (%llu hit, %llu miss)\n", "idempotency hit rate",
		      pct(hit_pct(m), d1, sizeof(d1)), (unsigned long long)m->idem_hit,
		      (unsigned long long)m->idem_miss);
	double tp = ops_per_min(m);
	if (tp >= 0)
		gm_buf_printf(&b, "  %-22s %12.1f\n", "throughput ops/min", tp);
	if (m->nseries) {
		gm_buf_printf(&b, "  %-30s %7s %9s %9s %9s %9s\n", "api latency (ms)", "calls",
			      "p50", "p95", "p99", "max");
		for (size_t i = 0; i < m->nseries; i++) {
			const struct series *s = &m->series[i];
			char name[96];
			snprintf(name, sizeof(name), "%s %s", s->service, s->action);
			gm_buf_printf(&b, "  %-30s %7llu %9.1f %9.1f %9.1f %9.1f\n", name,
				      (unsigned long long)s->count, quantile(s, 0.5),
				      quantile(s, 0.95), quantile(s, 0.99), s->max_ms);
		}
	}
	return gm_buf_take(&b);
}

/* Prometheus label values: backslash, double quote and newline escaped. */
static const char *lv(const char *s, char *out, size_t len)
{
	size_t o = 0;
	for (; *s && o + 3 < len; s++) {
		if (*s == '\\' || *s == '"')
			out[o++] = '\\', out[o++] = *s;
		else if (*s == '\n')
			out[o++] = '\\', out[o++] = 'n';
		else
			out[o++] = *s;
	}
	out[o] = '\0';
	return out;
}

static void prom_head(struct gm_buf *b, const char *name, const char *type, const char *help)
{
	gm_buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

char *goman_metrics_prom(const struct goman_metrics *m)
{
	struct gm_buf b = {0};
	char l1[128], l2[128];
	struct kpi *k = calloc(m->nclusters ? m->nclusters : 1, sizeof(*k));
	if (!k)
		return NULL;
	for (size_t i = 0; i < m->nclusters; i++)
		cluster_kpi(m, &m->clusters[i], &k[i]);
	static const struct {
		const char *name, *help;
		int field;
	} gauges[] = {
		{"goman_cluster_nodes", "Nodes seen in the cluster's records.", 0},
		{"goman_cluster_nodes_ok", "Nodes whose record says ok.", 1},
		{"goman_cluster_creation_seconds", "First launch to cluster ready.", 2},
		{"goman_cluster_installation_seconds", "First install start to last install end.",
		 3},
		{"goman_cluster_configuration_seconds", "Last install to cluster ready.", 4},
		{"goman_cluster_success_ratio", "Share of nodes whose record says ok.", 5},
		{"goman_cluster_parallel_efficiency_ratio",
		 "Slot time holding work / (wall x slots), at most 1.", 6},
		{"goman_cluster_schedule_efficiency_ratio", "Critical path / wall.", 7},
	};
	for (size_t g = 0; g < sizeof(gauges) / sizeof(gauges[0]); g++) {
		prom_head(&b, gauges[g].name, "gauge", gauges[g].help);
		for (size_t i = 0; i < m->nclusters; i++) {
			double v;
			switch (gauges[g].field) {
			case 0: v = (double)k[i].nodes; break;
			case 1: v = (double)k[i].ok; break;
			case 2:
				v = k[i].creation_ms < 0 ? NAN : (double)k[i].creation_ms / 1000;
				break;
			case 3:
				v = k[i].installation_ms < 0 ? NAN
							     : (double)k[i].installation_ms / 1000;
				break;
			case 4:
				v = k[i].configuration_ms < 0
					    ? NAN
					    : (double)k[i].configuration_ms / 1000;
				break;
			case 5: v = k[i].success_pct < 0 ? NAN : k[i].success_pct / 100; break;
			case 6: v = k[i].parallel_pct < 0 ? NAN : k[i].parallel_pct / 100; break;
			default: v = k[i].schedule_pct < 0 ? NAN : k[i].schedule_pct / 100; break;
			}
			if (!isnan(v))
				gm_buf_printf(&b, "%s{cluster=\"%s\"} %.6g\n", gauges[g].name,
					      lv(m->clusters[i].name, l1, sizeof(l1)), v);
		}
	}
	free(k);
	prom_head(&b, "goman_breaker_open", "gauge", "1 when the service's breaker is open.");
	for (size_t i = 0; i < m->nbreakers; i++)
		gm_buf_printf(&b, "goman_breaker_open{breaker=\"%s\",state=\"%s\"} %d\n",
			      lv(m->breakers[i].key, l1, sizeof(l1)),
			      lv(m->breakers[i].state, l2, sizeof(l2)),
			      !strcmp(m->breakers[i].state, "open"));
	prom_head(&b, "goman_api_calls_total", "counter", "API call attempts by outcome.");
	for (size_t i = 0; i < m->nseries; i++)
		for (int j = 0; j < OUT_N; j++)
			if (m->series[i].outcomes[j])
				gm_buf_printf(&b,
					      "goman_api_calls_total{service=\"%s\",action=\"%s\","
					      "outcome=\"%s\"} %llu\n",
					      lv(m->series[i].service, l1, sizeof(l1)),
					      lv(m->series[i].action, l2, sizeof(l2)),
					      outcome_names[j],
					      (unsigned long long)m->series[i].outcomes[j]);
	prom_head(&b, "goman_retries_total", "counter", "Retries of API calls.");
	gm_buf_printf(&b, "goman_retries_total %llu\n", (unsigned long long)m->retries);
	prom_head(&b, "goman_idempotency_lookups_total", "counter",
		  "Idempotency store lookups by result.");
	gm_buf_printf(&b, "goman_idempotency_lookups_total{result=\"hit\"} %llu\n",
		      (unsigned long long)m->idem_hit);
	gm_buf_printf(&b, "goman_idempotency_lookups_total{result=\"miss\"} %llu\n",
		      (unsigned long long)m->idem_miss);
	gm_buf_printf(&b, "goman_idempotency_lookups_total{result=\"mismatch\"} %llu\n",
		      (unsigned long long)m->idem_mismatch);
	gm_buf_printf(&b, "goman_idempotency_lookups_total{result=\"in_progress\"} %llu\n",
		      (unsigned long long)m->idem_in_progress);
	prom_head(&b, "goman_api_latency_seconds", "summary", "API call latency per attempt.");
	for (size_t i = 0; i < m->nseries; i++) {
		const struct series *s = &m->series[i];
		lv(s->service, l1, sizeof(l1));
		lv(s->action, l2, sizeof(l2));
		static const double qs[] = {0.5, 0.95, 0.99};
		for (int q = 0; q < 3; q++)
			gm_buf_printf(&b,
				      "goman_api_latency_seconds{service=\"%s\",action=\"%s\","
				      "quantile=\"%g\"} %.6g\n",
				      l1, l2, qs[q], quantile(s, qs[q]) / 1000);
		gm_buf_printf(&b,
			      "goman_api_latency_seconds_sum{service=\"%s\",action=\"%s\"} %.6g\n",
			      l1, l2, s->sum_ms / 1000);
		gm_buf_printf(
			&b, "goman_api_latency_seconds_count{service=\"%s\",action=\"%s\"} %llu\n",
			l1, l2, (unsigned long long)s->count);
	}
	return gm_buf_take(&b);
}

char *goman_metrics_check(const struct goman_metrics *m, const struct goman_targets *t,
			  int *breaches)
{
	struct gm_buf b = {0};
	char d1[32], d2[32];
	int n = 0;
	for (size_t i = 0; i < m->nclusters; i++) {
		struct kpi k;
		const char *cn = m->clusters[i].name;
		cluster_kpi(m, &m->clusters[i], &k);
		static const char *const names[] = {"creation time", "installation time",
						    "configuration time"};
		int64_t vals[] = {k.creation_ms, k.installation_ms, k.configuration_ms};
		int64_t lims[] = {t->creation_ms, t->installation_ms, t->configuration_ms};
		for (int j = 0; j < 3; j++)
			if (lims[j] >= 0 && vals[j] >= 0 && vals[j] >= lims[j]) {
				gm_buf_printf(&b, "%s %s >= target %s (cluster %s)\n", names[j],
					      dur(vals[j], d1, sizeof(d1)),
					      dur(lims[j], d2, sizeof(d2)), cn);
				n++;
			}
		if (t->success_pct >= 0 && k.success_pct >= 0 && k.success_pct <= t->success_pct) {
			gm_buf_printf(&b, "success rate %.1f%% <= target %.1f%% (cluster %s)\n",
				      k.success_pct, t->success_pct, cn);
			n++;
		}
		if (t->efficiency_pct >= 0 && k.parallel_pct >= 0 &&
		    k.parallel_pct <= t->efficiency_pct) {
			gm_buf_printf(&b,
				      "parallel efficiency %.1f%% <= target %.1f%% (cluster %s)\n",
				      k.parallel_pct, t->efficiency_pct, cn);
			n++;
		}
	}
	double rp = retry_pct(m);
	if (t->retry_pct >= 0 && rp >= 0 && rp >= t->retry_pct) {
		gm_buf_printf(&b, "retry rate %.1f%% >= target %.1f%%\n", rp, t->retry_pct);
		n++;
	}
	for (size_t i = 0; t->breaker_open_alert && i < m->nbreakers; i++)
		if (!strcmp(m->breakers[i].state, "open")) {
			gm_buf_printf(&b, "breaker %s is open\n", m->breakers[i].key);
			n++;
		}
	*breaches = n;
	if (!n) {
		gm_buf_free(&b);
		return NULL;
	}
	return gm_buf_take(&b);
}

int goman_write_file_atomic(const char *path, const char *text, struct goman_err *err)
{
	char tmp[4096];
	if (snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid()) >= (int)sizeof(tmp))
		return goman_err_set(err, GOMAN_EINVAL, GOMAN_CLASS_CLIENT, "PathTooLong",
				     "path too long");
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return goman_err_set(err, GOMAN_EIO, GOMAN_CLASS_CLIENT, "IOError",
				     "cannot create '%s': %s", tmp, strerror(errno));
	size_t len = strlen(text), off = 0;
	while (off < len) {
		ssize_t w = write(fd, text + off, len - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			break;
		off += (size_t)w;
	}
	int ok = off == len && fsync(fd) == 0;
	int saved = errno;
	if (close(fd) < 0)
		ok = 0;
	if (!ok || rename(tmp, path) < 0) {
		if (ok)
			saved = errno;
		unlink(tmp);
		return goman_err_set(err, GOMAN_EIO, GOMAN_CLASS_CLIENT, "IOError",
				     "cannot write '%s': %s", path, strerror(saved));
	}
	return 0;
}
