/*
 * test_idem.c - the idempotency store (goman/idem.h), file backend with an injected clock;
 * the DynamoDB backend against moto when GOMAN_IDEM_TEST_TABLE and AWS_ENDPOINT_URL are set
 * (tests/32-idem.bats sets them; without them those tests skip).
 */
#include "unit.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cjson/cJSON.h>
#include "goman/aws.h"
#include "goman/clock.h"
#include "goman/idem.h"
#include "goman/log.h"

static int64_t fake_now = 1790000000000LL;
static int64_t fake_wall(void *ctx) { (void)ctx; return fake_now; }
static int64_t fake_mono(void *ctx) { (void)ctx; return fake_now; }

struct fx {
	char dir[64];
	struct goman_idem *s;
};

static void rm_rf(const char *dir)
{
	DIR *d = opendir(dir);
	if (!d)
		return;
	struct dirent *de;
	char p[512];
	while ((de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		snprintf(p, sizeof(p), "%s/%s", dir, de->d_name);
		unlink(p);
	}
	closedir(d);
	rmdir(dir);
}

static struct goman_idem *open_store(const char *dir)
{
	struct goman_idem_opts o = {.dir = dir, .table = "", .ttl_ms = 3600000, .lease_ms = 60000,
				    .no_fsync = true};
	struct goman_err e;
	struct goman_idem *s = goman_idem_open(&o, &e);
	if (!s)
		fail_msg("open: %s", e.message);
	return s;
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	snprintf(f->dir, sizeof(f->dir), "/tmp/test_idem-XXXXXX");
	if (!mkdtemp(f->dir))
		return -1;
	fake_now = 1790000000000LL;
	goman_clock_override(fake_wall, fake_mono, NULL);
	goman_log_set_level(GOMAN_LOG_ERROR);
	f->s = open_store(f->dir);
	*state = f;
	return f->s ? 0 : -1;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	goman_idem_close(f->s);
	rm_rf(f->dir);
	goman_clock_override(NULL, NULL, NULL);
	free(f);
	return 0;
}

static cJSON *ident(const char *group)
{
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "cluster", "demo");
	cJSON_AddStringToObject(o, "group", group);
	return o;
}

static cJSON *params(int count)
{
	cJSON *o = ident("agents");
	cJSON_AddNumberToObject(o, "count", count);
	cJSON_AddStringToObject(o, "type", "t3.medium");
	return o;
}

static size_t count_records(const char *dir)
{
	DIR *d = opendir(dir);
	size_t n = 0;
	struct dirent *de;
	while (d && (de = readdir(d)))
		n += strstr(de->d_name, ".json") != NULL && de->d_name[0] != '.';
	if (d)
		closedir(d);
	return n;
}

static void canonical_json_sorts_keys_at_every_depth(void **state)
{
	(void)state;
	cJSON *a = cJSON_Parse("{\"b\":1,\"a\":{\"z\":[{\"y\":1,\"x\":2}],\"c\":\"s\"}}");
	cJSON *b = cJSON_Parse("{\"a\":{\"c\":\"s\",\"z\":[{\"x\":2,\"y\":1}]},\"b\":1}");
	char *ca = goman_idem_canonical(a), *cb = goman_idem_canonical(b);
	assert_string_equal(ca, "{\"a\":{\"c\":\"s\",\"z\":[{\"x\":2,\"y\":1}]},\"b\":1}");
	assert_string_equal(ca, cb);
	char ka[65], kb[65], kc[65];
	assert_int_equal(goman_idem_key("RunInstances", a, ka), 0);
	assert_int_equal(goman_idem_key("RunInstances", b, kb), 0);
	assert_int_equal(goman_idem_key("CreateTags", b, kc), 0);
	assert_string_equal(ka, kb);
	assert_string_not_equal(ka, kc);
	assert_int_equal(strlen(ka), 64);
	free(ca), free(cb);
	cJSON_Delete(a), cJSON_Delete(b);
}

