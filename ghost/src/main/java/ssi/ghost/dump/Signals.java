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

    /** Scratch offsets of the answers: 64 sigactions (2048 bytes), then the three itimers after the rlimits. */
    static final int SIGACTS_AT = 0, ITIMERS_AT = 2304;

    static Records.SigActs dump(ProcFs fs, int pid, Tracee t, Scratch s) throws IOException {
        Scratch.Batch b = s.batch();
        queue(b, s);
        b.run(t);
        return read(fs, pid, s.read(KSIGACTION * 64));
    }

    /** Queues rt_sigaction(sig, NULL, old) of every signal, answers at {@link #SIGACTS_AT} of the scratch page. */
    static void queue(Scratch.Batch b, Scratch s) {
        for (int sig = 1; sig <= 64; sig++) {
            int n = sig;
            b.add(() -> "rt_sigaction(" + n + ")", SYS_RT_SIGACTION, sig, 0, s.addr + SIGACTS_AT + (long) KSIGACTION * (sig - 1), 8);
        }
    }

    /** The answers of {@link #queue} (the scratch page's bytes from offset 0) and the shared pending set. */
    static Records.SigActs read(ProcFs fs, int pid, ByteBuffer b) throws IOException {
        List<Records.SigAction> actions = new ArrayList<>(64);
        for (int sig = 1; sig <= 64; sig++) {
            int o = SIGACTS_AT + KSIGACTION * (sig - 1);
            actions.add(new Records.SigAction(sig, b.getLong(o), b.getLong(o + 8), b.getLong(o + 16), b.getLong(o + 24)));
        }
        long shared = ProcFs.hex(ProcFs.status(fs.dir(pid)), "ShdPnd");
        return new Records.SigActs(shared, actions);
    }

    /** ITIMER_REAL, VIRTUAL, PROF: struct itimerval {interval {sec, usec}, value {sec, usec}} each. */
    static Records.ITimers dumpITimers(Tracee t, Scratch s) throws IOException {
        Scratch.Batch b = s.batch();
        queueITimers(b, s);
        b.run(t);
        return readITimers(s.read(ITIMERS_AT + 96));
    }

    /** Queues getitimer of ITIMER_REAL, VIRTUAL and PROF, answers at {@link #ITIMERS_AT} of the scratch page. */
    static void queueITimers(Scratch.Batch b, Scratch s) {
        for (int which = 0; which < 3; which++) {
            int w = which;
            b.add(() -> "getitimer(" + w + ")", SYS_GETITIMER, which, s.addr + ITIMERS_AT + 32L * which);
        }
    }

    static Records.ITimers readITimers(ByteBuffer b) {
        long[] v = new long[12];
        for (int i = 0; i < 12; i++) v[i] = b.getLong(ITIMERS_AT + 8 * i);
        return new Records.ITimers(v);
    }
}
