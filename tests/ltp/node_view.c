/*
 * node_view: the pids a program sees when it runs on a cluster node. Node n owns the pids
 * [n << 14, (n + 1) << 14); with SSI_EXPECT_NODE=n set (the runner sets it for ssi-run runs), the
 * process, a forked child, a thread and the /proc views of them must all be inside that range.
 * Without the variable (a native run) the test does not apply and reports CONF.
 */
#include "tst.h"

#include <pthread.h>

static long lo, hi;

static int in_range(long pid)
{
    return pid >= lo && pid < hi;
}

static void *thread_main(void *arg)
{
    *(pid_t *)arg = tst_gettid();
    return NULL;
}

int main(void)
{
    const char *env = getenv("SSI_EXPECT_NODE");
    if (!env || !*env)
        tst_conf("SSI_EXPECT_NODE is not set: not running on an SSI node");
    char *end;
    long node = strtol(env, &end, 10);
    if (*end || node < 1 || node > 255)
        tst_conf("SSI_EXPECT_NODE='%s' is not a node id (1..255)", env);
    tst_watchdog(90);
    lo = node << 14;
    hi = (node + 1) << 14;

    pid_t pid = getpid();
    tst_check(in_range(pid), "getpid() is in the node's pid range", "pid %d not in [%ld, %ld)", (int)pid, lo, hi);

    char buf[1024];
    tst_check(tst_read_file("/proc/self/stat", buf, sizeof(buf)) > 0 && atoi(buf) == pid,
              "/proc/self/stat shows the same pid (the node's /proc)", "stat pid %d", atoi(buf));

    int p[2];
    if (pipe(p) < 0)
        tst_brk("pipe");
    pid_t child = tst_fork();
    if (child == 0) {
        pid_t ids[2] = { getpid(), getppid() };
        tst_write_full(p[1], ids, sizeof(ids));
        _exit(0);
    }
    close(p[1]);
    pid_t ids[2] = { 0, 0 };
    tst_read_full(p[0], ids, sizeof(ids));
    close(p[0]);
    tst_check(in_range(child) && ids[0] == child, "a forked child's pid is in the node's range",
              "fork returned %d, child saw %d", (int)child, (int)ids[0]);
    tst_check_int(ids[1], pid, "the child's getppid() is our node pid");
    tst_reap_ok(child, "child exits 0");

    pid_t tid = 0;
    pthread_t t;
    if (pthread_create(&t, NULL, thread_main, &tid) != 0)
        tst_brk("pthread_create");
    pthread_join(t, NULL);
    tst_check(in_range(tid) && tid != pid, "a thread's tid is in the node's range", "tid %d", (int)tid);
    tst_exit();
}
