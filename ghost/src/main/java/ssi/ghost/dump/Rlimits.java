package ssi.ghost.dump;

import ssi.ghost.image.Records;
import ssi.shim.Tracee;

import java.io.IOException;
import java.nio.ByteBuffer;

/**
 * Resource limits of a process, read exactly (not from the rounded text of /proc/PID/limits) by
 * prlimit64(0, resource, NULL, scratch) injected into one of its threads. Stateless.
 */
final class Rlimits {
    private Rlimits() {}

    private static final int SYS_PRLIMIT64 = 302;

    /** Scratch offset of the answers (past the signal actions, {@link Signals#SIGACTS_AT}). */
    static final int AT = 2048;

    static Records.Rlimits dump(Tracee t, Scratch s) throws IOException {
        Scratch.Batch b = s.batch();
        queue(b, s);
        b.run(t);
        return read(s.read(AT + 16 * Records.Rlimits.COUNT));
    }

    /** Queues prlimit64 of every resource, answers at {@link #AT} of the scratch page. */
    static void queue(Scratch.Batch b, Scratch s) {
        for (int r = 0; r < Records.Rlimits.COUNT; r++) {
            int res = r;
            b.add(() -> "prlimit64(" + Records.Rlimits.NAMES[res] + ")", SYS_PRLIMIT64, 0, r, 0, s.addr + AT + 16L * r);
        }
    }

    /** The answers of {@link #queue}, from the scratch page's bytes (from offset 0). */
    static Records.Rlimits read(ByteBuffer b) {
        int n = Records.Rlimits.COUNT;
        long[] cur = new long[n], max = new long[n];
        for (int r = 0; r < n; r++) {
            cur[r] = b.getLong(AT + 16 * r);
            max[r] = b.getLong(AT + 16 * r + 8);
        }
        return new Records.Rlimits(cur, max);
    }
}
