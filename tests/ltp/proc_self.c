/*
 * proc_self: /proc/self agrees with the syscalls. status (Name, Pid, PPid, Tgid, Uid, Gid, Threads),
 * cmdline, fd (lists open fds, links to what they are, forgets closed ones), cwd (follows chdir),
 * and /proc/<child pid>/stat of a child: readable, pid/comm/ppid/pgrp right, state S while it sleeps,
 * T when stopped, Z after it exits and before it is reaped.
 */
#include "tst.h"

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <sys/stat.h>

/* Value of "Key:" in /proc/self/status, or NULL. */
static const char *status_field(const char *status, const char *key, char *out, size_t outsz)
{
    size_t kl = strlen(key);
    for (const char *l = status; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
        if (strncmp(l, key, kl) == 0 && l[kl] == ':') {
            const char *v = l + kl + 1;
            while (*v == ' ' || *v == '\t')
                v++;
            size_t n = strcspn(v, "\n");
            if (n >= outsz)
                n = outsz - 1;
            memcpy(out, v, n);
            out[n] = '\0';
            return out;
        }
    }
    return NULL;
}

/* The kernel names a task (comm) after the file it executed, truncated to 15 characters. */
static char exe_comm[16];

static void status(void)
{
    char st[4096], v[256];
    if (tst_read_file("/proc/self/status", st, sizeof(st)) <= 0)
        tst_brk("read /proc/self/status");
    tst_check(status_field(st, "Pid", v, sizeof(v)) && atoi(v) == getpid(), "status Pid == getpid()", "Pid '%s'",
              v);
    tst_check(status_field(st, "PPid", v, sizeof(v)) && atoi(v) == getppid(), "status PPid == getppid()",
              "PPid '%s'", v);
    tst_check(status_field(st, "Tgid", v, sizeof(v)) && atoi(v) == getpid(), "status Tgid == getpid()",
              "Tgid '%s'", v);
    tst_check(status_field(st, "Threads", v, sizeof(v)) && atoi(v) == 1, "status Threads is 1", "Threads '%s'", v);
    unsigned ids[4] = { 0 };
    int n = status_field(st, "Uid", v, sizeof(v)) ? sscanf(v, "%u %u %u %u", &ids[0], &ids[1], &ids[2], &ids[3]) : 0;
    tst_check(n == 4 && ids[0] == getuid() && ids[1] == geteuid(), "status Uid: real and effective match getuid/geteuid",
              "Uid '%s' vs %u %u", v, (unsigned)getuid(), (unsigned)geteuid());
    n = status_field(st, "Gid", v, sizeof(v)) ? sscanf(v, "%u %u %u %u", &ids[0], &ids[1], &ids[2], &ids[3]) : 0;
    tst_check(n == 4 && ids[0] == getgid() && ids[1] == getegid(), "status Gid: real and effective match getgid/getegid",
              "Gid '%s'", v);
    const char *comm = exe_comm;
    tst_check(status_field(st, "Name", v, sizeof(v)) && strcmp(v, comm) == 0, "status Name is the program name",
              "Name '%s' expected '%s'", v, comm);
    char c2[64];
    tst_check(tst_read_file("/proc/self/comm", c2, sizeof(c2)) > 0 && strncmp(c2, comm, strlen(comm)) == 0,
              "/proc/self/comm is the program name", "comm '%s'", c2);
}

static void cmdline(int argc, char **argv)
{
    char buf[4096];
    ssize_t n = tst_read_file("/proc/self/cmdline", buf, sizeof(buf));
    size_t off = 0;
    int ok = n > 0;
    for (int i = 0; i < argc && ok; i++) {
        ok = off < (size_t)n && strcmp(buf + off, argv[i]) == 0;
        off += strlen(argv[i]) + 1;
    }
    tst_check(ok && off == (size_t)n, "/proc/self/cmdline holds argv, NUL-separated", "%zd bytes", n);
}

static int fd_listed(int fd)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return -1;
    int found = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.' && atoi(e->d_name) == fd)
            found = 1;
    closedir(d);
    return found;
}

static void fds(void)
{
    int nul = open("/dev/null", O_RDONLY);
    int p[2];
    if (nul < 0 || pipe(p) < 0)
        tst_brk("open/pipe");
    int high = fcntl(nul, F_DUPFD, 200);
    tst_check(fd_listed(nul) == 1 && fd_listed(p[0]) == 1 && fd_listed(p[1]) == 1 && fd_listed(high) == 1,
              "/proc/self/fd lists the open fds (a file, both pipe ends, a dup at 200+)", "nul %d p %d %d high %d",
              fd_listed(nul), fd_listed(p[0]), fd_listed(p[1]), fd_listed(high));
    tst_check(fd_listed(0) == 1 && fd_listed(1) == 1 && fd_listed(2) == 1, "/proc/self/fd lists 0, 1 and 2",
              "missing a standard fd");

    char path[64], link[PATH_MAX];
    snprintf(path, sizeof(path), "/proc/self/fd/%d", nul);
    ssize_t n = readlink(path, link, sizeof(link) - 1);
    link[n > 0 ? n : 0] = '\0';
    tst_check(strcmp(link, "/dev/null") == 0, "/proc/self/fd/<n> of /dev/null links to /dev/null", "'%s'", link);

    struct stat sb;
    fstat(p[0], &sb);
    char want[64];
    snprintf(want, sizeof(want), "pipe:[%lu]", (unsigned long)sb.st_ino);
    snprintf(path, sizeof(path), "/proc/self/fd/%d", p[1]);
    n = readlink(path, link, sizeof(link) - 1);
    link[n > 0 ? n : 0] = '\0';
    tst_check(strcmp(link, want) == 0, "/proc/self/fd/<n> of a pipe links to pipe:[inode of the pipe]",
              "'%s' expected '%s'", link, want);

    /* opening /proc/self/fd/<n> reopens the same pipe */
    int again = open(path, O_WRONLY);
    char c = 0;
    tst_check(again >= 0 && write(again, "z", 1) == 1 && read(p[0], &c, 1) == 1 && c == 'z',
              "opening /proc/self/fd/<n> reaches the same pipe", "again=%d c='%c'", again, c);
    if (again >= 0)
        close(again);

    close(high);
    tst_check_int(fd_listed(high), 0, "a closed fd disappears from /proc/self/fd");
    close(nul);
    close(p[0]);
    close(p[1]);
}

