/* The program RestoreLiveTest checkpoints (by hand, in RestoreProbeDaemon) and restores at the same pid.
 * usage: restore-counter DATAFILE STATUSFILE SHAREDFILE
 * Fills 8 MiB of anonymous memory with a pattern, keeps a malloc'd string and a static counter, opens
 * DATAFILE and seeks to 77, installs a SIGUSR1 and a SIGUSR2 handler, then every 100 ms increments the
 * counter and writes "count N" to stdout and "N" to DATAFILE, and "shared count N" at the start of
 * SHAREDFILE (at least 4 KiB), which it maps MAP_SHARED (its fd closed). A SIGUSR1 is reported on stdout and stderr
 * ("usr1 at N"). On SIGUSR2 (or after 1200 rounds) it checks the pattern, the string and the counter,
 * prints "PASS ..." or "FAIL ...", writes "exit S" to STATUSFILE and exits with S. */
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define MEM (8u << 20)
#define HEAP_TEXT "a string on the heap, kept across the restore"

static volatile long counter;
static volatile sig_atomic_t usr1, usr2;

static void on_usr1(int sig) { (void)sig; usr1++; }
static void on_usr2(int sig) { (void)sig; usr2 = 1; }

static uint64_t pattern(size_t i) { return (uint64_t)i * 0x9E3779B97F4A7C15ull ^ 0x5a5a5a5a5a5a5a5aull; }

static void say(int fd, const char *fmt, long v)
{
    char b[128];
    int n = snprintf(b, sizeof b, fmt, v);
    if (write(fd, b, (size_t)n) != n)
        _exit(3);
}

int main(int argc, char **argv)
{
    if (argc != 4)
        return 2;
    uint64_t *mem = mmap(NULL, MEM, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED)
        return 2;
    for (size_t i = 0; i < MEM / 8; i++)
        mem[i] = pattern(i);
    char *heap = strdup(HEAP_TEXT);
    int sfd = open(argv[3], O_RDWR);
    char *shared = sfd < 0 ? MAP_FAILED : mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, sfd, 0);
    if (shared == MAP_FAILED)
        return 2;
    close(sfd);
    int data = open(argv[1], O_RDWR);
    if (data < 0 || lseek(data, 77, SEEK_SET) != 77)
        return 2;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_usr1;
    sa.sa_flags = SA_RESTART;
    sigaction(SIGUSR1, &sa, NULL);
    sa.sa_handler = on_usr2;
    sigaction(SIGUSR2, &sa, NULL);
    say(2, "started as pid %ld\n", (long)getpid());
    long seen_usr1 = 0;
    for (int round = 0; round < 1200 && !usr2; round++) {
        counter++;
        say(1, "count %ld\n", counter);
        say(data, "%ld\n", counter);
        snprintf(shared, 64, "shared count %ld\n", counter);
        if (usr1 != seen_usr1) {
            seen_usr1 = usr1;
            say(1, "usr1 at %ld\n", counter);
            say(2, "usr1 at %ld\n", counter);
        }
        struct timespec ts = { 0, 100 * 1000 * 1000 };
        nanosleep(&ts, NULL);
    }
    size_t bad = 0;
    for (size_t i = 0; i < MEM / 8; i++)
        if (mem[i] != pattern(i))
            bad++;
    int heap_ok = strcmp(heap, HEAP_TEXT) == 0;
    int ok = usr2 && bad == 0 && heap_ok && counter > 0;
    char line[200];
    snprintf(line, sizeof line, "%s counter=%ld badwords=%zu heap=%s usr2=%d\n", ok ? "PASS" : "FAIL", counter, bad,
             heap_ok ? "ok" : "bad", (int)usr2);
    if (write(1, line, strlen(line)) < 0)
        return 3;
    int st = open(argv[2], O_WRONLY | O_CREAT | O_TRUNC, 0644);
    say(st, "exit %ld\n", ok ? 0L : 1L);
    close(st);
    return ok ? 0 : 1;
}
