/* getppid_loop [N [filter]]: times N getppid() calls (an untrapped syscall) and prints nanoseconds per
 * call. "filter" first installs ssi-run's own seccomp filter (its trapped syscalls go to a listener
 * nobody reads, everything else is allowed): the cost of the filter alone, without ssi-run. */
#include "bench_util.h"
#include <stddef.h>
#include <unistd.h>
#include <linux/seccomp.h>
#include <sys/prctl.h>
#include <sys/syscall.h>

int main(int argc, char **argv)
{
    long n = argc > 1 ? arg_long(argv[1], "getppid_loop") : 1000000;
    if (argc > 2 && strcmp(argv[2], "filter") == 0)
        if (install_trap_filter() < 0) {
            perror("getppid_loop: seccomp");
            exit(1);
        }
    volatile pid_t sink = 0;
    for (long i = 0; i < 10000; i++)        /* warm-up */
        sink += getppid();
    double t0 = now_ns();
    for (long i = 0; i < n; i++)
        sink += getppid();
    double t1 = now_ns();
    (void)sink;
    printf("%.4f\n", (t1 - t0) / (double)n);
    return 0;
}
