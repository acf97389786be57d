/* A stand-in for the node daemon (ssid) in the shim's tests. Started by ssi-shim as pid 2 with the same
 * arguments the real daemon gets (--node N --run-dir DIR), it links like ssid does (HELLO, checks the
 * reply), then answers every forwarded trap with CONTINUE, except that a signal aimed at a pid of
 * another node is answered -ESRCH, as if that node had no such process. It logs one line per LAUNCHED,
 * NOTIF and LISTENER_GONE to stderr (the node log under --detach), which is what the tests read.
 * It exits when the link closes, and on SIGTERM (default action). Owner: its only thread. */
#include "ssi_proto.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>

static int node;

static void die(const char *what, int err)
{
    fprintf(stderr, "fake-daemon: node %d: %s%s%s\n", node, what, err ? ": " : "", err ? strerror(err) : "");
    exit(1);
}

/* Is pid (a kill-style target: pid, or -pgrp) a process of another node? */
static int other_node(long pid)
{
    if (pid < -1)
        pid = -pid;
    return pid >= (1L << SSI_PID_SHIFT) && SSI_NODE_OF(pid) != node;
}

static int is_signal_call(int nr)
{
    return nr == SYS_kill || nr == SYS_tkill || nr == SYS_tgkill || nr == SYS_rt_sigqueueinfo ||
           nr == SYS_rt_tgsigqueueinfo;
}

int main(int argc, char **argv)
{
    const char *run_dir = NULL;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--node"))
            node = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--run-dir"))
            run_dir = argv[i + 1];
    }
    if (node < 1 || node > SSI_MAX_NODE || !run_dir) {
        fprintf(stderr, "usage: tool_fake_daemon --node N --run-dir DIR\n");
        return 2;
    }
    struct sockaddr_un a = { .sun_family = AF_UNIX };
    snprintf(a.sun_path, sizeof a.sun_path, "%s/node-%d.link", run_dir, node);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) < 0)
        die("cannot connect to the link socket", errno);

    uint32_t version = SSI_LINK_VERSION;
    int rc = ssi_send_frame(fd, SSI_HELLO, 1, &version, sizeof version, -1, 0);
    if (rc)
        die("sending HELLO failed", -rc);
    static _Alignas(8) uint8_t buf[SSI_MAX_FRAME];
    rc = ssi_recv_frame(fd, buf, sizeof buf, NULL, NULL);
    if (rc)
        die("no HELLO reply", -rc);
    const struct ssi_hdr *h = (const void *)buf;
    struct ssi_hello_reply hr;
    if (h->type != (SSI_HELLO | SSI_REPLY_BIT) || h->req_id != 1 || h->len != sizeof *h + sizeof hr)
        die("malformed HELLO reply", 0);
    memcpy(&hr, buf + sizeof *h, sizeof hr);
    if (hr.error || hr.version != SSI_LINK_VERSION || hr.node_id != node ||
        hr.pid_base != node << SSI_PID_SHIFT || hr.pid_limit != (node + 1) << SSI_PID_SHIFT) {
        fprintf(stderr, "fake-daemon: node %d: wrong HELLO reply: error %d version %u node %d pids [%d, %d)\n",
                node, hr.error, hr.version, hr.node_id, hr.pid_base, hr.pid_limit);
        return 1;
    }
    fprintf(stderr, "fake-daemon: node %d: linked as pid %d, cluster pids [%d, %d)\n", node, (int)getpid(),
            hr.pid_base, hr.pid_limit);

    uint32_t req_id = 1;
    for (;;) {
        rc = ssi_recv_frame(fd, buf, sizeof buf, NULL, NULL);
        if (rc) {
            fprintf(stderr, "fake-daemon: node %d: link closed (%s); exiting\n", node, strerror(-rc));
            return 0;
        }
        const uint8_t *p = buf + sizeof *h;
        size_t n = h->len - sizeof *h;
        if (h->type == SSI_LAUNCHED && n > sizeof(struct ssi_launched)) {
            struct ssi_launched l;
            memcpy(&l, p, sizeof l);
            fprintf(stderr, "fake-daemon: LAUNCHED pid=%d uid=%u gid=%u listener=%u path=%.*s\n", l.pid, l.uid,
                    l.gid, l.listener_id, (int)(n - sizeof l), (const char *)p + sizeof l);
        } else if (h->type == SSI_NOTIF && n == sizeof(struct ssi_notif)) {
            struct ssi_notif m;
            memcpy(&m, p, sizeof m);
            struct ssi_notif_reply r = { .listener_id = m.listener_id, .notif_id = m.notif_id };
            long target = (int)m.args[0];
            if (is_signal_call(m.nr) && other_node(target))
                r.error = -ESRCH;
            else
                r.flags = SSI_REPLY_CONTINUE;
            fprintf(stderr, "fake-daemon: NOTIF listener=%u pid=%d nr=%d arg0=%ld -> %s\n", m.listener_id, m.pid,
                    m.nr, target, r.error ? "ESRCH" : "CONTINUE");
            rc = ssi_send_frame(fd, SSI_NOTIF_REPLY, ++req_id, &r, sizeof r, -1, 0);
            if (rc)
                die("sending NOTIF_REPLY failed", -rc);
        } else if (h->type == SSI_LISTENER_GONE && n == sizeof(uint32_t)) {
            uint32_t lid;
            memcpy(&lid, p, sizeof lid);
            fprintf(stderr, "fake-daemon: LISTENER_GONE listener=%u\n", lid);
        } else {
            fprintf(stderr, "fake-daemon: node %d: unexpected frame type 0x%04x (%zu bytes)\n", node, h->type, n);
        }
    }
}
