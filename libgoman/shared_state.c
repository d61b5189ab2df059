/*
 * shared_state.c - the per-user state file (see shared_state_int.h): create, map, validate,
 * find slots, lock a slot's adaptive part.
 *
 * Safety against kill -9: the breaker word and quota change by CAS only; the adaptive part is
 * under an OFD lock (F_OFD_SETLKW), released by the kernel with the holder's last fd; a
 * header from another boot (monotonic times meaningless) or another layout is reset under
 * the header lock. Errors: gm_state_open() returns NULL with err filled (EIO).
 *
 * Safety against a file that cannot back its mapping: a page of a MAP_SHARED mapping past
 * the file's end, or a hole the filesystem cannot fill (a full tmpfs), raises SIGBUS on
 * first touch. So the file is made whole with posix_fallocate (not a sparse ftruncate) and
 * its size checked under the header lock before the mapping is trusted; a file that cannot
 * be made whole is not mapped (the caller falls back to per-process breakers). A file cut
 * short later (by one of the user's own processes: nobody else can write it) is noticed by
 * gm_state_check(), which callers run before they touch their slots: the mapping is then
 * replaced, at the same address, by private memory, so slot pointers stay valid and the
 * process carries on with breakers of its own. A cut landing between that check and the
 * next touch still raises SIGBUS; closing that window would take a SIGBUS handler, which a
 * library must not install behind its caller's back.
 *
 * The check runs on every attempt, so it must not cost a system call. The kernel tells us
 * instead: an inotify watch on the file (a truncation is an IN_MODIFY; so is another
 * process's posix_fallocate, which is how a re-made file grows back) with a poll armed on
 * it through io_uring. The poll's completion lands in the io_uring completion ring, mapped
 * in our memory, before a truncating system call of ours returns (a ring set up without
 * COOP_TASKRUN runs its task work then), and at once after one of another process (the
 * kernel kicks us); the check compares the ring's head and tail and takes the slow path
 * (fstat, keys, re-arm) only when an event is there. (Linux AIO's poll is no substitute: it
 * completes inotify wake-ups later, from a worker.) Where the kernel refuses the watch or
 * the ring (inotify instances used up, io_uring disabled by sysctl or seccomp), every
 * check does the fstat, as before. A process forked with an open state shares the ring
 * with its parent and sees the parent's events only: a guard does not cross fork.
 *
 * Safety against other users: the file's directory and every directory above it must be
 * owned by the user or root and not writable by group or others (above the file's own
 * directory, a sticky directory such as /tmp is allowed: others cannot rename in it), as
 * OpenSSH demands of ~/.ssh; the file is opened relative to the checked directory, without
 * following a symlink, and must be the user's own regular file.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/io_uring.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "goman/log.h"
#include "shared_state_int.h"
#include "bytes_int.h"
#include "proc_int.h"

#define GM_MAGIC UINT64_C(0x31454154534d4f47) /* "GOMSTAE1" */
#define GM_VERSION 2
#define HDR_SIZE 4096

_Static_assert(sizeof(struct gm_slot) == 1024, "slot is 1 KiB");

struct gm_header {
	uint64_t magic;
	uint32_t version, nslots;
	uint32_t slot_size, pad;
	char boot_id[48];
};

struct gm_state {
	int fd;
	/* the truncation watch: inotify on the file, polled through io_uring. cq_tail NULL =
	 * no watch, fstat on every check */
	int ifd, uring;
	void *ring_map;
	struct io_uring_sqe *sqes;
	size_t ring_len, sqes_len;
	unsigned *sq_tail, *sq_mask, *sq_array, *cq_head, *cq_tail;
	size_t size;
	unsigned char *map;
	struct gm_slot *slots;
	bool detached;  /* the file was cut short: the mapping is private memory now */
	uint64_t owner; /* of the cap units this process takes */
	/* the slots handed out, and their keys: a detached table keeps them claimed, and a
	 * key that changed under us means the file was re-made by someone else */
	unsigned nhanded;
	uint16_t handed[GM_STATE_SLOTS];
	uint64_t handed_key[GM_STATE_SLOTS];
	char path[512];
};

