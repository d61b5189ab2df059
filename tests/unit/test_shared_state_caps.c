/* test_shared_state_caps.c - MaxConcurrent held in the state file, across real processes:
 * units taken up to the cap and given back, a unit of a process SIGKILLed while holding it
 * (a zombie, then reaped) or of a pid now another process's is taken back, a live owner's
 * never; through the guard, 8 processes together never have more attempts in flight than
 * the cap, a call facing units held elsewhere is told to poll, and inside one process the
 * cap works as it always did. */
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "unit.h"
#include "goman/clock.h"
#include "goman/config.h"
#include "goman/guard.h"
#include "shared_state_int.h"

static char dir[] = "/tmp/goman-caps-XXXXXX";
static char path[300];
static struct goman_config cfg;

static int setup(void **st)
{
	if (!mkdtemp(dir))
		return -1;
	snprintf(path, sizeof(path), "%s/shared-state", dir);
	unsetenv("GOMAN_EVENTS");
	unsetenv("GOMAN_SHARED_CAPS");
	unsetenv("GOMAN_SHARED_CAP_POLL_MS");
	return 0;
}

static int teardown(void **st)
{
	char cmd[400];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static int fresh(void **st)
{
	unlink(path);
	return 0;
}

static struct goman_guard *mkguard(int cap)
{
	goman_config_init(&cfg);
	cfg.breaker[GOMAN_SVC_EC2].max_concurrent = cap;
	struct goman_guard_opts o = {
		.config = &cfg, .state_file = path, .seed = (uint64_t)getpid()};
	return goman_guard_new(&o, NULL);
}

static void sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

#define SLOT "ec2|us-east-1|http://caps"

static void units_are_taken_up_to_the_cap_and_given_back(void **st)
{
	struct goman_err e = GOMAN_ERR_INIT;
	struct gm_state *s = gm_state_open(path, &e);
	assert_non_null(s);
	struct gm_slot *sl = gm_state_slot(s, SLOT);
	uint64_t me = gm_state_owner(s);
	assert_true(me >> 32 == (uint64_t)getpid());
	int got[3];
	for (int i = 0; i < 3; i++) {
		got[i] = gm_slot_take(sl, 3, me, 7);
		assert_in_range(got[i], 0, 2);
	}
	assert_int_equal(gm_slot_take(sl, 3, me, 0), -1);
	/* a larger cap in another process's config sees the same units, and more */
	assert_in_range(gm_slot_take(sl, 4, me, 0), 3, 3);
	gm_slot_give(sl, 3, me);
	gm_slot_give(sl, got[1], me);
	assert_int_equal(gm_slot_take(sl, 3, me, 0), got[1]);
	/* a unit given back by someone who does not own it stays held */
	gm_slot_give(sl, got[0], me + 1);
	assert_int_equal(atomic_load(&sl->unit[got[0]]), me);
	/* a cap beyond the table is the table */
	for (int i = 0; i < GM_STATE_UNITS; i++)
		gm_slot_give(sl, i, me);
	int n = 0;
	while (gm_slot_take(sl, 1000, me, 0) >= 0)
		n++;
	assert_int_equal(n, GM_STATE_UNITS);
	gm_state_close(s);
}

/* a child takes n units of SLOT and waits to be killed; its pid */
static pid_t holder(int n)
{
	int pfd[2];
	assert_int_equal(pipe(pfd), 0);
	pid_t p = fork();
	if (p == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL); /* a failed test does not leave it behind */
		struct goman_err e = GOMAN_ERR_INIT;
		struct gm_state *s = gm_state_open(path, &e);
		struct gm_slot *sl = s ? gm_state_slot(s, SLOT) : NULL;
		for (int i = 0; sl && i < n; i++)
			if (gm_slot_take(sl, n, gm_state_owner(s), 0) < 0)
				_exit(1);
		ssize_t w = write(pfd[1], "H", 1);
		(void)w;
		for (;;)
			pause();
	}
	char c;
	assert_int_equal(read(pfd[0], &c, 1), 1);
	close(pfd[0]);
	close(pfd[1]);
	return p;
}

