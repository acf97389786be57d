/*
 * ghost_stops: wait reports of stopped children across a checkpoint. Child a is stopped and its stop
 * collected (waitpid WUNTRACED); child b is stopped and its stop not collected; child c was stopped (that
 * stop collected) and continued, and its continue is not collected (waitpid WCONTINUED). For about a
 * second and a half nothing changes (the suite's ckpt pass catches it then); at the end a's stop must
 * not be reported again, b's must be reported, once, c's continue must be reported, once; a and b are
 * still stopped, c runs; all end with SIGKILL.
 */
#include "tst.h"
#include <sys/wait.h>

int main(void)
{
    char ready[32];
    int rn = snprintf(ready, sizeof ready, "ready %d\n", (int)getpid());
    tst_write_full(STDOUT_FILENO, ready, rn); /* for tests that checkpoint it (RestartTest) */

    pid_t a = tst_fork();
    if (a == 0)
        for (;;)
            pause();
    pid_t b = tst_fork();
    if (b == 0)
        for (;;)
            pause();
    pid_t c = tst_fork();
    if (c == 0)
        for (;;)
            pause();
    int st = 0;
    kill(c, SIGSTOP);
    if (waitpid(c, &st, WUNTRACED) != c || !WIFSTOPPED(st))
        tst_brk("waitpid(WUNTRACED) of c");
    kill(c, SIGCONT);
    for (int i = 0; i < 2000 && tst_proc_state(c, 0) == 'T'; i++)
        tst_sleep_ms(1);
    kill(a, SIGSTOP);
    if (waitpid(a, &st, WUNTRACED) != a || !WIFSTOPPED(st))
        tst_brk("waitpid(WUNTRACED) of a");
    kill(b, SIGSTOP);
    for (int i = 0; i < 2000 && tst_proc_state(b, 0) != 'T'; i++)
        tst_sleep_ms(1);
    for (int i = 0; i < 30; i++)
        tst_sleep_ms(50);

    pid_t r = waitpid(a, &st, WUNTRACED | WNOHANG);
    tst_check_int(r, 0, "the stop of a, collected before, is not reported again");
    st = 0;
    r = waitpid(b, &st, WUNTRACED | WNOHANG);
    tst_check(r == b && WIFSTOPPED(st) && WSTOPSIG(st) == SIGSTOP, "the stop of b, not collected yet, is reported",
              "waitpid %d status %#x", (int)r, st);
    r = waitpid(b, &st, WUNTRACED | WNOHANG);
    tst_check_int(r, 0, "... once");
    st = 0;
    r = waitpid(c, &st, WCONTINUED | WNOHANG);
    tst_check(r == c && WIFCONTINUED(st), "the continue of c, not collected yet, is reported", "waitpid %d status %#x",
              (int)r, st);
    r = waitpid(c, &st, WCONTINUED | WUNTRACED | WNOHANG);
    tst_check_int(r, 0, "... once, and no stop of c");
    tst_check(tst_proc_state(a, 0) == 'T' && tst_proc_state(b, 0) == 'T', "both are still stopped", "states %c %c",
              tst_proc_state(a, 0), tst_proc_state(b, 0));
    tst_check(tst_proc_state(c, 0) == 'S', "c runs (sleeps in pause)", "state %c", tst_proc_state(c, 0));
    kill(a, SIGKILL);
    kill(b, SIGKILL);
    kill(c, SIGKILL);
    waitpid(a, &st, 0);
    waitpid(b, &st, 0);
    waitpid(c, &st, 0);
    tst_exit();
}