uint64_t gm_hash(const char *s)
{
	uint64_t h = gm_fnv1a(s, strlen(s));
	return h ? h : 1; /* 0 marks an empty slot */
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
	struct flock fl = {
		.l_type = (short)type, .l_whence = SEEK_SET, .l_start = start, .l_len = 1};
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

/* Why dir (checked as a whole path) is unsafe, in why; 0 when it is safe. */
static int dir_unsafe(const char *real, struct stat *last, char *why, size_t whylen)
{
	char p[PATH_MAX];
	snprintf(p, sizeof(p), "%s", real);
	uid_t me = geteuid();
	for (bool first = true;; first = false) {
		struct stat st;
		if (stat(p, &st) < 0) {
			snprintf(why, whylen, "directory '%s': %s", p, strerror(errno));
			return -1;
		}
		if (first)
			*last = st;
		if (!S_ISDIR(st.st_mode)) {
			snprintf(why, whylen, "'%s' is not a directory", p);
			return -1;
		}
		if (st.st_uid != me && st.st_uid != 0) {
			snprintf(why, whylen,
				 "directory '%s' is owned by uid %lu, not by uid %lu or root", p,
				 (unsigned long)st.st_uid, (unsigned long)me);
			return -1;
		}
		if ((st.st_mode & 022) && (first || !(st.st_mode & S_ISVTX))) {
			snprintf(why, whylen,
				 "directory '%s' is writable by group or others (mode %04o)", p,
				 (unsigned)(st.st_mode & 07777));
			return -1;
		}
		char *slash = strrchr(p, '/');
		if (!slash || (slash == p && !p[1]))
			return 0;
		slash[slash == p ? 1 : 0] = '\0';
	}
}

int gm_private_dir(const char *dir, char *why, size_t whylen)
{
	char real[PATH_MAX];
	struct stat checked, st;
	if (!realpath(dir, real)) {
		int e = errno;
		snprintf(why, whylen, "directory '%s': %s", dir, strerror(e));
		errno = e;
		return -1;
	}
	if (dir_unsafe(real, &checked, why, whylen) < 0) {
		errno = EPERM;
		return -1;
	}
	int fd = open(real, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) < 0 || st.st_dev != checked.st_dev ||
	    st.st_ino != checked.st_ino) {
		int e = fd < 0 ? errno : EAGAIN;
		snprintf(why, whylen, "directory '%s': %s", real,
			 fd < 0 ? strerror(e) : "replaced while it was checked");
		if (fd >= 0)
			close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

static void watch_stop(struct gm_state *s)
{
	if (s->ring_map)
		munmap(s->ring_map, s->ring_len);
	if (s->sqes)
		munmap(s->sqes, s->sqes_len);
	if (s->uring >= 0)
		close(s->uring);
	if (s->ifd >= 0)
		close(s->ifd);
	s->ring_map = NULL;
	s->sqes = NULL;
	s->uring = s->ifd = -1;
	s->cq_head = s->cq_tail = NULL;
}

static void watch_drain(struct gm_state *s)
{
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	while (read(s->ifd, buf, sizeof(buf)) > 0)
		;
}

/* arms a one-shot poll for POLLIN on the inotify fd; without it every check falls back
 * to fstat */
static void watch_arm(struct gm_state *s)
{
	unsigned tail = *s->sq_tail, i = tail & *s->sq_mask;
	struct io_uring_sqe *e = &s->sqes[i];
	memset(e, 0, sizeof(*e));
	e->opcode = IORING_OP_POLL_ADD;
	e->fd = s->ifd;
	e->poll32_events = POLLIN;
	s->sq_array[i] = i;
	__atomic_store_n(s->sq_tail, tail + 1, __ATOMIC_RELEASE);
	if (syscall(SYS_io_uring_enter, s->uring, 1, 0, 0, NULL, 0) != 1)
		watch_stop(s);
}

static bool watch_map(struct gm_state *s, const struct io_uring_params *p)
{
	size_t sq = p->sq_off.array + p->sq_entries * sizeof(unsigned);
	size_t cq = p->cq_off.cqes + p->cq_entries * sizeof(struct io_uring_cqe);
	if (!(p->features & IORING_FEAT_SINGLE_MMAP))
		return false;
	s->ring_len = sq > cq ? sq : cq;
	s->sqes_len = p->sq_entries * sizeof(struct io_uring_sqe);
	void *r = mmap(NULL, s->ring_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE,
		       s->uring, IORING_OFF_SQ_RING);
	void *q = mmap(NULL, s->sqes_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE,
		       s->uring, IORING_OFF_SQES);
	s->ring_map = r == MAP_FAILED ? NULL : r;
	s->sqes = q == MAP_FAILED ? NULL : q;
	if (!s->ring_map || !s->sqes)
		return false;
	unsigned char *m = s->ring_map;
	s->sq_tail = (unsigned *)(m + p->sq_off.tail);
	s->sq_mask = (unsigned *)(m + p->sq_off.ring_mask);
	s->sq_array = (unsigned *)(m + p->sq_off.array);
	s->cq_head = (unsigned *)(m + p->cq_off.head);
	s->cq_tail = (unsigned *)(m + p->cq_off.tail);
	return true;
}

/* The watch must be in place before the size is checked, so that no cut falls between. */
static void watch_start(struct gm_state *s)
{
	char fdpath[64];
	struct io_uring_params p;
	memset(&p, 0, sizeof(p));
	s->ifd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (s->ifd < 0)
		return;
	/* through the fd: the inode that is mapped, whatever the name points at now */
	snprintf(fdpath, sizeof(fdpath), "/proc/self/fd/%d", s->fd);
	/* no IORING_SETUP_COOP_TASKRUN: the completion is posted before the truncating system
	 * call returns (ours), or at once through a kick (another process's) */
	if (inotify_add_watch(s->ifd, fdpath, IN_MODIFY) < 0 ||
	    (s->uring = (int)syscall(SYS_io_uring_setup, 2, &p)) < 0 || !watch_map(s, &p))
		watch_stop(s);
}

/* true: nothing happened to the file since the poll was armed */
static bool watch_quiet(const struct gm_state *s)
{
	return s->cq_tail && __atomic_load_n(s->cq_tail, __ATOMIC_ACQUIRE) ==
				     __atomic_load_n(s->cq_head, __ATOMIC_RELAXED);
}

/* takes the completed poll off the ring and forgets the events behind it */
static void watch_reap(struct gm_state *s)
{
	__atomic_store_n(s->cq_head, __atomic_load_n(s->cq_tail, __ATOMIC_ACQUIRE),
			 __ATOMIC_RELEASE);
	watch_drain(s);
}

struct gm_state *gm_state_open(const char *path, struct goman_err *err)
{
	struct gm_state *s = calloc(1, sizeof(*s));
	if (!s) {
		gm_err_oom(err);
		return NULL;
	}
	char why[PATH_MAX + 128] = "", dir[512];
	s->fd = s->ifd = s->uring = -1;
	snprintf(s->path, sizeof(s->path), "%s", path);
	s->size = HDR_SIZE + GM_STATE_SLOTS * sizeof(struct gm_slot);
	const char *slash = strrchr(path, '/'), *name = slash ? slash + 1 : path;
	if (!slash)
		snprintf(dir, sizeof(dir), ".");
	else
		snprintf(dir, sizeof(dir), "%.*s", slash == path ? 1 : (int)(slash - path), path);
	if (mkdirs(path) < 0)
		goto fail;
	int dfd = gm_private_dir(dir, why, sizeof(why));
	if (dfd < 0)
		goto fail;
	s->fd = openat(dfd, name, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	close(dfd);
	if (s->fd < 0)
		goto fail;
	struct stat st;
	if (fstat(s->fd, &st) < 0)
		goto fail;
	if (st.st_uid != geteuid() || !S_ISREG(st.st_mode)) {
		errno = EPERM;
		goto fail;
	}
	watch_start(s);
	if (lock_range(s->fd, 0, F_WRLCK) < 0)
		goto fail;
	/* also fills the holes of a file grown sparse (by an earlier goman) */
	int rc = posix_fallocate(s->fd, 0, (off_t)s->size);
	if (s->cq_tail)
		watch_drain(s); /* our own fallocate; a cut after this leaves an event */
	if (rc == 0 && fstat(s->fd, &st) == 0 && (size_t)st.st_size < s->size)
		rc = EIO; /* cut again by someone not taking the lock */
	if (rc != 0) {
		lock_range(s->fd, 0, F_UNLCK);
		errno = rc;
		snprintf(why, sizeof(why), "cannot make it whole: %s", strerror(rc));
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
	s->owner = gm_owner_of(getpid());
	if (s->cq_tail)
		watch_arm(s);
	return s;
fail:
	if (!why[0])
		snprintf(why, sizeof(why), "%s", strerror(errno));
	goman_err_set(err, GOMAN_EIO, GOMAN_CLASS_NONE, "StateFile", "state file '%s': %s", path,
		      why);
	gm_state_close(s);
	return NULL;
}

void gm_state_check(struct gm_state *s)
{
	if (!s || s->detached || watch_quiet(s))
		return;
	bool watched = s->cq_tail != NULL;
	if (watched)
		watch_reap(s);
	struct stat st;
	const char *why = NULL;
	if (fstat(s->fd, &st) < 0 || (size_t)st.st_size < s->size)
		why = "was cut short";
	for (unsigned i = 0; !why && i < s->nhanded; i++)
		if (atomic_load_explicit(&s->slots[s->handed[i]].key, memory_order_relaxed) !=
		    s->handed_key[i])
			why = "was re-made by another process";
	if (!why) {
		if (watched && s->cq_tail)
			watch_arm(s);
		return;
	}
	watch_stop(s);
	/* private zeroed memory at the same address: the slot pointers handed out stay good */
	void *p = mmap(s->map, s->size, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
	if (p == MAP_FAILED)
		return;
	s->detached = true;
	for (unsigned i = 0; i < s->nhanded; i++)
		atomic_store(&s->slots[s->handed[i]].key, s->handed_key[i]);
	goman_log(GOMAN_LOG_WARN, "CIRCUIT",
		  "breakers are per process from now on: state file '%s' %s", s->path, why);
}

bool gm_state_detached(const struct gm_state *s)
{
	return s && s->detached;
}

void gm_state_close(struct gm_state *s)
{
	if (!s)
		return;
	watch_stop(s);
	if (s->map)
		munmap(s->map, s->size);
	if (s->fd >= 0)
		close(s->fd);
	free(s);
}

static struct gm_slot *handed(struct gm_state *s, struct gm_slot *sl, uint64_t key)
{
	uint16_t i = (uint16_t)(sl - s->slots);
	for (unsigned j = 0; j < s->nhanded; j++)
		if (s->handed[j] == i)
			return sl;
	s->handed[s->nhanded] = i;
	s->handed_key[s->nhanded++] = key;
	return sl;
}

struct gm_slot *gm_state_slot(struct gm_state *s, const char *name)
{
	uint64_t h = gm_hash(name);
	for (unsigned i = 0; i < GM_STATE_SLOTS; i++) {
		struct gm_slot *sl = &s->slots[(h + i) % GM_STATE_SLOTS];
		uint64_t k = atomic_load_explicit(&sl->key, memory_order_acquire);
		if (k == h)
			return handed(s, sl, h);
		if (k == 0) {
			uint64_t zero = 0;
			if (atomic_compare_exchange_strong(&sl->key, &zero, h)) {
				/* the name is for people reading the file; the hash is the key */
				snprintf(sl->name, sizeof(sl->name), "%s", name);
				return handed(s, sl, h);
			}
			if (zero == h)
				return handed(s, sl, h);
		}
	}
	return NULL;
}

int gm_state_lock(struct gm_state *s, struct gm_slot *slot)
{
	if (s->detached)
		return 0; /* nobody shares the table any more */
	off_t off = (off_t)((unsigned char *)slot - s->map);
	return lock_range(s->fd, off, F_WRLCK);
}

void gm_state_unlock(struct gm_state *s, struct gm_slot *slot)
{
	if (s->detached)
		return;
	off_t off = (off_t)((unsigned char *)slot - s->map);
	lock_range(s->fd, off, F_UNLCK);
}

const char *gm_state_path(const struct gm_state *s)
{
	return s ? s->path : "";
}

uint64_t gm_state_owner(const struct gm_state *s)
{
	return s ? s->owner : 0;
}

/* state letter (field 3) and start time (field 22, clock ticks since boot) of
 * /proc/PID/stat; -1 with errno when it cannot be read. (idem.c reads field 22 for its
 * record owners too, without the state.) */
uint64_t gm_owner_of(pid_t pid)
{
	char st;
	unsigned long long start = 0;
	if (pid <= 0)
		return 0;
	if (gm_proc_stat(pid, &st, &start) < 0)
		start = 0; /* no /proc: owners are told apart by pid alone */
	return (uint64_t)(uint32_t)pid << 32 | (uint32_t)start;
}

bool gm_owner_dead(uint64_t owner)
{
	pid_t pid = (pid_t)(owner >> 32);
	uint32_t start = (uint32_t)owner;
	char st;
	unsigned long long now_start;
	if (pid <= 0)
		return true; /* not a word we write */
	if (gm_proc_stat(pid, &st, &now_start) == 0)
		return st == 'Z' || st == 'X' || (start && (uint32_t)now_start != start);
	if (errno == ENOENT || errno == ESRCH)
		return true;
	return kill(pid, 0) < 0 && errno == ESRCH;
}

int gm_slot_take(struct gm_slot *sl, int cap, uint64_t owner, unsigned from)
{
	unsigned n = cap < 0 ? 0 : cap > GM_STATE_UNITS ? GM_STATE_UNITS : (unsigned)cap;
	for (unsigned i = 0; i < n; i++) {
		unsigned u = (from + i) % n;
		uint64_t w = atomic_load_explicit(&sl->unit[u], memory_order_relaxed);
		if (w == 0 && atomic_compare_exchange_strong_explicit(&sl->unit[u], &w, owner,
								      memory_order_acq_rel,
								      memory_order_relaxed))
			return (int)u;
	}
	return -1;
}

void gm_slot_give(struct gm_slot *sl, int unit, uint64_t owner)
{
	if (unit < 0 || unit >= GM_STATE_UNITS)
		return;
	uint64_t w = owner;
	atomic_compare_exchange_strong_explicit(&sl->unit[unit], &w, 0, memory_order_release,
						memory_order_relaxed);
}

void gm_slot_wait(struct gm_slot *sl, uint64_t owner, int64_t now_ms, int64_t fresh_ms)
{
	uint64_t w = atomic_load_explicit(&sl->waiter, memory_order_relaxed);
	int64_t since = atomic_load_explicit(&sl->waiter_ms, memory_order_relaxed);
	bool fresh = w && now_ms >= since && now_ms - since < fresh_ms;
	if (w != owner && fresh)
		return; /* someone else's turn first */
	if (w == owner || atomic_compare_exchange_strong(&sl->waiter, &w, owner))
		atomic_store_explicit(&sl->waiter_ms, now_ms, memory_order_relaxed);
}

bool gm_slot_may_keep(struct gm_slot *sl, int cap, uint64_t owner, int64_t now_ms, int64_t fresh_ms)
{
	uint64_t w = atomic_load_explicit(&sl->waiter, memory_order_relaxed);
	if (w == 0)
		return true; /* the hot path: one load */
	if (w == owner) {
		atomic_compare_exchange_strong(&sl->waiter, &w, 0); /* served */
		return true;
	}
	int64_t since = atomic_load_explicit(&sl->waiter_ms, memory_order_relaxed);
	if (now_ms < since || now_ms - since >= fresh_ms)
		return true; /* a waiter that stopped asking: dead, or served elsewhere */
	unsigned n = cap < 0 ? 0 : cap > GM_STATE_UNITS ? GM_STATE_UNITS : (unsigned)cap;
	for (unsigned u = 0; u < n; u++)
		if (atomic_load_explicit(&sl->unit[u], memory_order_relaxed) == 0)
			return true; /* one is left for it anyway */
	return false;
}

int gm_slot_reap(struct gm_slot *sl, int cap)
{
	unsigned n = cap < 0 ? 0 : cap > GM_STATE_UNITS ? GM_STATE_UNITS : (unsigned)cap;
	uint64_t alive[GM_STATE_UNITS];
	unsigned nalive = 0;
	int freed = 0;
	for (unsigned u = 0; u < n; u++) {
		uint64_t w = atomic_load_explicit(&sl->unit[u], memory_order_acquire);
		if (w == 0)
			continue;
		bool known = false;
		for (unsigned j = 0; j < nalive && !known; j++)
			known = alive[j] == w;
		if (known)
			continue;
		if (!gm_owner_dead(w)) {
			alive[nalive++] = w;
			continue;
		}
		/* the owner of one unit owns all its others: free those too, no second look */
		for (unsigned v = u; v < n; v++) {
			uint64_t x = w;
			if (atomic_compare_exchange_strong(&sl->unit[v], &x, 0))
				freed++;
		}
	}
	return freed;
}
