/*
 * resilience_bench.c - ns/op and allocations/op of the per-attempt resilience path:
 *   1. breaker admit + record + retry decision (pure, in-process word)  target <= 150 ns, 0 allocs
 *   2. guard before + after, in-process                               (reported)
 *   3. guard before + after on the shared state file (standard mode)  target <= 1000 ns
 *   4. the same in adaptive mode (adds the fcntl-locked limiter)      (reported)
 * Peer, same run: one monotonic clock read (clock_gettime), to turn ns into a ratio that
 * travels between machines. Allocations are counted by wrapping malloc and friends.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "goman/breaker.h"
#include "goman/clock.h"
#include "goman/config.h"
#include "goman/guard.h"
#include "goman/retry.h"

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void __libc_free(void *);
static unsigned long allocs;
void *malloc(size_t n)
{
	allocs++;
	return __libc_malloc(n);
}
void *calloc(size_t a, size_t b)
{
	allocs++;
	return __libc_calloc(a, b);
}
void *realloc(void *p, size_t n)
{
	allocs++;
	return __libc_realloc(p, n);
}
void free(void *p)
{
	__libc_free(p);
}

static double now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static volatile int64_t sink;

static double bench_peer(long n)
{
	double t0 = now_ns();
	for (long i = 0; i < n; i++)
		sink += goman_mono_ms();
	return (now_ns() - t0) / (double)n;
}

static double bench_pure(long n, unsigned long *al, int read_clock)
{
	_Atomic uint64_t w = 0;
	struct goman_breaker_params bp = {5, 45000, 8, 2, 2};
	const struct goman_retry_policy *pol = goman_retry_policy_named("aws");
	struct goman_rng rng;
	goman_rng_seed(&rng, 1);
	unsigned long a0 = allocs;
	double t0 = now_ns();
	for (long i = 0; i < n; i++) {
		struct goman_breaker_pass ps;
		struct goman_breaker_change c;
		int64_t in, d;
		int64_t now = read_clock ? goman_mono_ms() : 1000000 + i / 1000;
		goman_breaker_admit(&w, &bp, now, &ps, &in, &c);
		goman_breaker_record(&w, &bp, &ps,
				     (i & 1) ? GOMAN_BREAKER_SUCCESS : GOMAN_BREAKER_NEUTRAL, now,
				     &c);
		struct goman_retry_in ri = {.policy = pol,
					    .cls = GOMAN_CLASS_THROTTLING,
					    .attempt = 1 + (int)(i & 3),
					    .now_ms = now,
					    .started_ms = now,
					    .retry_after_ms = -1};
		goman_retry_decide(&ri, &rng, &d);
		sink += d;
	}
	double r = (now_ns() - t0) / (double)n;
	*al = allocs - a0;
	return r;
}

static double bench_guard(struct goman_guard *g, long n, unsigned long *al)
{
	struct goman_err e, thr;
	goman_err_clear(&thr);
	goman_err_set(&thr, GOMAN_ESERVICE, GOMAN_CLASS_THROTTLING, "RequestLimitExceeded", "x");
	int64_t w, rin;
	struct goman_guard_ticket t;
	/* warm: the entry is allocated on first sight */
	goman_guard_ticket_init(&t, 0);
	goman_guard_before(g, &t, "ec2", "us-east-1", "https://ec2.us-east-1.amazonaws.com", &w,
			   &e);
	goman_guard_after(g, &t, NULL, "ec2", "DescribeInstances", &rin);
	unsigned long a0 = allocs;
	double t0 = now_ns();
	for (long i = 0; i < n; i++) {
		goman_guard_ticket_init(&t, 0);
		goman_guard_before(g, &t, "ec2", "us-east-1", "https://ec2.us-east-1.amazonaws.com",
				   &w, &e);
		/* one attempt in 8 is throttled and decided for a retry, the rest succeed */
		goman_guard_after(g, &t, (i & 7) ? NULL : &thr, "ec2", "DescribeInstances", &rin);
	}
	double r = (now_ns() - t0) / (double)n;
	*al = allocs - a0;
	return r;
}