static void units_of_a_process_killed_while_holding_them_are_taken_back_not_a_live_ones(void **st)
{
	pid_t p = holder(3);
	struct goman_err e = GOMAN_ERR_INIT;
	struct gm_state *s = gm_state_open(path, &e);
	assert_non_null(s);
	struct gm_slot *sl = gm_state_slot(s, SLOT);
	assert_int_equal(gm_slot_take(sl, 3, gm_state_owner(s), 0), -1);
	assert_int_equal(gm_slot_reap(sl, 3), 0); /* alive: its units stay */
	kill(p, SIGKILL);
	/* dead but not yet waited for (SIGKILL takes a moment to land): a zombie owns nothing */
	int freed = 0;
	for (int i = 0; i < 200 && (freed += gm_slot_reap(sl, 3)) < 3; i++)
		sleep_ms(10);
	assert_int_equal(freed, 3);
	assert_int_equal(waitpid(p, NULL, WNOHANG), p); /* it was a zombie until now */
	assert_in_range(gm_slot_take(sl, 3, gm_state_owner(s), 0), 0, 2);
	gm_state_close(s);
}

static void a_unit_whose_pid_now_belongs_to_another_process_is_taken_back(void **st)
{
	struct goman_err e = GOMAN_ERR_INIT;
	struct gm_state *s = gm_state_open(path, &e);
	assert_non_null(s);
	struct gm_slot *sl = gm_state_slot(s, SLOT);
	uint64_t me = gm_state_owner(s);
	/* our pid with another start time: an earlier process that had the same pid */
	uint64_t earlier = (me & ~UINT64_C(0xffffffff)) | (uint32_t)((uint32_t)me - 1);
	atomic_store(&sl->unit[0], earlier);
	atomic_store(&sl->unit[1], me);
	assert_true(gm_owner_dead(earlier));
	assert_false(gm_owner_dead(me));
	assert_int_equal(gm_slot_reap(sl, 2), 1);
	assert_int_equal(atomic_load(&sl->unit[0]), 0);
	assert_int_equal(atomic_load(&sl->unit[1]), me);
	gm_slot_give(sl, 1, me);
	gm_state_close(s);
}

static void eight_processes_together_never_have_more_attempts_in_flight_than_the_cap(void **st)
{
	_Atomic int *shm =
		mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	assert_true(shm != MAP_FAILED);
	_Atomic int *now = &shm[0], *peak = &shm[1], *done = &shm[2];
	const int cap = 3, calls = 10;
	setenv("GOMAN_SHARED_CAP_POLL_MS", "4", 1);
	pid_t kids[8];
	for (int i = 0; i < 8; i++) {
		kids[i] = fork();
		assert_true(kids[i] >= 0);
		if (kids[i] == 0) {
			struct goman_guard *g = mkguard(cap);
			struct goman_err err = GOMAN_ERR_INIT;
			int64_t end = goman_mono_ms() + 20000;
			for (int c = 0; c < calls && goman_mono_ms() < end;) {
				struct goman_guard_ticket t;
				int64_t w, rin;
				goman_guard_ticket_init(&t, 0);
				int rc = goman_guard_before(g, &t, "ec2", "us-east-1",
							    "http://caps", &w, &err);
				if (rc != 0) {
					sleep_ms((int)w);
					continue;
				}
				int n = atomic_fetch_add(now, 1) + 1, pk = atomic_load(peak);
				while (n > pk && !atomic_compare_exchange_weak(peak, &pk, n))
					;
				sleep_ms(5); /* the request */
				atomic_fetch_sub(now, 1);
				goman_guard_after(g, &t, NULL, "ec2", "DescribeRegions", &rin);
				c++;
				atomic_fetch_add(done, 1);
			}
			goman_guard_free(g);
			_exit(0);
		}
	}
	for (int i = 0; i < 8; i++)
		waitpid(kids[i], NULL, 0);
	unsetenv("GOMAN_SHARED_CAP_POLL_MS");
	print_message("# 8 processes x %d calls, cap %d: peak %d in flight, %d done\n", calls, cap,
		      atomic_load(peak), atomic_load(done));
	assert_int_equal(atomic_load(done), 8 * calls);
	assert_true(atomic_load(peak) <= cap);
	assert_true(atomic_load(peak) >= 2); /* they did overlap */
	/* and every unit was given back */
	struct goman_err e = GOMAN_ERR_INIT;
	struct gm_state *s = gm_state_open(path, &e);
	struct gm_slot *sl = gm_state_slot(s, "ec2|us-east-1|http://caps");
	for (int u = 0; u < GM_STATE_UNITS; u++)
		assert_int_equal(atomic_load(&sl->unit[u]), 0);
	gm_state_close(s);
	munmap((void *)shm, 4096);
}

