/*
 * pipes: data through a pipe across fork, EOF once every write end is closed, EPIPE and SIGPIPE
 * when no reader is left, pipe2 flags (O_CLOEXEC, O_NONBLOCK), and a 1 MiB transfer in odd-sized
 * pieces checked with a checksum.
 */
#include "tst.h"

#include <fcntl.h>
#include <stdint.h>

static void through_fork(void)
{
    int p[2];
    if (pipe(p) < 0)
        tst_brk("pipe");
    pid_t child = tst_fork();
    if (child == 0) {
        close(p[0]);
        static const char msg[] = "hello through the pipe";
        _exit(tst_write_full(p[1], msg, sizeof(msg)) == sizeof(msg) ? 0 : 1);
    }
    close(p[1]);
    char buf[64] = { 0 };
    ssize_t n = tst_read_full(p[0], buf, sizeof(buf));
    tst_check(n == 23 && strcmp(buf, "hello through the pipe") == 0, "parent reads what the child wrote",
              "read %zd bytes '%s'", n, buf);
    char c;
    n = read(p[0], &c, 1);
    tst_check_int(n, 0, "read returns 0 (EOF) once the child's write end is closed");
    close(p[0]);
    tst_reap_ok(child, "the writer child exits 0");

    /* the other direction, and EOF reaching a child blocked in read */
    if (pipe(p) < 0)
        tst_brk("pipe");
    child = tst_fork();
    if (child == 0) {
        close(p[1]);
        char b[16];
        ssize_t total = 0, r;
        while ((r = read(p[0], b, sizeof(b))) > 0)
            total += r;
        _exit(r == 0 && total == 3 ? 0 : 1);
    }
    close(p[0]);
    if (write(p[1], "abc", 3) != 3)
        tst_fail("write to the pipe: %s", strerror(errno));
    close(p[1]);
    tst_reap_ok(child, "a child blocked in read gets the data then EOF when the parent closes");

    /* EOF only when every write end is closed: a second holder keeps it open */
    if (pipe(p) < 0)
        tst_brk("pipe");
    int dupw = dup(p[1]);
    close(p[1]);
    fcntl(p[0], F_SETFL, O_NONBLOCK);
    ssize_t r = read(p[0], &c, 1);
    tst_check(r == -1 && errno == EAGAIN, "no EOF while a duplicated write end is still open",
              "read returned %zd", r);
    close(dupw);
    tst_check_int(read(p[0], &c, 1), 0, "EOF after the last write end is closed");
    close(p[0]);
}

static volatile sig_atomic_t sigpipe_count;
static void on_sigpipe(int sig)
{
    (void)sig;
    sigpipe_count++;
}

static void broken_pipe(void)
{
    /* default disposition: the writer is killed by SIGPIPE */
    int p[2];
    if (pipe(p) < 0)
        tst_brk("pipe");
    close(p[0]);
    pid_t child = tst_fork();
    if (child == 0) {
        signal(SIGPIPE, SIG_DFL);
        (void)!write(p[1], "x", 1); /* the SIGPIPE ends the child here */
        _exit(0);
    }
    int st = 0;
    waitpid(child, &st, 0);
    tst_check(WIFSIGNALED(st) && WTERMSIG(st) == SIGPIPE, "writing to a pipe with no reader kills with SIGPIPE",
              "status 0x%x", st);

    /* handled: the handler runs and write fails with EPIPE */
    signal(SIGPIPE, on_sigpipe);
    sigpipe_count = 0;
    ssize_t r = write(p[1], "x", 1);
    tst_check(r == -1 && errno == EPIPE, "with a SIGPIPE handler, write fails with EPIPE", "r=%zd", r);
    tst_check_int(sigpipe_count, 1, "the SIGPIPE handler ran once");

    /* ignored: EPIPE only */
    signal(SIGPIPE, SIG_IGN);
    r = write(p[1], "x", 1);
    tst_check(r == -1 && errno == EPIPE, "with SIGPIPE ignored, write fails with EPIPE", "r=%zd", r);
    close(p[1]);

    /* the reader dies while the writer is blocked on a full pipe */
    if (pipe(p) < 0)
        tst_brk("pipe");
    child = tst_fork();
    if (child == 0) {
        close(p[1]);
        char b[100];
        (void)!read(p[0], b, sizeof(b)); /* read a little, then exit */
        _exit(0);
    }
    close(p[0]);
    static char chunk[65536];
    int epipe = 0;
    for (int i = 0; i < 64 && !epipe; i++) /* up to 4 MiB: more than any pipe holds */
        if (write(p[1], chunk, sizeof(chunk)) < 0)
            epipe = errno == EPIPE;
    tst_check(epipe, "a writer filling the pipe gets EPIPE when the reader exits", "no EPIPE");
    close(p[1]);
    waitpid(child, NULL, 0);
    signal(SIGPIPE, SIG_DFL);
}