static void begin_new_then_complete_then_hit_returns_result(void **state)
{
	struct fx *f = *state;
	cJSON *id = ident("agents"), *p = params(2);
	struct goman_idem_ticket t, t2;
	struct goman_err e;
	assert_int_equal(goman_idem_begin(f->s, "RunInstances", id, p, &t, &e), GOMAN_IDEM_NEW);
	assert_false(t.taken_over);
	assert_int_equal(strlen(t.client_token), 32);
	cJSON *res = cJSON_Parse("{\"instances\":[\"i-1\",\"i-2\"]}");
	assert_int_equal(goman_idem_complete(f->s, &t, res, &e), 0);

	assert_int_equal(goman_idem_begin(f->s, "RunInstances", id, p, &t2, &e), GOMAN_IDEM_COMPLETED);
	assert_non_null(t2.result);
	assert_true(cJSON_Compare(t2.result, res, 1));
	assert_string_equal(t2.client_token, t.client_token);
	struct goman_idem_stats st;
	goman_idem_get_stats(f->s, &st);
	assert_int_equal(st.miss, 1);
	assert_int_equal(st.hit, 1);
	/* completing twice is refused: the record is no longer ours in progress */
	assert_int_equal(goman_idem_complete(f->s, &t, res, &e), -1);
	assert_int_equal(e.rc, GOMAN_ECONFLICT);
	goman_idem_ticket_clear(&t);
	goman_idem_ticket_clear(&t2);
	cJSON_Delete(res), cJSON_Delete(id), cJSON_Delete(p);
}

static void same_key_other_parameters_is_a_mismatch_naming_the_operation(void **state)
{
	struct fx *f = *state;
	cJSON *id = ident("agents"), *p2 = params(2), *p3 = params(3);
	struct goman_idem_ticket t;
	struct goman_err e;
	assert_int_equal(goman_idem_begin(f->s, "RunInstances", id, p2, &t, &e), GOMAN_IDEM_NEW);
	assert_int_equal(goman_idem_complete(f->s, &t, NULL, &e), 0);
	goman_idem_ticket_clear(&t);
	assert_int_equal(goman_idem_begin(f->s, "RunInstances", id, p3, &t, &e), GOMAN_IDEM_MISMATCH);
	assert_int_equal(e.rc, GOMAN_ECONFLICT);
	assert_string_equal(e.code, "IdempotencyMismatch");
	assert_non_null(strstr(e.message, "RunInstances"));
	assert_null(t.result);
	/* a mismatch also against a live in-progress record */
	cJSON *other = ident("servers");
	goman_idem_ticket_clear(&t);
	assert_int_equal(goman_idem_begin(f->s, "RunInstances", other, p2, &t, &e), GOMAN_IDEM_NEW);
	goman_idem_ticket_clear(&t);
	assert_int_equal(goman_idem_begin(f->s, "RunInstances", other, p3, &t, &e), GOMAN_IDEM_MISMATCH);
	struct goman_idem_stats st;
	goman_idem_get_stats(f->s, &st);
	assert_int_equal(st.mismatch, 2);
	goman_idem_ticket_clear(&t);
	cJSON_Delete(id), cJSON_Delete(p2), cJSON_Delete(p3), cJSON_Delete(other);
}

static void live_owner_is_reported_in_progress_with_its_pid(void **state)
{
	struct fx *f = *state;
	cJSON *id = ident("agents");
	struct goman_idem_ticket t, t2;
	struct goman_err e;
	assert_int_equal(goman_idem_begin(f->s, "RunInstances", id, NULL, &t, &e), GOMAN_IDEM_NEW);
	assert_int_equal(goman_idem_begin(f->s, "RunInstances", id, NULL, &t2, &e),
			 GOMAN_IDEM_IN_PROGRESS);
	assert_int_equal(t2.owner_pid, (long)getpid());
	assert_string_equal(e.code, "IdempotencyInProgress");
	assert_string_equal(t2.client_token, t.client_token);
	goman_idem_ticket_clear(&t), goman_idem_ticket_clear(&t2);
	cJSON_Delete(id);
}

