/* A stand-in for the node daemon (ssid) in the shim's tests. Started by ssi-shim as pid 2 with the same
 * arguments the real daemon gets (--node N --run-dir DIR), it links like ssid does (HELLO, checks the
 * reply), then answers every forwarded trap with CONTINUE, except that a signal aimed at a pid of
 * another node is answered -ESRCH, as if that node had no such process. It logs one line per LAUNCHED,
 * NOTIF and LISTENER_GONE to stderr (the node log under --detach), which is what the tests read.
 * It exits when the link closes, and on SIGTERM (default action).
 * With --probe-ptrace, a program launched with a path ending in "ptrace-probe" is also put through every
 * ptrace request of the link (ATTACH ... DETACH; GIVEFD installs /dev/zero at its fd 100), and one
 * "PTRACE-PROBE" line reports each result. Then SPAWN_STUB is tried with a free pid 4000 above that
 * program's and again with the stub's pid (taken), and the stub is inspected (state, parent, fds),
 * injected into and detached, then killed; one "SPAWN-STUB" line reports it. Before the detach the stub also gets INSTALL_FILTER (twice:
 * the second must say EBUSY); one "INSTALL-FILTER" line reports the listener, its fds and mappings right
 * after, and its Seccomp and NoNewPrivs after the detach. GETRSEQ of the attached program ("RSEQ-PROBE" line) must
 * find glibc's registration, and the stub must have none. Owner: its only thread. */
#include "ssi_proto.h"
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <dirent.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <sys/un.h>

static int node, link_fd, probe_ptrace;
static uint32_t next_req_id = 1;
static _Alignas(8) uint8_t frame[SSI_MAX_FRAME];

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

static void recv_frame(void)
{
    int rc = ssi_recv_frame(link_fd, frame, sizeof frame, NULL, NULL);
    if (rc) {
        fprintf(stderr, "fake-daemon: node %d: link closed (%s); exiting\n", node, strerror(-rc));
        exit(0);
    }
}

static void probe(int32_t pid);

