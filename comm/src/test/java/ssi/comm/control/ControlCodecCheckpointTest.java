package ssi.comm.control;

import org.junit.jupiter.api.Test;
import ssi.comm.control.ControlMessages.Checkpoint;
import ssi.comm.control.ControlMessages.Checkpointed;
import ssi.comm.control.ControlMessages.Kill;
import ssi.comm.control.ControlMessages.Reply;

import java.io.ByteArrayOutputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.util.Arrays;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

/** CHECKPOINT (type 8) on the control protocol: exact layout, round trips, and the older types untouched. */
class ControlCodecCheckpointTest {

    private interface W { void w(DataOutputStream o) throws IOException; }

    private static byte[] bytes(W w) throws IOException {
        ByteArrayOutputStream b = new ByteArrayOutputStream();
        try (DataOutputStream o = new DataOutputStream(b)) { w.w(o); }
        return b.toByteArray();
    }

    @Test
    void requestLayoutIsTypeGpidDirStopIncrementalParent() throws IOException {
        Checkpoint c = new Checkpoint(16390, "/tmp/ck", true);
        byte[] expected = bytes(o -> { o.writeShort(8); o.writeInt(16390); o.writeUTF("/tmp/ck"); o.writeBoolean(true);
            o.writeBoolean(false); o.writeUTF(""); });
        assertArrayEquals(expected, ControlCodec.encodeRequest(c));
        assertEquals(c, ControlCodec.decodeRequest(expected));
        Checkpoint incr = new Checkpoint(16390, "/tmp/ck2", false, true, "/tmp/ck");
        byte[] incrWire = bytes(o -> { o.writeShort(8); o.writeInt(16390); o.writeUTF("/tmp/ck2"); o.writeBoolean(false);
            o.writeBoolean(true); o.writeUTF("/tmp/ck"); });
        assertArrayEquals(incrWire, ControlCodec.encodeRequest(incr));
        assertEquals(incr, ControlCodec.decodeRequest(incrWire));
        assertEquals(new Checkpoint(16391, "", false),
                ControlCodec.decodeRequest(ControlCodec.encodeRequest(new Checkpoint(16391, "", false))));
    }

    @Test
    void replyRoundTripAndLayout() throws IOException {
        Checkpointed done = new Checkpointed("/var/lib/ssi/checkpoints/16390-1", 12_345, 3, 33_554_432L);
        byte[] wire = ControlCodec.encodeReply(ControlMessages.CHECKPOINT, Reply.checkpointed(done));
        byte[] expected = bytes(o -> { o.writeShort(0); o.writeUTF(done.dir()); o.writeLong(12_345); o.writeInt(3);
            o.writeLong(33_554_432L); o.writeUTF(""); o.writeLong(0); });
        assertArrayEquals(expected, wire);
        assertEquals(done, ControlCodec.decodeReply(ControlMessages.CHECKPOINT, wire).checkpoint());
        Checkpointed incr = new Checkpointed("/tmp/ck2", 1_000, 1, 4096, "/tmp/ck", 8_192);
        assertEquals(incr, ControlCodec.decodeReply(ControlMessages.CHECKPOINT,
                ControlCodec.encodeReply(ControlMessages.CHECKPOINT, Reply.checkpointed(incr))).checkpoint());
    }

    @Test
    void errorReplyCarriesTheMessage() throws IOException {
        Reply r = ControlCodec.decodeReply(ControlMessages.CHECKPOINT, ControlCodec.encodeReply(ControlMessages.CHECKPOINT,
                Reply.error(ControlMessages.EOPNOTSUPP, "process 16390 fd 5 is a TCP socket to 10.0.0.1:80: not supported")));
        assertEquals(95, r.status());
        assertEquals("process 16390 fd 5 is a TCP socket to 10.0.0.1:80: not supported", r.message());
    }

    @Test
    void truncatedCheckpointRequestIsAProtocolError() {
        byte[] full = ControlCodec.encodeRequest(new Checkpoint(16390, "/x", false));
        assertThrows(ControlCodec.ProtocolException.class,
                () -> ControlCodec.decodeRequest(Arrays.copyOf(full, full.length - 1)));
    }

    @Test
    void olderTypesEncodeAsBefore() throws IOException {
        assertArrayEquals(bytes(o -> { o.writeShort(4); o.writeInt(16390); o.writeInt(9); }),
                ControlCodec.encodeRequest(new Kill(16390, 9)));
        assertArrayEquals(bytes(o -> o.writeShort(0)), ControlCodec.encodeReply(ControlMessages.KILL, Reply.ok()));
    }
}
