/*
 * pids: getpid/getppid/gettid consistency. fork() returns the child's getpid(); the child's getppid()
 * is the parent's getpid(); gettid() == getpid() in the main thread; /proc/self/stat fields pid and
 * ppid, /proc/self and /proc/thread-self links, /proc/self/exe; an orphan is re-parented to a live
 * reaper (not assumed to be 1: only not the dead parent, and alive).
 */
#include "tst.h"

#include <limits.h>

static void self_ids(const char *argv0)
{
    pid_t pid = getpid();
    tst_check_int(tst_gettid(), pid, "gettid() == getpid() in the main thread");
    tst_check(getppid() > 0 && getppid() != pid, "getppid() is a pid other than ours", "getppid %d",
              (int)getppid());

    char buf[1024];
    if (tst_read_file("/proc/self/stat", buf, sizeof(buf)) <= 0)
        tst_brk("read /proc/self/stat");
    int stat_pid = atoi(buf);
    char *rp = strrchr(buf, ')');
    char state = 0;
    int stat_ppid = 0, stat_pgrp = 0, stat_sid = 0;
    if (rp)
        sscanf(rp + 2, "%c %d %d %d", &state, &stat_ppid, &stat_pgrp, &stat_sid);
    tst_check_int(stat_pid, pid, "/proc/self/stat pid field == getpid()");
    tst_check_int(stat_ppid, getppid(), "/proc/self/stat ppid field == getppid()");
    tst_check_int(stat_pgrp, getpgrp(), "/proc/self/stat pgrp field == getpgrp()");
    tst_check_int(stat_sid, getsid(0), "/proc/self/stat session field == getsid(0)");
    tst_check(state == 'R', "/proc/self/stat state of the reader is R", "state '%c'", state);

    char link[PATH_MAX];
    ssize_t n = readlink("/proc/self", link, sizeof(link) - 1);
    link[n > 0 ? n : 0] = '\0';
    tst_check(n > 0 && atoi(link) == pid && strspn(link, "0123456789") == (size_t)n, "/proc/self -> getpid()",
              "link '%s'", link);
    n = readlink("/proc/thread-self", link, sizeof(link) - 1);
    link[n > 0 ? n : 0] = '\0';
    char want[64];
    snprintf(want, sizeof(want), "%d/task/%d", (int)pid, (int)tst_gettid());
    tst_check(strcmp(link, want) == 0, "/proc/thread-self -> <pid>/task/<tid>", "link '%s' expected '%s'", link,
              want);

    n = readlink("/proc/self/exe", link, sizeof(link) - 1);
    link[n > 0 ? n : 0] = '\0';
    if (strchr(argv0, '/')) {
        char real[PATH_MAX];
        if (!realpath(argv0, real))
            tst_fail("realpath(%s): %s", argv0, strerror(errno));
        else
            tst_check(strcmp(link, real) == 0, "readlink(/proc/self/exe) is this program's real path",
                      "'%s' vs '%s'", link, real);
    } else {
        const char *base = strrchr(link, '/');
        tst_check(base && strcmp(base + 1, argv0) == 0, "readlink(/proc/self/exe) names this program",
                  "'%s'", link);
    }

    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    char buf2[1024];
    tst_check(tst_read_file(path, buf2, sizeof(buf2)) > 0 && atoi(buf2) == pid,
              "/proc/<getpid()>/stat exists and names us", "%s", path);
}

static void child_ids(void)
{
    int p[2];
    if (pipe(p) < 0)
        tst_brk("pipe");
    pid_t parent = getpid();
    pid_t child = tst_fork();
    if (child == 0) {
        pid_t ids[3] = { getpid(), getppid(), tst_gettid() };
        tst_write_full(p[1], ids, sizeof(ids));
        _exit(0);
    }
    close(p[1]);
    pid_t ids[3] = { 0, 0, 0 };
    tst_read_full(p[0], ids, sizeof(ids));
    close(p[0]);
    tst_check_int(ids[0], child, "fork() returns the child's getpid()");
    tst_check_int(ids[1], parent, "the child's getppid() == the parent's getpid()");
    tst_check_int(ids[2], child, "the child's gettid() == its getpid()");
    tst_check(child != parent, "the child's pid differs from the parent's", "both %d", (int)child);
    tst_reap_ok(child, "child exits 0");
}

static void orphan(void)
{
    /*
     * we fork C, C forks G and reports G's pid and its parent, C exits; once we have reaped C, G has
     * already been re-parented (that happens in C's exit, before C can be reaped). Then G checks its
     * new parent and reports.
     */
    int rep[2], go[2];
    if (pipe(rep) < 0 || pipe(go) < 0)
        tst_brk("pipe");
    pid_t c = tst_fork();
    if (c == 0) {
        int ready[2];
        if (pipe(ready) < 0)
            _exit(2);
        pid_t g = fork();
        if (g < 0)
            _exit(2);
        if (g == 0) {
            close(go[1]);
            close(ready[0]);
            pid_t first_parent = getppid();
            tst_write_full(ready[1], "r", 1); /* only now may C exit */
            close(ready[1]);
            char ch;
            if (tst_read_full(go[0], &ch, 1) != 1)
                _exit(3);
            pid_t reaper = getppid();
            int alive = reaper > 0 && (kill(reaper, 0) == 0 || errno == EPERM);
            char path[64];
            snprintf(path, sizeof(path), "/proc/%d/stat", (int)reaper);
            int in_proc = access(path, R_OK) == 0;
            pid_t out[4] = { first_parent, reaper, alive, in_proc };
            tst_write_full(rep[1], out, sizeof(out));
            _exit(0);
        }
        close(ready[1]);
        char ch;
        _exit(tst_read_full(ready[0], &ch, 1) == 1 ? 0 : 4);
    }
    close(rep[1]);
    close(go[0]);
    tst_reap_ok(c, "the middle child exits 0 once its child has started");
    tst_write_full(go[1], "g", 1);
    close(go[1]);
    pid_t out[4] = { 0, 0, 0, 0 };
    if (tst_read_full(rep[0], out, sizeof(out)) != sizeof(out)) {
        tst_fail("the orphaned grandchild did not report");
        close(rep[0]);
        return;
    }
    close(rep[0]);
    tst_check_int(out[0], c, "the grandchild's getppid() is its parent before the parent exits");
    tst_check(out[1] != c && out[1] > 0, "after its parent exits, the orphan's getppid() changes",
              "still %d", (int)out[1]);
    tst_check(out[2], "the orphan's new parent (the reaper) is alive (kill(ppid, 0))", "reaper %d",
              (int)out[1]);
    tst_check(out[3], "the reaper has a /proc/<pid>/stat entry", "reaper %d", (int)out[1]);
}

int main(int argc, char **argv)
{
    (void)argc;
    tst_watchdog(90);
    self_ids(argv[0]);
    child_ids();
    orphan();
    tst_exit();
}