static void pipe2_flags(void)
{
    int p[2];
    if (pipe(p) < 0)
        tst_brk("pipe");
    tst_check((fcntl(p[0], F_GETFD) & FD_CLOEXEC) == 0 && (fcntl(p[1], F_GETFD) & FD_CLOEXEC) == 0,
              "pipe(): no FD_CLOEXEC on either end", "flags %d %d", fcntl(p[0], F_GETFD), fcntl(p[1], F_GETFD));
    close(p[0]);
    close(p[1]);
    if (pipe2(p, O_CLOEXEC) < 0)
        tst_brk("pipe2(O_CLOEXEC)");
    tst_check((fcntl(p[0], F_GETFD) & FD_CLOEXEC) && (fcntl(p[1], F_GETFD) & FD_CLOEXEC),
              "pipe2(O_CLOEXEC): FD_CLOEXEC set on both ends", "flags %d %d", fcntl(p[0], F_GETFD),
              fcntl(p[1], F_GETFD));
    tst_check(!(fcntl(p[0], F_GETFL) & O_NONBLOCK), "pipe2(O_CLOEXEC) does not set O_NONBLOCK", "flags 0x%x",
              fcntl(p[0], F_GETFL));
    close(p[0]);
    close(p[1]);
    if (pipe2(p, O_NONBLOCK) < 0)
        tst_brk("pipe2(O_NONBLOCK)");
    char c;
    ssize_t r = read(p[0], &c, 1);
    tst_check(r == -1 && errno == EAGAIN, "pipe2(O_NONBLOCK): read on an empty pipe fails with EAGAIN",
              "r=%zd", r);
    close(p[0]);
    close(p[1]);
    tst_check_errno(pipe2(p, 0x7fff0000), EINVAL, "pipe2 with unknown flags fails with EINVAL");
}

/* xorshift64: a reproducible byte stream both sides can generate */
static uint64_t next_rand(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static uint64_t fnv1a(uint64_t h, const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

enum { TOTAL = 1 << 20 };

static void megabyte(void)
{
    static unsigned char data[TOTAL];
    uint64_t s = 0x9e3779b97f4a7c15ULL;
    for (size_t i = 0; i < TOTAL; i += 8) {
        uint64_t v = next_rand(&s);
        memcpy(data + i, &v, 8);
    }
    uint64_t want = fnv1a(0xcbf29ce484222325ULL, data, TOTAL);

    int p[2];
    if (pipe(p) < 0)
        tst_brk("pipe");
    pid_t child = tst_fork();
    if (child == 0) {
        close(p[0]);
        /* odd, varying piece sizes so that writes and reads never line up */
        size_t off = 0, piece = 1;
        while (off < TOTAL) {
            size_t n = piece < TOTAL - off ? piece : TOTAL - off;
            if (tst_write_full(p[1], data + off, n) < 0)
                _exit(1);
            off += n;
            piece = piece * 3 % 65521 + 7;
        }
        _exit(0);
    }
    close(p[1]);
    static unsigned char buf[7919];
    uint64_t h = 0xcbf29ce484222325ULL;
    size_t total = 0;
    ssize_t r;
    while ((r = read(p[0], buf, sizeof(buf))) > 0 || (r < 0 && errno == EINTR)) {
        if (r > 0) {
            h = fnv1a(h, buf, r);
            total += r;
        }
    }
    close(p[0]);
    tst_check_int(total, TOTAL, "1 MiB through a pipe: every byte arrives");
    tst_check(h == want, "1 MiB through a pipe: the checksum matches", "got %016llx want %016llx",
              (unsigned long long)h, (unsigned long long)want);
    tst_reap_ok(child, "the 1 MiB writer exits 0");
}

int main(void)
{
    tst_watchdog(90);
    through_fork();
    broken_pipe();
    pipe2_flags();
    megabyte();
    tst_exit();
}