static void a_call_facing_units_held_elsewhere_is_told_to_poll_its_own_loop(void **st)
{
	pid_t p = holder(2);
	struct goman_guard *g = mkguard(2);
	struct goman_guard_ticket t;
	struct goman_err e = GOMAN_ERR_INIT;
	int64_t w = -1, rin;
	goman_guard_ticket_init(&t, 0);
	assert_int_equal(goman_guard_before(g, &t, "ec2", "us-east-1", "http://caps", &w, &e), 1);
	assert_in_range(w, 10, 30); /* 20 ms ± 50 %, not the 500 ms in-process backstop */
	assert_false(t.admitted);
	/* the holder dies: the next ask (past the reap cadence) takes its unit */
	kill(p, SIGKILL);
	waitpid(p, NULL, 0);
	sleep_ms(300);
	assert_int_equal(goman_guard_before(g, &t, "ec2", "us-east-1", "http://caps", &w, &e), 0);
	goman_guard_after(g, &t, NULL, "ec2", "DescribeRegions", &rin);
	goman_guard_free(g);
}

/* A process whose own calls follow each other at once (aws.c wakes a parked call the
 * moment one of its attempts ends) would take back every unit it frees, and another
 * process polling for one might wait for the whole of its run */
static void a_process_waiting_for_a_unit_gets_one_while_another_keeps_the_cap_busy(void **st)
{
	int pfd[2];
	assert_int_equal(pipe(pfd), 0);
	pid_t hog = fork();
	if (hog == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		struct goman_guard *g = mkguard(2);
		struct goman_err e = GOMAN_ERR_INIT;
		struct goman_guard_ticket t[2];
		bool in[2] = {false, false};
		int64_t w, rin, end = goman_mono_ms() + 3000;
		bool told = false;
		for (int i = 0; goman_mono_ms() < end; i ^= 1) {
			if (in[i])
				goman_guard_after(g, &t[i], NULL, "ec2", "DescribeRegions", &rin);
			goman_guard_ticket_init(&t[i], 0);
			in[i] = goman_guard_before(g, &t[i], "ec2", "us-east-1", "http://caps", &w,
						   &e) == 0;
			if (!told && in[0] && in[1]) {
				told = write(pfd[1], "B", 1) == 1; /* both units held */
			}
			sleep_ms(3); /* the request */
		}
		goman_guard_free(g);
		_exit(0);
	}
	char c;
	assert_int_equal(read(pfd[0], &c, 1), 1);
	struct goman_guard *g = mkguard(2);
	struct goman_guard_ticket t;
	struct goman_err e = GOMAN_ERR_INIT;
	int64_t w, rin, t0 = goman_mono_ms(), waited = -1;
	while (goman_mono_ms() - t0 < 5000) {
		goman_guard_ticket_init(&t, 0);
		if (goman_guard_before(g, &t, "ec2", "us-east-1", "http://caps", &w, &e) == 0) {
			waited = goman_mono_ms() - t0;
			goman_guard_after(g, &t, NULL, "ec2", "DescribeRegions", &rin);
			break;
		}
		sleep_ms((int)w);
	}
	goman_guard_free(g);
	kill(hog, SIGKILL);
	waitpid(hog, NULL, 0);
	close(pfd[0]);
	close(pfd[1]);
	print_message("# a unit came after %lld ms of a 3 s run that kept the cap busy\n",
		      (long long)waited);
	assert_true(waited >= 0);
	assert_true(waited < 1000);
}

static void a_call_facing_a_full_cap_and_an_open_breaker_ends_at_once(void **st)
{
	pid_t p = holder(2); /* its attempts hang on the dead service */
	struct goman_err e = GOMAN_ERR_INIT;
	struct gm_state *s = gm_state_open(path, &e);
	assert_non_null(s);
	struct gm_slot *sl = gm_state_slot(s, SLOT);
	/* open since now (state 1, opened-at in the high bits: goman/breaker.h) */
	atomic_store(&sl->breaker, UINT64_C(1) | (uint64_t)goman_mono_ms() << 24);
	struct goman_guard *g = mkguard(2);
	struct goman_guard_ticket t;
	int64_t w = -1;
	goman_guard_ticket_init(&t, 0);
	assert_int_equal(goman_guard_before(g, &t, "ec2", "us-east-1", "http://caps", &w, &e), -1);
	assert_int_equal(e.rc, GOMAN_ECIRCUIT);
	goman_guard_free(g);
	gm_state_close(s);
	kill(p, SIGKILL);
	waitpid(p, NULL, 0);
}

