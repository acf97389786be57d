package ssi.supervisor;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import ssi.comm.control.ControlCodec;
import ssi.comm.control.ControlMessages.CapSet;

import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.*;

/** The RPC envelope's encoding, and the daemon's arguments and configuration checks. */
class WireAndConfigTest {
    @Test
    void controlRequestsTravelWithTheCallersUid() throws Exception {
        CapSet req = new CapSet(16390, 1, 4, 2);
        RpcEnvelope.Message m = RpcEnvelope.decode(RpcEnvelope.control(1000, req));
        assertEquals(1000, m.callerUid());
        assertEquals(0, m.callerPid());
        assertEquals(req, m.control());
        assertNull(m.signal());
    }

    @Test
    void signalOrdersRoundTrip() throws Exception {
        byte[] info = SigInfo.queued(10, 16400, 1000);
        SignalOrder o = new SignalOrder(SignalOrder.Scope.THREAD, 32770, 32771, 10, 16400, 1000, 0, info);
        RpcEnvelope.Message m = RpcEnvelope.decode(RpcEnvelope.signal(o));
        SignalOrder back = m.signal();
        assertNull(m.control());
        assertEquals(o.scope(), back.scope());
        assertEquals(32770, back.pid());
        assertEquals(32771, back.tid());
        assertEquals(10, back.sig());
        assertEquals(16400, back.senderGpid());
        assertEquals(1000, back.senderRuid());
        assertEquals(0, back.senderEuid());
        assertArrayEquals(info, back.siginfo());
        assertEquals(-1, SigInfo.code(back.siginfo()));
        assertEquals(16400, SigInfo.pid(back.siginfo()));
        assertEquals(1000, SigInfo.uid(back.siginfo()));

        SignalOrder plain = new SignalOrder(SignalOrder.Scope.ALL, 0, 0, 0, 16400, 0, 0, null);
        assertNull(RpcEnvelope.decode(RpcEnvelope.signal(plain)).signal().siginfo());
        assertEquals(3, RpcEnvelope.decodeSignalReply(RpcEnvelope.signalReply(3)));
    }

    @Test
    void garbageIsAProtocolError() {
        assertThrows(ControlCodec.ProtocolException.class, () -> RpcEnvelope.decode(new byte[5]));
        byte[] truncated = RpcEnvelope.signal(new SignalOrder(SignalOrder.Scope.PROCESS, 5, 0, 9, 1, 0, 0, null));
        assertThrows(ControlCodec.ProtocolException.class,
                () -> RpcEnvelope.decode(java.util.Arrays.copyOf(truncated, truncated.length - 1)));
        byte[] badScope = truncated.clone();
        badScope[14] = 9; // the scope byte: header 8, type 2, euid 4
        assertThrows(ControlCodec.ProtocolException.class, () -> RpcEnvelope.decode(badScope));
        byte[] unknownType = {0, 0, 0, 0, 0, 0, 0, 0, 0, 99};
        assertThrows(ControlCodec.ProtocolException.class, () -> RpcEnvelope.decode(unknownType));
        assertThrows(ControlCodec.ProtocolException.class, () -> RpcEnvelope.decodeSignalReply(new byte[3]));
    }

    @Test
    void argumentsAndConfiguration(@TempDir Path dir) {
        NodeContext ctx = Ssid.parse(new String[]{"--run-dir", dir.toString(), "--node", "3"}).conclude();
        assertEquals(3, ctx.nodeId());
        assertEquals(dir.resolve("node-3.link"), ctx.linkSocket());
        assertEquals(dir.resolve("node-3.ctl"), ctx.controlSocket());
        assertEquals(dir.resolve("cluster.conf"), ctx.clusterConfFile());
        assertEquals(dir.resolve("secret"), ctx.secretFile());
        assertThrows(IllegalStateException.class, () -> ctx.nodeId(4), "a concluded context is frozen");

        assertThrows(IllegalArgumentException.class, () -> Ssid.parse(new String[]{"--node", "1"}));
        assertThrows(IllegalArgumentException.class, () -> Ssid.parse(new String[]{"--run-dir", "/x"}));
        assertThrows(IllegalArgumentException.class, () -> Ssid.parse(new String[]{"--node", "0", "--run-dir", "/x"}));
        assertThrows(IllegalArgumentException.class, () -> Ssid.parse(new String[]{"--node", "one", "--run-dir", "/x"}));
        assertThrows(IllegalArgumentException.class, () -> Ssid.parse(new String[]{"--node", "1", "--run-dir"}));
        assertThrows(IllegalArgumentException.class, () -> Ssid.parse(new String[]{"--node", "1", "--run-dir", "/x", "--bogus"}));
        IllegalArgumentException missing = assertThrows(IllegalArgumentException.class,
                () -> Ssid.parse(new String[]{"--node", "1", "--run-dir", dir.resolve("nope").toString()}).conclude());
        assertTrue(missing.getMessage().contains("does not exist"), missing.getMessage());
        assertThrows(IllegalArgumentException.class,
                () -> new NodeContext().nodeId(1).runDir(dir).rpcTimeoutMillis(1000).killGraceMillis(3000).conclude(),
                "a remote shutdown would time out before the node's grace time is over");
    }
}
