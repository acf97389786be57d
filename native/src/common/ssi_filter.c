/* The trap filter (ssi_filter.h). */
#include "ssi_filter.h"
#include <stddef.h>
#include <linux/audit.h>
#include <linux/seccomp.h>

enum {
#define SSI_SYSCALL(name, nr, by_shim) SSI_TRAP_##name,
#include "ssi_syscalls.h"
#undef SSI_SYSCALL
    SSI_TRAP_COUNT
};
/* Classic BPF jump offsets are 8 bits wide; past this the filter needs a different layout. */
_Static_assert(SSI_TRAP_COUNT + 2 <= 255, "too many trapped syscalls for a linear filter");

#define X32_SYSCALL_BIT 0x40000000u

static const struct sock_filter trap_filter[] = {
    BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
    /* Other ABIs (i386 via int 0x80) run untrapped: their numbers differ, trapping them would need a
     * table of their own. Jump to ALLOW. */
    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 0, SSI_TRAP_COUNT + 2),
    BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
    BPF_STMT(BPF_ALU | BPF_AND | BPF_K, ~X32_SYSCALL_BIT),
    /* entry i sits at 4 + i; USER_NOTIF at 5 + COUNT, so the jump skips COUNT - i instructions */
#define SSI_SYSCALL(name, nr, by_shim) \
    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, nr, SSI_TRAP_COUNT - SSI_TRAP_##name, 0),
#include "ssi_syscalls.h"
#undef SSI_SYSCALL
    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_USER_NOTIF),
};

static const struct sock_fprog trap_prog = {
    .len = sizeof trap_filter / sizeof trap_filter[0],
    .filter = (struct sock_filter *)trap_filter,
};

const struct sock_fprog *ssi_trap_filter(void)
{
    return &trap_prog;
}
