package ssi.comm.control;

import ssi.comm.control.ControlMessages.*;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.ArrayList;
import java.util.List;

/**
 * Encodes and decodes control messages (docs/ARCHITECTURE.md). A frame on the control socket is a
 * big-endian u32 length and then the bytes these methods produce. Decoding garbage throws
 * {@link ProtocolException}; callers answer it with an EPROTO reply or by closing the connection.
 */
public final class ControlCodec {
    private ControlCodec() {}

    /** Largest frame either side accepts; anything bigger is garbage. */
    public static final int MAX_FRAME = 16 << 20;
    private static final int MAX_LIST = 1 << 20;

    /** Thrown when bytes are not a valid control message. */
    public static final class ProtocolException extends IOException {
        public ProtocolException(String message) { super(message); }
    }

    public static byte[] encodeRequest(Request r) {
        return write(out -> {
            out.writeShort(r.type());
            switch (r) {
                case Ping p -> {}
                case Nodes n -> {}
                case Ps p -> out.writeBoolean(p.allNodes());
                case Kill k -> { out.writeInt(k.gpid()); out.writeInt(k.signal()); }
                case CapGet c -> out.writeInt(c.gpid());
                case CapSet c -> { out.writeInt(c.gpid()); out.writeInt(c.set()); out.writeInt(c.raise()); out.writeInt(c.lower()); }
                case Shutdown s -> out.writeBoolean(s.wholeCluster());
                case Checkpoint c -> {
                    out.writeInt(c.gpid()); out.writeUTF(c.dir()); out.writeBoolean(c.stop());
                    out.writeBoolean(c.incremental()); out.writeUTF(c.parent());
                }
                case Restart r2 -> out.writeUTF(r2.dir());
                case RestartForeground f -> { out.writeUTF(f.dir()); out.writeInt(f.stub()); out.writeInt(f.terminalFd()); }
            }
        });
    }

    public static Request decodeRequest(byte[] frame) throws ProtocolException {
        return read(frame, in -> {
            int type = in.readUnsignedShort();
            return switch (type) {
                case ControlMessages.PING -> new Ping();
                case ControlMessages.NODES -> new Nodes();
                case ControlMessages.PS -> new Ps(in.readBoolean());
                case ControlMessages.KILL -> new Kill(in.readInt(), in.readInt());
                case ControlMessages.CAPGET -> new CapGet(in.readInt());
                case ControlMessages.CAPSET -> new CapSet(in.readInt(), in.readInt(), in.readInt(), in.readInt());
                case ControlMessages.SHUTDOWN -> new Shutdown(in.readBoolean());
                case ControlMessages.CHECKPOINT -> new Checkpoint(in.readInt(), in.readUTF(), in.readBoolean(), in.readBoolean(),
                        in.readUTF());
                case ControlMessages.RESTART -> new Restart(in.readUTF());
                case ControlMessages.RESTART_FG -> new RestartForeground(in.readUTF(), in.readInt(), in.readInt());
                default -> throw new ProtocolException("unknown control request type " + type);
            };
        });
    }

    /** Encodes a reply to a request of the given type. */
    public static byte[] encodeReply(int requestType, Reply r) {
        return write(out -> {
            out.writeShort(r.status());
            if (r.status() != 0) {
                out.writeUTF(r.message() == null ? "" : r.message());
                return;
            }
            switch (requestType) {
                case ControlMessages.PING -> out.writeInt(r.nodeId());
                case ControlMessages.NODES -> {
                    out.writeInt(r.nodes().size());
                    for (NodeInfo n : r.nodes()) {
                        out.writeInt(n.id()); out.writeUTF(n.address()); out.writeUTF(n.state());
                        out.writeDouble(n.load1()); out.writeLong(n.memTotal()); out.writeLong(n.memAvailable());
                        out.writeInt(n.processes());
                    }
                }
                case ControlMessages.PS -> {
                    out.writeInt(r.processes().size());
                    for (ProcessInfo p : r.processes()) {
                        out.writeInt(p.gpid()); out.writeInt(p.ppid()); out.writeInt(p.pgid()); out.writeInt(p.sid());
                        out.writeInt(p.node()); out.writeInt(p.uid()); out.writeUTF(p.user()); out.writeUTF(p.state());
                        out.writeLong(p.cpuMillis()); out.writeLong(p.rssKiB()); out.writeUTF(p.command());
                    }
                }
                case ControlMessages.CAPGET, ControlMessages.CAPSET -> {
                    CapSets c = r.caps();
                    out.writeInt(c.gpid()); out.writeInt(c.permitted()); out.writeInt(c.effective());
                    out.writeInt(c.inheritablePermitted()); out.writeInt(c.inheritableEffective());
                }
                case ControlMessages.CHECKPOINT -> {
                    Checkpointed c = r.checkpoint();
                    out.writeUTF(c.dir()); out.writeLong(c.freezeMicros()); out.writeInt(c.processes()); out.writeLong(c.pageBytes());
                    out.writeUTF(c.parent()); out.writeLong(c.parentPageBytes());
                }
                case ControlMessages.RESTART -> { out.writeInt(r.restart().gpid()); out.writeLong(r.restart().micros()); }
                case ControlMessages.RESTART_FG -> {
                    out.writeInt(r.restart().gpid()); out.writeLong(r.restart().micros()); out.writeInt(r.restart().ppid());
                }
                default -> {}
            }
        });
    }

