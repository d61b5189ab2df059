/* test_shared_state.c - the state file shared by goman processes, across real processes:
 * 8 processes hammering a dead endpoint are held to threshold + MaxConcurrent + probes per
 * recovery window; a process SIGKILLed while holding the lock does not stop the others;
 * processes killed mid-update leave a usable state; two guards learn a breaker once. */
#include <errno.h>
#include <linux/filter.h>
#include <linux/io_uring.h>
#include <linux/seccomp.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <sys/inotify.h>
#include <stddef.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "unit.h"
#include "goman/clock.h"
#include "goman/config.h"
#include "goman/guard.h"
#include "shared_state_int.h"

static char dir[] = "/tmp/goman-state-XXXXXX";
static char path[300];

static int setup(void **st)
{
	if (!mkdtemp(dir))
		return -1;
	snprintf(path, sizeof(path), "%s/run/goman/breakers", dir);
	unsetenv("GOMAN_EVENTS");
	return 0;
}

static int teardown(void **st)
{
	char cmd[400];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static struct goman_config cfg;

static struct goman_guard *mkguard(void)
{
	goman_config_init(&cfg);
	cfg.breaker[GOMAN_SVC_EC2] = (struct goman_breaker_params){.failure_threshold = 3,
								   .recovery_ms = 400,
								   .max_concurrent = 8,
								   .success_threshold = 1,
								   .probes = 1};
	cfg.retry_mode = GOMAN_RETRY_ADAPTIVE;
	struct goman_guard_opts o = {
		.config = &cfg, .state_file = path, .seed = (uint64_t)getpid()};
	struct goman_guard *g = goman_guard_new(&o, NULL);
	return g;
}

static void state_file_is_private_and_made_with_its_directories(void **st)
{
	struct goman_guard *g = mkguard();
	assert_non_null(g);
	assert_string_equal(goman_guard_state_file(g), path);
	struct stat sb;
	assert_int_equal(stat(path, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0600);
	goman_guard_free(g);
}

static void two_processes_share_one_breaker(void **st)
{
	struct goman_guard *a = mkguard(), *b = mkguard();
	struct goman_err bad = GOMAN_ERR_INIT, e = GOMAN_ERR_INIT;
	goman_err_clear(&bad);
	goman_err_set(&bad, GOMAN_ETRANSPORT, GOMAN_CLASS_TRANSIENT, "ConnectionRefused",
		      "refused");
	int64_t w, rin;
	for (int i = 0; i < 3; i++) {
		struct goman_guard_ticket t;
		goman_guard_ticket_init(&t, 0);
		assert_int_equal(
			goman_guard_before(a, &t, "ec2", "eu-west-1", "http://dead", &w, &e), 0);
		goman_guard_after(a, &t, &bad, "ec2", "DescribeRegions", &rin);
	}
	/* b never saw a failure, and yet refuses */
	struct goman_guard_ticket t;
	goman_guard_ticket_init(&t, 0);
	assert_int_equal(goman_guard_before(b, &t, "ec2", "eu-west-1", "http://dead", &w, &e), -1);
	assert_int_equal(e.rc, GOMAN_ECIRCUIT);
	goman_guard_free(a);
	goman_guard_free(b);
}

static void sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

static void eight_processes_on_a_dead_endpoint_stay_within_the_bound(void **st)
{
	_Atomic int *admitted =
		mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	assert_true(admitted != MAP_FAILED);
	atomic_store(admitted, 0);
	const int run_ms = 1000, recovery = 400;
	pid_t kids[8];
	for (int i = 0; i < 8; i++) {
		kids[i] = fork();
		assert_true(kids[i] >= 0);
		if (kids[i] == 0) {
			struct goman_guard *g = mkguard();
			struct goman_err bad = GOMAN_ERR_INIT, e = GOMAN_ERR_INIT;
			goman_err_clear(&bad);
			goman_err_set(&bad, GOMAN_ETRANSPORT, GOMAN_CLASS_TRANSIENT,
				      "ConnectionRefused", "x");
			int64_t end = goman_mono_ms() + run_ms, w, rin;
			while (goman_mono_ms() < end) {
				struct goman_guard_ticket t;
				goman_guard_ticket_init(&t, 0);
				if (goman_guard_before(g, &t, "ec2", "us-east-1",
						       "http://127.0.0.1:9", &w, &e) == 0) {
					atomic_fetch_add(admitted, 1);
					sleep_ms(3); /* the connection attempt */
					goman_guard_after(g, &t, &bad, "ec2", "DescribeRegions",
							  &rin);
				} else {
					sleep_ms(5);
				}
			}
			goman_guard_free(g);
			_exit(0);
		}
	}
	for (int i = 0; i < 8; i++) {
		int ws;
		waitpid(kids[i], &ws, 0);
		assert_true(WIFEXITED(ws) && WEXITSTATUS(ws) == 0);
	}
	int windows = (run_ms + recovery - 1) / recovery;
	int bound = 3 + 8 + 1 * windows; /* threshold + MaxConcurrent + probes per window */
	int n = atomic_load(admitted);
	print_message("# 8 processes, %d ms: %d attempts admitted (bound %d; unshared ≥ %d)\n",
		      run_ms, n, bound, 8 * 3);
	assert_true(n >= 3);
	assert_true(n <= bound);
	munmap((void *)admitted, 4096);
}

static int lock_in_child(int timeout_s)
{
	pid_t p = fork();
	if (p == 0) {
		alarm((unsigned)timeout_s);
		struct goman_err e = GOMAN_ERR_INIT;
		struct gm_state *s = gm_state_open(path, &e);
		if (!s)
			_exit(3);
		struct gm_slot *sl = gm_state_slot(s, "ec2|us-east-1|http://lock");
		if (gm_state_lock(s, sl) < 0)
			_exit(4);
		gm_state_unlock(s, sl);
		gm_state_close(s);
		_exit(0);
	}
	int ws;
	waitpid(p, &ws, 0);
	if (WIFSIGNALED(ws))
		return -WTERMSIG(ws);
	return WEXITSTATUS(ws);
}

static void a_lock_holder_killed_by_sigkill_does_not_block_the_others(void **st)
{
	int pfd[2];
	assert_int_equal(pipe(pfd), 0);
	pid_t holder = fork();
	if (holder == 0) {
		struct goman_err e = GOMAN_ERR_INIT;
		struct gm_state *s = gm_state_open(path, &e);
		struct gm_slot *sl = s ? gm_state_slot(s, "ec2|us-east-1|http://lock") : NULL;
		if (!sl || gm_state_lock(s, sl) < 0)
			_exit(1);
		ssize_t w = write(pfd[1], "L", 1);
		(void)w;
		for (;;)
			pause();
	}
	char c;
	assert_int_equal(read(pfd[0], &c, 1), 1);
	/* held: another process waiting for it is still waiting after a second */
	assert_int_equal(lock_in_child(1), -SIGALRM);
	kill(holder, SIGKILL);
	waitpid(holder, NULL, 0);
	int64_t t0 = goman_mono_ms();
	assert_int_equal(lock_in_child(1), 0);
	assert_true(goman_mono_ms() - t0 < 1000);
	close(pfd[0]);
	close(pfd[1]);
}

static void processes_killed_mid_update_leave_a_usable_state(void **st)
{
	for (int round = 0; round < 3; round++) {
		pid_t kids[4];
		for (int i = 0; i < 4; i++) {
			kids[i] = fork();
			if (kids[i] == 0) {
				struct goman_guard *g = mkguard();
				struct goman_err thr = GOMAN_ERR_INIT, e = GOMAN_ERR_INIT;
				goman_err_clear(&thr);
				goman_err_set(&thr, GOMAN_ESERVICE, GOMAN_CLASS_THROTTLING,
					      "Throttling", "x");
				for (;;) {
					struct goman_guard_ticket t;
					int64_t w, rin;
					goman_guard_ticket_init(&t, 0);
					if (goman_guard_before(g, &t, "ssm", "us-east-1",
							       "http://k", &w, &e) == 0)
						goman_guard_after(g, &t, (i & 1) ? &thr : NULL,
								  "ssm", "SendCommand", &rin);
				}
			}
		}
		sleep_ms(30 + round * 17);
		for (int i = 0; i < 4; i++)
			kill(kids[i], SIGKILL);
		for (int i = 0; i < 4; i++)
			waitpid(kids[i], NULL, 0);
		/* the survivors: lock within a second, get a sane answer */
		int64_t t0 = goman_mono_ms();
		struct goman_guard *g = mkguard();
		struct goman_guard_ticket t;
		goman_guard_ticket_init(&t, 0);
		int64_t w = -1;
		struct goman_err e = GOMAN_ERR_INIT;
		/* admitted, or (adaptive, throttled kids) told to ask again after a sane wait */
		int rc = goman_guard_before(g, &t, "ssm", "us-east-1", "http://k", &w, &e);
		assert_true(rc == 0 || rc == 1);
		assert_true(w >= 0 && w < 60000);
		int64_t rin;
		if (rc == 0)
			goman_guard_after(g, &t, NULL, "ssm", "SendCommand", &rin);
		assert_true(goman_mono_ms() - t0 < 1000);
		goman_guard_free(g);
	}
}

static void a_damaged_or_foreign_header_is_reset(void **st)
{
	struct goman_err e = GOMAN_ERR_INIT;
	struct gm_state *s = gm_state_open(path, &e);
	assert_non_null(s);
	struct gm_slot *sl = gm_state_slot(s, "x|y|z");
	atomic_store(&sl->breaker, 1); /* open */
	gm_state_close(s);
	FILE *f = fopen(path, "r+");
	fputs("garbage!", f);
	fclose(f);
	s = gm_state_open(path, &e);
	assert_non_null(s);
	sl = gm_state_slot(s, "x|y|z");
	assert_int_equal(atomic_load(&sl->breaker), 0);
	gm_state_close(s);
}

/* a child with a guard on the file sees it cut to nothing, then carries on calling:
 * before, the next touch of the mapping was a SIGBUS */
static void a_state_file_cut_short_while_mapped_leaves_breakers_of_the_process_own(void **st)
{
	pid_t p = fork();
	if (p == 0) {
		struct goman_guard *g = mkguard();
		struct goman_err bad = GOMAN_ERR_INIT, e = GOMAN_ERR_INIT;
		goman_err_clear(&bad);
		goman_err_set(&bad, GOMAN_ETRANSPORT, GOMAN_CLASS_TRANSIENT, "ConnectionRefused",
			      "x");
		struct goman_guard_ticket t;
		int64_t w, rin;
		goman_guard_ticket_init(&t, 0);
		if (goman_guard_before(g, &t, "ec2", "eu-west-1", "http://cut", &w, &e) != 0)
			_exit(2);
		if (truncate(path, 0) != 0)
			_exit(3);
		goman_guard_after(g, &t, &bad, "ec2", "DescribeRegions", &rin);
		/* the breaker still works, per process now: the threshold (3) opens it */
		for (int i = 0; i < 2; i++) {
			goman_guard_ticket_init(&t, 0);
			if (goman_guard_before(g, &t, "ec2", "eu-west-1", "http://cut", &w, &e) !=
			    0)
				_exit(4);
			goman_guard_after(g, &t, &bad, "ec2", "DescribeRegions", &rin);
		}
		goman_guard_ticket_init(&t, 0);
		int rc = goman_guard_before(g, &t, "ec2", "eu-west-1", "http://cut", &w, &e);
		goman_guard_free(g);
		_exit(rc == -1 && e.rc == GOMAN_ECIRCUIT ? 0 : 5);
	}
	int ws;
	assert_int_equal(waitpid(p, &ws, 0), p);
	if (WIFSIGNALED(ws))
		fail_msg("the child died of signal %d", WTERMSIG(ws));
	assert_int_equal(WEXITSTATUS(ws), 0);
	/* the next process makes the file whole again and shares it */
	struct goman_err e = GOMAN_ERR_INIT;
	struct gm_state *s = gm_state_open(path, &e);
	assert_non_null(s);
	struct stat sb;
	assert_int_equal(stat(path, &sb), 0);
	assert_true(sb.st_size >= 4096 + GM_STATE_SLOTS * 256);
	gm_state_close(s);
}

/* the same cut made by another process, while this one holds an attempt: the check that
 * runs before the next touch hears of it without a system call of its own */
static void a_state_file_cut_short_by_another_process_is_noticed_before_the_next_touch(void **st)
{
	pid_t p = fork();
	if (p == 0) {
		struct goman_guard *g = mkguard();
		struct goman_err e = GOMAN_ERR_INIT;
		struct goman_guard_ticket t;
		int64_t w, rin;
		goman_guard_ticket_init(&t, 0);
		if (goman_guard_before(g, &t, "ec2", "eu-west-1", "http://cut2", &w, &e) != 0)
			_exit(2);
		pid_t cutter = fork();
		if (cutter == 0)
			_exit(truncate(path, 0) == 0 ? 0 : 1);
		int ws;
		if (waitpid(cutter, &ws, 0) != cutter || !WIFEXITED(ws) || WEXITSTATUS(ws) != 0)
			_exit(3);
		goman_guard_after(g, &t, NULL, "ec2", "DescribeRegions", &rin);
		goman_guard_ticket_init(&t, 0);
		if (goman_guard_before(g, &t, "ec2", "eu-west-1", "http://cut2", &w, &e) != 0)
			_exit(4);
		goman_guard_after(g, &t, NULL, "ec2", "DescribeRegions", &rin);
		goman_guard_free(g);
		_exit(0);
	}
	int ws;
	assert_int_equal(waitpid(p, &ws, 0), p);
	if (WIFSIGNALED(ws))
		fail_msg("the child died of signal %d", WTERMSIG(ws));
	assert_int_equal(WEXITSTATUS(ws), 0);
}

/* The check runs before every touch of the file, so it must cost no system call: a child
 * whose stat calls all fail (seccomp) makes a thousand attempts on the shared file and
 * still shares it. (A check by fstat reads the failure as a file cut short and leaves the
 * table.) */
/* The stat-free check needs an inotify watch polled through io_uring; a kernel or container
 * that refuses either (seccomp, sysctl, exhausted instances) gets the fstat fallback, which
 * the next test covers, and this one has nothing to prove there. */
static bool watch_possible(void)
{
	struct io_uring_params prm;
	memset(&prm, 0, sizeof(prm));
	int u = (int)syscall(SYS_io_uring_setup, 1, &prm);
	int w = inotify_init1(IN_CLOEXEC);
	if (u >= 0)
		close(u);
	if (w >= 0)
		close(w);
	return u >= 0 && w >= 0;
}

static void the_check_before_each_attempt_makes_no_stat_call(void **st)
{
	if (!watch_possible())
		skip();
	pid_t p = fork();
	if (p == 0) {
		struct goman_guard *g = mkguard();
		struct goman_err e = GOMAN_ERR_INIT;
		struct goman_guard_ticket t;
		int64_t w, rin;
		goman_guard_ticket_init(&t, 0);
		if (goman_guard_before(g, &t, "ec2", "eu-west-1", "http://fast", &w, &e) != 0)
			_exit(2);
		goman_guard_after(g, &t, NULL, "ec2", "DescribeRegions", &rin);
		struct sock_filter f[] = {
			BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
			BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_fstat, 3, 0),
			BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_newfstatat, 2, 0),
			BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_statx, 1, 0),
			BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
			BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EIO),
		};
		struct sock_fprog prog = {.len = sizeof(f) / sizeof(f[0]), .filter = f};
		if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 ||
		    prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) != 0)
			_exit(3);
		struct stat sb;
		if (fstat(0, &sb) == 0)
			_exit(4); /* the filter is not in force: the test would prove nothing */
		for (int i = 0; i < 1000; i++) {
			goman_guard_ticket_init(&t, 0);
			if (goman_guard_before(g, &t, "ec2", "eu-west-1", "http://fast", &w, &e) !=
			    0)
				_exit(5);
			goman_guard_after(g, &t, NULL, "ec2", "DescribeRegions", &rin);
		}
		/* still on the shared table: the breaker it opens now is everyone's */
		struct goman_err bad = GOMAN_ERR_INIT;
		goman_err_clear(&bad);
		goman_err_set(&bad, GOMAN_ETRANSPORT, GOMAN_CLASS_TRANSIENT, "ConnectionRefused",
			      "x");
		for (int i = 0; i < 3; i++) {
			goman_guard_ticket_init(&t, 0);
			if (goman_guard_before(g, &t, "ec2", "eu-west-1", "http://fast", &w, &e) !=
			    0)
				_exit(6);
			goman_guard_after(g, &t, &bad, "ec2", "DescribeRegions", &rin);
		}
		goman_guard_free(g);
		_exit(0);
	}
	int ws;
	assert_int_equal(waitpid(p, &ws, 0), p);
	if (WIFSIGNALED(ws))
		fail_msg("the child died of signal %d", WTERMSIG(ws));
	assert_int_equal(WEXITSTATUS(ws), 0);
	struct goman_guard *g = mkguard();
	assert_int_equal(goman_guard_breaker_state(g, "ec2", "eu-west-1", "http://fast"),
			 GOMAN_BREAKER_OPEN);
	goman_guard_free(g);
}

