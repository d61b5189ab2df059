/*
 * fdio_int.h - whole buffers to a file descriptor (gm_ names, not exported).
 *
 * gm_write_all() goes on after partial writes, EINTR and (on a non-blocking fd) EAGAIN,
 * which it waits out with poll(2). It returns 0, or -1 with errno from the write that
 * failed (a write of 0 bytes is EIO). It owns nothing.
 */
#ifndef GOMAN_FDIO_INT_H
#define GOMAN_FDIO_INT_H
#include <stddef.h>

int gm_write_all(int fd, const char *p, size_t len);

#endif
