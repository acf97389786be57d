/* peerpid SOCKET: connects to a listening unix socket and prints the host pid of the process that
 * listens on it (SO_PEERCRED), e.g. the shim behind node-<id>.launch. Used to pin the shim. */
#include "bench_util.h"
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: peerpid SOCKET\n");
        return 2;
    }
    struct sockaddr_un a;
    memset(&a, 0, sizeof a);
    a.sun_family = AF_UNIX;
    if (strlen(argv[1]) >= sizeof a.sun_path) {
        fprintf(stderr, "peerpid: path too long\n");
        return 2;
    }
    strcpy(a.sun_path, argv[1]);
    int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (s < 0 || connect(s, (struct sockaddr *)&a, sizeof a) != 0) {
        fprintf(stderr, "peerpid: %s: %s\n", argv[1], strerror(errno));
        return 1;
    }
    struct ucred cr;
    socklen_t len = sizeof cr;
    if (getsockopt(s, SOL_SOCKET, SO_PEERCRED, &cr, &len) != 0) {
        perror("peerpid: SO_PEERCRED");
        return 1;
    }
    close(s);
    printf("%d\n", (int)cr.pid);
    return 0;
}
