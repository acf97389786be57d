package ssi.supervisor;

import ssi.comm.control.ControlCodec;
import ssi.comm.control.ControlCodec.ProtocolException;
import ssi.comm.control.ControlMessages.Request;

import java.nio.BufferUnderflowException;
import java.nio.ByteBuffer;

/**
 * The bytes daemons exchange over comm RPC. A request is
 * {@code i32 callerUid, i32 callerPid, u16 type, ...} (big endian): for types 1..7 the type and what
 * follows are exactly a {@link ControlCodec} request, and the reply is a ControlCodec reply; the
 * internal type {@link #SIGNAL} carries a {@link SignalOrder} and its reply is {@code i32 errno}
 * (0 or a positive errno). callerPid is 0 for control requests (the caller's pid means nothing on
 * another node) and the sender's gpid for signals. The caller uid is trusted: comm authenticates every
 * node link with the cluster secret, so only a daemon of this cluster can send these.
 */
final class RpcEnvelope {
    private RpcEnvelope() {}

    /** Internal type: deliver a trapped signal. Outside the control protocol's type range. */
    static final int SIGNAL = 0x0100;
    /**
     * Internal type: {@code i32 node, i32 n, i32 gpids[n]}: these gpids of the receiver's range were
     * restarted on node and live there now (see {@link Locations}); the reply is empty.
     */
    static final int MOVED = 0x0101;
    private static final int HEADER = 8;
    private static final int SIGNAL_BODY = 2 + 4 + 1 + 4 + 4 + 4 + 2; // type, euid, scope, pid, tid, sig, infoLen

    /** A decoded request: exactly one of control, signal and moved is set. */
    record Message(int callerUid, int callerPid, Request control, SignalOrder signal, Moved moved) {
        Message(int callerUid, int callerPid, Request control, SignalOrder signal) {
            this(callerUid, callerPid, control, signal, null);
        }
    }

    /** A MOVED announcement. */
    record Moved(int node, java.util.List<Integer> gpids) {}

    static byte[] moved(int node, java.util.List<Integer> gpids) {
        ByteBuffer b = ByteBuffer.allocate(HEADER + 2 + 8 + 4 * gpids.size()).putInt(0).putInt(0)
                .putShort((short) MOVED).putInt(node).putInt(gpids.size());
        for (int g : gpids) b.putInt(g);
        return b.array();
    }

    static byte[] control(int callerUid, Request request) {
        byte[] body = ControlCodec.encodeRequest(request);
        return ByteBuffer.allocate(HEADER + body.length).putInt(callerUid).putInt(0).put(body).array();
    }

    static byte[] signal(SignalOrder o) {
        byte[] info = o.siginfo() == null ? new byte[0] : o.siginfo();
        return ByteBuffer.allocate(HEADER + SIGNAL_BODY + info.length)
                .putInt(o.senderRuid()).putInt(o.senderGpid())
                .putShort((short) SIGNAL).putInt(o.senderEuid()).put((byte) o.scope().ordinal())
                .putInt(o.pid()).putInt(o.tid()).putInt(o.sig())
                .putShort((short) info.length).put(info)
                .array();
    }

    static Message decode(byte[] bytes) throws ProtocolException {
        if (bytes.length < HEADER + 2) throw new ProtocolException("RPC request of " + bytes.length + " bytes is too short");
        ByteBuffer b = ByteBuffer.wrap(bytes);
        int uid = b.getInt();
        int pid = b.getInt();
        int type = Short.toUnsignedInt(b.getShort(HEADER));
        if (type == MOVED) {
            try {
                b.getShort();
                int node = b.getInt(), n = b.getInt();
                if (n < 0 || n > 1 << 16) throw new ProtocolException("MOVED with " + n + " gpids");
                java.util.List<Integer> gpids = new java.util.ArrayList<>(n);
                for (int i = 0; i < n; i++) gpids.add(b.getInt());
                if (b.hasRemaining()) throw new ProtocolException(b.remaining() + " trailing bytes in a MOVED RPC");
                return new Message(uid, pid, null, null, new Moved(node, java.util.List.copyOf(gpids)));
            } catch (BufferUnderflowException e) {
                throw new ProtocolException("truncated MOVED RPC");
            }
        }
        if (type != SIGNAL) {
            byte[] rest = new byte[bytes.length - HEADER];
            b.get(rest);
            return new Message(uid, pid, ControlCodec.decodeRequest(rest), null);
        }
        try {
            b.getShort();
            int euid = b.getInt();
            int scope = b.get();
            int target = b.getInt(), tid = b.getInt(), sig = b.getInt();
            int infoLen = Short.toUnsignedInt(b.getShort());
            if (scope < 0 || scope >= SignalOrder.Scope.values().length) throw new ProtocolException("unknown signal scope " + scope);
            if (infoLen != 0 && infoLen != SigInfo.SIZE) throw new ProtocolException("siginfo of " + infoLen + " bytes");
            byte[] info = null;
            if (infoLen != 0) {
                info = new byte[infoLen];
                b.get(info);
            }
            if (b.hasRemaining()) throw new ProtocolException(b.remaining() + " trailing bytes in a signal RPC");
            return new Message(uid, pid, null,
                    new SignalOrder(SignalOrder.Scope.values()[scope], target, tid, sig, pid, uid, euid, info));
        } catch (BufferUnderflowException e) {
            throw new ProtocolException("truncated signal RPC");
        }
    }

    static byte[] signalReply(int errno) {
        return ByteBuffer.allocate(4).putInt(errno).array();
    }

    static int decodeSignalReply(byte[] bytes) throws ProtocolException {
        if (bytes.length != 4) throw new ProtocolException("signal RPC reply of " + bytes.length + " bytes");
        return ByteBuffer.wrap(bytes).getInt();
    }
}
