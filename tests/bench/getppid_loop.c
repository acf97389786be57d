/* getppid_loop [N [filter]]: times N getppid() calls (an untrapped syscall) and prints nanoseconds per
 * call. "filter" first installs a seccomp filter like ssi-run's (the five signal syscalls trapped to a
 * listener nobody reads, everything else allowed): the cost of the filter alone, without ssi-run. */
#include "bench_util.h"
#include <stddef.h>
#include <unistd.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/prctl.h>
#include <sys/syscall.h>

static void install_filter(void)
{
    struct sock_filter f[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_kill, 4, 0),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_tkill, 3, 0),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_tgkill, 2, 0),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_rt_sigqueueinfo, 1, 0),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_rt_tgsigqueueinfo, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_USER_NOTIF),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog prog = { .len = sizeof f / sizeof f[0], .filter = f };
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0
        || syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_NEW_LISTENER, &prog) < 0) {
        perror("getppid_loop: seccomp");
        exit(1);
    }
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? arg_long(argv[1], "getppid_loop") : 1000000;
    if (argc > 2 && strcmp(argv[2], "filter") == 0)
        install_filter();
    volatile pid_t sink = 0;
    for (long i = 0; i < 10000; i++)        /* warm-up */
        sink += getppid();
    double t0 = now_ns();
    for (long i = 0; i < n; i++)
        sink += getppid();
    double t1 = now_ns();
    (void)sink;
    printf("%.4f\n", (t1 - t0) / (double)n);
    return 0;
}
