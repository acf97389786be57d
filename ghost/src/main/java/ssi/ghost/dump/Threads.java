package ssi.ghost.dump;

import ssi.ghost.image.Records;
import ssi.shim.Tracee;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.Map;

/**
 * One record per thread: general registers (user_regs_struct with fs_base/gs_base), the XSAVE area,
 * the blocked and thread-pending signal sets (SigBlk, SigPnd of /proc/PID/task/TID/status) and the
 * alternate signal stack (sigaltstack(NULL, scratch) injected into that very thread: it is per thread).
 * Stateless.
 */
final class Threads {
    private Threads() {}

    private static final int SYS_SIGALTSTACK = 131, SYS_PRCTL = 157, SYS_GET_ROBUST_LIST = 274;
    private static final int PR_GET_TID_ADDRESS = 40;
    /** Scratch offsets for the clear_child_tid pointer and the robust list head and length. */
    private static final int TIDADDR_AT = 3136, ROBUST_AT = 3144, ROBUST_LEN_AT = 3152;
    /** Scratch offset for stack_t (past what Signals and Rlimits use). */
    private static final int ALTSTACK_AT = 3072;

    /**
     * Queues the calls {@link #dump} makes in thread t into b, which must run in t: the thread's
     * alternate signal stack, and (both per thread, so asked of the thread itself) what pthread_join
     * waits on (the kernel clears and wakes it when the thread ends) and the futexes it holds robustly.
     */
    static void queue(Scratch.Batch b, Scratch s) {
        b.add(() -> "sigaltstack", SYS_SIGALTSTACK, 0, s.addr + ALTSTACK_AT);
        b.add(() -> "prctl(PR_GET_TID_ADDRESS)", SYS_PRCTL, PR_GET_TID_ADDRESS, s.addr + TIDADDR_AT, 0, 0, 0);
        b.add(() -> "get_robust_list", SYS_GET_ROBUST_LIST, 0, s.addr + ROBUST_AT, s.addr + ROBUST_LEN_AT);
    }

    /** Bytes of the scratch page (from offset 0) that hold the answers of {@link #queue}. */
    static final int SCRATCH_BYTES = ROBUST_LEN_AT + 8;

    static Records.ThreadRec dump(ProcFs fs, int pid, Tracee t, Scratch s) throws IOException {
        return dump(fs, pid, t, s, null);
    }

    /**
     * One thread; answers: the scratch page's bytes after a batch with {@link #queue} ran in t, or null
     * to make the calls here.
     */
    static Records.ThreadRec dump(ProcFs fs, int pid, Tracee t, Scratch s, ByteBuffer answers) throws IOException {
        long[] regs = t.getRegs().toArray();
        byte[] xstate = t.getXstate();
        if (answers == null) {
            Scratch.Batch b = s.batch();
            queue(b, s);
            b.run(t);
            answers = s.read(SCRATCH_BYTES);
        }
        ByteBuffer b = answers.duplicate().position(ALTSTACK_AT).slice().order(java.nio.ByteOrder.LITTLE_ENDIAN);
        long altSp = b.getLong(0), altSize = b.getLong(16);
        int altFlags = b.getInt(8);
        ByteBuffer f = answers.duplicate().order(java.nio.ByteOrder.LITTLE_ENDIAN);
        Map<String, String> st = ProcFs.status(fs.dir(pid).resolve("task").resolve(Integer.toString(t.tid())));
        // The mask to come back with: inside sigsuspend and kin SigBlk is the temporary mask, and the
        // restarted call would make it the one it returns to.
        long blocked = t.getSigmask();
        return new Records.ThreadRec(t.tid(), regs, xstate, blocked, ProcFs.hex(st, "SigPnd"),
                altSp, altFlags, altSize, f.getLong(TIDADDR_AT), f.getLong(ROBUST_AT), f.getLong(ROBUST_LEN_AT));
    }
}