/* where the kernel refuses the watch (io_uring_setup fails here, as under a seccomp
 * filter that blocks io_uring), each check goes back to fstat: a cut is still seen */
static void without_the_watch_a_cut_is_still_seen_before_the_next_touch(void **st)
{
	pid_t p = fork();
	if (p == 0) {
		struct sock_filter f[] = {
			BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
			BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_io_uring_setup, 1, 0),
			BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
			BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS),
		};
		struct sock_fprog prog = {.len = sizeof(f) / sizeof(f[0]), .filter = f};
		if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 ||
		    prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) != 0)
			_exit(3);
		struct goman_err e = GOMAN_ERR_INIT;
		struct gm_state *s = gm_state_open(path, &e);
		if (!s)
			_exit(2);
		struct gm_slot *sl = gm_state_slot(s, "ec2|eu-west-1|http://nowatch");
		gm_state_check(s);
		if (gm_state_detached(s))
			_exit(4);
		if (truncate(path, 0) != 0)
			_exit(5);
		gm_state_check(s);
		if (!gm_state_detached(s))
			_exit(6);
		atomic_store(&sl->breaker, 0); /* private memory now: no SIGBUS */
		gm_state_close(s);
		_exit(0);
	}
	int ws;
	assert_int_equal(waitpid(p, &ws, 0), p);
	if (WIFSIGNALED(ws))
		fail_msg("the child died of signal %d", WTERMSIG(ws));
	assert_int_equal(WEXITSTATUS(ws), 0);
}

