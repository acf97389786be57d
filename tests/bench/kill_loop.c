/* kill_loop [N [CPU]]: times N kill(getpid(), 0) calls and prints microseconds per call. Under ssi-run
 * every call is trapped by the seccomp filter and answered by the shim. CPU >= 0 pins the caller first. */
#include "bench_util.h"
#include <signal.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    long n = argc > 1 ? arg_long(argv[1], "kill_loop") : 200000;
    int cpu = argc > 2 ? atoi(argv[2]) : -1;
    pin_cpu(cpu, "kill_loop");
    pid_t me = getpid();
    long warm = n / 100 < 1000 ? n / 100 : 1000;
    for (long i = 0; i < warm; i++)
        if (kill(me, 0) != 0) { perror("kill_loop: kill"); return 1; }
    double t0 = now_ns();
    for (long i = 0; i < n; i++)
        if (kill(me, 0) != 0) { perror("kill_loop: kill"); return 1; }
    double t1 = now_ns();
    printf("%.4f\n", (t1 - t0) / (double)n / 1000.0);
    return 0;
}