    public static Reply decodeReply(int requestType, byte[] frame) throws ProtocolException {
        return read(frame, in -> {
            int status = in.readUnsignedShort();
            if (status != 0) return Reply.error(status, in.readUTF());
            return switch (requestType) {
                case ControlMessages.PING -> Reply.pong(in.readInt());
                case ControlMessages.NODES -> {
                    int n = count(in);
                    List<NodeInfo> list = new ArrayList<>(n);
                    for (int i = 0; i < n; i++) {
                        list.add(new NodeInfo(in.readInt(), in.readUTF(), in.readUTF(), in.readDouble(), in.readLong(),
                                in.readLong(), in.readInt()));
                    }
                    yield Reply.nodes(list);
                }
                case ControlMessages.PS -> {
                    int n = count(in);
                    List<ProcessInfo> list = new ArrayList<>(n);
                    for (int i = 0; i < n; i++) {
                        list.add(new ProcessInfo(in.readInt(), in.readInt(), in.readInt(), in.readInt(), in.readInt(),
                                in.readInt(), in.readUTF(), in.readUTF(), in.readLong(), in.readLong(), in.readUTF()));
                    }
                    yield Reply.processes(list);
                }
                case ControlMessages.CAPGET, ControlMessages.CAPSET ->
                        Reply.caps(new CapSets(in.readInt(), in.readInt(), in.readInt(), in.readInt(), in.readInt()));
                case ControlMessages.CHECKPOINT ->
                        Reply.checkpointed(new Checkpointed(in.readUTF(), in.readLong(), in.readInt(), in.readLong(), in.readUTF(),
                                in.readLong()));
                case ControlMessages.RESTART -> Reply.restarted(new Restarted(in.readInt(), in.readLong()));
                case ControlMessages.RESTART_FG -> Reply.restarted(new Restarted(in.readInt(), in.readLong(), in.readInt()));
                default -> Reply.ok();
            };
        });
    }

    private static int count(DataInputStream in) throws IOException {
        int n = in.readInt();
        if (n < 0 || n > MAX_LIST) throw new ProtocolException("list length " + n + " out of range");
        return n;
    }

    private interface Writer { void write(DataOutputStream out) throws IOException; }
    private interface Reader<T> { T read(DataInputStream in) throws IOException; }

    private static byte[] write(Writer w) {
        ByteArrayOutputStream bytes = new ByteArrayOutputStream(64);
        try (DataOutputStream out = new DataOutputStream(bytes)) {
            w.write(out);
        } catch (IOException e) {
            throw new UncheckedIOException(e); // cannot happen on a byte array
        }
        return bytes.toByteArray();
    }

    private static <T> T read(byte[] frame, Reader<T> r) throws ProtocolException {
        try (DataInputStream in = new DataInputStream(new ByteArrayInputStream(frame))) {
            T value = r.read(in);
            if (in.available() != 0) throw new ProtocolException(in.available() + " trailing bytes in control message");
            return value;
        } catch (ProtocolException e) {
            throw e;
        } catch (IOException e) {
            throw new ProtocolException("truncated or malformed control message: " + e);
        }
    }
}
