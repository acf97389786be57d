package ssi.comm;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufUtil;
import io.netty.handler.codec.LengthFieldBasedFrameDecoder;

import javax.crypto.Mac;
import java.io.IOException;
import java.nio.charset.StandardCharsets;

/**
 * The node link's wire format. A frame is a big-endian u32 length (of what follows) and a body whose first
 * byte is the message kind:
 * <pre>
 *   HELLO     1  u32 magic "SSIL", u16 version, i32 nodeId, u8 nonce[32]          (plain, handshake)
 *   AUTH      2  u8 proof[32]                                                     (plain, handshake)
 *   CALL      3  u64 callId, u8 payload[]                                         + u8 mac[16]
 *   REPLY     4  u64 callId, u8 status (0 ok: u8 payload[];                       + u8 mac[16]
 *                                        1 error: u16 n, class[n] UTF-8, message UTF-8 to the MAC)
 *   HEARTBEAT 5  -                                                                + u8 mac[16]
 * </pre>
 * After AUTH every frame is sealed with {@link LinkCrypto#frameMac}. Before it, frames may be at most
 * {@link #MAX_HANDSHAKE_FRAME} bytes, so an unauthenticated peer can make a node buffer next to nothing;
 * after it, at most {@link #MAX_FRAME}. Stateless functions, any thread.
 */
final class LinkWire {
    private LinkWire() {}

    /** Largest frame, its length field included. */
    static final int MAX_FRAME = 16 << 20;
    static final int MAX_HANDSHAKE_FRAME = 256;
    static final int MAGIC = 0x5353494C; // "SSIL"
    static final int VERSION = 1;
    static final byte HELLO = 1, AUTH = 2, CALL = 3, REPLY = 4, HEARTBEAT = 5;
    static final byte STATUS_OK = 0, STATUS_ERROR = 1;
    private static final int LENGTH_BYTES = 4;
    /** Largest CALL or REPLY payload: what is left of a frame after length, kind, callId, status and MAC. */
    static final int MAX_PAYLOAD = MAX_FRAME - LENGTH_BYTES - 1 - Long.BYTES - 1 - LinkCrypto.MAC_BYTES;
    private static final int MAX_CLASS_NAME = 1024, MAX_ERROR_MESSAGE = 64 << 10;

    /** A message on a link. */
    sealed interface Message permits Hello, Auth, Call, Reply, Failure, Heartbeat {}
    record Hello(int nodeId, byte[] nonce) implements Message {}
    record Auth(byte[] proof) implements Message {}
    record Call(long callId, byte[] payload) implements Message {}
    record Reply(long callId, byte[] payload) implements Message {}
    /** REPLY with status error: the handler threw. */
    record Failure(long callId, String remoteClass, String message) implements Message {}
    record Heartbeat() implements Message { static final Heartbeat INSTANCE = new Heartbeat(); }

    /** The bytes broke the protocol; the link is closed. */
    static final class ProtocolException extends IOException {
        ProtocolException(String message) { super(message); }
    }

    /** Splits the byte stream into frame bodies (the length field stripped), failing fast on a too-long length. */
    static LengthFieldBasedFrameDecoder frameDecoder(int maxFrame) {
        return new LengthFieldBasedFrameDecoder(maxFrame, 0, LENGTH_BYTES, 0, LENGTH_BYTES, true);
    }

    /** Writes a whole frame; sealMac must be given exactly for the sealed kinds, seq is its sequence number. */
    static void write(Message m, Mac sealMac, long seq, ByteBuf out) {
        int lengthAt = out.writerIndex();
        out.writeInt(0);
        int bodyAt = out.writerIndex();
        switch (m) {
            case Hello h -> out.writeByte(HELLO).writeInt(MAGIC).writeShort(VERSION).writeInt(h.nodeId()).writeBytes(h.nonce());
            case Auth a -> out.writeByte(AUTH).writeBytes(a.proof());
            case Call c -> out.writeByte(CALL).writeLong(c.callId()).writeBytes(c.payload());
            case Reply r -> out.writeByte(REPLY).writeLong(r.callId()).writeByte(STATUS_OK).writeBytes(r.payload());
            case Failure f -> {
                byte[] cls = truncatedUtf8(f.remoteClass(), MAX_CLASS_NAME);
                out.writeByte(REPLY).writeLong(f.callId()).writeByte(STATUS_ERROR).writeShort(cls.length).writeBytes(cls)
                        .writeBytes(truncatedUtf8(f.message(), MAX_ERROR_MESSAGE));
            }
            case Heartbeat h -> out.writeByte(HEARTBEAT);
        }
        boolean sealed = !(m instanceof Hello || m instanceof Auth);
        if (sealed != (sealMac != null)) {
            throw new IllegalStateException((sealed ? "sealed message without a session key: " : "handshake message after the handshake: ")
                    + m.getClass().getSimpleName());
        }
        if (sealed) out.writeBytes(LinkCrypto.frameMac(sealMac, seq, out.nioBuffer(bodyAt, out.writerIndex() - bodyAt)));
        int length = out.writerIndex() - bodyAt;
        if (length + LENGTH_BYTES > MAX_FRAME) {
            out.writerIndex(lengthAt);
            throw new IllegalArgumentException("message of " + length + " bytes exceeds the " + MAX_FRAME + "-byte frame limit");
        }
        out.setInt(lengthAt, length);
    }

