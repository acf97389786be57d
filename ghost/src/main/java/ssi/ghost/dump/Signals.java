package ssi.ghost.dump;

import ssi.ghost.image.Records;
import ssi.shim.Tracee;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;

/**
 * Signal state of a process: the disposition of signals 1..64 (no /proc file has them: each is read by
 * rt_sigaction(sig, NULL, scratch, 8) injected into a thread), the shared pending set (ShdPnd), and the
 * interval timers (getitimer, injected). Per-thread masks are in {@link Threads}. Stateless.
 *
 * <p>A signal that arrives while the process is frozen is held by the shim and re-raised at detach,
 * so it is not in the image: the image is the state at the moment of the freeze.
 */
final class Signals {
    private Signals() {}

    private static final int SYS_RT_SIGACTION = 13, SYS_GETITIMER = 36;
    /** struct kernel_sigaction on x86_64: handler, flags, restorer, mask (8 bytes each). */
    private static final int KSIGACTION = 32;

    static Records.SigActs dump(ProcFs fs, int pid, Tracee t, Scratch s) throws IOException {
        long[][] args = new long[64][];
        for (int sig = 1; sig <= 64; sig++) args[sig - 1] = new long[] {sig, 0, s.addr + (long) KSIGACTION * (sig - 1), 8};
        s.callAll(t, i -> "rt_sigaction(" + (i + 1) + ")", SYS_RT_SIGACTION, args);
        ByteBuffer b = s.read(KSIGACTION * 64);
        List<Records.SigAction> actions = new ArrayList<>(64);
        for (int sig = 1; sig <= 64; sig++) {
            int o = KSIGACTION * (sig - 1);
            actions.add(new Records.SigAction(sig, b.getLong(o), b.getLong(o + 8), b.getLong(o + 16), b.getLong(o + 24)));
        }
        long shared = ProcFs.hex(ProcFs.status(fs.dir(pid)), "ShdPnd");
        return new Records.SigActs(shared, actions);
    }

    /** ITIMER_REAL, VIRTUAL, PROF: struct itimerval {interval {sec, usec}, value {sec, usec}} each. */
    static Records.ITimers dumpITimers(Tracee t, Scratch s) throws IOException {
        long[] v = new long[12];
        long[][] args = new long[3][];
        for (int which = 0; which < 3; which++) args[which] = new long[] {which, s.addr + 32L * which};
        s.callAll(t, i -> "getitimer(" + i + ")", SYS_GETITIMER, args);
        ByteBuffer b = s.read(96);
        for (int i = 0; i < 12; i++) v[i] = b.getLong(8 * i);
        return new Records.ITimers(v);
    }
}
