package ssi.supervisor;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * siginfo_t as x86_64 Linux lays it out (128 bytes, little endian), for the fields the daemon writes or
 * checks: si_signo, si_errno, si_code, and the kill/queue union member's si_pid and si_uid. Static
 * helpers over plain byte arrays, which is what travels in RPCs and to rt_sigqueueinfo.
 */
final class SigInfo {
    private SigInfo() {}

    static final int SIZE = NativeSignals.SIGINFO_SIZE;
    private static final int SIGNO = 0, CODE = 8, PID = 16, UID = 20;
    /** si_code of sigqueue(3); the kernel lets a process send any negative code but SI_TKILL to another. */
    static final int SI_QUEUE = -1, SI_TKILL = -6;

    /** The siginfo a remotely delivered kill/tkill/tgkill carries: SI_QUEUE from the sender's gpid and real uid. */
    static byte[] queued(int sig, int senderGpid, int senderRuid) {
        ByteBuffer b = ByteBuffer.allocate(SIZE).order(ByteOrder.LITTLE_ENDIAN);
        b.putInt(SIGNO, sig).putInt(CODE, SI_QUEUE).putInt(PID, senderGpid).putInt(UID, senderRuid);
        return b.array();
    }

    /** A copy of a caller-supplied siginfo with si_signo set to sig, as rt_sigqueueinfo(2) does. */
    static byte[] withSigno(byte[] info, int sig) {
        byte[] copy = info.clone();
        ByteBuffer.wrap(copy).order(ByteOrder.LITTLE_ENDIAN).putInt(SIGNO, sig);
        return copy;
    }

    static int code(byte[] info) {
        return ByteBuffer.wrap(info).order(ByteOrder.LITTLE_ENDIAN).getInt(CODE);
    }

    static int pid(byte[] info) {
        return ByteBuffer.wrap(info).order(ByteOrder.LITTLE_ENDIAN).getInt(PID);
    }

    static int uid(byte[] info) {
        return ByteBuffer.wrap(info).order(ByteOrder.LITTLE_ENDIAN).getInt(UID);
    }
}