static void completed_record_expires_after_ttl_and_a_new_token_is_issued(void **state)
{
	struct fx *f = *state;
	cJSON *id = ident("agents");
	struct goman_idem_ticket t, t2;
	struct goman_err e;
	assert_int_equal(goman_idem_begin(f->s, "RunInstances", id, NULL, &t, &e), GOMAN_IDEM_NEW);
	assert_int_equal(goman_idem_complete(f->s, &t, NULL, &e), 0);
	fake_now += 3600000 - 1;
	assert_int_equal(goman_idem_begin(f->s, "RunInstances", id, NULL, &t2, &e),
			 GOMAN_IDEM_COMPLETED);
	goman_idem_ticket_clear(&t2);
	fake_now += 1;
	assert_int_equal(goman_idem_begin(f->s, "RunInstances", id, NULL, &t2, &e), GOMAN_IDEM_NEW);
	assert_false(t2.taken_over);
	assert_string_not_equal(t2.client_token, t.client_token);
	goman_idem_ticket_clear(&t), goman_idem_ticket_clear(&t2);
	cJSON_Delete(id);
}

static void expired_lease_is_taken_over_and_the_old_owner_cannot_complete(void **state)
{
	struct fx *f = *state;
	cJSON *id = ident("agents");
	struct goman_idem_ticket t, t2;
	struct goman_err e;
	assert_int_equal(goman_idem_begin(f->s, "RunInstances", id, NULL, &t, &e), GOMAN_IDEM_NEW);
	fake_now += 60000; /* the lease (60 s) ends; the owner (us) is still alive */
	assert_int_equal(goman_idem_begin(f->s, "RunInstances", id, NULL, &t2, &e), GOMAN_IDEM_NEW);
	assert_true(t2.taken_over);
	assert_string_equal(t2.client_token, t.client_token);
	assert_string_not_equal(t2.owner_id, t.owner_id);
	assert_int_equal(goman_idem_complete(f->s, &t, NULL, &e), -1);
	assert_string_equal(e.code, "IdempotencyLost");
	assert_int_equal(goman_idem_complete(f->s, &t2, NULL, &e), 0);
	goman_idem_ticket_clear(&t), goman_idem_ticket_clear(&t2);
	cJSON_Delete(id);
}

static void dead_owners_in_progress_is_taken_over_reusing_its_stored_token(void **state)
{
	struct fx *f = *state;
	cJSON *id = ident("agents"), *p = params(2);
	int fds[2];
	assert_int_equal(pipe(fds), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct goman_idem *s = open_store(f->dir);
		struct goman_idem_ticket t;
		int st = goman_idem_begin(s, "RunInstances", id, p, &t, NULL);
		if (st == GOMAN_IDEM_NEW && write(fds[1], t.client_token, 32) == 32)
			_exit(0); /* "crash" after begin: no complete */
		_exit(1);
	}
	close(fds[1]);
	char child_token[33] = {0};
	assert_int_equal(read(fds[0], child_token, 32), 32);
	close(fds[0]);
	int wst;
	/* the token on the pipe proves the child got NEW (its exit status does not: under
	 * valgrind --error-exitcode the "crash" without freeing changes it) */
	assert_int_equal(waitpid(pid, &wst, 0), pid);

	struct goman_idem_ticket t;
	struct goman_err e;
	/* lease not expired: only the dead pid makes it takeable */
	assert_int_equal(goman_idem_begin(f->s, "RunInstances", id, p, &t, &e), GOMAN_IDEM_NEW);
	assert_true(t.taken_over);
	assert_string_equal(t.client_token, child_token);
	assert_int_equal(t.owner_pid, (long)pid);
	struct goman_idem_stats st;
	goman_idem_get_stats(f->s, &st);
	assert_int_equal(st.taken_over, 1);
	goman_idem_ticket_clear(&t);
	cJSON_Delete(id), cJSON_Delete(p);
}

