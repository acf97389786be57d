/* Subject of RestartTest's parent-pid case. `ids-subject N`: prints "ready PID PPID PGRP", sleeps N times
 * 50 ms, then prints "after PPID PGRP" (what getppid() and getpgrp() say then) and exits 0. Nothing is
 * written in between, so a restart finds its stdout file as it was at the checkpoint. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 40;
    printf("ready %d %d %d\n", (int)getpid(), (int)getppid(), (int)getpgrp());
    fflush(stdout);
    for (int i = 0; i < n; i++) {
        struct timespec ts = { 0, 50 * 1000 * 1000 };
        nanosleep(&ts, NULL);
    }
    printf("after %d %d\n", (int)getppid(), (int)getpgrp());
    fflush(stdout);
    return 0;
}
