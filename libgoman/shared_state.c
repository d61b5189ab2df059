/*
 * shared_state.c - the per-user state file (see shared_state_int.h): create, map, validate,
 * find slots, lock a slot's adaptive part.
 *
 * Safety against kill -9: the breaker word and quota change by CAS only; the adaptive part is
 * under an OFD lock (F_OFD_SETLKW), released by the kernel with the holder's last fd; a
 * header from another boot (monotonic times meaningless) or another layout is reset under
 * the header lock. Errors: gm_state_open() returns NULL with err filled (EIO).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include "shared_state_int.h"

#define GM_MAGIC UINT64_C(0x31454154534d4f47) /* "GOMSTAE1" */
#define GM_VERSION 1
#define HDR_SIZE 4096

_Static_assert(sizeof(struct gm_slot) == 256, "slot is 256 bytes");

struct gm_header {
	uint64_t magic;
	uint32_t version, nslots;
	uint32_t slot_size, pad;
	char boot_id[48];
};

struct gm_state {
	int fd;
	size_t size;
	unsigned char *map;
	struct gm_slot *slots;
	char path[512];
};

uint64_t gm_hash(const char *s)
{
	uint64_t h = UINT64_C(1469598103934665603);
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * UINT64_C(1099511628211);
	return h ? h : 1;
}

static void boot_id(char *buf, size_t len)
{
	memset(buf, 0, len);
	FILE *f = fopen("/proc/sys/kernel/random/boot_id", "re");
	if (!f)
		return;
	if (!fgets(buf, (int)len, f))
		buf[0] = 0;
	fclose(f);
	buf[strcspn(buf, "\n")] = 0;
}

static int lock_range(int fd, off_t start, int type)
{
	struct flock fl = {.l_type = (short)type, .l_whence = SEEK_SET, .l_start = start, .l_len = 1};
#ifdef F_OFD_SETLKW
	int cmd = F_OFD_SETLKW;
#else
	int cmd = F_SETLKW;
#endif
	while (fcntl(fd, cmd, &fl) < 0) {
		if (errno != EINTR)
			return -1;
	}
	return 0;
}

static int mkdirs(const char *path)
{
	char tmp[512];
	snprintf(tmp, sizeof(tmp), "%s", path);
	char *slash = strrchr(tmp, '/');
	if (!slash || slash == tmp)
		return 0;
	*slash = 0;
	for (char *p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = 0;
		if (mkdir(tmp, 0700) < 0 && errno != EEXIST)
			return -1;
		*p = '/';
	}
	if (mkdir(tmp, 0700) < 0 && errno != EEXIST)
		return -1;
	return 0;
}

struct gm_state *gm_state_open(const char *path, struct goman_err *err)
{
	struct gm_state *s = calloc(1, sizeof(*s));
	if (!s) {
		goman_err_set(err, GOMAN_ENOMEM, GOMAN_CLASS_NONE, "NoMemory", "out of memory");
		return NULL;
	}
	s->fd = -1;
	snprintf(s->path, sizeof(s->path), "%s", path);
	s->size = HDR_SIZE + GM_STATE_SLOTS * sizeof(struct gm_slot);
	if (mkdirs(path) < 0)
		goto fail;
	s->fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (s->fd < 0)
		goto fail;
	struct stat st;
	if (fstat(s->fd, &st) < 0)
		goto fail;
	if (st.st_uid != geteuid() || !S_ISREG(st.st_mode)) {
		errno = EPERM;
		goto fail;
	}
	if (lock_range(s->fd, 0, F_WRLCK) < 0)
		goto fail;
	if ((size_t)st.st_size < s->size && ftruncate(s->fd, (off_t)s->size) < 0) {
		lock_range(s->fd, 0, F_UNLCK);
		goto fail;
	}
	s->map = mmap(NULL, s->size, PROT_READ | PROT_WRITE, MAP_SHARED, s->fd, 0);
	if (s->map == MAP_FAILED) {
		s->map = NULL;
		lock_range(s->fd, 0, F_UNLCK);
		goto fail;
	}
	struct gm_header *h = (struct gm_header *)s->map;
	char bid[48];
	boot_id(bid, sizeof(bid));
	if (h->magic != GM_MAGIC || h->version != GM_VERSION || h->nslots != GM_STATE_SLOTS ||
	    h->slot_size != sizeof(struct gm_slot) || memcmp(h->boot_id, bid, sizeof(bid)) != 0) {
		/* new file, other layout, or written before a reboot: start clean */
		memset(s->map + HDR_SIZE, 0, s->size - HDR_SIZE);
		h->version = GM_VERSION;
		h->nslots = GM_STATE_SLOTS;
		h->slot_size = sizeof(struct gm_slot);
		memcpy(h->boot_id, bid, sizeof(bid));
		__atomic_store_n(&h->magic, GM_MAGIC, __ATOMIC_RELEASE);
	}
	lock_range(s->fd, 0, F_UNLCK);
	s->slots = (struct gm_slot *)(s->map + HDR_SIZE);
	return s;
fail:
	goman_err_set(err, GOMAN_EIO, GOMAN_CLASS_NONE, "StateFile", "state file '%s': %s", path,
		      strerror(errno));
	gm_state_close(s);
	return NULL;
}

void gm_state_close(struct gm_state *s)
{
	if (!s)
		return;
	if (s->map)
		munmap(s->map, s->size);
	if (s->fd >= 0)
		close(s->fd);
	free(s);
}

struct gm_slot *gm_state_slot(struct gm_state *s, const char *name)
{
	uint64_t h = gm_hash(name);
	for (unsigned i = 0; i < GM_STATE_SLOTS; i++) {
		struct gm_slot *sl = &s->slots[(h + i) % GM_STATE_SLOTS];
		uint64_t k = atomic_load_explicit(&sl->key, memory_order_acquire);
		if (k == h)
			return sl;
		if (k == 0) {
			uint64_t zero = 0;
			if (atomic_compare_exchange_strong(&sl->key, &zero, h)) {
				/* the name is for people reading the file; the hash is the key */
				snprintf(sl->name, sizeof(sl->name), "%s", name);
				return sl;
			}
			if (zero == h)
				return sl;
		}
	}
	return NULL;
}

int gm_state_lock(struct gm_state *s, struct gm_slot *slot)
{
	off_t off = (off_t)((unsigned char *)slot - s->map);
	return lock_range(s->fd, off, F_WRLCK);
}

void gm_state_unlock(struct gm_state *s, struct gm_slot *slot)
{
	off_t off = (off_t)((unsigned char *)slot - s->map);
	lock_range(s->fd, off, F_UNLCK);
}

const char *gm_state_path(const struct gm_state *s)
{
	return s ? s->path : "";
}
