/* Subject of RestartTest's held-back signal case. `rt-held N FILE`: takes SIGRTMIN and SIGRTMIN+1 in an
 * SA_SIGINFO handler, prints "ready PID", and once N have arrived appends to FILE (opened only then, so a
 * restart finds its files as they were) each signal's values in the order they came ("got SIGRTMIN 1 2 3
 * SIGRTMIN+1 4 5 6") and whether every one had si_code SI_QUEUE and a sender pid, then exits 0. `rt-held send PID`: sigqueue()s SIGRTMIN with values 1, 2, 3 to PID
 * (its process queue) and rt_tgsigqueueinfo()s SIGRTMIN+1 with values 4, 5, 6 to its main thread. */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static volatile int n, sigs[64], vals[64], codes_ok = 1;

static void on_rt(int sig, siginfo_t *si, void *uc)
{
    (void)uc;
    if (n < 64) {
        sigs[n] = sig;
        vals[n] = si->si_value.sival_int;
    }
    if (si->si_code != SI_QUEUE || si->si_pid <= 0)
        codes_ok = 0;
    n++;
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "send") == 0) {
        pid_t to = atoi(argv[2]);
        for (int v = 1; v <= 3; v++) {
            union sigval sv = { .sival_int = v };
            if (sigqueue(to, SIGRTMIN, sv) < 0) {
                perror("sigqueue");
                return 1;
            }
        }
        for (int v = 4; v <= 6; v++) {
            siginfo_t si;
            memset(&si, 0, sizeof si);
            si.si_signo = SIGRTMIN + 1;
            si.si_code = SI_QUEUE;
            si.si_pid = getpid();
            si.si_uid = getuid();
            si.si_value.sival_int = v;
            if (syscall(SYS_rt_tgsigqueueinfo, to, to, SIGRTMIN + 1, &si) < 0) {
                perror("rt_tgsigqueueinfo");
                return 1;
            }
        }
        return 0;
    }
    if (argc != 3) {
        fprintf(stderr, "usage: rt-held N FILE | rt-held send PID\n");
        return 2;
    }
    int want = atoi(argv[1]);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_rt;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    sigaction(SIGRTMIN, &sa, NULL);
    sigaction(SIGRTMIN + 1, &sa, NULL);
    printf("ready %d\n", (int)getpid());
    fflush(stdout);
    while (n < want) {
        struct timespec ts = { 0, 20 * 1000 * 1000 };
        nanosleep(&ts, NULL);
    }
    struct timespec ts = { 0, 200 * 1000 * 1000 }; /* one more would show up here */
    nanosleep(&ts, NULL);
    FILE *out = fopen(argv[2], "a");
    if (!out) {
        perror(argv[2]);
        return 1;
    }
    fprintf(out, "got");
    for (int k = 0; k < 2; k++) {
        fprintf(out, " %s", k ? "SIGRTMIN+1" : "SIGRTMIN");
        for (int i = 0; i < n && i < 64; i++)
            if (sigs[i] == SIGRTMIN + k)
                fprintf(out, " %d", vals[i]);
    }
    fprintf(out, " (%d in all%s)\n", n, codes_ok ? "" : ", some without SI_QUEUE or sender");
    fclose(out);
    return 0;
}
