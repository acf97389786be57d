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

    private static final int SYS_SIGALTSTACK = 131;
    /** Scratch offset for stack_t (past what Signals and Rlimits use). */
    private static final int ALTSTACK_AT = 3072;

    static Records.ThreadRec dump(ProcFs fs, int pid, Tracee t, Scratch s) throws IOException {
        long[] regs = t.getRegs().toArray();
        byte[] xstate = t.getXstate();
        s.call(t, "sigaltstack", SYS_SIGALTSTACK, 0, s.addr + ALTSTACK_AT);
        ByteBuffer b = s.read(ALTSTACK_AT + 24).position(ALTSTACK_AT).slice().order(java.nio.ByteOrder.LITTLE_ENDIAN);
        Map<String, String> st = ProcFs.status(fs.dir(pid).resolve("task").resolve(Integer.toString(t.tid())));
        return new Records.ThreadRec(t.tid(), regs, xstate, ProcFs.hex(st, "SigBlk"), ProcFs.hex(st, "SigPnd"),
                b.getLong(0), b.getInt(8), b.getLong(16));
    }
}