static void with_shared_caps_off_the_cap_is_per_process(void **st)
{
	pid_t p = holder(2);
	setenv("GOMAN_SHARED_CAPS", "0", 1);
	struct goman_guard *g = mkguard(2);
	unsetenv("GOMAN_SHARED_CAPS");
	struct goman_guard_ticket t;
	struct goman_err e = GOMAN_ERR_INIT;
	int64_t w, rin;
	goman_guard_ticket_init(&t, 0);
	assert_int_equal(goman_guard_before(g, &t, "ec2", "us-east-1", "http://caps", &w, &e), 0);
	goman_guard_after(g, &t, NULL, "ec2", "DescribeRegions", &rin);
	goman_guard_free(g);
	kill(p, SIGKILL);
	waitpid(p, NULL, 0);
}

static void inside_one_process_the_cap_parks_calls_until_its_own_attempts_end(void **st)
{
	struct goman_guard *g = mkguard(2);
	struct goman_guard_ticket t[3];
	struct goman_err e = GOMAN_ERR_INIT;
	int64_t w, rin;
	for (int i = 0; i < 3; i++)
		goman_guard_ticket_init(&t[i], 0);
	assert_int_equal(goman_guard_before(g, &t[0], "ec2", "us-east-1", "http://caps", &w, &e),
			 0);
	assert_int_equal(goman_guard_before(g, &t[1], "ec2", "us-east-1", "http://caps", &w, &e),
			 0);
	/* the process's own cap: the caller wakes it when one of its attempts ends */
	assert_int_equal(goman_guard_before(g, &t[2], "ec2", "us-east-1", "http://caps", &w, &e),
			 1);
	assert_int_equal(w, 500);
	goman_guard_after(g, &t[0], NULL, "ec2", "DescribeRegions", &rin);
	assert_int_equal(goman_guard_before(g, &t[2], "ec2", "us-east-1", "http://caps", &w, &e),
			 0);
	/* an abandoned attempt gives its unit back too */
	goman_guard_abandon(g, &t[2]);
	assert_int_equal(goman_guard_before(g, &t[2], "ec2", "us-east-1", "http://caps", &w, &e),
			 0);
	/* freed with attempts in flight: their units go back with the guard */
	goman_guard_free(g);
	struct gm_state *s = gm_state_open(path, &e);
	struct gm_slot *sl = gm_state_slot(s, "ec2|us-east-1|http://caps");
	assert_int_equal(gm_slot_take(sl, 2, gm_state_owner(s), 0) >= 0, 1);
	assert_int_equal(gm_slot_take(sl, 2, gm_state_owner(s), 0) >= 0, 1);
	gm_state_close(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(units_are_taken_up_to_the_cap_and_given_back, fresh),
		cmocka_unit_test_setup(
			units_of_a_process_killed_while_holding_them_are_taken_back_not_a_live_ones,
			fresh),
		cmocka_unit_test_setup(
			a_unit_whose_pid_now_belongs_to_another_process_is_taken_back, fresh),
		cmocka_unit_test_setup(
			eight_processes_together_never_have_more_attempts_in_flight_than_the_cap,
			fresh),
		cmocka_unit_test_setup(
			a_call_facing_units_held_elsewhere_is_told_to_poll_its_own_loop, fresh),
		cmocka_unit_test_setup(
			a_process_waiting_for_a_unit_gets_one_while_another_keeps_the_cap_busy,
			fresh),
		cmocka_unit_test_setup(a_call_facing_a_full_cap_and_an_open_breaker_ends_at_once,
				       fresh),
		cmocka_unit_test_setup(with_shared_caps_off_the_cap_is_per_process, fresh),
		cmocka_unit_test_setup(
			inside_one_process_the_cap_parks_calls_until_its_own_attempts_end, fresh),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
