/* Checkpoint subject for CheckpointTest: state that `ssi image show` must report.
 * argv: DIR FILE [MODE]. Fills 32 MiB of anonymous memory with a pattern, opens FILE at offset 1234,
 * installs a SIGUSR1 handler, blocks SIGUSR2, sets umask 027 and cwd DIR. MODE:
 *   a number   also connects a TCP socket to 127.0.0.1:MODE;
 *   tree       also starts a second thread, keeps a deleted file open (fd 4, 12 bytes) and forks a child
 *              that holds the read end of a pipe whose write end the parent keeps;
 *   tree-queued as tree, and the parent writes 5 bytes the child never reads;
 *   nobody     drops to uid and gid 65534 (real, effective, saved) once set up.
 * Prints "ready <pid>" and loops, checking its pattern. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <grp.h>
#include <unistd.h>

#define SIZE (32u << 20)

static volatile sig_atomic_t usr1;

static void on_usr1(int sig) { (void)sig; usr1++; }

static void *idle(void *arg) { (void)arg; for (;;) pause(); return NULL; }

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: pattern DIR FILE [port]\n");
        return 2;
    }
    unsigned char *mem = mmap(NULL, SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED) { perror("mmap"); return 1; }
    for (size_t i = 0; i < SIZE; i++) mem[i] = (unsigned char)(i * 7 + 3);

    int fd = open(argv[2], O_RDWR | O_CREAT, 0600);
    if (fd < 0 || lseek(fd, 1234, SEEK_SET) != 1234) { perror("open/lseek"); return 1; }

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_usr1;
    sa.sa_flags = SA_RESTART;
    if (sigaction(SIGUSR1, &sa, NULL) < 0) { perror("sigaction"); return 1; }
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR2);
    if (sigprocmask(SIG_BLOCK, &set, NULL) < 0) { perror("sigprocmask"); return 1; }
    umask(027);
    if (chdir(argv[1]) < 0) { perror("chdir"); return 1; }

    if (argc > 3 && strncmp(argv[3], "tree", 4) == 0) {
        int tmp = open("gone", O_RDWR | O_CREAT | O_TRUNC, 0600);
        if (tmp != 4 || write(tmp, "deleted-data", 12) != 12 || unlink("gone") < 0) { perror("deleted file"); return 1; }
        pthread_t th;
        if (pthread_create(&th, NULL, idle, NULL) != 0) { perror("pthread_create"); return 1; }
        int p[2];
        if (pipe(p) < 0) { perror("pipe"); return 1; }
        pid_t child = fork();
        if (child < 0) { perror("fork"); return 1; }
        if (child == 0) {
            close(p[1]);
            for (;;) pause();
        }
        close(p[0]);
        if (strcmp(argv[3], "tree-queued") == 0 && write(p[1], "bytes", 5) != 5) { perror("write"); return 1; }
    } else if (argc > 3 && strcmp(argv[3], "nobody") == 0) {
        if (setgroups(0, NULL) < 0 || setresgid(65534, 65534, 65534) < 0 || setresuid(65534, 65534, 65534) < 0) {
            perror("drop to nobody");
            return 1;
        }
    } else if (argc > 3) {
        int s = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((unsigned short)atoi(argv[3])) };
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (s < 0 || connect(s, (struct sockaddr *)&a, sizeof a) < 0) { perror("connect"); return 1; }
    }

    printf("ready %d\n", (int)getpid());
    fflush(stdout);
    for (;;) {
        for (size_t i = 0; i < SIZE; i += 4096) {
            if (mem[i] != (unsigned char)(i * 7 + 3)) {
                printf("pattern broken at %zu\n", i);
                fflush(stdout);
                return 3;
            }
        }
        usleep(100 * 1000);
    }
}
