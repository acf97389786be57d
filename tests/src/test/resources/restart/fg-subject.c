/* Subject of RestartTest's foreground restarts. argv: ITERATIONS.
 * Prints "ready <pid>", then sleeps 50 ms ITERATIONS times (the count lives in a register or on the
 * stack: a restore that lost it would not end with the right number), and exits 7 after printing
 * "done <count>". SIGTERM makes it stop counting, print "term after <count>" and exit 42, so a status
 * of 42 proves the signal reached its handler (a plain kill would give 143). */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t term;

static void on_term(int s) { (void)s; term = 1; }

int main(int argc, char **argv)
{
    if (argc != 2) { fprintf(stderr, "usage: fg-subject ITERATIONS\n"); return 2; }
    long n = atol(argv[1]);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_term;
    sigaction(SIGTERM, &sa, NULL);
    printf("ready %d\n", (int)getpid());
    fflush(stdout);
    long i;
    for (i = 0; i < n && !term; i++) {
        struct timespec ts = { 0, 50 * 1000 * 1000 };
        nanosleep(&ts, NULL);
    }
    if (term) {
        printf("term after %ld\n", i);
        fflush(stdout);
        return 42;
    }
    printf("done %ld\n", i);
    fflush(stdout);
    return 7;
}
