/*
 * idem_bench.c - file-backed idempotency begin+complete, ns/op, beside two peers run in the
 * same directory: the least any store shared by processes must do (two appends to an open
 * file, each under flock, the first one fdatasync'd when durable), and what a store keeping
 * a file per key cannot avoid (create a temp file and link it, then write another and rename
 * it over). Prints "name ns/op cpu-ns/op" lines; bench/32-idem.sh compares them.
 *   idem_bench [iterations] [dir]   (fsync off unless GOMAN_IDEMPOTENCY_FSYNC=1)
 */
#include <fcntl.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <cjson/cJSON.h>
#include "goman/idem.h"
#include "goman/log.h"

static double now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* user+system CPU of this process, ns: wall time on a loaded shared machine measures the
 * queue for the CPU as much as the code */
static double cpu_ns(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return ((double)ru.ru_utime.tv_sec + (double)ru.ru_stime.tv_sec) * 1e9 +
	       ((double)ru.ru_utime.tv_usec + (double)ru.ru_stime.tv_usec) * 1e3;
}

static double last_cpu;

static double bench_idem(const char *dir, int n, int durable)
{
	struct goman_idem_opts o = {.dir = dir, .table = "", .no_fsync = !durable};
	struct goman_err e;
	struct goman_idem *s = goman_idem_open(&o, &e);
	if (!s) {
		fprintf(stderr, "idem_bench: %s\n", e.message);
		exit(1);
	}
	cJSON *id = cJSON_CreateObject(), *res = cJSON_Parse("{\"instances\":[\"i-0abc\"]}");
	static int run;
	char cluster[32];
	snprintf(cluster, sizeof(cluster), "bench-%d", run++); /* fresh keys per run */
	cJSON_AddStringToObject(id, "cluster", cluster);
	cJSON *grp = cJSON_AddNumberToObject(id, "group", 0);
	double t0 = now_ns(), c0 = cpu_ns();
	for (int i = 0; i < n; i++) {
		cJSON_SetNumberValue(grp, i);
		struct goman_idem_ticket t;
		goman_err_clear(&e);
		if (goman_idem_begin(s, "RunInstances", id, NULL, &t, &e) != GOMAN_IDEM_NEW ||
		    goman_idem_complete(s, &t, res, &e) != 0) {
			fprintf(stderr, "idem_bench: %s\n", e.message);
			exit(1);
		}
		goman_idem_ticket_clear(&t);
	}
	double ns = (now_ns() - t0) / n;
	last_cpu = (cpu_ns() - c0) / n;
	cJSON_Delete(id);
	cJSON_Delete(res);
	goman_idem_close(s);
	return ns;
}

/* two flock'd appends of a record-sized line to an open log; the first synced if durable */
static double bench_peer_append(const char *dir, int n, int durable)
{
	char path[512], line[600];
	memset(line, 'x', sizeof(line) - 1);
	line[sizeof(line) - 1] = '\n';
	snprintf(path, sizeof(path), "%s/peer.log", dir);
	int fd = open(path, O_RDWR | O_CREAT | O_APPEND, 0600),
	    lk = open(dir, O_RDONLY | O_DIRECTORY);
	if (fd < 0 || lk < 0)
		exit(1);
	double t0 = now_ns(), c0 = cpu_ns();
	for (int i = 0; i < n; i++) {
		for (int step = 0; step < 2; step++) {
			if (flock(lk, LOCK_EX) ||
			    write(fd, line, sizeof(line)) != (ssize_t)sizeof(line) ||
			    (durable && step == 0 && fdatasync(fd)) || flock(lk, LOCK_UN))
				exit(1);
		}
	}
	last_cpu = (cpu_ns() - c0) / n;
	double ns = (now_ns() - t0) / n;
	close(fd);
	close(lk);
	return ns;
}

/* a file per key: write+link a new file, then write+rename a replacement */
static double bench_peer_files(const char *dir, int n, int durable)
{
	char tmp[512], dst[512];
	const char body[] = "{\"id\":\"x\",\"status\":\"INPROGRESS\"}\n";
	double t0 = now_ns(), c0 = cpu_ns();
	for (int i = 0; i < n; i++) {
		snprintf(dst, sizeof(dst), "%s/peer-%d", dir, i);
		for (int step = 0; step < 2; step++) {
			snprintf(tmp, sizeof(tmp), "%s/.peer-tmp", dir);
			int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
			if (fd < 0 || write(fd, body, sizeof(body) - 1) < 0 ||
			    (durable && fsync(fd)))
				exit(1);
			close(fd);
			if (step == 0 ? link(tmp, dst) : rename(tmp, dst))
				exit(1);
			if (step == 0)
				unlink(tmp);
		}
	}
	last_cpu = (cpu_ns() - c0) / n;
	return (now_ns() - t0) / n;
}

int main(int argc, char **argv)
{
	int n = argc > 1 ? (int)strtol(argv[1], NULL, 10) : 2000;
	char dir[256];
	snprintf(dir, sizeof(dir), "%s/idem_bench-XXXXXX", argc > 2 ? argv[2] : "/tmp");
	if (!mkdtemp(dir))
		return 1;
	const char *fs = getenv("GOMAN_IDEMPOTENCY_FSYNC");
	int durable = fs && !strcmp(fs, "1");
	unsetenv("GOMAN_IDEMPOTENCY_FSYNC");
	goman_log_set_level(GOMAN_LOG_ERROR);
	char sub[300];
	snprintf(sub, sizeof(sub), "%s/store", dir);
	bench_idem(sub, n / 10 + 1, durable); /* warm-up */
	double idem = bench_idem(sub, n, durable), idem_cpu = last_cpu;
	double app = bench_peer_append(dir, n, durable), app_cpu = last_cpu;
	double files = bench_peer_files(dir, n, durable), files_cpu = last_cpu;
	const char *sfx = durable ? "_fsync" : "";
	printf("idem_begin_complete%s %.0f ns/op %.0f cpu-ns/op\n", sfx, idem, idem_cpu);
	printf("peer_locked_appends%s %.0f ns/op %.0f cpu-ns/op\n", sfx, app, app_cpu);
	printf("peer_file_per_key%s %.0f ns/op %.0f cpu-ns/op\n", sfx, files, files_cpu);
	char cmd[600];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : 1;
}
