/*
 * ghost_ipc: named pipes and SysV shared memory a checkpoint must carry across a restart, in use for
 * about a second and a half so that the suite's ckpt pass catches them mid-way:
 * - a FIFO in a directory of its own: the parent writes 16 bytes into it at once, the child reads them
 *   only 700 ms later (bytes in flight), then writes an answer back through a second FIFO the parent
 *   opened O_RDWR (a Linux way to open a FIFO without a partner);
 * - a private SysV segment of 3 pages attached by both (pages 0 and 2 written, page 1 a hole), the
 *   child's write must reach the parent;
 * - a keyed segment (key from the pid) the parent attached read-only after filling it through a
 *   writable attachment it then detached;
 * - a segment removed (IPC_RMID) while the parent keeps it attached, with data in it;
 * - a segment created and filled but attached by nobody;
 * - a datagram and a seqpacket socketpair with messages in flight (their boundaries must hold).
 * At the end each must still be what it was, with the same ids, and the removed one still gone.
 */
#include "tst.h"
#include <sys/ipc.h>
#include <sys/shm.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <fcntl.h>

#define RUN_MS 1500
#define PAGE 4096

static void fill(unsigned char *p, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (unsigned char)(seed + i * 7);
}

static int same(const unsigned char *p, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != (unsigned char)(seed + i * 7))
            return 0;
    return 1;
}

