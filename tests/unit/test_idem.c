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
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cjson/cJSON.h>
#include "goman/aws.h"
#include "goman/clock.h"
#include "goman/idem.h"
#include "goman/log.h"

static int64_t fake_now = 1790000000000LL;
static int64_t fake_wall(void *ctx)
{
	(void)ctx;
	return fake_now;
}
static int64_t fake_mono(void *ctx)
{
	(void)ctx;
	return fake_now;
}

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
	struct goman_idem_opts o = {
		.dir = dir, .table = "", .ttl_ms = 3600000, .lease_ms = 60000, .no_fsync = true};
	struct goman_err e = GOMAN_ERR_INIT;
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

static char *slurp_log(const char *dir, size_t *len)
{
	char path[160];
	snprintf(path, sizeof(path), "%s/records.jsonl", dir);
	FILE *fp = fopen(path, "rb");
	if (!fp)
		return NULL;
	char *buf = malloc(1 << 20);
	*len = fread(buf, 1, (1 << 20) - 1, fp);
	buf[*len] = '\0';
	fclose(fp);
	return buf;
}

/* keys with a line in the log (the store keeps one log, records.jsonl) */
static size_t count_records(const char *dir)
{
	size_t len, n = 0;
	char *buf = slurp_log(dir, &len), seen[64][65];
	for (char *line = buf; line && *line;) {
		char *nl = strchr(line, '\n');
		if (!nl)
			break;
		if (!strncmp(line, "{\"id\":\"", 7) && nl - line > 71) {
			size_t i = 0;
			while (i < n && strncmp(seen[i], line + 7, 64))
				i++;
			if (i == n && n < 64)
				snprintf(seen[n++], 65, "%.64s", line + 7);
		}
		line = nl + 1;
	}
	free(buf);
	return n;
}

static void append_to_log(const char *dir, const char *text)
{
	char path[160];
	snprintf(path, sizeof(path), "%s/records.jsonl", dir);
	int fd = open(path, O_WRONLY | O_APPEND);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
}

