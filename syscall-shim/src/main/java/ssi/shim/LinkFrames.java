package ssi.shim;

import java.net.ProtocolException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;

/**
 * The link protocol between the shim and the daemon (docs/ARCHITECTURE.md "Link protocol"), mirroring
 * native/src/common/ssi_proto.h byte for byte: little endian, packed. Every frame is a 16-byte header
 * ({@code u32 len, u16 type, u16 flags, u32 req_id, u32 reserved}) and a payload.
 *
 * <p>The nested classes name the field offsets of each C struct, relative to the start of the payload;
 * an instance is a flyweight over one whole frame (header at index 0) for reading the header. Frames
 * are built here with {@link #allocate} and the offsets. Not thread-safe: one flyweight per thread.
 */
public final class LinkFrames {
    public static final int VERSION = 1;
    /** The shim refuses larger frames (SSI_MAX_FRAME). */
    public static final int MAX_FRAME = 1 << 20;

    public static final int HELLO = 0x0001, NOTIF = 0x0002, NOTIF_REPLY = 0x0003, LAUNCHED = 0x0004,
            LISTENER_GONE = 0x0005, ATTACH = 0x0010, DETACH = 0x0011, GETREGS = 0x0012, SETREGS = 0x0013,
            GETXSTATE = 0x0014, SETXSTATE = 0x0015, READMEM = 0x0016, WRITEMEM = 0x0017, INJECT = 0x0018,
            GIVEFD = 0x0019, SPAWN_STUB = 0x001A, GETRSEQ = 0x001B,
            INSTALL_FILTER = 0x001C, WRITEMEM_FD = 0x001D, CLONE_INTO = 0x0020, PEEKSIGINFO = 0x0021, GETSIGMASK = 0x0022, GETDEFERRED = 0x0023,
            INJECT_MANY = 0x0028;
    /** A reply's type is the request's type | REPLY_BIT. */
    public static final int REPLY_BIT = 0x8000;
    /** NOTIF_REPLY flags: let the trapped syscall run natively. */
    public static final int REPLY_CONTINUE = 1;

    /** struct ssi_hdr; offsets from the frame start. */
    public static final class Hdr {
        public static final int LEN = 0, TYPE = 4, FLAGS = 6, REQ_ID = 8, RESERVED = 12, SIZE = 16;
        private Hdr() {}
    }

    /** HELLO request payload. */
    public static final class Hello {
        public static final int VERSION = 0, SIZE = 4;
        private Hello() {}
    }

    /** struct ssi_hello_reply (the reply payload, error included). */
    public static final class HelloReply {
        public static final int ERROR = 0, VERSION = 4, NODE_ID = 8, PID_BASE = 12, PID_LIMIT = 16, SIZE = 20;
        private HelloReply() {}
    }

    /** struct ssi_notif. */
    public static final class Notif {
        public static final int LISTENER_ID = 0, PAD = 4, NOTIF_ID = 8, PID = 16, NR = 20, ARCH = 24, PAD2 = 28,
                IP = 32, ARGS = 40, SIZE = 88;
        private Notif() {}
    }

    /** struct ssi_notif_reply. */
    public static final class NotifReply {
        public static final int LISTENER_ID = 0, FLAGS = 4, NOTIF_ID = 8, VAL = 16, ERROR = 24, SIZE = 28;
        private NotifReply() {}
    }

    /** struct ssi_launched, then the NUL-terminated program path. */
    public static final class LaunchedMsg {
        public static final int PID = 0, UID = 4, GID = 8, LISTENER_ID = 12, PATH = 16;
        private LaunchedMsg() {}
    }

    /** LISTENER_GONE payload. */
    public static final class ListenerGone {
        public static final int LISTENER_ID = 0, SIZE = 4;
        private ListenerGone() {}
    }

    /** Every reply to a request: the error, then the body when the error is 0. */
    public static final class Reply {
        public static final int ERROR = 0, BODY = 4;
        private Reply() {}
    }

