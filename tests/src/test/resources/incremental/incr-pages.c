/* Subject of IncrementalCheckpointTest. argv: MIB STATUS RESULT.
 * Maps MIB MiB of private anonymous memory and writes pattern 0 into every 64-bit word, prints
 * "ready <pid> <address in hex> <pages>" and waits. Each SIGUSR1 runs the next round and then writes
 * "round N\n" to STATUS (opened and closed each time, so no fd of it is open at a checkpoint):
 *   round 1: pages p with p % 100 == 0 get pattern 1 (user-space writes), and page 1 gets pattern 1
 *            through the kernel (read(2) from a pipe: a write fault taken in kernel mode);
 *   round 2: pages p with p % 100 == 50 get pattern 2, and pages 200..209 are dropped with
 *            MADV_DONTNEED (they must read as zero from then on: no image may bring them back);
 *   round 3: pages p with p % 3 == 2 get pattern 3 (a third of them: more than a checkpoint holds in
 *            memory while the application is frozen), dropped ones included (they come back).
 * SIGUSR2 makes it check every word against what the rounds so far left there, write
 * "PASS <rounds>" or "FAIL <why>" to RESULT and exit (0 on PASS). Single-threaded; fds 0-2 only. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define PAGE 4096
#define WORDS (PAGE / 8)
#define DROP_FIRST 200
#define DROP_PAGES 10

static volatile sig_atomic_t usr1, usr2;
static void on_usr1(int s) { (void)s; usr1++; }
static void on_usr2(int s) { (void)s; usr2 = 1; }

static inline uint64_t pattern(int gen, uint64_t word)
{
    return (word + 1) * 0x9E3779B97F4A7C15ull ^ (0x494e4352ull << 16) ^ ((uint64_t)gen << 56);
}

static void fill(uint64_t *mem, size_t page, int gen)
{
    for (size_t w = 0; w < WORDS; w++) mem[page * WORDS + w] = pattern(gen, page * WORDS + w);
}

/* which pattern a page holds after `rounds` rounds; -1: dropped (zero) */
static int expected(size_t p, int rounds)
{
    if (rounds >= 3 && p % 3 == 2) return 3;
    if (rounds >= 2 && p >= DROP_FIRST && p < DROP_FIRST + DROP_PAGES) return -1;
    if (rounds >= 2 && p % 100 == 50) return 2;
    if (rounds >= 1 && (p % 100 == 0 || p == 1)) return 1;
    return 0;
}

static void put(const char *path, const char *line)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) exit(2);
    if (write(fd, line, strlen(line)) != (ssize_t)strlen(line)) exit(2);
    close(fd);
}

int main(int argc, char **argv)
{
    if (argc != 4) { fprintf(stderr, "usage: incr-pages MIB STATUS RESULT\n"); return 2; }
    for (int fd = 3; fd < 1024; fd++) close(fd);
    size_t pages = (size_t)atol(argv[1]) * 256;
    /* a PROT_NONE page on each side: the region is one VMA of exactly its own size (no merge) */
    char *area = mmap(NULL, (pages + 2) * PAGE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (area == MAP_FAILED || pages <= DROP_FIRST + DROP_PAGES) { perror("mmap"); return 2; }
    uint64_t *mem = (uint64_t *)(area + PAGE);
    if (mprotect(mem, pages * PAGE, PROT_READ | PROT_WRITE) != 0) { perror("mprotect"); return 2; }
    for (size_t p = 0; p < pages; p++) fill(mem, p, 0);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_usr1;
    sigaction(SIGUSR1, &sa, NULL);
    sa.sa_handler = on_usr2;
    sigaction(SIGUSR2, &sa, NULL);
    printf("ready %d %lx %zu\n", (int)getpid(), (unsigned long)mem, pages);
    fflush(stdout);
    int rounds = 0;
    char line[128];
    while (!usr2) {
        struct timespec ts = { 0, 20 * 1000 * 1000 };
        nanosleep(&ts, NULL);
        if (usr1 == rounds) continue;
        rounds++;
        if (rounds == 1) {
            for (size_t p = 0; p < pages; p += 100) fill(mem, p, 1);
            /* page 1 through the kernel: copy_to_user into a write-protected page */
            static uint64_t buf[WORDS];
            for (size_t w = 0; w < WORDS; w++) buf[w] = pattern(1, 1 * WORDS + w);
            int pfd[2];
            if (pipe(pfd) != 0 || write(pfd[1], buf, PAGE) != PAGE || read(pfd[0], &mem[1 * WORDS], PAGE) != PAGE) {
                perror("pipe round trip");
                return 2;
            }
            close(pfd[0]);
            close(pfd[1]);
        } else if (rounds == 2) {
            for (size_t p = 50; p < pages; p += 100) fill(mem, p, 2);
            if (madvise(&mem[DROP_FIRST * WORDS], DROP_PAGES * PAGE, MADV_DONTNEED) != 0) { perror("madvise"); return 2; }
        } else if (rounds == 3) {
            for (size_t p = 2; p < pages; p += 3) fill(mem, p, 3);
        }
        snprintf(line, sizeof line, "round %d\n", rounds);
        put(argv[2], line);
    }
    snprintf(line, sizeof line, "PASS %d\n", rounds);
    for (size_t p = 0; p < pages && line[0] == 'P'; p++) {
        int gen = expected(p, rounds);
        for (size_t w = 0; w < WORDS; w++) {
            uint64_t want = gen < 0 ? 0 : pattern(gen, p * WORDS + w);
            if (mem[p * WORDS + w] != want) {
                snprintf(line, sizeof line, "FAIL page %zu word %zu: %#llx, expected %#llx (pattern %d)\n", p, w,
                         (unsigned long long)mem[p * WORDS + w], (unsigned long long)want, gen);
                break;
            }
        }
    }
    put(argv[3], line);
    return line[0] == 'P' ? 0 : 1;
}
