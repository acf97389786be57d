/* ckpt_target MIB RESULT: the subject of the checkpoint/restore rows of run-bench.
 * Maps MIB MiB of private anonymous memory and writes a pattern into every 64-bit word (every page is
 * touched and none is zero), prints "ready <pid> <MIB>" on stdout (run-bench points it at a regular
 * file: a checkpoint refuses terminals and pipes), then sleeps in 50 ms steps. SIGUSR1 makes it check
 * every word of the pattern, write "PASS <pid> <MIB>" or "FAIL <why>" to RESULT (opened only then, so it
 * is not an fd of the checkpointed process) and exit (0 on PASS, 1 on FAIL). SIGUSR2 (the incremental
 * checkpoint rows) flips every word of 1% of the pages (every 100th page, XOR with a constant) and prints
 * "dirtied <times>"; the check of SIGUSR1 expects the flips. Single-threaded; its only fds are 0-2 (it
 * closes any other it inherited). */
#include "bench_util.h"
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <sys/mman.h>
#include <unistd.h>

static volatile sig_atomic_t usr1, usr2;
static void on_usr1(int s) { (void)s; usr1 = 1; }
static void on_usr2(int s) { (void)s; usr2++; }

#define FLIP 0x00ff00ff00ff00ffull
#define PAGE_WORDS (4096 / sizeof(uint64_t))
#define DIRTY_EVERY 100

static inline uint64_t pattern(uint64_t i) { return (i + 1) * 0x9E3779B97F4A7C15ull ^ 0x5353495f434b5054ull; }

int main(int argc, char **argv)
{
    if (argc != 3) { fprintf(stderr, "usage: ckpt_target MIB RESULT\n"); return 2; }
    long mib = arg_long(argv[1], "ckpt_target");
    /* whatever the caller leaked to us (a pipe of its shell, say) would make the checkpoint refuse */
    for (int fd = 3; fd < 1024; fd++) close(fd);
    size_t bytes = (size_t)mib << 20, words = bytes / sizeof(uint64_t);
    uint64_t *mem = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED) { perror("ckpt_target: mmap"); return 2; }
    for (size_t i = 0; i < words; i++) mem[i] = pattern(i);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_usr1;
    if (sigaction(SIGUSR1, &sa, NULL) != 0) { perror("ckpt_target: sigaction"); return 2; }
    sa.sa_handler = on_usr2;
    if (sigaction(SIGUSR2, &sa, NULL) != 0) { perror("ckpt_target: sigaction"); return 2; }
    printf("ready %d %ld\n", (int)getpid(), mib);
    fflush(stdout);
    int dirtied = 0;
    while (!usr1) {
        struct timespec ts = { 0, 50 * 1000 * 1000 };
        nanosleep(&ts, NULL);
        while (dirtied < usr2) {
            for (size_t i = 0; i < words; i += DIRTY_EVERY * PAGE_WORDS)
                for (size_t w = i; w < i + PAGE_WORDS && w < words; w++) mem[w] ^= FLIP;
            dirtied++;
            printf("dirtied %d\n", dirtied);
            fflush(stdout);
        }
    }
    char line[128];
    snprintf(line, sizeof line, "PASS %d %ld\n", (int)getpid(), mib);
    for (size_t i = 0; i < words; i++)
        if (mem[i] != (pattern(i) ^ ((dirtied & 1) && (i / PAGE_WORDS) % DIRTY_EVERY == 0 ? FLIP : 0))) {
            snprintf(line, sizeof line, "FAIL word %zu of %zu: %#llx, expected %#llx\n", i, words,
                     (unsigned long long)mem[i], (unsigned long long)pattern(i));
            break;
        }
    int fd = open(argv[2], O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) return 2;
    size_t n = strlen(line);
    if (write(fd, line, n) != (ssize_t)n) return 2;
    close(fd);
    return line[0] == 'P' ? 0 : 1;
}