/* binaries from before the shared caps use goman/breakers, a smaller layout that each
 * kind would reset for the other: the default file has another name */
static void the_default_state_file_is_not_the_one_older_binaries_use(void **st)
{
	char run[400], old[450], buf[512];
	snprintf(run, sizeof(run), "%s/xdg", dir);
	snprintf(old, sizeof(old), "%s/goman/breakers", run);
	char *saved = getenv("XDG_RUNTIME_DIR") ? strdup(getenv("XDG_RUNTIME_DIR")) : NULL;
	char *saved_sf = getenv("GOMAN_STATE_FILE") ? strdup(getenv("GOMAN_STATE_FILE")) : NULL;
	unsetenv("GOMAN_STATE_FILE");
	setenv("XDG_RUNTIME_DIR", run, 1);
	char want[450];
	assert_int_equal(mkdir(run, 0700), 0);
	snprintf(want, sizeof(want), "%s/goman", run);
	assert_int_equal(mkdir(want, 0700), 0);
	assert_int_equal(goman_guard_state_path(buf, sizeof(buf)), 0);
	snprintf(want, sizeof(want), "%s/goman/shared-state", run);
	assert_string_equal(buf, want);
	/* an older binary's file there is left as it is */
	FILE *f = fopen(old, "w");
	assert_non_null(f);
	fputs("an older layout", f);
	fclose(f);
	struct goman_config c;
	goman_config_init(&c);
	struct goman_guard_opts o = {.config = &c};
	struct goman_guard *g = goman_guard_new(&o, NULL);
	assert_string_equal(goman_guard_state_file(g), buf);
	goman_guard_free(g);
	f = fopen(old, "r");
	assert_non_null(fgets(want, sizeof(want), f));
	fclose(f);
	assert_string_equal(want, "an older layout");
	if (saved)
		setenv("XDG_RUNTIME_DIR", saved, 1);
	else
		unsetenv("XDG_RUNTIME_DIR");
	if (saved_sf)
		setenv("GOMAN_STATE_FILE", saved_sf, 1);
	free(saved);
	free(saved_sf);
}