int main(int argc, char **argv)
{
	long n = argc > 1 ? strtol(argv[1], NULL, 10) : 2000000;
	unsetenv("GOMAN_EVENTS");
	/* the state file's directory must be the user's own (a shared /tmp is refused and the
	 * guard would fall back to per-process breakers, measuring the wrong thing) */
	char dir[] = "/tmp/goman-bench-XXXXXX", path[64];
	if (!mkdtemp(dir))
		return 1;
	snprintf(path, sizeof(path), "%s/breakers", dir);
	struct goman_config cfg;
	goman_config_init(&cfg);
	cfg.retry_mode = GOMAN_RETRY_STANDARD;
	struct goman_guard_opts lo = {.config = &cfg, .no_shared_state = true, .seed = 1};
	struct goman_guard *gl = goman_guard_new(&lo, NULL);
	struct goman_guard_opts so = {.config = &cfg, .state_file = path, .seed = 1};
	struct goman_guard *gs = goman_guard_new(&so, NULL);
	struct goman_guard_opts po = {
		.config = &cfg, .state_file = path, .no_shared_caps = true, .seed = 1};
	struct goman_guard *gp = goman_guard_new(&po, NULL);
	struct goman_config acfg = cfg;
	acfg.retry_mode = GOMAN_RETRY_ADAPTIVE;
	struct goman_guard_opts ao = {.config = &acfg, .state_file = path, .seed = 1};
	struct goman_guard *ga = goman_guard_new(&ao, NULL);
	if (!gl || !gs || !gp || !ga)
		return 1;

	unsigned long a1, a2, a3, a4, a5;
	double peer = bench_peer(n);
	unsigned long a0;
	double logic = bench_pure(n, &a0, 0);
	double pure = bench_pure(n, &a1, 1);
	a1 += a0;
	double gin = bench_guard(gl, n, &a2);
	double gsh = bench_guard(gs, n, &a3);
	double gpp = bench_guard(gp, n, &a5);
	double gad = bench_guard(ga, n / 4, &a4);
	printf("peer  monotonic clock read              %8.1f ns/op\n", peer);
	printf("logic breaker check+record+retry decide %8.1f ns/op %5.2f allocs/op  x%.1f peer  "
	       "target <= 150 ns, 0 allocs: %s\n",
	       logic, (double)a0 / n, logic / peer, logic <= 150 && a0 == 0 ? "PASS" : "FAIL");
	printf("  ... plus one clock read per op        %8.1f ns/op %5.2f allocs/op  x%.1f peer  "
	       "(%s incl. the clock)\n",
	       pure, (double)a1 / n, pure / peer, pure <= 150 ? "PASS" : "over target");
	printf("guard before+after, in-process          %8.1f ns/op %5.2f allocs/op  x%.1f peer\n",
	       gin, (double)a2 / n, gin / peer);
	printf("guard before+after, shared state file   %8.1f ns/op %5.2f allocs/op  x%.1f peer  "
	       "target <= 1000 ns: %s\n",
	       gsh, (double)a3 / n, gsh / peer, gsh <= 1000 && a3 == 0 ? "PASS" : "FAIL");
	printf("  ... with MaxConcurrent per process    %8.1f ns/op %5.2f allocs/op  x%.1f peer  "
	       "(shared caps cost %+.1f ns/op)\n",
	       gpp, (double)a5 / n, gpp / peer, gsh - gpp);
	printf("guard before+after, shared + adaptive   %8.1f ns/op %5.2f allocs/op  x%.1f peer  "
	       "(two fcntl lock pairs)\n",
	       gad, (double)a4 / (n / 4), gad / peer);
	printf("seed claim BenchmarkCombinedSystems     1200 ns/op 5 allocs/op "
	       "(breaker+retry+idempotency)\n");
	goman_guard_free(gl);
	goman_guard_free(gs);
	goman_guard_free(gp);
	goman_guard_free(ga);
	unlink(path);
	rmdir(dir);
	return logic <= 150 && a1 == 0 && gsh <= 1000 && a3 == 0 ? 0 : 1;
}
