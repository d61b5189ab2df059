/*
 * fuzz_idem_log.c - replay of the idempotency store's log (idem_file.c): any bytes as
 * <dir>/records.jsonl (torn lines, bad checksums, huge lines, forged records) must open, list,
 * begin/complete and clean up through the public API without a crash, and the store must
 * stay usable: a begin on a fresh key after all that answers NEW.
 * Input: one byte of mode, then the log's bytes. With mode bit 5 every line that ends in a
 * "sum" field gets its checksum recomputed first, so mutated records pass the torn-write
 * check and reach the record parser (a forged line, as anyone who can write the directory
 * could make).
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

struct seen {
	int n;
	char first_id[65]; /* forget reads this record back through the record parser */
};

static int count(const cJSON *rec, void *ctx)
{
	struct seen *sn = ctx;
	if (!cJSON_IsObject(rec))
		abort();
	char *text = cJSON_PrintUnformatted(rec);
	free(text);
	const cJSON *id = cJSON_GetObjectItemCaseSensitive(rec, "id");
	if (!sn->n++ && cJSON_IsString(id))
		snprintf(sn->first_id, sizeof(sn->first_id), "%s", id->valuestring);
	return 0;
}

/* the store's line sum: FNV-1a 64 of the bytes before ,"sum" */
static uint64_t fnv1a(const uint8_t *p, size_t n)
{
	uint64_t h = 0xcbf29ce484222325ULL;
	for (size_t i = 0; i < n; i++)
		h = (h ^ p[i]) * 0x100000001b3ULL;
	return h;
}

/* rewrites ,"sum":"<16 hex>"} at the end of each line to the right sum */
static void fix_sums(uint8_t *p, size_t n)
{
	static const char tail[] = ",\"sum\":\"";
	static const char hexd[] = "0123456789abcdef";
	for (size_t b = 0; b < n;) {
		uint8_t *nl = memchr(p + b, '\n', n - b);
		size_t e = nl ? (size_t)(nl - p) : n;
		if (e - b >= 26 && !memcmp(p + e - 26, tail, 8) && p[e - 2] == '"' &&
		    p[e - 1] == '}') {
			uint64_t sum = fnv1a(p + b, e - b - 26);
			for (int i = 15; i >= 0; i--, sum >>= 4)
				p[e - 26 + 8 + i] = (uint8_t)hexd[sum & 15];
		}
		b = e + 1;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fz f = {data, size};
	unsigned mode = fz_byte(&f);
	uint8_t *log = malloc(f.n ? f.n : 1);
	if (!log)
		abort();
	memcpy(log, f.p, f.n);
	if (mode & 32)
		fix_sums(log, f.n);
	int fd = open(logpath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		abort();
	for (size_t off = 0; off < f.n;) {
		ssize_t w = write(fd, log + off, f.n - off);
		if (w <= 0)
			abort();
		off += (size_t)w;
	}
	close(fd);
	free(log);

	struct goman_err err;
	goman_err_clear(&err);
	struct goman_idem_opts o = {.dir = dir, .no_fsync = true};
	struct goman_idem *s = goman_idem_open(&o, &err);
	if (!s) {
		fprintf(stderr, "open: %s\n", err.message);
		abort(); /* a log's content never keeps the store from opening */
	}
	struct seen sn = {0};
	/* Lines that passed the torn-write check always list. A forged line (its sum recomputed)
	 * that is not JSON may fail the listing with an error: the sum only guards against torn
	 * writes, the directory's permissions against forgers. */
	if (goman_idem_list(s, mode & 1, count, &sn, &err) < 0 && !(mode & 32)) {
		fprintf(stderr, "list: %s\n", err.message);
		abort();
	}
	if (sn.first_id[0]) {
		goman_err_clear(&err);
		goman_idem_forget(s, sn.first_id, mode & 8, &err);
	}

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
