/*
 * fdio.c - whole buffers to a file descriptor (see fdio_int.h): the one loop the JSON-lines
 * writer, the idempotency log and the kubeconfig writer share, so a short write is finished
 * the same way everywhere and a failure keeps its errno.
 */
#include <errno.h>
#include <poll.h>
#include <unistd.h>
#include "fdio_int.h"

int gm_write_all(int fd, const char *p, size_t len)
{
	while (len > 0) {
		ssize_t w = write(fd, p, len);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			struct pollfd pfd = {.fd = fd, .events = POLLOUT};
			(void)poll(&pfd, 1, -1);
			continue;
		}
		if (w < 0)
			return -1;
		if (w == 0) {
			errno = EIO;
			return -1;
		}
		p += w;
		len -= (size_t)w;
	}
	return 0;
}
