package ssi.comm.control;

import org.junit.jupiter.api.Test;
import ssi.comm.control.ControlMessages.Reply;
import ssi.comm.control.ControlMessages.Restart;
import ssi.comm.control.ControlMessages.Restarted;

import java.io.ByteArrayOutputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.util.Arrays;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;

/** RESTART (type 9) and RESTART_FG (type 10) on the control protocol: exact layout and round trips. */
class ControlCodecRestartTest {

    private interface W { void w(DataOutputStream o) throws IOException; }

    private static byte[] bytes(W w) throws IOException {
        ByteArrayOutputStream b = new ByteArrayOutputStream();
        try (DataOutputStream o = new DataOutputStream(b)) { w.w(o); }
        return b.toByteArray();
    }

    @Test
    void requestLayoutIsTypeDir() throws IOException {
        Restart r = new Restart("/tmp/img");
        byte[] expected = bytes(o -> { o.writeShort(9); o.writeUTF("/tmp/img"); });
        assertArrayEquals(expected, ControlCodec.encodeRequest(r));
        assertEquals(r, ControlCodec.decodeRequest(expected));
    }

    @Test
    void replyLayoutIsGpidMicros() throws IOException {
        Restarted done = new Restarted(16390, 123_456L);
        byte[] wire = ControlCodec.encodeReply(ControlMessages.RESTART, Reply.restarted(done));
        assertArrayEquals(bytes(o -> { o.writeShort(0); o.writeInt(16390); o.writeLong(123_456L); }), wire);
        Reply back = ControlCodec.decodeReply(ControlMessages.RESTART, wire);
        assertEquals(done, back.restart());
        assertNull(back.checkpoint());
    }

    @Test
    void errorReplyCarriesTheMessage() throws IOException {
        Reply r = ControlCodec.decodeReply(ControlMessages.RESTART, ControlCodec.encodeReply(ControlMessages.RESTART,
                Reply.error(ControlMessages.EEXIST, "gpid 16390 is taken on node 1")));
        assertEquals(17, r.status());
        assertEquals("gpid 16390 is taken on node 1", r.message());
        assertNull(r.restart());
    }

    /** The layout ssi-run's C encoder (native/src/client/restart.c) writes by hand. */
    @Test
    void foregroundRequestLayoutIsTypeDirStubTerminal() throws IOException {
        ControlMessages.RestartForeground r = new ControlMessages.RestartForeground("/tmp/img", 16390, 3);
        byte[] expected = bytes(o -> { o.writeShort(10); o.writeUTF("/tmp/img"); o.writeInt(16390); o.writeInt(3); });
        assertArrayEquals(expected, ControlCodec.encodeRequest(r));
        assertEquals(r, ControlCodec.decodeRequest(expected));
        Restarted checked = new Restarted(16390, 0, 16385);
        byte[] wire = ControlCodec.encodeReply(ControlMessages.RESTART_FG, Reply.restarted(checked));
        assertArrayEquals(bytes(o -> { o.writeShort(0); o.writeInt(16390); o.writeLong(0); o.writeInt(16385); }), wire);
        assertEquals(checked, ControlCodec.decodeReply(ControlMessages.RESTART_FG, wire).restart());
    }

    @Test
    void truncatedRestartRequestIsAProtocolError() {
        byte[] full = ControlCodec.encodeRequest(new Restart("/x/y"));
        assertThrows(ControlCodec.ProtocolException.class,
                () -> ControlCodec.decodeRequest(Arrays.copyOf(full, full.length - 1)));
    }
}