static void cwd(void)
{
    char tmpl[] = "/tmp/ssi-ltp-cwd-XXXXXX";
    char old[PATH_MAX];
    if (!getcwd(old, sizeof(old)) || !mkdtemp(tmpl))
        tst_brk("getcwd/mkdtemp");
    char real[PATH_MAX], link[PATH_MAX], now[PATH_MAX];
    if (!realpath(tmpl, real))
        tst_brk("realpath");
    if (chdir(tmpl) < 0)
        tst_brk("chdir");
    ssize_t n = readlink("/proc/self/cwd", link, sizeof(link) - 1);
    link[n > 0 ? n : 0] = '\0';
    tst_check(strcmp(link, real) == 0, "/proc/self/cwd follows chdir", "'%s' expected '%s'", link, real);
    tst_check(getcwd(now, sizeof(now)) && strcmp(now, real) == 0, "getcwd agrees with /proc/self/cwd", "'%s'", now);
    int fd = open("/proc/self/cwd/probe", O_CREAT | O_WRONLY, 0600);
    struct stat sb;
    tst_check(fd >= 0 && stat("probe", &sb) == 0, "a file created through /proc/self/cwd/ is in the cwd",
              "fd %d", fd);
    if (fd >= 0)
        close(fd);
    unlink("probe");
    if (chdir(old) < 0)
        tst_brk("chdir back");
    rmdir(tmpl);
}

/* Fields of /proc/<pid>/stat: pid, comm, state, ppid, pgrp. */
static int child_stat(pid_t pid, int *spid, char *comm, size_t commsz, char *state, int *ppid, int *pgrp)
{
    char path[64], buf[1024];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    if (tst_read_file(path, buf, sizeof(buf)) <= 0)
        return -1;
    *spid = atoi(buf);
    char *l = strchr(buf, '('), *r = strrchr(buf, ')');
    if (!l || !r || r < l)
        return -1;
    size_t n = (size_t)(r - l - 1) < commsz - 1 ? (size_t)(r - l - 1) : commsz - 1;
    memcpy(comm, l + 1, n);
    comm[n] = '\0';
    return sscanf(r + 2, "%c %d %d", state, ppid, pgrp) == 3 ? 0 : -1;
}

static void child_proc(void)
{
    int p[2];
    if (pipe(p) < 0)
        tst_brk("pipe");
    pid_t child = tst_fork();
    if (child == 0) {
        char c;
        close(p[1]);
        while (read(p[0], &c, 1) > 0)
            ;
        _exit(6);
    }
    close(p[0]);
    int spid = 0, ppid = 0, pgrp = 0;
    char comm[64] = "", state = 0;
    int r = child_stat(child, &spid, comm, sizeof(comm), &state, &ppid, &pgrp);
    tst_check(r == 0, "/proc/<child>/stat is readable", "cannot read /proc/%d/stat", (int)child);
    tst_check(spid == child && ppid == getpid() && pgrp == getpgrp() && strcmp(comm, exe_comm) == 0,
              "/proc/<child>/stat: pid, comm, ppid == our pid, pgrp == our group",
              "pid %d comm '%s' ppid %d pgrp %d", spid, comm, ppid, pgrp);
    tst_check(tst_wait_state(child, 0, 'S', 30), "/proc/<child>/stat: state S while it blocks in read",
              "state '%c'", tst_proc_state(child, 0));

    kill(child, SIGSTOP);
    int st;
    waitpid(child, &st, WUNTRACED);
    tst_check(tst_proc_state(child, 0) == 'T', "/proc/<child>/stat: state T once stopped", "state '%c'",
              tst_proc_state(child, 0));
    kill(child, SIGCONT);
    waitpid(child, &st, WCONTINUED);

    close(p[1]); /* it exits */
    siginfo_t si;
    memset(&si, 0, sizeof(si));
    waitid(P_PID, child, &si, WEXITED | WNOWAIT); /* exited, not reaped */
    tst_check(tst_proc_state(child, 0) == 'Z', "/proc/<child>/stat: state Z after exit, before it is reaped",
              "state '%c'", tst_proc_state(child, 0));
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/status", (int)child);
    char sbuf[4096], v[64];
    tst_check(tst_read_file(path, sbuf, sizeof(sbuf)) > 0 && status_field(sbuf, "PPid", v, sizeof(v)) &&
              atoi(v) == getpid(), "/proc/<child>/status PPid is our pid", "PPid '%s'", v);
    waitpid(child, &st, 0);
    snprintf(path, sizeof(path), "/proc/%d", (int)child);
    struct stat sb;
    tst_check(stat(path, &sb) == -1 && errno == ENOENT, "/proc/<child> is gone once reaped", "still there");
}

int main(int argc, char **argv)
{
    tst_watchdog(90);
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (n <= 0)
        tst_brk("readlink(/proc/self/exe)");
    exe[n] = '\0';
    snprintf(exe_comm, sizeof(exe_comm), "%s", strrchr(exe, '/') + 1);
    status();
    cmdline(argc, argv);
    fds();
    cwd();
    child_proc();
    tst_exit();
}