static void failed_record_is_retried_with_the_same_token(void **state)
{
	struct fx *f = *state;
	cJSON *id = ident("agents");
	struct goman_idem_ticket t, t2;
	struct goman_err e, why;
	assert_int_equal(goman_idem_begin(f->s, "RunInstances", id, NULL, &t, &e), GOMAN_IDEM_NEW);
	goman_err_set(&why, GOMAN_ETIMEOUT, GOMAN_CLASS_TIMEOUT, "RequestTimeout", "no answer");
	assert_int_equal(goman_idem_fail(f->s, &t, &why, &e), 0);
	assert_int_equal(goman_idem_begin(f->s, "RunInstances", id, NULL, &t2, &e), GOMAN_IDEM_NEW);
	assert_true(t2.taken_over);
	assert_string_equal(t2.client_token, t.client_token);
	goman_idem_ticket_clear(&t), goman_idem_ticket_clear(&t2);
	cJSON_Delete(id);
}

static void cleanup_removes_only_expired_records(void **state)
{
	struct fx *f = *state;
	cJSON *a = ident("a"), *b = ident("b");
	struct goman_idem_ticket t;
	struct goman_err e;
	assert_int_equal(goman_idem_begin(f->s, "RunInstances", a, NULL, &t, &e), GOMAN_IDEM_NEW);
	assert_int_equal(goman_idem_complete(f->s, &t, NULL, &e), 0);
	goman_idem_ticket_clear(&t);
	fake_now += 1800000;
	assert_int_equal(goman_idem_begin(f->s, "RunInstances", b, NULL, &t, &e), GOMAN_IDEM_NEW);
	assert_int_equal(goman_idem_complete(f->s, &t, NULL, &e), 0);
	goman_idem_ticket_clear(&t);
	assert_int_equal(count_records(f->dir), 2);
	size_t removed = 99;
	assert_int_equal(goman_idem_cleanup(f->s, &removed, &e), 0);
	assert_int_equal(removed, 0);
	fake_now += 1800000; /* a is 1 h old now: expired; b is half way */
	assert_int_equal(goman_idem_cleanup(f->s, &removed, &e), 0);
	assert_int_equal(removed, 1);
	assert_int_equal(count_records(f->dir), 1);
	assert_int_equal(goman_idem_begin(f->s, "RunInstances", b, NULL, &t, &e), GOMAN_IDEM_COMPLETED);
	goman_idem_ticket_clear(&t);
	/* cleanup on use: opening a store whose last cleanup is over an hour old runs one */
	fake_now += 3600000; /* b has expired too */
	char stamp[128];
	snprintf(stamp, sizeof(stamp), "%s/.cleaned", f->dir);
	struct timespec old[2] = {{.tv_sec = 1000}, {.tv_sec = 1000}};
	assert_int_equal(utimensat(AT_FDCWD, stamp, old, 0), 0);
	struct goman_idem *s2 = open_store(f->dir);
	struct goman_idem_stats st;
	goman_idem_get_stats(s2, &st);
	assert_int_equal(st.cleaned, 1);
	assert_int_equal(count_records(f->dir), 0);
	goman_idem_close(s2);
	cJSON_Delete(a), cJSON_Delete(b);
}

/* n processes start together (a pipe closed by the parent is the starting gun) and race
 * begin on one key; each reports the state it got and stays alive (so its record's owner
 * is alive) until all have answered. Returns how many got NEW. */
static int race(const char *dir, int n, int *in_progress)
{
	int gun[2], res[2], hold[2];
	pid_t pids[16];
	if (pipe(gun) || pipe(res) || pipe(hold))
		return -1;
	for (int i = 0; i < n; i++) {
		pids[i] = fork();
		if (pids[i] == 0) {
			close(gun[1]);
			close(hold[1]);
			char c;
			struct goman_idem *s = open_store(dir);
			cJSON *id = ident("agents");
			if (read(gun[0], &c, 1) < 0)
				_exit(1);
			struct goman_idem_ticket t;
			int st = goman_idem_begin(s, "RunInstances", id, NULL, &t, NULL);
			c = (char)(st < 0 ? 100 : st);
			if (write(res[1], &c, 1) != 1 || read(hold[0], &c, 1) < 0)
				_exit(1);
			_exit(0);
		}
	}
	close(gun[0]);
	close(gun[1]);
	close(res[1]);
	close(hold[0]);
	int news = 0;
	*in_progress = 0;
	for (int i = 0; i < n; i++) {
		char c = 100;
		if (read(res[0], &c, 1) != 1)
			break;
		news += c == GOMAN_IDEM_NEW;
		*in_progress += c == GOMAN_IDEM_IN_PROGRESS;
	}
	close(hold[1]);
	close(res[0]);
	for (int i = 0; i < n; i++)
		waitpid(pids[i], NULL, 0);
	return news;
}