    /** struct ssi_tid_req: ATTACH, DETACH, GETREGS, GETXSTATE. */
    public static final class TidReq {
        public static final int TID = 0, SIZE = 4;
        private TidReq() {}
    }

    /** struct ssi_setregs_req. */
    public static final class SetRegsReq {
        public static final int TID = 0, PAD = 4, REGS = 8, SIZE = 8 + Regs.SIZE;
        private SetRegsReq() {}
    }

    /** struct ssi_xstate_req (SETXSTATE), then the xsave bytes. The GETXSTATE reply body has the same
     *  {@code u32 len, u8 xsave[len]} at {@link #REPLY_LEN}. */
    public static final class XstateReq {
        public static final int TID = 0, LEN = 4, DATA = 8, REPLY_LEN = 0, REPLY_DATA = 4;
        private XstateReq() {}
    }

    /** struct ssi_mem_req: READMEM, and WRITEMEM with the data after it. */
    public static final class MemReq {
        public static final int PID = 0, LEN = 4, ADDR = 8, DATA = 16;
        private MemReq() {}
    }

    /**
     * struct ssi_memfd_req (WRITEMEM_FD): copy LEN bytes at OFFSET of the daemon's fd DAEMON_FD to ADDR in
     * PID; at most {@link #MAX_LEN} bytes per request (SSI_WRITEMEM_FD_MAX). No reply body.
     */
    public static final class MemFdReq {
        public static final int PID = 0, DAEMON_FD = 4, OFFSET = 8, LEN = 16, ADDR = 24, SIZE = 32;
        public static final int MAX_LEN = 64 << 20;
        private MemFdReq() {}
    }

    /** struct ssi_inject_req; the reply body is {@code i64 ret} at {@link #REPLY_RET}. */
    public static final class InjectReq {
        public static final int TID = 0, NR = 4, ARGS = 8, SIZE = 56, REPLY_RET = 0;
        private InjectReq() {}
    }

    /**
     * INJECT_MANY: the header (AT: where the shim may map its code and table, 0 for anywhere), then COUNT
     * calls of CALL_SIZE bytes (i64 nr, six u64 args); reply: COUNT x i64. AREA: the bytes at AT it may take.
     */
    public static final class InjectManyReq {
        public static final int TID = 0, COUNT = 4, AT = 8, SIZE = 16, CALL_SIZE = 56, MAX = 256, AREA = 4096 + MAX * 64;
        /** Bit 0 of AT: the area at AT is the caller's, mapped already (first page executable, the rest writable). */
        public static final long MAPPED = 1;
        private InjectManyReq() {}
    }

    /** struct ssi_givefd_req; the reply body is {@code i32 fd} at {@link #REPLY_FD}. */
    public static final class GiveFdReq {
        public static final int TID = 0, DAEMON_FD = 4, TARGET_FD = 8, SIZE = 12, REPLY_FD = 0;
        private GiveFdReq() {}
    }

    /** SPAWN_STUB: a {@link TidReq} carrying the pid wanted; the reply body is {@code i32 pid} at {@link #REPLY_PID}. */
    public static final class SpawnStubReq {
        public static final int PID = 0, SIZE = 4, REPLY_PID = 0;
        private SpawnStubReq() {}
    }

    /** struct ssi_clone_req; the reply body is {@code i32 tid}. */
    public static final class CloneReq {
        public static final int TID = 0, NEW_TID = 4, FLAGS = 8, EXIT_SIGNAL = 16, PAD = 20, SCRATCH = 24, SIZE = 32;
        private CloneReq() {}
    }

    /** struct ssi_peeksig_req; the reply body is {@code u32 count} then count 128-byte siginfos. */
    public static final class PeekSigReq {
        public static final int TID = 0, SHARED = 4, OFFSET = 8, SIZE = 12, SIGINFO = 128, MAX = 64;
        private PeekSigReq() {}
    }

