/* Subject of RestartTest. argv: DATA RESULT [KILLFILE].
 * Fills 4 MiB of heap and a static array with a pattern, opens DATA (which must exist) for writing at
 * its end (its header stays untouched), installs SIGUSR1 and SIGUSR2 handlers, prints "ready <pid>",
 * then every 50 ms writes the next count ("1\n", "2\n", ...) through that fd, so the file offset carries
 * the count. SIGUSR1 makes it write "usr1 <count>\n" next. SIGUSR2 makes it verify both patterns and
 * the count's shadow copy, write PASS or FAIL <why> to RESULT and exit. With KILLFILE, once that file
 * appears holding a pid, it sends that pid SIGTERM with kill(2) (once) and writes
 * "kill <pid> <return> <errno>\n" to KILLFILE.out (a pid of another node: the kill must be forwarded). */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define SIZE (4 << 20)

static unsigned char statics[65536];
static volatile sig_atomic_t usr1, usr2;

static void on_usr1(int s) { (void)s; usr1++; }
static void on_usr2(int s) { (void)s; usr2 = 1; }

static void put(int fd, const char *s)
{
    size_t n = strlen(s);
    if (write(fd, s, n) != (ssize_t)n) { perror("write"); exit(2); }
}

int main(int argc, char **argv)
{
    if (argc != 3 && argc != 4) { fprintf(stderr, "usage: restart-counter DATA RESULT [KILLFILE]\n"); return 2; }
    const char *killfile = argc == 4 ? argv[3] : NULL;
    int killed = 0;
    unsigned char *mem = malloc(SIZE);
    if (!mem) return 2;
    for (size_t i = 0; i < SIZE; i++) mem[i] = (unsigned char)(i * 13 + 5);
    for (size_t i = 0; i < sizeof statics; i++) statics[i] = (unsigned char)(i ^ 0x5a);
    int fd = open(argv[1], O_WRONLY);
    if (fd < 0 || lseek(fd, 0, SEEK_END) < 0) { perror("open DATA"); return 2; }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_usr1;
    sigaction(SIGUSR1, &sa, NULL);
    sa.sa_handler = on_usr2;
    sigaction(SIGUSR2, &sa, NULL);
    printf("ready %d\n", (int)getpid());
    fflush(stdout);
    long count = 0, shadow = 0;
    int seen = 0;
    char line[64];
    for (;;) {
        struct timespec ts = { 0, 50 * 1000 * 1000 };
        nanosleep(&ts, NULL);
        if (usr2) break;
        if (usr1 != seen) {
            seen = usr1;
            snprintf(line, sizeof line, "usr1 %ld\n", count);
            put(fd, line);
        }
        if (killfile && !killed && access(killfile, R_OK) == 0) {
            char buf[32] = "";
            int k = open(killfile, O_RDONLY);
            ssize_t n = k >= 0 ? read(k, buf, sizeof buf - 1) : -1;
            if (k >= 0) close(k);
            if (n > 0 && memchr(buf, '\n', (size_t)n)) {
                killed = 1;
                buf[n] = 0;
                int target = atoi(buf);
                int rc = kill(target, SIGTERM);
                int err = rc < 0 ? errno : 0;
                char out[4096];
                snprintf(out, sizeof out, "%s.out", killfile);
                int o = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
                if (o >= 0) {
                    snprintf(line, sizeof line, "kill %d %d %d\n", target, rc, err);
                    put(o, line);
                    close(o);
                }
            }
        }
        count++;
        shadow += 2;
        snprintf(line, sizeof line, "%ld\n", count);
        put(fd, line);
    }
    const char *why = NULL;
    for (size_t i = 0; i < SIZE && !why; i++)
        if (mem[i] != (unsigned char)(i * 13 + 5)) why = "heap pattern";
    for (size_t i = 0; i < sizeof statics && !why; i++)
        if (statics[i] != (unsigned char)(i ^ 0x5a)) why = "static pattern";
    if (!why && shadow != 2 * count) why = "count shadow";
    int r = open(argv[2], O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (r < 0) return 2;
    if (why) snprintf(line, sizeof line, "FAIL %s\n", why);
    else snprintf(line, sizeof line, "PASS %ld\n", count);
    put(r, line);
    close(r);
    return why ? 1 : 0;
}
