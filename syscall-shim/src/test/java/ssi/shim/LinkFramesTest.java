package ssi.shim;

import static org.junit.jupiter.api.Assertions.*;

import java.net.ProtocolException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import org.junit.jupiter.api.Test;

/** Expected bytes are written out from docs/ARCHITECTURE.md, independently of LinkFrames' offsets. */
class LinkFramesTest {

    private static byte[] bytes(ByteBuffer b) {
        byte[] a = new byte[b.limit()];
        b.get(0, a);
        return a;
    }

    @Test
    void headerRoundTrip() {
        ByteBuffer f = LinkFrames.allocate(LinkFrames.GETREGS | LinkFrames.REPLY_BIT, 0xbeef, 0x01020304, 4);
        byte[] want = {20, 0, 0, 0, 0x12, (byte) 0x80, (byte) 0xef, (byte) 0xbe, 4, 3, 2, 1, 0, 0, 0, 0, 0, 0, 0, 0};
        assertArrayEquals(want, bytes(f));
        LinkFrames h = new LinkFrames().wrap(f);
        assertEquals(20, h.length());
        assertEquals(0x8012, h.type());
        assertEquals(0xbeef, h.flags());
        assertEquals(0x01020304, h.reqId());
        assertEquals(4, h.payload().limit());
        assertEquals(ByteOrder.LITTLE_ENDIAN, h.payload().order());
        assertThrows(IllegalArgumentException.class, () -> new LinkFrames().wrap(ByteBuffer.allocate(16)));
        assertThrows(IllegalArgumentException.class, () -> LinkFrames.allocate(1, 0, 0, LinkFrames.MAX_FRAME));
    }

    @Test
    void helloBytes() {
        byte[] want = {20, 0, 0, 0, 1, 0, 0, 0, 7, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0};
        assertArrayEquals(want, bytes(LinkFrames.hello(7)));
    }

    @Test
    void notifReplyBytes() {
        ByteBuffer f = LinkFrames.notifReply(5, 0x1122334455667788L, -2L, -1, false);
        ByteBuffer want = FakeShim.le(16 + 28);
        want.putInt(0, 44).putShort(4, (short) 3);
        want.putInt(16, 5).putInt(20, 0).putLong(24, 0x1122334455667788L).putLong(32, -2L).putInt(40, -1);
        assertArrayEquals(bytes(want), bytes(f));
        ByteBuffer cont = LinkFrames.notifReply(5, 9, 0, 0, true);
        assertEquals(1, cont.getInt(20));
    }

    @Test
    void decodesNotif() throws ProtocolException {
        ByteBuffer p = FakeShim.le(88);
        p.putInt(0, 4).putInt(4, 0xdead).putLong(8, 99L).putInt(16, 49153).putInt(20, 62).putInt(24, 0xc000003e)
                .putInt(28, 0xdead).putLong(32, 0x401000L);
        for (int i = 0; i < 6; i++)
            p.putLong(40 + 8 * i, -1L - i);
        Notification n = LinkFrames.decodeNotif(p);
        assertEquals(new Notification(4, 99, 49153, 62, 0xc000003e, 0x401000L,
                new long[] {-1, -2, -3, -4, -5, -6}), n);
        assertThrows(ProtocolException.class, () -> LinkFrames.decodeNotif(FakeShim.le(80)));
    }

    @Test
    void decodesLaunchedAndListenerGone() throws ProtocolException {
        byte[] path = "/usr/bin/sleep".getBytes(StandardCharsets.UTF_8);
        ByteBuffer p = FakeShim.le(16 + path.length + 1);
        p.putInt(0, 16385).putInt(4, 1000).putInt(8, 100).putInt(12, 7).put(16, path);
        assertEquals(new Launched(16385, 1000, 100, 7, "/usr/bin/sleep"), LinkFrames.decodeLaunched(p));
        ByteBuffer noNul = FakeShim.le(16 + path.length).put(16, path);
        assertThrows(ProtocolException.class, () -> LinkFrames.decodeLaunched(noNul));

        assertEquals(12, LinkFrames.decodeListenerGone(FakeShim.le(4).putInt(0, 12)));
        assertThrows(ProtocolException.class, () -> LinkFrames.decodeListenerGone(FakeShim.le(8)));
    }

    @Test
    void regsRoundTripInKernelOrder() {
        long[] v = new long[27];
        for (int i = 0; i < 27; i++)
            v[i] = 0x1000L * (i + 1);
        Regs r = Regs.of(v);
        ByteBuffer b = FakeShim.le(Regs.SIZE);
        r.write(b);
        assertEquals(Regs.SIZE, b.position());
        // user_regs_struct: rip is field 16 (offset 128), fs_base field 21 (168), gs last (208).
        assertEquals(r.rip(), b.getLong(128));
        assertEquals(r.fsBase(), b.getLong(168));
        assertEquals(r.gs(), b.getLong(208));
        assertEquals(r.r15(), b.getLong(0));
        assertEquals(r.origRax(), b.getLong(120));
        assertEquals(r, Regs.read(b.flip()));

        Regs moved = r.withRip(0x401000L).withRax(-38L);
        assertEquals(0x401000L, moved.rip());
        assertEquals(-38L, moved.rax());
        assertEquals(0x11000L, r.rip(), "withX leaves the original alone");
        long[] m = moved.toArray();
        for (int i = 0; i < 27; i++)
            if (i != 10 && i != 16)
                assertEquals(v[i], m[i]);
        assertThrows(IllegalArgumentException.class, () -> Regs.of(1, 2, 3));
    }
}