/* begin (NEW) and complete one launch of identity id with result (may be NULL) */
static void store_completed(struct goman_idem *s, const cJSON *id, const cJSON *result)
{
	struct goman_idem_ticket t;
	struct goman_err e = GOMAN_ERR_INIT;
	assert_int_equal(goman_idem_begin(s, "RunInstances", id, NULL, &t, &e), GOMAN_IDEM_NEW);
	assert_int_equal(goman_idem_complete(s, &t, result, &e), 0);
	goman_idem_ticket_clear(&t);
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
	struct goman_err e = GOMAN_ERR_INIT;
	assert_int_equal(goman_idem_begin(f->s, "RunInstances", id, p, &t, &e), GOMAN_IDEM_NEW);
	assert_false(t.taken_over);
	assert_int_equal(strlen(t.client_token), 32);
	cJSON *res = cJSON_Parse("{\"instances\":[\"i-1\",\"i-2\"]}");
	assert_int_equal(goman_idem_complete(f->s, &t, res, &e), 0);

	assert_int_equal(goman_idem_begin(f->s, "RunInstances", id, p, &t2, &e),
			 GOMAN_IDEM_COMPLETED);
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
	struct goman_err e = GOMAN_ERR_INIT;
	assert_int_equal(goman_idem_begin(f->s, "RunInstances", id, p2, &t, &e), GOMAN_IDEM_NEW);
	assert_int_equal(goman_idem_complete(f->s, &t, NULL, &e), 0);
	goman_idem_ticket_clear(&t);
	assert_int_equal(goman_idem_begin(f->s, "RunInstances", id, p3, &t, &e),
			 GOMAN_IDEM_MISMATCH);
	assert_int_equal(e.rc, GOMAN_ECONFLICT);
	assert_string_equal(e.code, "IdempotencyMismatch");
	assert_non_null(strstr(e.message, "RunInstances"));
	char how[128]; /* the way out, ready to paste */
	snprintf(how, sizeof(how), "goman-idem forget %s", t.key);
	assert_non_null(strstr(e.message, how));
	assert_null(t.result);
	/* a mismatch also against a live in-progress record */
	cJSON *other = ident("servers");
	goman_idem_ticket_clear(&t);
	assert_int_equal(goman_idem_begin(f->s, "RunInstances", other, p2, &t, &e), GOMAN_IDEM_NEW);
	goman_idem_ticket_clear(&t);
	assert_int_equal(goman_idem_begin(f->s, "RunInstances", other, p3, &t, &e),
			 GOMAN_IDEM_MISMATCH);
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
	struct goman_err e = GOMAN_ERR_INIT;
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
	struct goman_err e = GOMAN_ERR_INIT;
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
	struct goman_err e = GOMAN_ERR_INIT;
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
	struct goman_err e = GOMAN_ERR_INIT;
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
	struct goman_err e = GOMAN_ERR_INIT, why = GOMAN_ERR_INIT;
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
	struct goman_err e = GOMAN_ERR_INIT;
	store_completed(f->s, a, NULL);
	fake_now += 1800000;
	store_completed(f->s, b, NULL);
	assert_int_equal(count_records(f->dir), 2);
	size_t removed = 99;
	assert_int_equal(goman_idem_cleanup(f->s, &removed, &e), 0);
	assert_int_equal(removed, 0);
	fake_now += 1800000; /* a is 1 h old now: expired; b is half way */
	assert_int_equal(goman_idem_cleanup(f->s, &removed, &e), 0);
	assert_int_equal(removed, 1);
	assert_int_equal(count_records(f->dir), 1);
	assert_int_equal(goman_idem_begin(f->s, "RunInstances", b, NULL, &t, &e),
			 GOMAN_IDEM_COMPLETED);
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

/* 8 processes at once, each failing its own key 60 times (so the log crosses the
 * compaction threshold while they write) and then completing one more: every record is
 * there afterwards, and the log was compacted under them. */
static void eight_processes_appending_and_compacting_together_lose_no_record(void **state)
{
	struct fx *f = *state;
	char path[160];
	struct stat before, after;
	snprintf(path, sizeof(path), "%s/records.jsonl", f->dir);
	assert_int_equal(stat(path, &before), 0);
	pid_t pids[8];
	for (int i = 0; i < 8; i++) {
		pids[i] = fork();
		assert_true(pids[i] >= 0);
		if (pids[i] == 0) {
			struct goman_idem *s = open_store(f->dir);
			char name[16];
			snprintf(name, sizeof(name), "p%d", i);
			cJSON *k = ident(name), *res = cJSON_CreateObject();
			cJSON_AddNumberToObject(res, "i", i);
			struct goman_idem_ticket t;
			for (int r = 0; r < 60; r++) {
				if (goman_idem_begin(s, "RunInstances", k, NULL, &t, NULL) !=
					    GOMAN_IDEM_NEW ||
				    goman_idem_fail(s, &t, NULL, NULL))
					_exit(1);
				goman_idem_ticket_clear(&t);
			}
			snprintf(name, sizeof(name), "done%d", i);
			cJSON *d = ident(name);
			int ok = goman_idem_begin(s, "RunInstances", d, NULL, &t, NULL) ==
					 GOMAN_IDEM_NEW &&
				 goman_idem_complete(s, &t, res, NULL) == 0;
			goman_idem_ticket_clear(&t);
			goman_idem_close(s);
			cJSON_Delete(k), cJSON_Delete(res), cJSON_Delete(d);
			_exit(ok ? 0
				 : 1); /* freed first: valgrind's leak check runs in children too */
		}
	}
	for (int i = 0; i < 8; i++) {
		int st;
		assert_int_equal(waitpid(pids[i], &st, 0), pids[i]);
		assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	}
	assert_int_equal(stat(path, &after), 0);
	assert_true(after.st_ino != before.st_ino); /* someone compacted meanwhile */
	struct goman_idem *s = open_store(f->dir);
	for (int i = 0; i < 8; i++) {
		char name[16];
		snprintf(name, sizeof(name), "done%d", i);
		cJSON *d = ident(name);
		struct goman_idem_ticket t;
		assert_int_equal(goman_idem_begin(s, "RunInstances", d, NULL, &t, NULL),
				 GOMAN_IDEM_COMPLETED);
		assert_int_equal(cJSON_GetObjectItem(t.result, "i")->valueint, i);
		goman_idem_ticket_clear(&t);
		cJSON_Delete(d);
		snprintf(name, sizeof(name), "p%d", i);
		cJSON *k = ident(name);
		assert_int_equal(goman_idem_begin(s, "RunInstances", k, NULL, &t, NULL),
				 GOMAN_IDEM_NEW);
		assert_true(t.taken_over); /* its FAILED record, not a fresh start */
		goman_idem_ticket_clear(&t);
		cJSON_Delete(k);
	}
	goman_idem_close(s);
}

static int collect(const cJSON *rec, void *ctx)
{
	cJSON_AddItemToArray((cJSON *)ctx, cJSON_Duplicate(rec, 1));
	return 0;
}

static void
forget_refuses_a_live_owner_unless_forced_and_the_owner_then_cannot_complete(void **state)
{
	struct fx *f = *state;
	cJSON *a = ident("a"), *b = ident("b"), *got = cJSON_CreateArray();
	struct goman_idem_ticket ta, tb, t;
	struct goman_err e = GOMAN_ERR_INIT;
	assert_int_equal(goman_idem_begin(f->s, "RunInstances", a, NULL, &ta, &e), GOMAN_IDEM_NEW);
	assert_int_equal(goman_idem_begin(f->s, "RunInstances", b, NULL, &tb, &e), GOMAN_IDEM_NEW);
	assert_int_equal(goman_idem_complete(f->s, &tb, NULL, &e), 0);
	assert_int_equal(goman_idem_list(f->s, false, collect, got, &e), 0);
	assert_int_equal(cJSON_GetArraySize(got), 2);
	assert_null(cJSON_GetObjectItem(cJSON_GetArrayItem(got, 0), "sum"));
	/* a is held by this (live) process */
	assert_int_equal(goman_idem_forget(f->s, ta.key, false, &e), -1);
	assert_string_equal(e.code, "IdempotencyInProgress");
	assert_int_equal(goman_idem_forget(f->s, "nothex", false, &e), -1);
	assert_string_equal(e.code, "BadInput");
	assert_int_equal(goman_idem_forget(f->s, ta.key, true, &e), 1);
	assert_int_equal(goman_idem_complete(f->s, &ta, NULL, &e), -1);
	assert_string_equal(e.code, "IdempotencyLost");
	assert_int_equal(goman_idem_forget(f->s, ta.key, false, &e), 0); /* nothing left */
	/* b completed: forgettable; begin then starts afresh with a new token */
	assert_int_equal(goman_idem_forget(f->s, tb.key, false, &e), 1);
	assert_int_equal(goman_idem_begin(f->s, "RunInstances", b, NULL, &t, &e), GOMAN_IDEM_NEW);
	assert_false(t.taken_over);
	assert_string_not_equal(t.client_token, tb.client_token);
	goman_idem_ticket_clear(&t);
	/* list: the forgotten a shows only with all, as FORGOTTEN */
	cJSON_Delete(got);
	got = cJSON_CreateArray();
	assert_int_equal(goman_idem_list(f->s, false, collect, got, &e), 0);
	assert_int_equal(cJSON_GetArraySize(got), 1);
	cJSON_Delete(got);
	got = cJSON_CreateArray();
	assert_int_equal(goman_idem_list(f->s, true, collect, got, &e), 0);
	assert_int_equal(cJSON_GetArraySize(got), 2);
	const cJSON *it;
	int forgotten = 0;
	cJSON_ArrayForEach (it, got)
		forgotten += !strcmp(cJSON_GetObjectItem(it, "status")->valuestring, "FORGOTTEN");
	assert_int_equal(forgotten, 1);
	goman_idem_ticket_clear(&ta);
	goman_idem_ticket_clear(&tb);
	cJSON_Delete(got), cJSON_Delete(a), cJSON_Delete(b);
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
	assert_int_equal(goman_idem_begin(f->s, "RunInstances", id, NULL, &t, NULL),
			 GOMAN_IDEM_NEW);
	goman_idem_complete(f->s, &t, NULL, NULL);
	goman_idem_ticket_clear(&t);
	assert_int_equal(goman_idem_begin(f->s, "RunInstances", id, NULL, &t, NULL),
			 GOMAN_IDEM_COMPLETED);
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
	struct goman_err e = GOMAN_ERR_INIT;
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

/* every line of the log parses as JSON (what jq needs of it); the number of lines */
static size_t log_lines_all_parse(const char *dir)
{
	size_t len, n = 0;
	char *log = slurp_log(dir, &len);
	assert_non_null(log);
	assert_true(len == 0 || log[len - 1] == '\n');
	for (char *line = log; *line; n++) {
		char *nl = strchr(line, '\n');
		cJSON *o = cJSON_ParseWithLength(line, (size_t)(nl - line));
		if (!o)
			fail_msg("a log line does not parse: %.*s", (int)(nl - line), line);
		cJSON_Delete(o);
		line = nl + 1;
	}
	free(log);
	return n;
}

static void torn_line_at_the_end_of_the_log_is_cut_off_by_the_next_holder_of_the_lock(void **state)
{
	struct fx *f = *state;
	cJSON *a = ident("a"), *b = ident("b");
	struct goman_idem_ticket t;
	struct goman_err e = GOMAN_ERR_INIT;
	store_completed(f->s, a, NULL);
	/* a writer killed in the middle of its line (or a power cut) left half a record */
	append_to_log(f->dir, "{\"id\":\"0123456789abcdef0123456789abcdef0123456789abcd");
	struct goman_idem *s2 = open_store(f->dir);
	assert_int_equal(goman_idem_begin(s2, "RunInstances", a, NULL, &t, &e),
			 GOMAN_IDEM_COMPLETED);
	goman_idem_ticket_clear(&t);
	assert_int_equal(log_lines_all_parse(f->dir), 2);
	store_completed(s2, b, NULL);
	goman_idem_close(s2);
	struct goman_idem *s3 = open_store(f->dir);
	assert_int_equal(goman_idem_begin(s3, "RunInstances", b, NULL, &t, &e),
			 GOMAN_IDEM_COMPLETED);
	goman_idem_ticket_clear(&t);
	goman_idem_close(s3);
	assert_int_equal(log_lines_all_parse(f->dir), 4);
	cJSON_Delete(a), cJSON_Delete(b);
}

/* In a child whose file size limit stops the log growing mid-line (the kernel's short
 * write, as on a full disk): begin must fail, and leave the log as it was. */
static void begin_cut_short_by_a_full_disk_fails_and_leaves_only_whole_lines(void **state)
{
	struct fx *f = *state;
	cJSON *a = ident("a"), *b = ident("b");
	struct goman_idem_ticket t;
	struct goman_err e = GOMAN_ERR_INIT;
	store_completed(f->s, a, NULL);
	char path[160];
	struct stat before, after;
	snprintf(path, sizeof(path), "%s/records.jsonl", f->dir);
	assert_int_equal(stat(path, &before), 0);
	pid_t pid = fork();
	if (pid == 0) {
		signal(SIGXFSZ, SIG_IGN);
		struct rlimit rl = {(rlim_t)before.st_size + 100, (rlim_t)before.st_size + 100};
		setrlimit(RLIMIT_FSIZE, &rl);
		struct goman_idem *s2 = open_store(f->dir);
		int rc = goman_idem_begin(s2, "RunInstances", b, NULL, &t, &e);
		goman_idem_close(s2);
		_exit(rc == -1 && e.rc == GOMAN_EIO ? 0 : 1);
	}
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	assert_int_equal(stat(path, &after), 0);
	assert_int_equal(after.st_size, before.st_size);
	assert_int_equal(log_lines_all_parse(f->dir), 2);
	/* nothing of the failed begin stands: b is new, not someone's run in progress */
	assert_int_equal(goman_idem_begin(f->s, "RunInstances", b, NULL, &t, &e), GOMAN_IDEM_NEW);
	goman_idem_ticket_clear(&t);
	cJSON_Delete(a), cJSON_Delete(b);
}

/* a file outside the store, which a planted symlink points at */
static void victim_path(const struct fx *f, char *out, size_t len)
{
	snprintf(out, len, "%s.victim", f->dir);
}

static void planted_symlinks_in_the_store_are_never_followed(void **state)
{
	struct fx *f = *state;
	cJSON *a = ident("a");
	struct goman_idem_ticket t;
	struct goman_err e = GOMAN_ERR_INIT;
	char victim[160], link[200], created[160];
	victim_path(f, victim, sizeof(victim));
	FILE *fp = fopen(victim, "w");
	assert_non_null(fp);
	fputs("precious\n", fp);
	fclose(fp);
	store_completed(f->s, a, NULL);
	/* compaction's temp file: it was opened O_TRUNC through the link */
	snprintf(link, sizeof(link), "%s/.records.tmp", f->dir);
	assert_int_equal(symlink(victim, link), 0);
	fake_now += 3600001;
	size_t removed = 0;
	assert_int_equal(goman_idem_cleanup(f->s, &removed, &e), 0);
	assert_int_equal(removed, 1);
	struct stat st;
	assert_int_equal(stat(victim, &st), 0);
	assert_int_equal(st.st_size, 9);
	snprintf(link, sizeof(link), "%s/records.jsonl", f->dir);
	assert_int_equal(lstat(link, &st), 0);
	assert_true(S_ISREG(st.st_mode));
	/* the log, the lock and the cleanup stamp as links: refused, and nothing made there */
	const char *names[] = {"records.jsonl", ".lock"};
	for (size_t i = 0; i < 2; i++) {
		goman_idem_close(f->s);
		f->s = NULL;
		snprintf(link, sizeof(link), "%s/%s", f->dir, names[i]);
		unlink(link);
		assert_int_equal(symlink(victim, link), 0);
		struct goman_idem_opts o = {.dir = f->dir, .table = "", .no_fsync = true};
		struct goman_idem *s = goman_idem_open(&o, &e);
		int rc = s ? goman_idem_begin(s, "RunInstances", a, NULL, &t, &e) : -1;
		assert_int_equal(rc, -1);
		goman_idem_close(s);
		assert_int_equal(unlink(link), 0);
	}
	assert_int_equal(stat(victim, &st), 0);
	assert_int_equal(st.st_size, 9);
	snprintf(created, sizeof(created), "%s.created", f->dir);
	snprintf(link, sizeof(link), "%s/.cleaned", f->dir);
	unlink(link);
	assert_int_equal(symlink(created, link), 0);
	f->s = open_store(f->dir);
	assert_int_equal(access(created, F_OK), -1);
	assert_int_equal(unlink(victim), 0);
	cJSON_Delete(a);
}

static bool open_refused_as_unsafe(const char *dir)
{
	struct goman_idem_opts o = {.dir = dir, .table = "", .no_fsync = true};
	struct goman_err e = GOMAN_ERR_INIT;
	goman_err_clear(&e);
	struct goman_idem *s = goman_idem_open(&o, &e);
	goman_idem_close(s);
	return !s && !strcmp(e.code, "UnsafeDirectory");
}

static void store_in_a_directory_others_can_write_or_own_is_refused(void **state)
{
	struct fx *f = *state;
	char sub[200];
	goman_idem_close(f->s);
	f->s = NULL;
	const mode_t unsafe[] = {0777, 0770, 0720, 01777};
	for (size_t i = 0; i < 4; i++) {
		assert_int_equal(chmod(f->dir, unsafe[i]), 0);
		assert_true(open_refused_as_unsafe(f->dir));
	}
	assert_int_equal(chmod(f->dir, 0755), 0);
	assert_false(open_refused_as_unsafe(f->dir));
	/* above the store: a non-sticky writable directory lets others rename the store away */
	snprintf(sub, sizeof(sub), "%s/store", f->dir);
	assert_int_equal(mkdir(sub, 0700), 0);
	assert_int_equal(chmod(f->dir, 0777), 0);
	assert_true(open_refused_as_unsafe(sub));
	assert_int_equal(chmod(f->dir, 01777), 0);
	assert_false(open_refused_as_unsafe(sub));
	rm_rf(sub);
	assert_int_equal(chmod(f->dir, 0700), 0);
	if (geteuid() == 0) {
		assert_int_equal(chown(f->dir, 65534, 65534), 0);
		assert_true(open_refused_as_unsafe(f->dir));
		assert_int_equal(chown(f->dir, 0, 0), 0);
		/* a log or lock of another user's in a good directory is not used either */
		const char *names[] = {"records.jsonl", ".lock"};
		for (size_t i = 0; i < 2; i++) {
			char p[200];
			snprintf(p, sizeof(p), "%s/%s", f->dir, names[i]);
			assert_int_equal(chown(p, 65534, 65534), 0);
			struct goman_idem_opts o = {.dir = f->dir, .table = "", .no_fsync = true};
			struct goman_err e = GOMAN_ERR_INIT;
			cJSON *a = ident("a");
			struct goman_idem_ticket t;
			struct goman_idem *s = goman_idem_open(&o, &e);
			int rc = s ? goman_idem_begin(s, "RunInstances", a, NULL, &t, &e) : -1;
			assert_int_equal(rc, -1);
			assert_non_null(strstr(e.message, "is not a regular file of uid"));
			goman_idem_close(s);
			cJSON_Delete(a);
			assert_int_equal(chown(p, 0, 0), 0);
		}
	}
	f->s = open_store(f->dir);
}

static void line_failing_its_checksum_is_skipped_and_the_keys_previous_line_stands(void **state)
{
	struct fx *f = *state;
	cJSON *a = ident("a");
	struct goman_idem_ticket t;
	struct goman_err e = GOMAN_ERR_INIT;
	store_completed(f->s, a, NULL);
	/* flip one byte of the COMPLETED line, keeping it valid JSON */
	size_t len;
	char *log = slurp_log(f->dir, &len), path[160];
	char *done = strstr(log, "\"status\":\"COMPLETED\"");
	assert_non_null(done);
	done[10] = 'X';
	snprintf(path, sizeof(path), "%s/records.jsonl", f->dir);
	FILE *fp = fopen(path, "r+b");
	assert_non_null(fp);
	assert_int_equal(fwrite(log, 1, len, fp), len);
	fclose(fp);
	free(log);
	/* the INPROGRESS line stands, and its owner (this process) is alive */
	struct goman_idem *s2 = open_store(f->dir);
	assert_int_equal(goman_idem_begin(s2, "RunInstances", a, NULL, &t, &e),
			 GOMAN_IDEM_IN_PROGRESS);
	assert_int_equal(t.owner_pid, (long)getpid());
	goman_idem_ticket_clear(&t);
	goman_idem_close(s2);
	cJSON_Delete(a);
}

/* The log's checksum is FNV-1a 64 (offset basis 0xcbf29ce484222325, prime 0x100000001b3) of
 * the bytes before ,"sum", as 16 lowercase hex digits: a line written by an earlier goman
 * (this one, its sum worked out apart from the library) is read, and the lines written now
 * carry the sum that the same sum gives. */
static void log_checksum_is_fnv1a_64_as_released(void **state)
{
	struct fx *f = *state;
	static const char released[] =
		"{\"id\":\"81bf6a487be2aa8b2194bb2da19a96ac05c53f364359757215280162c25f8b9c\","
		"\"operation\":\"RunInstances\",\"status\":\"COMPLETED\",\"payload_hash\":"
		"\"81bf6a487be2aa8b2194bb2da19a96ac05c53f364359757215280162c25f8b9c\","
		"\"client_token\":\"0123456789abcdef0123456789abcdef\","
		"\"owner\":\"fedcba9876543210fedcba9876543210\",\"owner_pid\":1,"
		"\"owner_pid_start\":1,\"owner_host\":\"elsewhere\",\"started_at\":1790000000000,"
		"\"lease_expires\":1790000060000,\"expires_at\":1790003600000,"
		"\"identity\":{\"cluster\":\"demo\",\"group\":\"z\"},"
		"\"result\":{\"instances\":[\"i-0released\"]},\"sum\":\"63844b154a23c780\"}\n";
	cJSON *z = ident("z"), *a = ident("a");
	struct goman_idem_ticket t;
	struct goman_err e = GOMAN_ERR_INIT;
	store_completed(f->s, a, NULL);
	append_to_log(f->dir, released);
	assert_int_equal(goman_idem_begin(f->s, "RunInstances", z, NULL, &t, &e),
			 GOMAN_IDEM_COMPLETED);
	assert_string_equal(t.client_token, "0123456789abcdef0123456789abcdef");
	goman_idem_ticket_clear(&t);
	size_t len, lines = 0;
	char *log = slurp_log(f->dir, &len);
	for (char *p = log, *nl; (nl = strchr(p, '\n')); p = nl + 1, lines++) {
		assert_true(nl - p > 26);
		uint64_t h = 0xcbf29ce484222325ULL;
		for (const char *q = p; q < nl - 26; q++)
			h = (h ^ (unsigned char)*q) * 0x100000001b3ULL;
		char want[32];
		snprintf(want, sizeof(want), ",\"sum\":\"%016llx\"}", (unsigned long long)h);
		assert_memory_equal(nl - 26, want, 26);
	}
	assert_int_equal(lines, 3); /* a's INPROGRESS and COMPLETED, and the released line */
	free(log);
	cJSON_Delete(z);
	cJSON_Delete(a);
}

static void another_handles_compaction_is_followed_to_the_new_log(void **state)
{
	struct fx *f = *state;
	cJSON *x = ident("x"), *y = ident("y");
	struct goman_idem_ticket t;
	struct goman_err e = GOMAN_ERR_INIT;
	struct goman_idem *b = open_store(f->dir);
	store_completed(f->s, x, NULL);
	assert_int_equal(goman_idem_begin(b, "RunInstances", x, NULL, &t, &e),
			 GOMAN_IDEM_COMPLETED);
	goman_idem_ticket_clear(&t);
	struct stat before, after;
	char path[160];
	snprintf(path, sizeof(path), "%s/records.jsonl", f->dir);
	assert_int_equal(stat(path, &before), 0);
	fake_now += 3600001; /* x expires; the first handle's cleanup rewrites the log */
	size_t removed = 0;
	assert_int_equal(goman_idem_cleanup(f->s, &removed, &e), 0);
	assert_int_equal(removed, 1);
	assert_int_equal(stat(path, &after), 0);
	assert_true(after.st_ino != before.st_ino);
	assert_int_equal(after.st_size, 0);
	/* the second handle writes into the new log, where the first one finds it */
	store_completed(b, y, NULL);
	assert_int_equal(goman_idem_begin(f->s, "RunInstances", y, NULL, &t, &e),
			 GOMAN_IDEM_COMPLETED);
	goman_idem_ticket_clear(&t);
	assert_int_equal(count_records(f->dir), 1);
	goman_idem_close(b);
	cJSON_Delete(x), cJSON_Delete(y);
}

static void log_is_compacted_when_superseded_lines_outweigh_live_ones(void **state)
{
	struct fx *f = *state;
	cJSON *k = ident("k");
	struct goman_idem_ticket t;
	struct goman_err e = GOMAN_ERR_INIT;
	char first_token[65] = "";
	/* one key begun and failed 400 times: two lines each, all but the last dead */
	for (int i = 0; i < 400; i++) {
		assert_int_equal(goman_idem_begin(f->s, "RunInstances", k, NULL, &t, &e),
				 GOMAN_IDEM_NEW);
		if (i == 0)
			snprintf(first_token, sizeof(first_token), "%s", t.client_token);
		assert_string_equal(t.client_token, first_token);
		assert_int_equal(goman_idem_fail(f->s, &t, NULL, &e), 0);
		goman_idem_ticket_clear(&t);
	}
	char path[160];
	struct stat st;
	snprintf(path, sizeof(path), "%s/records.jsonl", f->dir);
	assert_int_equal(stat(path, &st), 0);
	assert_true(st.st_size < 256 * 1024); /* 400 rounds wrote ~400 KiB (lines of ~510 bytes) */
	assert_int_equal(count_records(f->dir), 1);
	/* and the record survived it: a fresh reader takes the failure over with its token */
	struct goman_idem *s2 = open_store(f->dir);
	assert_int_equal(goman_idem_begin(s2, "RunInstances", k, NULL, &t, &e), GOMAN_IDEM_NEW);
	assert_true(t.taken_over);
	assert_string_equal(t.client_token, first_token);
	goman_idem_ticket_clear(&t);
	goman_idem_close(s2);
	cJSON_Delete(k);
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
	struct goman_err e = GOMAN_ERR_INIT;
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

#define DYN_OR_SKIP(f)         \
	struct fx *f = *state; \
	if (!f)                \
	skip()

static void dynamo_table_create_is_idempotent(void **state)
{
	DYN_OR_SKIP(f);
	struct goman_err e = GOMAN_ERR_INIT;
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
	struct goman_err e = GOMAN_ERR_INIT;
	assert_int_equal(goman_idem_begin(f->s, "RunInstances", id, p2, &t, &e), GOMAN_IDEM_NEW);
	assert_false(t.taken_over);
	assert_int_equal(goman_idem_complete(f->s, &t, res, &e), 0);
	assert_int_equal(goman_idem_begin(f->s, "RunInstances", id, p2, &t2, &e),
			 GOMAN_IDEM_COMPLETED);
	assert_true(cJSON_Compare(t2.result, res, 1));
	assert_string_equal(t2.client_token, t.client_token);
	goman_idem_ticket_clear(&t2);
	assert_int_equal(goman_idem_begin(f->s, "RunInstances", id, p3, &t2, &e),
			 GOMAN_IDEM_MISMATCH);
	assert_string_equal(e.code, "IdempotencyMismatch");
	goman_idem_ticket_clear(&t), goman_idem_ticket_clear(&t2);
	cJSON_Delete(id), cJSON_Delete(p2), cJSON_Delete(p3), cJSON_Delete(res);
}

static void dynamo_conditional_put_refuses_a_live_holder_and_admits_an_expired_lease(void **state)
{
	DYN_OR_SKIP(f);
	cJSON *id = fresh_ident();
	struct goman_idem_ticket t, t2, t3;
	struct goman_err e = GOMAN_ERR_INIT;
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
	assert_int_equal(goman_idem_begin(f->s, "RunInstances", id, NULL, &t3, &e),
			 GOMAN_IDEM_COMPLETED);
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
	struct goman_err e = GOMAN_ERR_INIT, why = GOMAN_ERR_INIT;
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
	struct goman_err e = GOMAN_ERR_INIT;
	store_completed(f->s, id, NULL);
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
		cmocka_unit_test_setup_teardown(begin_new_then_complete_then_hit_returns_result,
						setup, teardown),
		cmocka_unit_test_setup_teardown(
			same_key_other_parameters_is_a_mismatch_naming_the_operation, setup,
			teardown),
		cmocka_unit_test_setup_teardown(live_owner_is_reported_in_progress_with_its_pid,
						setup, teardown),
		cmocka_unit_test_setup_teardown(
			completed_record_expires_after_ttl_and_a_new_token_is_issued, setup,
			teardown),
		cmocka_unit_test_setup_teardown(
			expired_lease_is_taken_over_and_the_old_owner_cannot_complete, setup,
			teardown),
		cmocka_unit_test_setup_teardown(
			dead_owners_in_progress_is_taken_over_reusing_its_stored_token, setup,
			teardown),
		cmocka_unit_test_setup_teardown(failed_record_is_retried_with_the_same_token, setup,
						teardown),
		cmocka_unit_test_setup_teardown(cleanup_removes_only_expired_records, setup,
						teardown),
		cmocka_unit_test_setup_teardown(
			eight_processes_racing_begin_on_one_key_get_exactly_one_new, setup,
			teardown),
		cmocka_unit_test_setup_teardown(
			eight_processes_appending_and_compacting_together_lose_no_record, setup,
			teardown),
		cmocka_unit_test_setup_teardown(
			forget_refuses_a_live_owner_unless_forced_and_the_owner_then_cannot_complete,
			setup, teardown),
		cmocka_unit_test_setup_teardown(begin_emits_idempotency_events, setup, teardown),
		cmocka_unit_test_setup_teardown(
			store_dir_follows_goman_idempotency_dir_then_xdg_state_home, setup,
			teardown),
		cmocka_unit_test_setup_teardown(
			torn_line_at_the_end_of_the_log_is_cut_off_by_the_next_holder_of_the_lock,
			setup, teardown),
		cmocka_unit_test_setup_teardown(
			begin_cut_short_by_a_full_disk_fails_and_leaves_only_whole_lines, setup,
			teardown),
		cmocka_unit_test_setup_teardown(planted_symlinks_in_the_store_are_never_followed,
						setup, teardown),
		cmocka_unit_test_setup_teardown(
			store_in_a_directory_others_can_write_or_own_is_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(
			line_failing_its_checksum_is_skipped_and_the_keys_previous_line_stands,
			setup, teardown),
		cmocka_unit_test_setup_teardown(log_checksum_is_fnv1a_64_as_released, setup,
						teardown),
		cmocka_unit_test_setup_teardown(
			another_handles_compaction_is_followed_to_the_new_log, setup, teardown),
		cmocka_unit_test_setup_teardown(
			log_is_compacted_when_superseded_lines_outweigh_live_ones, setup, teardown),
		cmocka_unit_test_setup_teardown(dynamo_table_create_is_idempotent, dyn_setup,
						dyn_teardown),
		cmocka_unit_test_setup_teardown(dynamo_new_complete_hit_and_mismatch, dyn_setup,
						dyn_teardown),
		cmocka_unit_test_setup_teardown(
			dynamo_conditional_put_refuses_a_live_holder_and_admits_an_expired_lease,
			dyn_setup, dyn_teardown),
		cmocka_unit_test_setup_teardown(
			dynamo_dead_owner_and_failed_records_are_taken_over_with_their_token,
			dyn_setup, dyn_teardown),
		cmocka_unit_test_setup_teardown(dynamo_eight_processes_in_turn_get_exactly_one_new,
						dyn_setup, dyn_teardown),
		cmocka_unit_test_setup_teardown(dynamo_cleanup_deletes_expired_items, dyn_setup,
						dyn_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
