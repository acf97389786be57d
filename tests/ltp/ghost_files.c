/*
 * ghost_files: file objects a checkpoint must carry across a restart, in use for about a second and a
 * half so that the suite's ckpt pass catches them mid-way: an O_APPEND log written line by line (each
 * line goes to the end, the flag survives), a file mapped MAP_SHARED (what is written through the
 * mapping reaches the file, before and after), a file mapped MAP_PRIVATE with one page written (that
 * page keeps the process's copy, the others still show the file, the file never sees the private
 * write), the brk heap grown and filled, open fds on /dev/null, /dev/zero and /dev/urandom, and an fd
 * on the process's own /proc/<pid>/stat, read again at the end (it must show the process as it is).
 */
#include "tst.h"
#include <sys/mman.h>
#include <fcntl.h>

#define STEPS 30
#define STEP_MS 50
#define PAGE 4096

int main(void)
{
    char ready[32];
    int rn = snprintf(ready, sizeof ready, "ready %d\n", (int)getpid());
    tst_write_full(STDOUT_FILENO, ready, rn); /* for tests that checkpoint it (RestartTest) */

    char dir[] = "/tmp/ghost_files.XXXXXX", logp[64], sharedp[64], privp[64];
    if (!mkdtemp(dir))
        tst_brk("mkdtemp");
    snprintf(logp, sizeof logp, "%s/log", dir);
    snprintf(sharedp, sizeof sharedp, "%s/shared", dir);
    snprintf(privp, sizeof privp, "%s/private", dir);

    int log = open(logp, O_WRONLY | O_CREAT | O_APPEND, 0644);
    int other = open(logp, O_WRONLY); /* another writer at offset 0: O_APPEND writes still go to the end */
    int sf = open(sharedp, O_RDWR | O_CREAT | O_TRUNC, 0644);
    int pf = open(privp, O_RDWR | O_CREAT | O_TRUNC, 0644);
    int dnull = open("/dev/null", O_WRONLY), dzero = open("/dev/zero", O_RDONLY), drand = open("/dev/urandom", O_RDONLY);
    char statp[64];
    snprintf(statp, sizeof statp, "/proc/%d/stat", (int)getpid());
    int pstat = open(statp, O_RDONLY);
    if (log < 0 || other < 0 || sf < 0 || pf < 0 || dnull < 0 || dzero < 0 || drand < 0 || pstat < 0)
        tst_brk("open");
    char page[PAGE];
    for (int i = 0; i < 4; i++) {
        memset(page, 'a' + i, PAGE);
        if (write(pf, page, PAGE) != PAGE || ftruncate(sf, 4 * PAGE))
            tst_brk("fill the files");
    }
    char *sh = mmap(NULL, 4 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, sf, 0);
    char *pr = mmap(NULL, 4 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE, pf, 0);
    if (sh == MAP_FAILED || pr == MAP_FAILED)
        tst_brk("mmap");
    memset(pr + PAGE, 'P', PAGE); /* this page is the process's own copy now */
    char *heap = sbrk(64 * 1024);
    if (heap == (void *)-1)
        tst_brk("sbrk");
    for (int i = 0; i < 64 * 1024; i++)
        heap[i] = (char)(i * 13);
    void *brk_end = sbrk(0);

    for (int i = 0; i < STEPS; i++) {
        char line[32];
        int n = snprintf(line, sizeof line, "line %02d\n", i);
        if (i % 2) /* other has no O_APPEND: it writes where it is, so it goes to the end first */
            lseek(other, 0, SEEK_END);
        if (write(i % 2 ? other : log, line, n) != n)
            tst_brk("write the log");
        sh[i * 100] = (char)('A' + i % 26);
        tst_sleep_ms(STEP_MS);
    }

    int fl = fcntl(log, F_GETFL);
    tst_check(fl >= 0 && (fl & O_APPEND), "the log fd kept O_APPEND", "flags 0%o", fl);
    char want[STEPS * 8 + 1], got[STEPS * 8 + 16];
    for (int i = 0; i < STEPS; i++)
        snprintf(want + 8 * i, 9, "line %02d\n", i);
    int lr = open(logp, O_RDONLY);
    ssize_t ln = read(lr, got, sizeof got);
    close(lr);
    tst_check(ln == STEPS * 8 && !memcmp(got, want, STEPS * 8), "the log holds every line once, in order",
              "%zd bytes", ln);
    off_t pos = lseek(log, 0, SEEK_CUR);
    /* an O_APPEND write leaves the offset at the end as it was after that write: the log fd wrote last at i = 28 */
    tst_check(pos == (STEPS - 1) * 8, "the O_APPEND fd's offset is where its last write ended", "offset %lld", (long long)pos);

    msync(sh, 4 * PAGE, MS_SYNC);
    char file[4 * PAGE];
    int ok = pread(sf, file, sizeof file, 0) == (ssize_t)sizeof file;
    for (int i = 0; ok && i < STEPS; i++)
        ok = file[i * 100] == (char)('A' + i % 26) && sh[i * 100] == file[i * 100];
    tst_check(ok, "every write through the shared mapping reached the file", "%s", "mismatch");

    ok = pread(pf, file, sizeof file, 0) == (ssize_t)sizeof file;
    for (int i = 0; ok && i < 4 * PAGE; i++) {
        int pg = i / PAGE;
        ok = file[i] == 'a' + pg && pr[i] == (pg == 1 ? 'P' : 'a' + pg);
    }
    tst_check(ok, "the private mapping keeps its own page and shows the file elsewhere, the file never saw it", "%s",
              "mismatch");

    ok = sbrk(0) == brk_end;
    for (int i = 0; ok && i < 64 * 1024; i++)
        ok = heap[i] == (char)(i * 13);
    tst_check(ok, "the brk heap kept its end and contents", "%s", "mismatch");

    char z[16], r[16], zero[16] = {0};
    tst_check(write(dnull, "x", 1) == 1 && read(dzero, z, 16) == 16 && !memcmp(z, zero, 16) && read(drand, r, 16) == 16,
              "/dev/null, /dev/zero and /dev/urandom still work", "errno %d", errno);

    char st[512] = {0};
    ssize_t sn = pread(pstat, st, sizeof st - 1, 0);
    int spid = -1;
    char sstate = '?';
    const char *paren = sn > 0 ? strrchr(st, ')') : NULL;
    if (sn > 0)
        spid = atoi(st);
    if (paren && paren[1] == ' ')
        sstate = paren[2];
    tst_check(spid == (int)getpid() && sstate == 'R', "the fd on /proc/<pid>/stat shows this process, running",
              "read %zd, pid %d, state %c", sn, spid, sstate);

    munmap(sh, 4 * PAGE);
    munmap(pr, 4 * PAGE);
    unlink(logp);
    unlink(sharedp);
    unlink(privp);
    rmdir(dir);
    tst_exit();
}
