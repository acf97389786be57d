/* Small helpers shared by the bench programs (header only). */
#ifndef BENCH_UTIL_H
#define BENCH_UTIL_H
#define _GNU_SOURCE
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <time.h>
#include <unistd.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <linux/seccomp.h>
#include "ssi_filter.h"

static inline double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* Pins the calling thread to one CPU; cpu < 0 leaves the affinity alone. Exits 2 on failure. */
static inline void pin_cpu(int cpu, const char *who)
{
    if (cpu < 0)
        return;
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    if (sched_setaffinity(0, sizeof set, &set) != 0) {
        fprintf(stderr, "%s: sched_setaffinity(cpu %d): %s\n", who, cpu, strerror(errno));
        exit(2);
    }
}

static inline long arg_long(const char *s, const char *who)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (*s == '\0' || *end != '\0' || v <= 0) {
        fprintf(stderr, "%s: bad count '%s'\n", who, s);
        exit(2);
    }
    return v;
}
/* Installs the very filter ssi-run's programs run under (native/src/common/ssi_filter.c, generated from
 * syscalls.tsv) with a listener; returns the listener fd or -1 with errno set. */
static inline int install_trap_filter(void)
{
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
        return -1;
    return (int)syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_NEW_LISTENER, ssi_trap_filter());
}

#endif
