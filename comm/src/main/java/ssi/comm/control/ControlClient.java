package ssi.comm.control;

import ssi.comm.control.ControlMessages.Reply;
import ssi.comm.control.ControlMessages.Request;

import java.io.IOException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;
import java.nio.file.Path;

/**
 * Client side of a node's control socket: one blocking request/reply at a time. Used by the ssi CLI,
 * so it uses only the JDK (fast start). Not thread-safe.
 */
public final class ControlClient implements AutoCloseable {
    private final SocketChannel channel;
    private final Path socket;

    private ControlClient(SocketChannel channel, Path socket) {
        this.channel = channel;
        this.socket = socket;
    }

    /** Connects to a control socket; IOException says which socket and why. */
    public static ControlClient connect(Path socket) throws IOException {
        SocketChannel ch = SocketChannel.open(StandardProtocolFamily.UNIX);
        try {
            ch.connect(UnixDomainSocketAddress.of(socket));
        } catch (IOException e) {
            ch.close();
            throw new IOException("cannot reach the node daemon at " + socket + " (" + e.getMessage()
                    + "); is the cluster started? try `ssi cluster start`", e);
        }
        return new ControlClient(ch, socket);
    }

    public Reply call(Request request) throws IOException {
        byte[] body = ControlCodec.encodeRequest(request);
        ByteBuffer out = ByteBuffer.allocate(4 + body.length);
        out.putInt(body.length).put(body).flip();
        while (out.hasRemaining()) channel.write(out);
        ByteBuffer len = readFully(4);
        int n = len.getInt();
        if (n < 0 || n > ControlCodec.MAX_FRAME) {
            throw new ControlCodec.ProtocolException("bad reply frame length " + n + " from " + socket);
        }
        return ControlCodec.decodeReply(request.type(), readFully(n).array());
    }

    private ByteBuffer readFully(int n) throws IOException {
        ByteBuffer b = ByteBuffer.allocate(n);
        while (b.hasRemaining()) {
            if (channel.read(b) < 0) throw new IOException("node daemon at " + socket + " closed the connection");
        }
        return b.flip();
    }

    @Override
    public void close() throws IOException {
        channel.close();
    }
}
