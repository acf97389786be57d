/* spawn N PROG [ARGS...]: runs PROG N times, one after the other (posix_spawnp + waitpid), and prints
 * the mean wall time per run in milliseconds. Exits 1 if a run fails or exits non-zero. */
#include "bench_util.h"
#include <spawn.h>
#include <sys/wait.h>

extern char **environ;

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: spawn N PROG [ARGS...]\n");
        return 2;
    }
    long n = arg_long(argv[1], "spawn");
    double t0 = now_ns();
    for (long i = 0; i < n; i++) {
        pid_t pid;
        int err = posix_spawnp(&pid, argv[2], NULL, NULL, &argv[2], environ);
        if (err) {
            fprintf(stderr, "spawn: %s: %s\n", argv[2], strerror(err));
            return 1;
        }
        int st;
        while (waitpid(pid, &st, 0) < 0)
            if (errno != EINTR) { perror("spawn: waitpid"); return 1; }
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
            fprintf(stderr, "spawn: %s: run %ld failed (status 0x%x)\n", argv[2], i + 1, st);
            return 1;
        }
    }
    double t1 = now_ns();
    printf("%.4f\n", (t1 - t0) / (double)n / 1e6);
    return 0;
}