static void eight_processes_racing_begin_on_one_key_get_exactly_one_new(void **state)
{
	struct fx *f = *state;
	int inprog;
	for (int round = 0; round < 5; round++) {
		char sub[128];
		snprintf(sub, sizeof(sub), "%s/r%d", f->dir, round);
		assert_int_equal(race(sub, 8, &inprog), 1);
		/* the winner has exited without completing: it is dead, so each of 8 new racers
		 * may try to take over, and still exactly one wins */
		assert_int_equal(race(sub, 8, &inprog), 1);
		assert_int_equal(inprog, 7);
		rm_rf(sub);
	}
}

static void begin_emits_idempotency_events(void **state)
{
	struct fx *f = *state;
	char path[128];
	snprintf(path, sizeof(path), "%s/events", f->dir);
	setenv("GOMAN_EVENTS", path, 1);
	goman_events_init("test_idem");
	cJSON *id = ident("agents");
	struct goman_idem_ticket t;
	assert_int_equal(goman_idem_begin(f->s, "RunInstances", id, NULL, &t, NULL), GOMAN_IDEM_NEW);
	goman_idem_complete(f->s, &t, NULL, NULL);
	goman_idem_ticket_clear(&t);
	assert_int_equal(goman_idem_begin(f->s, "RunInstances", id, NULL, &t, NULL), GOMAN_IDEM_COMPLETED);
	goman_idem_ticket_clear(&t);
	unsetenv("GOMAN_EVENTS");
	goman_events_init("test_idem");
	FILE *fp = fopen(path, "r");
	assert_non_null(fp);
	char line[1024];
	assert_non_null(fgets(line, sizeof(line), fp));
	assert_non_null(strstr(line, "\"event\":\"idempotency\""));
	assert_non_null(strstr(line, "\"result\":\"miss\""));
	assert_non_null(strstr(line, "\"operation\":\"RunInstances\""));
	assert_non_null(fgets(line, sizeof(line), fp));
	assert_non_null(strstr(line, "\"result\":\"hit\""));
	fclose(fp);
	unlink(path);
	cJSON_Delete(id);
}