    /**
     * GETDEFERRED: a {@link TidReq}; the reply body is {@code u32 count} then count x struct ssi_held_sig
     * ({@code i32 shared, u32 pad, u8 siginfo[128]}), oldest first.
     */
    public static final class HeldSig {
        public static final int COUNT = 0, ENTRIES = 4, SHARED = 0, SIGINFO = 8, SIZE = 136, MAX = 4096;
        private HeldSig() {}
    }

    /** INSTALL_FILTER: a {@link TidReq}; the reply body is {@code u32 listener_id} at {@link #REPLY_LISTENER_ID}. */
    public static final class InstallFilterReq {
        public static final int TID = 0, SIZE = 4, REPLY_LISTENER_ID = 0, REPLY_SIZE = 4;
        private InstallFilterReq() {}
    }

    /** The GETRSEQ reply body (struct ssi_rseq_reply): a {@link TidReq} asks for it. */
    public static final class RseqReply {
        public static final int POINTER = 0, SIZE_FIELD = 8, SIGNATURE = 12, FLAGS = 16, PAD = 20, SIZE = 24;
        private RseqReply() {}
    }

    private ByteBuffer frame;

    /** Reads the header of a whole frame starting at index 0 of a little-endian buffer. */
    public LinkFrames wrap(ByteBuffer frame) {
        if (frame.order() != ByteOrder.LITTLE_ENDIAN)
            throw new IllegalArgumentException("link frames are little endian");
        this.frame = frame;
        return this;
    }

    public int length() {
        return frame.getInt(Hdr.LEN);
    }

    public int type() {
        return Short.toUnsignedInt(frame.getShort(Hdr.TYPE));
    }

    public int flags() {
        return Short.toUnsignedInt(frame.getShort(Hdr.FLAGS));
    }

    public int reqId() {
        return frame.getInt(Hdr.REQ_ID);
    }

    /** The payload as its own little-endian buffer (index 0 = payload start), sharing the frame's bytes. */
    public ByteBuffer payload() {
        return frame.slice(Hdr.SIZE, length() - Hdr.SIZE).order(ByteOrder.LITTLE_ENDIAN);
    }

    /** A little-endian buffer for a payload of the given length, zero filled. */
    public static ByteBuffer payload(int length) {
        return ByteBuffer.allocate(length).order(ByteOrder.LITTLE_ENDIAN);
    }

    /**
     * A zeroed frame of the given payload length with its header written: little endian, position 0,
     * limit the frame length. Payload fields go at {@code Hdr.SIZE + offset}.
     */
    public static ByteBuffer allocate(int type, int flags, int reqId, int payloadLength) {
        int len = Hdr.SIZE + payloadLength;
        if (payloadLength < 0 || len > MAX_FRAME)
            throw new IllegalArgumentException("a link frame holds at most " + (MAX_FRAME - Hdr.SIZE)
                    + " payload bytes, not " + payloadLength);
        ByteBuffer b = ByteBuffer.allocate(len).order(ByteOrder.LITTLE_ENDIAN);
        b.putInt(Hdr.LEN, len);
        b.putShort(Hdr.TYPE, (short) type);
        b.putShort(Hdr.FLAGS, (short) flags);
        b.putInt(Hdr.REQ_ID, reqId);
        return b;
    }

    /** A frame carrying the remaining bytes of payload (payload's position is not moved). */
    public static ByteBuffer frame(int type, int flags, int reqId, ByteBuffer payload) {
        ByteBuffer b = allocate(type, flags, reqId, payload.remaining());
        b.put(Hdr.SIZE, payload, payload.position(), payload.remaining());
        return b;
    }

    public static ByteBuffer hello(int reqId) {
        ByteBuffer b = allocate(HELLO, 0, reqId, Hello.SIZE);
        b.putInt(Hdr.SIZE + Hello.VERSION, VERSION);
        return b;
    }