/* Handles one frame the shim sent on its own (not a reply). */
static void handle(const uint8_t *buf)
{
    const struct ssi_hdr *h = (const void *)buf;
    const uint8_t *p = buf + sizeof *h;
    size_t n = h->len - sizeof *h;
    if (h->type == SSI_LAUNCHED && n > sizeof(struct ssi_launched)) {
        struct ssi_launched l;
        memcpy(&l, p, sizeof l);
        const char *path = (const char *)p + sizeof l;
        fprintf(stderr, "fake-daemon: LAUNCHED pid=%d uid=%u gid=%u listener=%u path=%.*s\n", l.pid, l.uid, l.gid,
                l.listener_id, (int)(n - sizeof l), path);
        size_t plen = strnlen(path, n - sizeof l);
        if (probe_ptrace && plen >= 12 && !strncmp(path + plen - 12, "ptrace-probe", 12))
            probe(l.pid);
    } else if (h->type == SSI_NOTIF && n == sizeof(struct ssi_notif)) {
        struct ssi_notif m;
        memcpy(&m, p, sizeof m);
        struct ssi_notif_reply r = { .listener_id = m.listener_id, .notif_id = m.notif_id };
        long target = (int)m.args[0];
        if (is_signal_call(m.nr) && other_node(target))
            r.error = -ESRCH;
        else
            r.flags = SSI_REPLY_CONTINUE;
        fprintf(stderr, "fake-daemon: NOTIF listener=%u pid=%d nr=%d arg0=%ld -> %s\n", m.listener_id, m.pid, m.nr,
                target, r.error ? "ESRCH" : "CONTINUE");
        int rc = ssi_send_frame(link_fd, SSI_NOTIF_REPLY, ++next_req_id, &r, sizeof r, -1, 0);
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

/* Sends a request and returns its reply's error; the reply body (after the error) goes to body.
 * Frames the shim sends meanwhile are handled as usual. */
static int32_t request(uint16_t type, const void *payload, size_t len, void *body, size_t body_cap, size_t *body_len)
{
    uint32_t id = ++next_req_id;
    int rc = ssi_send_frame(link_fd, type, id, payload, len, -1, 0);
    if (rc)
        die("sending a request failed", -rc);
    for (;;) {
        static _Alignas(8) uint8_t own[SSI_MAX_FRAME];
        int rc2 = ssi_recv_frame(link_fd, own, sizeof own, NULL, NULL);
        if (rc2)
            die("link closed while waiting for a reply", -rc2);
        const struct ssi_hdr *h = (const void *)own;
        if (h->type != (type | SSI_REPLY_BIT) || h->req_id != id) {
            handle(own);
            continue;
        }
        size_t n = h->len - sizeof *h;
        int32_t err = -EPROTO;
        if (n >= sizeof err)
            memcpy(&err, own + sizeof *h, sizeof err);
        size_t bl = n >= sizeof err ? n - sizeof err : 0;
        if (bl > body_cap)
            bl = body_cap;
        if (body)
            memcpy(body, own + sizeof *h + sizeof err, bl);
        if (body_len)
            *body_len = bl;
        return err;
    }
}

/* "State:" letter and PPid of /proc/pid/status, and how many fds /proc/pid/fd lists. */
static void inspect(int32_t pid, char *state, int *ppid, int *fds)
{
    char path[64], buf[2048];
    *state = '?';
    *ppid = -1;
    *fds = -1;
    snprintf(path, sizeof path, "/proc/%d/status", pid);
    FILE *f = fopen(path, "re");
    if (f) {
        size_t n = fread(buf, 1, sizeof buf - 1, f);
        buf[n] = 0;
        fclose(f);
        const char *s = strstr(buf, "\nState:");
        if (s)
            sscanf(s + 7, " %c", state);
        s = strstr(buf, "\nPPid:");
        if (s)
            *ppid = atoi(s + 6);
    }
    snprintf(path, sizeof path, "/proc/%d/fd", pid);
    DIR *d = opendir(path);
    if (d) {
        *fds = 0;
        struct dirent *e;
        while ((e = readdir(d)))
            if (e->d_name[0] != '.')
                ++*fds;
        closedir(d);
    }
}

/* Fields 5 and 6 (pgrp, session) of /proc/pid/stat. */
static void pgrp_sid(int32_t pid, int *pgrp, int *sid)
{
    char path[64], buf[512];
    *pgrp = *sid = -1;
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    FILE *f = fopen(path, "re");
    if (!f)
        return;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    char *r = strrchr(buf, ')');
    if (r)
        sscanf(r + 2, "%*c %*d %d %d", pgrp, sid);
}

/* Lines of /proc/pid/<what>, or -1. */
static int count_lines(int32_t pid, const char *what)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/%s", pid, what);
    FILE *f = fopen(path, "re");
    if (!f)
        return -1;
    int n = 0, c;
    while ((c = fgetc(f)) != EOF)
        n += c == '\n';
    fclose(f);
    return n;
}

/* The number after key in /proc/pid/status, or -1. */
static int status_field(int32_t pid, const char *key)
{
    char path[64], buf[4096];
    snprintf(path, sizeof path, "/proc/%d/status", pid);
    FILE *f = fopen(path, "re");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    const char *s = strstr(buf, key);
    return s ? atoi(s + strlen(key)) : -1;
}

static void probe_stub(int32_t taken)
{
    struct ssi_tid_req t = { .tid = taken + 4000 };
    int32_t pid = -1;
    size_t got = 0;
    int32_t e_spawn = request(SSI_SPAWN_STUB, &t, sizeof t, &pid, sizeof pid, &got);
    if (!e_spawn && got != sizeof pid)
        e_spawn = -EPROTO;
    /* a taken pid: the stub's own while it lives (the probed program may have exited by now, freeing its pid) */
    int32_t again = -1;
    t.tid = e_spawn ? taken : pid;
    int32_t e_taken = request(SSI_SPAWN_STUB, &t, sizeof t, &again, sizeof again, &got);
    char state = '?';
    int ppid = -1, fds = -1;
    int64_t ret = 0;
    int32_t inject = -1, detach = -1;
    char after = '?';
    /* GETRSEQ of a thread the shim does not trace (the probed program, detached by now) */
    struct ssi_tid_req u = { .tid = taken };
    struct ssi_rseq_reply rs;
    int32_t e_untraced = request(SSI_GETRSEQ, &u, sizeof u, &rs, sizeof rs, &got);
    int32_t e_rseq = -1;
    int pgrp = -1, sid = -1;
    int32_t filter = -1, filter_again = -1;
    uint32_t lid = 0;
    int fds_after = -1, maps0 = -1, maps_same = 0, seccomp = -1, nnp = -1;
    memset(&rs, 0xff, sizeof rs);
    if (!e_spawn) {
        inspect(pid, &state, &ppid, &fds);
        pgrp_sid(pid, &pgrp, &sid);
        t.tid = pid;
        e_rseq = request(SSI_GETRSEQ, &t, sizeof t, &rs, sizeof rs, &got);
        struct ssi_inject_req inj = { .tid = pid, .nr = SYS_getpid };
        inject = request(SSI_INJECT, &inj, sizeof inj, &ret, sizeof ret, &got);
        /* INSTALL_FILTER: the stub leaves with the node's filter, no_new_privs, no extra fd or mapping */
        maps0 = count_lines(pid, "maps");
        t.tid = pid;
        filter = request(SSI_INSTALL_FILTER, &t, sizeof t, &lid, sizeof lid, &got);
        if (!filter && got != sizeof lid)
            filter = -EPROTO;
        int s2, p3, f3;
        char st3;
        inspect(pid, &st3, &s2, &f3);
        fds_after = f3;
        maps_same = count_lines(pid, "maps") == maps0;
        filter_again = request(SSI_INSTALL_FILTER, &t, sizeof t, NULL, 0, NULL);
        t.tid = pid;
        detach = request(SSI_DETACH, &t, sizeof t, NULL, 0, NULL);
        usleep(100000);
        int p2, f2;
        inspect(pid, &after, &p2, &f2);
        seccomp = status_field(pid, "Seccomp:");
        nnp = status_field(pid, "NoNewPrivs:");
        (void)p3;
        kill(pid, SIGKILL);
    }
    fprintf(stderr, "fake-daemon: SPAWN-STUB taken=%d spawn=%d pid=%d state=%c ppid=%d pgrp=%d sid=%d fds=%d "
            "rseq=%d:%llx inject=%d ret=%lld detach=%d after=%c untraced-getrseq=%d\n", e_taken, e_spawn, pid, state,
            ppid, pgrp, sid, fds, e_rseq, (unsigned long long)rs.pointer, inject, (long long)ret, detach, after, e_untraced);
    fprintf(stderr, "fake-daemon: INSTALL-FILTER pid=%d filter=%d listener=%u fds=%d maps-same=%d again=%d "
            "seccomp=%d nnp=%d\n", pid, filter, lid, fds_after, maps_same, filter_again, seccomp, nnp);
}

static void probe(int32_t pid)
{
    struct ssi_tid_req t = { .tid = pid };
    int32_t attach = request(SSI_ATTACH, &t, sizeof t, NULL, 0, NULL);
    struct user_regs_struct regs;
    size_t got = 0;
    int32_t getregs = request(SSI_GETREGS, &t, sizeof t, &regs, sizeof regs, &got);
    if (!getregs && got != sizeof regs)
        getregs = -EPROTO;
    /* Reads the word at the stack pointer, then writes it back unchanged. */
    struct { struct ssi_mem_req r; uint64_t word; } __attribute__((packed)) mem = {
        .r = { .pid = pid, .len = 8, .addr = regs.rsp } };
    int32_t readmem = request(SSI_READMEM, &mem.r, sizeof mem.r, &mem.word, sizeof mem.word, &got);
    if (!readmem && got != 8)
        readmem = -EPROTO;
    int32_t writemem = request(SSI_WRITEMEM, &mem, sizeof mem, NULL, 0, NULL);
    struct ssi_inject_req inj = { .tid = pid, .nr = SYS_getpid };
    int64_t ret = 0;
    int32_t inject = request(SSI_INJECT, &inj, sizeof inj, &ret, sizeof ret, &got);
    int zero = open("/dev/zero", O_RDONLY | O_CLOEXEC);
    struct ssi_givefd_req g = { .tid = pid, .daemon_fd = zero, .target_fd = 100 };
    int32_t fd = -1;
    int32_t givefd = request(SSI_GIVEFD, &g, sizeof g, &fd, sizeof fd, &got);
    close(zero);
    struct { struct ssi_setregs_req r; } sr = { .r = { .tid = pid, .regs = regs } };
    int32_t setregs = request(SSI_SETREGS, &sr, sizeof sr, NULL, 0, NULL);
    static uint8_t xs[1 << 16];
    uint32_t xlen = 0;
    int32_t getx = request(SSI_GETXSTATE, &t, sizeof t, xs, sizeof xs, &got);
    if (!getx && got >= 4)
        memcpy(&xlen, xs, 4);
    struct ssi_rseq_reply rs;
    memset(&rs, 0, sizeof rs);
    int32_t getrseq = request(SSI_GETRSEQ, &t, sizeof t, &rs, sizeof rs, &got);
    if (!getrseq && got != sizeof rs)
        getrseq = -EPROTO;
    int32_t detach = request(SSI_DETACH, &t, sizeof t, NULL, 0, NULL);
    fprintf(stderr, "fake-daemon: RSEQ-PROBE pid=%d getrseq=%d registered=%d size=%u sig=0x%x\n", pid, getrseq,
            rs.pointer != 0, rs.size, rs.signature);
    fprintf(stderr, "fake-daemon: PTRACE-PROBE pid=%d attach=%d getregs=%d readmem=%d writemem=%d inject=%d ret=%lld "
            "givefd=%d fd=%d setregs=%d getxstate=%d xlen=%u detach=%d\n", pid, attach, getregs, readmem, writemem,
            inject, (long long)ret, givefd, fd, setregs, getx, xlen, detach);
    probe_stub(pid);
}

int main(int argc, char **argv)
{
    const char *run_dir = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--node") && i + 1 < argc)
            node = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--run-dir") && i + 1 < argc)
            run_dir = argv[++i];
        else if (!strcmp(argv[i], "--probe-ptrace"))
            probe_ptrace = 1;
    }
    if (node < 1 || node > SSI_MAX_NODE || !run_dir) {
        fprintf(stderr, "usage: tool_fake_daemon --node N --run-dir DIR [--probe-ptrace]\n");
        return 2;
    }
    struct sockaddr_un a = { .sun_family = AF_UNIX };
    snprintf(a.sun_path, sizeof a.sun_path, "%s/node-%d.link", run_dir, node);
    link_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (link_fd < 0 || connect(link_fd, (struct sockaddr *)&a, sizeof a) < 0)
        die("cannot connect to the link socket", errno);

    uint32_t version = SSI_LINK_VERSION;
    int rc = ssi_send_frame(link_fd, SSI_HELLO, 1, &version, sizeof version, -1, 0);
    if (rc)
        die("sending HELLO failed", -rc);
    recv_frame();
    const struct ssi_hdr *h = (const void *)frame;
    struct ssi_hello_reply hr;
    if (h->type != (SSI_HELLO | SSI_REPLY_BIT) || h->req_id != 1 || h->len != sizeof *h + sizeof hr)
        die("malformed HELLO reply", 0);
    memcpy(&hr, frame + sizeof *h, sizeof hr);
    if (hr.error || hr.version != SSI_LINK_VERSION || hr.node_id != node ||
        hr.pid_base != node << SSI_PID_SHIFT || hr.pid_limit != (node + 1) << SSI_PID_SHIFT) {
        fprintf(stderr, "fake-daemon: node %d: wrong HELLO reply: error %d version %u node %d pids [%d, %d)\n",
                node, hr.error, hr.version, hr.node_id, hr.pid_base, hr.pid_limit);
        return 1;
    }
    fprintf(stderr, "fake-daemon: node %d: linked as pid %d, cluster pids [%d, %d)\n", node, (int)getpid(),
            hr.pid_base, hr.pid_limit);
    for (;;) {
        recv_frame();
        handle(frame);
    }
}
