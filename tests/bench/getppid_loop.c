/* getppid_loop [N]: times N getppid() calls (an untrapped syscall) and prints nanoseconds per call. */
#include "bench_util.h"
#include <unistd.h>

int main(int argc, char **argv)
{
    long n = argc > 1 ? arg_long(argv[1], "getppid_loop") : 1000000;
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