    /** Reads a handshake frame body: HELLO or AUTH, nothing else. */
    static Message readHandshake(ByteBuf body) throws ProtocolException {
        if (!body.isReadable()) throw new ProtocolException("empty frame during the handshake");
        byte kind = body.readByte();
        return switch (kind) {
            case HELLO -> {
                need(body, 4 + 2 + 4 + LinkCrypto.NONCE_BYTES, "HELLO");
                int magic = body.readInt();
                if (magic != MAGIC) throw new ProtocolException("not an SSI node link (bad magic 0x" + Integer.toHexString(magic) + ")");
                int version = body.readUnsignedShort();
                if (version != VERSION) {
                    throw new ProtocolException("speaks link protocol version " + version + ", this node speaks " + VERSION
                            + "; run the same SSI release on every node");
                }
                int id = body.readInt();
                byte[] nonce = ByteBufUtil.getBytes(body, body.readerIndex(), LinkCrypto.NONCE_BYTES);
                body.skipBytes(LinkCrypto.NONCE_BYTES);
                end(body, "HELLO");
                yield new Hello(id, nonce);
            }
            case AUTH -> {
                need(body, LinkCrypto.PROOF_BYTES, "AUTH");
                byte[] proof = ByteBufUtil.getBytes(body, body.readerIndex(), LinkCrypto.PROOF_BYTES);
                body.skipBytes(LinkCrypto.PROOF_BYTES);
                end(body, "AUTH");
                yield new Auth(proof);
            }
            default -> throw new ProtocolException("sent message kind " + kind + " before authenticating");
        };
    }

    /**
     * Checks a sealed frame body against openMac and its expected sequence number, then reads it. A MAC
     * mismatch says nothing about which byte changed, by design.
     */
    static Message readSealed(ByteBuf body, Mac openMac, long seq) throws ProtocolException {
        int n = body.readableBytes();
        if (n < 1 + LinkCrypto.MAC_BYTES) throw new ProtocolException("frame of " + n + " bytes is too short to be sealed");
        int start = body.readerIndex();
        int macAt = start + n - LinkCrypto.MAC_BYTES;
        byte[] expected = LinkCrypto.frameMac(openMac, seq, body.nioBuffer(start, macAt - start));
        byte[] got = ByteBufUtil.getBytes(body, macAt, LinkCrypto.MAC_BYTES);
        if (!java.security.MessageDigest.isEqual(expected, got)) {
            throw new ProtocolException("frame " + seq + " failed its MAC check (tampered, replayed, reordered or corrupted)");
        }
        ByteBuf b = body.slice(start, macAt - start);
        byte kind = b.readByte();
        return switch (kind) {
            case CALL -> {
                need(b, Long.BYTES, "CALL");
                long id = b.readLong();
                yield new Call(id, ByteBufUtil.getBytes(b));
            }
            case REPLY -> {
                need(b, Long.BYTES + 1, "REPLY");
                long id = b.readLong();
                byte status = b.readByte();
                if (status == STATUS_OK) yield new Reply(id, ByteBufUtil.getBytes(b));
                if (status != STATUS_ERROR) throw new ProtocolException("REPLY with unknown status " + status);
                need(b, 2, "REPLY");
                int clsLength = b.readUnsignedShort();
                need(b, clsLength, "REPLY");
                String cls = b.readCharSequence(clsLength, StandardCharsets.UTF_8).toString();
                String message = b.readCharSequence(b.readableBytes(), StandardCharsets.UTF_8).toString();
                yield new Failure(id, cls, message);
            }
            case HEARTBEAT -> {
                end(b, "HEARTBEAT");
                yield Heartbeat.INSTANCE;
            }
            default -> throw new ProtocolException("unknown or out-of-place message kind " + kind + " after authentication");
        };
    }

    private static void need(ByteBuf b, int n, String what) throws ProtocolException {
        if (b.readableBytes() < n) throw new ProtocolException("truncated " + what + " frame");
    }

    private static void end(ByteBuf b, String what) throws ProtocolException {
        if (b.isReadable()) throw new ProtocolException(b.readableBytes() + " stray bytes after a " + what + " frame");
    }

    private static byte[] truncatedUtf8(String s, int max) {
        byte[] b = (s == null ? "" : s).getBytes(StandardCharsets.UTF_8);
        if (b.length <= max) return b;
        // Cut at a character boundary so the receiver never sees a broken sequence.
        int end = max;
        while (end > 0 && (b[end] & 0xC0) == 0x80) end--;
        return java.util.Arrays.copyOf(b, end);
    }
}