static void store_dir_follows_goman_idempotency_dir_then_xdg_state_home(void **state)
{
	struct fx *f = *state;
	char xdg[128], over[128], want[160];
	snprintf(xdg, sizeof(xdg), "%s/state", f->dir);
	snprintf(over, sizeof(over), "%s/override", f->dir);
	setenv("XDG_STATE_HOME", xdg, 1);
	unsetenv("GOMAN_IDEMPOTENCY_DIR");
	unsetenv("GOMAN_IDEMPOTENCY_TABLE");
	struct goman_err e;
	struct goman_idem *s = goman_idem_open(NULL, &e);
	assert_non_null(s);
	snprintf(want, sizeof(want), "%s/goman/idempotency", xdg);
	assert_string_equal(goman_idem_dir(s), want);
	assert_string_equal(goman_idem_backend(s), "file");
	struct stat st;
	assert_int_equal(stat(want, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0700);
	goman_idem_close(s);
	setenv("GOMAN_IDEMPOTENCY_DIR", over, 1);
	s = goman_idem_open(NULL, &e);
	assert_non_null(s);
	assert_string_equal(goman_idem_dir(s), over);
	goman_idem_close(s);
	unsetenv("GOMAN_IDEMPOTENCY_DIR");
	/* rm_rf is one level deep */
	rm_rf(over);
	rm_rf(want);
	snprintf(want, sizeof(want), "%s/goman", xdg);
	rmdir(want);
	rmdir(xdg);
}

/* ---- DynamoDB backend, against moto (tests/32-idem.bats sets the env) ----------------- */

static const char *dyn_table(void)
{
	const char *t = getenv("GOMAN_IDEM_TEST_TABLE");
	return t && *t && getenv("AWS_ENDPOINT_URL") ? t : NULL;
}

static struct goman_idem *open_dyn(void)
{
	struct goman_idem_opts o = {.table = dyn_table(), .ttl_ms = 3600000, .lease_ms = 60000};
	struct goman_err e;
	struct goman_idem *s = goman_idem_open(&o, &e);
	if (!s)
		fail_msg("open dynamodb: %s %s", e.code, e.message);
	return s;
}

static int dyn_setup(void **state)
{
	if (!dyn_table()) {
		*state = NULL;
		return 0;
	}
	struct fx *f = calloc(1, sizeof(*f));
	fake_now = goman_now_ms();
	/* wall time only: the AWS call path's retry waits on the monotonic clock */
	goman_clock_override(fake_wall, NULL, NULL);
	goman_log_set_level(GOMAN_LOG_ERROR);
	f->s = open_dyn();
	*state = f;
	return 0;
}

static int dyn_teardown(void **state)
{
	struct fx *f = *state;
	goman_clock_override(NULL, NULL, NULL);
	if (f) {
		goman_idem_close(f->s);
		free(f);
	}
	return 0;
}

/* an identity no other run of this table used */
static cJSON *fresh_ident(void)
{
	char c[40];
	static int n;
	snprintf(c, sizeof(c), "c%ld-%lld-%d", (long)getpid(), (long long)goman_now_ms(), n++);
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "cluster", c);
	cJSON_AddStringToObject(o, "group", "agents");
	return o;
}

#define DYN_OR_SKIP(f)                                                                             \
	struct fx *f = *state;                                                                     \
	if (!f)                                                                                    \
	skip()

static void dynamo_table_create_is_idempotent(void **state)
{
	DYN_OR_SKIP(f);
	struct goman_err e;
	struct goman_aws *aws = goman_aws_new(NULL, &e);
	assert_non_null(aws);
	assert_int_equal(goman_idem_dynamo_create_table(aws, dyn_table(), &e), 0);
	assert_int_equal(goman_idem_dynamo_create_table(aws, dyn_table(), &e), 0);
	goman_aws_free(aws);
	assert_string_equal(goman_idem_backend(f->s), "dynamodb");
}

static void dynamo_new_complete_hit_and_mismatch(void **state)
{
	DYN_OR_SKIP(f);
	cJSON *id = fresh_ident(), *p2 = params(2), *p3 = params(3);
	cJSON *res = cJSON_Parse("{\"instances\":[\"i-1\"]}");
	struct goman_idem_ticket t, t2;
	struct goman_err e;
	assert_int_equal(goman_idem_begin(f->s, "RunInstances", id, p2, &t, &e), GOMAN_IDEM_NEW);
	assert_false(t.taken_over);
	assert_int_equal(goman_idem_complete(f->s, &t, res, &e), 0);
	assert_int_equal(goman_idem_begin(f->s, "RunInstances", id, p2, &t2, &e), GOMAN_IDEM_COMPLETED);
	assert_true(cJSON_Compare(t2.result, res, 1));
	assert_string_equal(t2.client_token, t.client_token);
	goman_idem_ticket_clear(&t2);
	assert_int_equal(goman_idem_begin(f->s, "RunInstances", id, p3, &t2, &e), GOMAN_IDEM_MISMATCH);
	assert_string_equal(e.code, "IdempotencyMismatch");
	goman_idem_ticket_clear(&t), goman_idem_ticket_clear(&t2);
	cJSON_Delete(id), cJSON_Delete(p2), cJSON_Delete(p3), cJSON_Delete(res);
}

