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

    static Records.Rlimits dump(Tracee t, Scratch s) throws IOException {
        int n = Records.Rlimits.COUNT;
        long[] cur = new long[n], max = new long[n];
        long[][] args = new long[n][];
        for (int r = 0; r < n; r++) args[r] = new long[] {0, r, 0, s.addr + 16L * r};
        s.callAll(t, r -> "prlimit64(" + Records.Rlimits.NAMES[r] + ")", SYS_PRLIMIT64, args);
        ByteBuffer b = s.read(16 * n);
        for (int r = 0; r < n; r++) {
            cur[r] = b.getLong(16 * r);
            max[r] = b.getLong(16 * r + 8);
        }
        return new Records.Rlimits(cur, max);
    }
}
