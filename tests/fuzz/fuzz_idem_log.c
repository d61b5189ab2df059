/*
 * fuzz_idem_log.c - replay of the idempotency store's log (idem_file.c): any bytes as
 * <dir>/records.jsonl (torn lines, bad checksums, huge lines, forged records) must open, list,
 * begin/complete and clean up through the public API without a crash, and the store must
 * stay usable: a begin on a fresh key after all that answers NEW.
 * Input: one byte of mode, then the log's bytes.
 */
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cjson/cJSON.h>
#include "goman/idem.h"
#include "goman/log.h"
#include "fuzz.h"

static char dir[64];
static char logpath[96];

static void cleanup_dir(void)
{
	/* the store may leave a temp file of a compaction behind only on failure */
	static const char *const names[] = {"records.jsonl", ".records.tmp", ".lock", ".cleaned"};
	char p[128];
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		snprintf(p, sizeof(p), "%s/%s", dir, names[i]);
		unlink(p);
	}
	rmdir(dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	unsetenv("GOMAN_IDEMPOTENCY_TABLE");
	goman_log_set_level(GOMAN_LOG_ERROR); /* forget and cleanup say what they did */
	snprintf(dir, sizeof(dir), "/tmp/goman-fuzz-idem.XXXXXX");
	if (!mkdtemp(dir))
		abort();
	snprintf(logpath, sizeof(logpath), "%s/records.jsonl", dir);
	atexit(cleanup_dir);
	return 0;
}

static int count(const cJSON *rec, void *ctx)
{
	if (!cJSON_IsObject(rec))
		abort();
	char *text = cJSON_PrintUnformatted(rec);
	free(text);
	(*(int *)ctx)++;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fz f = {data, size};
	unsigned mode = fz_byte(&f);
	int fd = open(logpath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		abort();
	for (size_t off = 0; off < f.n;) {
		ssize_t w = write(fd, f.p + off, f.n - off);
		if (w <= 0)
			abort();
		off += (size_t)w;
	}
	close(fd);

	struct goman_err err;
	goman_err_clear(&err);
	struct goman_idem_opts o = {.dir = dir, .no_fsync = true};
	struct goman_idem *s = goman_idem_open(&o, &err);
	if (!s) {
		fprintf(stderr, "open: %s\n", err.message);
		abort(); /* a log's content never keeps the store from opening */
	}
	int n = 0;
	if (goman_idem_list(s, mode & 1, count, &n, &err) < 0)
		abort();

	/* a key the input may also name: begin must answer from the log or start afresh */
	cJSON *id = cJSON_CreateObject();
	cJSON_AddStringToObject(id, "cluster", (mode & 2) ? "demo" : "fuzz");
	struct goman_idem_ticket t = {0};
	goman_err_clear(&err);
	if (goman_idem_begin(s, "RunInstances", id, NULL, &t, &err) == 0) {
		if (t.state == GOMAN_IDEM_NEW) {
			cJSON *res = cJSON_CreateObject();
			cJSON_AddStringToObject(res, "instance_id", "i-0123456789abcdef0");
			if (goman_idem_complete(s, &t, res, &err) < 0)
				abort();
			cJSON_Delete(res);
		}
		if (mode & 4) {
			goman_err_clear(&err);
			goman_idem_forget(s, t.key, mode & 8, &err);
		}
	}
	goman_idem_ticket_clear(&t);
	cJSON_Delete(id);
	if (mode & 16) {
		size_t removed = 0;
		goman_err_clear(&err);
		goman_idem_cleanup(s, &removed, &err);
	}
	goman_idem_close(s);
	return 0;
}