static void dynamo_conditional_put_refuses_a_live_holder_and_admits_an_expired_lease(void **state)
{
	DYN_OR_SKIP(f);
	cJSON *id = fresh_ident();
	struct goman_idem_ticket t, t2, t3;
	struct goman_err e;
	assert_int_equal(goman_idem_begin(f->s, "RunInstances", id, NULL, &t, &e), GOMAN_IDEM_NEW);
	/* live holder: the condition refuses the second put */
	assert_int_equal(goman_idem_begin(f->s, "RunInstances", id, NULL, &t2, &e),
			 GOMAN_IDEM_IN_PROGRESS);
	assert_string_equal(t2.client_token, t.client_token);
	goman_idem_ticket_clear(&t2);
	/* the lease ends: the condition admits the put, and the stored token is kept */
	fake_now += 60001;
	assert_int_equal(goman_idem_begin(f->s, "RunInstances", id, NULL, &t2, &e), GOMAN_IDEM_NEW);
	assert_true(t2.taken_over);
	assert_string_equal(t2.client_token, t.client_token);
	/* the old owner's conditional update is refused; the new owner's goes through */
	assert_int_equal(goman_idem_complete(f->s, &t, NULL, &e), -1);
	assert_string_equal(e.code, "IdempotencyLost");
	assert_int_equal(goman_idem_complete(f->s, &t2, NULL, &e), 0);
	assert_int_equal(goman_idem_begin(f->s, "RunInstances", id, NULL, &t3, &e), GOMAN_IDEM_COMPLETED);
	goman_idem_ticket_clear(&t3);
	/* the record expires (checked in the condition, not by TTL deletion): a fresh token */
	fake_now += 3600001;
	assert_int_equal(goman_idem_begin(f->s, "RunInstances", id, NULL, &t3, &e), GOMAN_IDEM_NEW);
	assert_false(t3.taken_over);
	assert_string_not_equal(t3.client_token, t.client_token);
	goman_idem_ticket_clear(&t), goman_idem_ticket_clear(&t2), goman_idem_ticket_clear(&t3);
	cJSON_Delete(id);
}

static void dynamo_dead_owner_and_failed_records_are_taken_over_with_their_token(void **state)
{
	DYN_OR_SKIP(f);
	cJSON *id = fresh_ident();
	int fds[2];
	assert_int_equal(pipe(fds), 0);
	pid_t pid = fork();
	if (pid == 0) {
		struct goman_idem *s = open_dyn();
		struct goman_idem_ticket t;
		if (goman_idem_begin(s, "RunInstances", id, NULL, &t, NULL) == GOMAN_IDEM_NEW &&
		    write(fds[1], t.client_token, 32) == 32)
			_exit(0);
		_exit(1);
	}
	close(fds[1]);
	char child_token[33] = {0};
	assert_int_equal(read(fds[0], child_token, 32), 32);
	close(fds[0]);
	int wst;
	assert_int_equal(waitpid(pid, &wst, 0), pid);
	struct goman_idem_ticket t, t2;
	struct goman_err e, why;
	assert_int_equal(goman_idem_begin(f->s, "RunInstances", id, NULL, &t, &e), GOMAN_IDEM_NEW);
	assert_true(t.taken_over);
	assert_string_equal(t.client_token, child_token);
	goman_err_set(&why, GOMAN_ETIMEOUT, GOMAN_CLASS_TIMEOUT, "RequestTimeout", "no answer");
	assert_int_equal(goman_idem_fail(f->s, &t, &why, &e), 0);
	assert_int_equal(goman_idem_begin(f->s, "RunInstances", id, NULL, &t2, &e), GOMAN_IDEM_NEW);
	assert_true(t2.taken_over);
	assert_string_equal(t2.client_token, child_token);
	goman_idem_ticket_clear(&t), goman_idem_ticket_clear(&t2);
	cJSON_Delete(id);
}

/* moto takes no lock around conditional puts, so the race itself is proven on the file
 * backend; here 8 processes begin one after another (each staying alive) on one key */