static void a_state_file_remade_under_a_process_is_left_to_the_new_holders(void **st)
{
	struct goman_err e = GOMAN_ERR_INIT;
	struct gm_state *old = gm_state_open(path, &e);
	assert_non_null(old);
	struct gm_slot *mine = gm_state_slot(old, "ec2|eu-west-1|");
	atomic_store(&mine->breaker, 1);
	assert_int_equal(truncate(path, 0), 0);
	struct gm_state *remade = gm_state_open(path, &e); /* grows and resets it */
	assert_non_null(remade);
	gm_state_check(old);
	assert_true(gm_state_detached(old));
	assert_false(gm_state_detached(remade));
	/* the old handle's slot stays claimed in its own table; the new file knows nothing of it */
	assert_int_equal(atomic_load(&mine->key), gm_hash("ec2|eu-west-1|"));
	assert_true(gm_state_slot(old, "ssm|eu-west-1|") != mine);
	struct gm_slot *theirs = gm_state_slot(remade, "ec2|eu-west-1|");
	assert_int_equal(atomic_load(&theirs->breaker), 0);
	atomic_store(&theirs->breaker, 0);
	gm_state_close(old);
	gm_state_close(remade);
}

static void a_state_file_in_a_directory_others_can_write_or_own_is_refused(void **st)
{
	char sub[400], file[420];
	snprintf(sub, sizeof(sub), "%s/shared", dir);
	assert_int_equal(mkdir(sub, 0700), 0);
	snprintf(file, sizeof(file), "%s/breakers", sub);
	struct goman_err e = GOMAN_ERR_INIT;
	const mode_t unsafe[] = {0777, 0770, 0702, 01777};
	for (size_t i = 0; i < 4; i++) {
		assert_int_equal(chmod(sub, unsafe[i]), 0);
		goman_err_clear(&e);
		assert_null(gm_state_open(file, &e));
		assert_non_null(strstr(e.message, "writable by group or others"));
		assert_int_equal(access(file, F_OK), -1);
	}
	assert_int_equal(chmod(sub, 0700), 0);
	if (geteuid() == 0) {
		assert_int_equal(chown(sub, 65534, 65534), 0);
		assert_null(gm_state_open(file, &e));
		assert_non_null(strstr(e.message, "owned by uid 65534"));
		assert_int_equal(chown(sub, 0, 0), 0);
	}
	struct gm_state *s = gm_state_open(file, &e);
	assert_non_null(s);
	gm_state_close(s);
	/* the guard then keeps its breakers to itself, and says so */
	assert_int_equal(chmod(sub, 0777), 0);
	struct goman_guard_opts o = {.config = &cfg, .state_file = file};
	goman_config_init(&cfg);
	struct goman_guard *g = goman_guard_new(&o, NULL);
	assert_non_null(g);
	assert_string_equal(goman_guard_state_file(g), "");
	goman_guard_free(g);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(state_file_is_private_and_made_with_its_directories),
		cmocka_unit_test(two_processes_share_one_breaker),
		cmocka_unit_test(eight_processes_on_a_dead_endpoint_stay_within_the_bound),
		cmocka_unit_test(a_lock_holder_killed_by_sigkill_does_not_block_the_others),
		cmocka_unit_test(processes_killed_mid_update_leave_a_usable_state),
		cmocka_unit_test(a_damaged_or_foreign_header_is_reset),
		cmocka_unit_test(
			a_state_file_cut_short_while_mapped_leaves_breakers_of_the_process_own),
		cmocka_unit_test(
			a_state_file_cut_short_by_another_process_is_noticed_before_the_next_touch),
		cmocka_unit_test(the_check_before_each_attempt_makes_no_stat_call),
		cmocka_unit_test(without_the_watch_a_cut_is_still_seen_before_the_next_touch),
		cmocka_unit_test(the_default_state_file_is_not_the_one_older_binaries_use),
		cmocka_unit_test(a_state_file_remade_under_a_process_is_left_to_the_new_holders),
		cmocka_unit_test(a_state_file_in_a_directory_others_can_write_or_own_is_refused),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
