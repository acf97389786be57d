/* The seccomp filter every cluster process runs under: built at compile time from the generated X-macro
 * list (target/include/ssi_syscalls.h, from syscalls.tsv). ssi-run's program process installs it before
 * exec; the shim injects it into a restored process (link request INSTALL_FILTER). */
#ifndef SSI_FILTER_H
#define SSI_FILTER_H
#include <linux/filter.h>

/* A static program (never freed): arch check, syscall number with the x32 bit cleared, one comparison per
 * trapped syscall, then ALLOW or USER_NOTIF. Install it with SECCOMP_FILTER_FLAG_NEW_LISTENER. */
const struct sock_fprog *ssi_trap_filter(void);

#endif