int main(void)
{
    char ready[32];
    int rn = snprintf(ready, sizeof ready, "ready %d\n", (int)getpid());
    tst_write_full(STDOUT_FILENO, ready, rn); /* for tests that checkpoint it (RestartTest) */

    char dir[] = "/tmp/ghost_ipc.XXXXXX", fifo[64], back[64];
    if (!mkdtemp(dir))
        tst_brk("mkdtemp");
    snprintf(fifo, sizeof fifo, "%s/fifo", dir);
    snprintf(back, sizeof back, "%s/back", dir);
    if (mkfifo(fifo, 0600) || mkfifo(back, 0600))
        tst_brk("mkfifo");

    int priv = shmget(IPC_PRIVATE, 3 * PAGE, IPC_CREAT | 0600);
    key_t key = (key_t)(0x5a000000 | (getpid() & 0xffffff));
    int keyed = shmget(key, PAGE, IPC_CREAT | IPC_EXCL | 0640);
    int gone = shmget(IPC_PRIVATE, 2 * PAGE, IPC_CREAT | 0600);
    int lone = shmget(IPC_PRIVATE, PAGE, IPC_CREAT | 0600);
    if (priv < 0 || keyed < 0 || gone < 0 || lone < 0)
        tst_brk("shmget");
    unsigned char *p = shmat(priv, NULL, 0), *g = shmat(gone, NULL, 0);
    unsigned char *kw = shmat(keyed, NULL, 0), *lw = shmat(lone, NULL, 0);
    if (p == (void *)-1 || g == (void *)-1 || kw == (void *)-1 || lw == (void *)-1)
        tst_brk("shmat");
    fill(p, PAGE, 1);
    fill(p + 2 * PAGE, PAGE, 2);
    fill(g, 2 * PAGE, 3);
    fill(kw, PAGE, 4);
    fill(lw, PAGE, 5);
    shmdt(kw);
    shmdt(lw);
    unsigned char *kr = shmat(keyed, NULL, SHM_RDONLY);
    if (kr == (void *)-1)
        tst_brk("shmat read-only");
    if (shmctl(gone, IPC_RMID, NULL))
        tst_brk("IPC_RMID");

    int dg[2], sq[2];
    if (socketpair(AF_UNIX, SOCK_DGRAM, 0, dg) || socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sq))
        tst_brk("socketpair");
    static char big[3000];
    memset(big, 'm', sizeof big);
    if (send(dg[0], "one", 3, 0) != 3 || send(dg[0], big, sizeof big, 0) != (ssize_t)sizeof big || send(dg[0], "x", 1, 0) != 1
        || send(sq[0], "first record", 12, 0) != 12 || send(sq[0], "second", 6, 0) != 6)
        tst_brk("send the messages");

    pid_t child = tst_fork();
    if (child == 0) {
        close(dg[0]);
        close(sq[0]);
        int r = open(fifo, O_RDONLY);
        if (r < 0)
            tst_brk("child: open %s", fifo);
        tst_sleep_ms(700); /* the bytes wait in the FIFO */
        char buf[32];
        ssize_t n = read(r, buf, sizeof buf);
        if (n != 16 || memcmp(buf, "through the fifo", 16))
            tst_fail("child: read %zd bytes from the FIFO, not the 16 written", n);
        static char m[4096];
        ssize_t m1 = recv(dg[1], m, sizeof m, MSG_DONTWAIT);
        int ok = m1 == 3 && !memcmp(m, "one", 3);
        ssize_t m2 = recv(dg[1], m, sizeof m, MSG_DONTWAIT);
        ok = ok && m2 == (ssize_t)sizeof big && !memcmp(m, big, sizeof big);
        ssize_t m3 = recv(dg[1], m, sizeof m, MSG_DONTWAIT);
        ok = ok && m3 == 1 && m[0] == 'x' && recv(dg[1], m, sizeof m, MSG_DONTWAIT) < 0 && errno == EAGAIN;
        if (!ok)
            tst_fail("child: the datagrams in flight came back as %zd, %zd, %zd bytes, not 3, %zu, 1", m1, m2, m3, sizeof big);
        ssize_t q1 = recv(sq[1], m, sizeof m, MSG_DONTWAIT);
        ok = q1 == 12 && !memcmp(m, "first record", 12);
        ssize_t q2 = recv(sq[1], m, sizeof m, MSG_DONTWAIT);
        if (!ok || q2 != 6 || memcmp(m, "second", 6))
            tst_fail("child: the seqpacket records in flight came back as %zd and %zd bytes, not 12 and 6", q1, q2);
        n = read(r, buf, sizeof buf);
        if (n != 0)
            tst_fail("child: no end of file on the FIFO after its writer closed (read gave %zd)", n);
        close(r);
        int w = open(back, O_WRONLY);
        if (w < 0 || write(w, "answer", 6) != 6)
            tst_fail("child: cannot answer through %s: %s", back, strerror(errno));
        close(w);
        if (!same(p, PAGE, 1) || !same(p + 2 * PAGE, PAGE, 2))
            tst_fail("child: the private segment's pages are not what the parent wrote");
        if (p[PAGE] != 0)
            tst_fail("child: the private segment's untouched page is not zero");
        p[PAGE + 5] = 42;
        tst_child_exit();
    }

    int ans = open(back, O_RDWR); /* no partner needed: the child's open for writing finds this reader */
    int w = open(fifo, O_WRONLY);
    if (w < 0 || ans < 0)
        tst_brk("open the FIFOs");
    tst_write_full(w, "through the fifo", 16);
    close(w);
    tst_sleep_ms(RUN_MS - 100);

    tst_check(tst_reap_ok(child, "child"), "the child read the bytes in flight in the FIFO, then its end of file, and "
              "the datagram and seqpacket messages with their boundaries", "see the child's FAIL lines");
    char buf[16];
    tst_check(read(ans, buf, sizeof buf) == 6 && !memcmp(buf, "answer", 6), "the answer came back through the O_RDWR FIFO",
              "%s", "no answer");
    tst_check(p[PAGE + 5] == 42 && same(p, PAGE, 1) && same(p + 2 * PAGE, PAGE, 2),
              "the child's write reached the private segment, whose pages are intact", "byte %d", p[PAGE + 5]);
    struct shmid_ds ds;
    tst_check(shmctl(priv, IPC_STAT, &ds) == 0 && ds.shm_segsz == 3 * PAGE && (ds.shm_perm.mode & 0777) == 0600
              && ds.shm_nattch == 1, "the private segment keeps its id, size, mode and attachments", "errno %d nattch %d",
              errno, (int)ds.shm_nattch);
    tst_check(shmget(key, 0, 0) == keyed && shmctl(keyed, IPC_STAT, &ds) == 0 && (ds.shm_perm.mode & 0777) == 0640
              && same(kr, PAGE, 4), "the keyed segment is found by its key, with its mode and data", "errno %d", errno);
    int st = shmctl(gone, IPC_STAT, &ds);
    tst_check(same(g, 2 * PAGE, 3) && st == 0 && (ds.shm_perm.mode & SHM_DEST) && ds.shm_perm.__key == IPC_PRIVATE,
              "the removed segment is still attached with its data, and still marked removed", "stat %d mode 0%o", st,
              (unsigned)ds.shm_perm.mode);
    unsigned char *l2 = shmat(lone, NULL, SHM_RDONLY);
    tst_check(l2 != (void *)-1 && same(l2, PAGE, 5), "the segment nobody had attached kept its data", "errno %d", errno);

    shmdt(p);
    shmdt(g);
    shmdt(kr);
    if (l2 != (void *)-1)
        shmdt(l2);
    shmctl(priv, IPC_RMID, NULL);
    shmctl(keyed, IPC_RMID, NULL);
    shmctl(lone, IPC_RMID, NULL);
    close(ans);
    unlink(fifo);
    unlink(back);
    rmdir(dir);
    tst_exit();
}