static void dynamo_eight_processes_in_turn_get_exactly_one_new(void **state)
{
	DYN_OR_SKIP(f);
	cJSON *id = fresh_ident();
	int res[2], hold[2];
	pid_t pids[8];
	assert_int_equal(pipe(res), 0);
	assert_int_equal(pipe(hold), 0);
	int news = 0, inprog = 0;
	for (int i = 0; i < 8; i++) {
		pids[i] = fork();
		if (pids[i] == 0) {
			close(hold[1]);
			struct goman_idem *s = open_dyn();
			struct goman_idem_ticket t;
			int st = goman_idem_begin(s, "RunInstances", id, NULL, &t, NULL);
			char c = (char)(st < 0 ? 100 : st);
			if (write(res[1], &c, 1) != 1 || read(hold[0], &c, 1) < 0)
				_exit(1);
			_exit(0);
		}
		char c = 100;
		assert_int_equal(read(res[0], &c, 1), 1);
		news += c == GOMAN_IDEM_NEW;
		inprog += c == GOMAN_IDEM_IN_PROGRESS;
	}
	close(hold[1]);
	for (int i = 0; i < 8; i++)
		waitpid(pids[i], NULL, 0);
	close(res[0]), close(res[1]), close(hold[0]);
	assert_int_equal(news, 1);
	assert_int_equal(inprog, 7);
	cJSON_Delete(id);
}

static void dynamo_cleanup_deletes_expired_items(void **state)
{
	DYN_OR_SKIP(f);
	cJSON *id = fresh_ident();
	struct goman_idem_ticket t;
	struct goman_err e;
	assert_int_equal(goman_idem_begin(f->s, "RunInstances", id, NULL, &t, &e), GOMAN_IDEM_NEW);
	assert_int_equal(goman_idem_complete(f->s, &t, NULL, &e), 0);
	goman_idem_ticket_clear(&t);
	size_t removed = 0;
	fake_now += 24LL * 3600000; /* everything this run wrote has expired */
	assert_int_equal(goman_idem_cleanup(f->s, &removed, &e), 0);
	assert_true(removed >= 1);
	assert_int_equal(goman_idem_cleanup(f->s, &removed, &e), 0);
	assert_int_equal(removed, 0);
	cJSON_Delete(id);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(canonical_json_sorts_keys_at_every_depth),
		cmocka_unit_test_setup_teardown(begin_new_then_complete_then_hit_returns_result, setup, teardown),
		cmocka_unit_test_setup_teardown(same_key_other_parameters_is_a_mismatch_naming_the_operation, setup, teardown),
		cmocka_unit_test_setup_teardown(live_owner_is_reported_in_progress_with_its_pid, setup, teardown),
		cmocka_unit_test_setup_teardown(completed_record_expires_after_ttl_and_a_new_token_is_issued, setup, teardown),
		cmocka_unit_test_setup_teardown(expired_lease_is_taken_over_and_the_old_owner_cannot_complete, setup, teardown),
		cmocka_unit_test_setup_teardown(dead_owners_in_progress_is_taken_over_reusing_its_stored_token, setup, teardown),
		cmocka_unit_test_setup_teardown(failed_record_is_retried_with_the_same_token, setup, teardown),
		cmocka_unit_test_setup_teardown(cleanup_removes_only_expired_records, setup, teardown),
		cmocka_unit_test_setup_teardown(eight_processes_racing_begin_on_one_key_get_exactly_one_new, setup, teardown),
		cmocka_unit_test_setup_teardown(begin_emits_idempotency_events, setup, teardown),
		cmocka_unit_test_setup_teardown(store_dir_follows_goman_idempotency_dir_then_xdg_state_home, setup, teardown),
		cmocka_unit_test_setup_teardown(dynamo_table_create_is_idempotent, dyn_setup, dyn_teardown),
		cmocka_unit_test_setup_teardown(dynamo_new_complete_hit_and_mismatch, dyn_setup, dyn_teardown),
		cmocka_unit_test_setup_teardown(dynamo_conditional_put_refuses_a_live_holder_and_admits_an_expired_lease, dyn_setup, dyn_teardown),
		cmocka_unit_test_setup_teardown(dynamo_dead_owner_and_failed_records_are_taken_over_with_their_token, dyn_setup, dyn_teardown),
		cmocka_unit_test_setup_teardown(dynamo_eight_processes_in_turn_get_exactly_one_new, dyn_setup, dyn_teardown),
		cmocka_unit_test_setup_teardown(dynamo_cleanup_deletes_expired_items, dyn_setup, dyn_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
