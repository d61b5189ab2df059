/*
 * proc_int.h - what /proc says of a process (gm_ names, not exported): its state letter
 * and start time, which with the pid name an owner that pid reuse cannot impersonate.
 * Used by the idempotency records and the shared state file's cap units.
 * Returns 0, or -1 (errno set) when the process is gone or the line cannot be read.
 */
#ifndef GOMAN_PROC_INT_H
#define GOMAN_PROC_INT_H
#include <sys/types.h>

/* state: field 3 of /proc/<pid>/stat (R, S, Z, ...); start: field 22, clock ticks since boot */
int gm_proc_stat(pid_t pid, char *state, unsigned long long *start);

#endif