    /** error: 0 or a negative errno, as seccomp's response takes it. */
    public static ByteBuffer notifReply(int listenerId, long notifId, long val, int error, boolean cont) {
        ByteBuffer b = allocate(NOTIF_REPLY, 0, 0, NotifReply.SIZE);
        int p = Hdr.SIZE;
        b.putInt(p + NotifReply.LISTENER_ID, listenerId);
        b.putInt(p + NotifReply.FLAGS, cont ? REPLY_CONTINUE : 0);
        b.putLong(p + NotifReply.NOTIF_ID, notifId);
        b.putLong(p + NotifReply.VAL, val);
        b.putInt(p + NotifReply.ERROR, error);
        return b;
    }

    /** A request that carries only a tid (ATTACH, DETACH, GETREGS, GETXSTATE). */
    public static ByteBuffer tidPayload(int tid) {
        ByteBuffer p = payload(TidReq.SIZE);
        p.putInt(TidReq.TID, tid);
        return p;
    }

    public static Notification decodeNotif(ByteBuffer payload) throws ProtocolException {
        expectLength(payload, Notif.SIZE, NOTIF);
        long[] args = new long[6];
        for (int i = 0; i < 6; i++)
            args[i] = payload.getLong(Notif.ARGS + 8 * i);
        return new Notification(payload.getInt(Notif.LISTENER_ID), payload.getLong(Notif.NOTIF_ID),
                payload.getInt(Notif.PID), payload.getInt(Notif.NR), payload.getInt(Notif.ARCH),
                payload.getLong(Notif.IP), args);
    }

    public static Launched decodeLaunched(ByteBuffer payload) throws ProtocolException {
        int n = payload.limit();
        if (n < LaunchedMsg.PATH + 1 || payload.get(n - 1) != 0)
            throw new ProtocolException("LAUNCHED frame of " + n + " payload bytes is not 16 bytes and a "
                    + "NUL-terminated path");
        byte[] path = new byte[n - 1 - LaunchedMsg.PATH];
        payload.get(LaunchedMsg.PATH, path);
        return new Launched(payload.getInt(LaunchedMsg.PID), payload.getInt(LaunchedMsg.UID),
                payload.getInt(LaunchedMsg.GID), payload.getInt(LaunchedMsg.LISTENER_ID),
                new String(path, StandardCharsets.UTF_8));
    }

    public static int decodeListenerGone(ByteBuffer payload) throws ProtocolException {
        expectLength(payload, ListenerGone.SIZE, LISTENER_GONE);
        return payload.getInt(ListenerGone.LISTENER_ID);
    }

    private static void expectLength(ByteBuffer payload, int size, int type) throws ProtocolException {
        if (payload.limit() != size)
            throw new ProtocolException(typeName(type) + " frame has " + payload.limit() + " payload bytes, the "
                    + "contract says " + size);
    }

    /** "GETREGS", "GETREGS reply", or the number in hex, for messages. */
    public static String typeName(int type) {
        String base = switch (type & ~REPLY_BIT) {
            case HELLO -> "HELLO";
            case NOTIF -> "NOTIF";
            case NOTIF_REPLY -> "NOTIF_REPLY";
            case LAUNCHED -> "LAUNCHED";
            case LISTENER_GONE -> "LISTENER_GONE";
            case ATTACH -> "ATTACH";
            case DETACH -> "DETACH";
            case GETREGS -> "GETREGS";
            case SETREGS -> "SETREGS";
            case GETXSTATE -> "GETXSTATE";
            case SETXSTATE -> "SETXSTATE";
            case READMEM -> "READMEM";
            case WRITEMEM -> "WRITEMEM";
            case INJECT -> "INJECT";
            case INJECT_MANY -> "INJECT_MANY";
            case GIVEFD -> "GIVEFD";
            case SPAWN_STUB -> "SPAWN_STUB";
            case GETRSEQ -> "GETRSEQ";
            case INSTALL_FILTER -> "INSTALL_FILTER";
            case WRITEMEM_FD -> "WRITEMEM_FD";
            default -> String.format("0x%04x", type & ~REPLY_BIT);
        };
        return (type & REPLY_BIT) != 0 ? base + " reply" : base;
    }
}
