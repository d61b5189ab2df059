/*
 * fuzz_state_slot.c - the per-user state file (shared_state.c) as another process, a crash
 * mid-update or a damaged disk may leave it: any bytes as the slot table behind a valid
 * header, then slots found or claimed by name and their breaker word, retry quota and
 * adaptive limiter used as goman-api would. Readers validate what they read: a damaged slot
 * is repaired or refused, never a crash, a hang, or undefined arithmetic.
 * Input: a mode byte (bit 0: keep the header valid), then the bytes after the header.
 */
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>
#include "goman/breaker.h"
#include "goman/retry.h"
#include "shared_state_int.h"
#include "fuzz.h"

#define HDR_SIZE 4096

static char dir[64];
static char path[96];
static unsigned char header[HDR_SIZE];

static void cleanup_dir(void)
{
	unlink(path);
	rmdir(dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	snprintf(dir, sizeof(dir), "/tmp/goman-fuzz-state.XXXXXX");
	if (!mkdtemp(dir))
		abort();
	snprintf(path, sizeof(path), "%s/state", dir);
	atexit(cleanup_dir);
	/* a header the library itself wrote, so the fuzzed slots are read, not reset */
	struct goman_err err;
	goman_err_clear(&err);
	struct gm_state *s = gm_state_open(path, &err);
	if (!s)
		abort();
	gm_state_close(s);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || read(fd, header, sizeof(header)) != (ssize_t)sizeof(header))
		abort();
	close(fd);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fz f = {data, size};
	unsigned mode = fz_byte(&f);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		abort();
	unsigned char hdr[HDR_SIZE];
	memcpy(hdr, header, sizeof(hdr));
	if (!(mode & 1) && f.n) /* a damaged header too */
		hdr[fz_byte(&f) % 64] ^= (unsigned char)fz_byte(&f);
	size_t max = GM_STATE_SLOTS * sizeof(struct gm_slot);
	size_t n = f.n < max ? f.n : max;
	if (write(fd, hdr, sizeof(hdr)) != (ssize_t)sizeof(hdr) ||
	    (n && write(fd, f.p, n) != (ssize_t)n))
		abort();
	close(fd);

	struct goman_err err;
	goman_err_clear(&err);
	struct gm_state *s = gm_state_open(path, &err);
	if (!s)
		abort();
	struct goman_breaker_params bp = {.failure_threshold = 5,
					  .recovery_ms = 60000,
					  .max_concurrent = 8,
					  .success_threshold = 2,
					  .probes = 1};
	struct goman_adaptive_params ap;
	goman_adaptive_params_default(&ap);
	static const char *const names[] = {"ec2|us-east-1|", "ssm|eu-west-1|", "sts|us-east-1|",
					    "s3|us-west-2|http://127.0.0.1:5000"};
	int64_t now = 1000000 + (int64_t)(mode >> 1) * 977;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		struct gm_slot *sl = gm_state_slot(s, names[i]);
		if (!sl)
			continue; /* a table full of other keys: the caller goes per-process */
		struct goman_breaker_view v;
		goman_breaker_unpack(atomic_load(&sl->breaker), &v);
		struct goman_breaker_pass pass;
		struct goman_breaker_change chg;
		int64_t retry_in = 0;
		if (goman_breaker_admit(&sl->breaker, &bp, now, &pass, &retry_in, &chg)) {
			goman_breaker_record(&sl->breaker, &bp, &pass,
					     (mode & 2) ? GOMAN_BREAKER_FAILURE
							: GOMAN_BREAKER_SUCCESS,
					     now + 5, &chg);
		} else if (retry_in < 0) {
			abort();
		}
		if (goman_quota_acquire(&sl->quota, 500, 5))
			goman_quota_release(&sl->quota, 5);
		goman_quota_available(&sl->quota, 500);
		if (gm_state_lock(s, sl) == 0) {
			goman_adaptive_acquire(&sl->adaptive, &ap, now);
			goman_adaptive_update(&sl->adaptive, &ap, mode & 4, now + 10);
			goman_adaptive_acquire(&sl->adaptive, &ap, now + 20);
			gm_state_unlock(s, sl);
		}
	}
	gm_state_close(s);
	return 0;
}
