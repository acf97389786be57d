package ssi.comm;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import org.junit.jupiter.api.Test;

import javax.crypto.Mac;
import java.nio.charset.StandardCharsets;

import static org.junit.jupiter.api.Assertions.*;

/** The frame MAC and the handshake proofs, without sockets. */
class LinkWireTest {
    private static final byte[] SECRET = new byte[32];
    private static final LinkCrypto.Transcript T =
            new LinkCrypto.Transcript(LinkCrypto.nonce(), LinkCrypto.nonce(), 1, 2);

    static {
        SECRET[0] = 42;
    }

    private static Mac dialerKey() { return LinkCrypto.sessionMac(SECRET, T, LinkCrypto.DIALER); }

    /** A sealed CALL frame body, without its length field. */
    private static byte[] sealedCall(String payload, long seq) {
        ByteBuf b = Unpooled.buffer();
        LinkWire.write(new LinkWire.Call(77, payload.getBytes(StandardCharsets.UTF_8)), dialerKey(), seq, b);
        assertEquals(b.readableBytes() - 4, b.readInt());
        byte[] body = new byte[b.readableBytes()];
        b.readBytes(body);
        return body;
    }

    @Test
    void sealedFrameOpensWithTheRightKeyAndSequence() throws Exception {
        LinkWire.Message m = LinkWire.readSealed(Unpooled.wrappedBuffer(sealedCall("hello", 5)), dialerKey(), 5);
        LinkWire.Call c = assertInstanceOf(LinkWire.Call.class, m);
        assertEquals(77, c.callId());
        assertEquals("hello", new String(c.payload(), StandardCharsets.UTF_8));
    }

    @Test
    void everyFlippedByteIsRejected() {
        byte[] good = sealedCall("payload", 0);
        for (int i = 0; i < good.length; i++) {
            byte[] bad = good.clone();
            bad[i] ^= 0x01;
            assertThrows(LinkWire.ProtocolException.class,
                    () -> LinkWire.readSealed(Unpooled.wrappedBuffer(bad), dialerKey(), 0), "flip at " + i);
        }
    }

    @Test
    void replayReorderAndReflectionAreRejected() {
        byte[] frame = sealedCall("x", 3);
        // the same bytes at another position in the stream (replayed, or reordered)
        assertThrows(LinkWire.ProtocolException.class, () -> LinkWire.readSealed(Unpooled.wrappedBuffer(frame), dialerKey(), 4));
        assertThrows(LinkWire.ProtocolException.class, () -> LinkWire.readSealed(Unpooled.wrappedBuffer(frame), dialerKey(), 2));
        // sent back to its sender, who checks with the other direction's key
        Mac acceptorKey = LinkCrypto.sessionMac(SECRET, T, LinkCrypto.ACCEPTOR);
        assertThrows(LinkWire.ProtocolException.class, () -> LinkWire.readSealed(Unpooled.wrappedBuffer(frame), acceptorKey, 3));
        // truncated
        byte[] cut = java.util.Arrays.copyOf(frame, frame.length - 1);
        assertThrows(LinkWire.ProtocolException.class, () -> LinkWire.readSealed(Unpooled.wrappedBuffer(cut), dialerKey(), 3));
    }

    @Test
    void proofsBindSecretRoleNoncesAndIds() {
        byte[] p = LinkCrypto.proof(SECRET, T, LinkCrypto.DIALER);
        assertTrue(LinkCrypto.verifyProof(SECRET, T, LinkCrypto.DIALER, p));
        assertFalse(LinkCrypto.verifyProof(SECRET, T, LinkCrypto.ACCEPTOR, p), "reflected proof accepted");
        byte[] other = SECRET.clone();
        other[31] = 1;
        assertFalse(LinkCrypto.verifyProof(other, T, LinkCrypto.DIALER, p), "wrong secret accepted");
        var fresh = new LinkCrypto.Transcript(T.dialerNonce(), LinkCrypto.nonce(), 1, 2);
        assertFalse(LinkCrypto.verifyProof(SECRET, fresh, LinkCrypto.DIALER, p), "proof replayed into a new handshake");
        var otherIds = new LinkCrypto.Transcript(T.dialerNonce(), T.acceptorNonce(), 3, 2);
        assertFalse(LinkCrypto.verifyProof(SECRET, otherIds, LinkCrypto.DIALER, p), "proof for another node id accepted");
    }

    @Test
    void handshakeRefusesSealedKindsAndGarbage() {
        assertThrows(LinkWire.ProtocolException.class, () -> LinkWire.readHandshake(Unpooled.wrappedBuffer(sealedCall("x", 0))));
        assertThrows(LinkWire.ProtocolException.class, () -> LinkWire.readHandshake(Unpooled.wrappedBuffer(new byte[] {1, 2, 3})));
        ByteBuf hello = Unpooled.buffer();
        LinkWire.write(new LinkWire.Hello(4, LinkCrypto.nonce()), null, 0, hello);
        hello.skipBytes(4);
        hello.setByte(hello.readerIndex() + 1, 0x00); // magic
        assertThrows(LinkWire.ProtocolException.class, () -> LinkWire.readHandshake(hello));
    }

    @Test
    void failureReplyCarriesClassAndMessage() throws Exception {
        ByteBuf b = Unpooled.buffer();
        LinkWire.write(new LinkWire.Failure(9, "java.lang.IllegalStateException", "boom \u00e9"), dialerKey(), 0, b);
        b.skipBytes(4);
        LinkWire.Failure f = assertInstanceOf(LinkWire.Failure.class, LinkWire.readSealed(b, dialerKey(), 0));
        assertEquals(9, f.callId());
        assertEquals("java.lang.IllegalStateException", f.remoteClass());
        assertEquals("boom \u00e9", f.message());
    }
}
