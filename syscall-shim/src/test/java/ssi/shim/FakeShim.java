package ssi.shim;

import java.io.EOFException;
import java.io.IOException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.file.Path;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

/**
 * The shim's end of a link socket, for tests: listens in a temp dir, accepts one daemon, and reads and
 * writes raw frames. It encodes with literal offsets from docs/ARCHITECTURE.md, not with LinkFrames, so
 * the tests check LinkFrames against the contract rather than against itself. Used by one test thread.
 */
final class FakeShim implements AutoCloseable {
    /** A raw frame: header fields and the payload (little endian, index 0 = payload start). */
    record Frame(int len, int type, int flags, int reqId, ByteBuffer payload) {}

    final Path path;
    private final ServerSocketChannel server;
    private SocketChannel conn;

    FakeShim(Path dir) throws IOException {
        path = dir.resolve("node-3.link");
        server = ServerSocketChannel.open(StandardProtocolFamily.UNIX);
        server.bind(UnixDomainSocketAddress.of(path));
    }

    /** Connects a ShimLink (on another thread: connect blocks for HELLO) and answers its HELLO. */
    ShimLink link(int nodeId) throws Exception {
        CompletableFuture<ShimLink> connecting = CompletableFuture.supplyAsync(() -> {
            try {
                return ShimLink.connect(path);
            } catch (IOException e) {
                throw new RuntimeException(e);
            }
        });
        conn = server.accept();
        Frame hello = read();
        if (hello.type() != 1 || hello.len() != 20 || hello.payload().getInt(0) != 1)
            throw new AssertionError("bad HELLO: " + hello);
        ByteBuffer r = le(20);
        r.putInt(0, 0).putInt(4, 1).putInt(8, nodeId).putInt(12, nodeId << 14).putInt(16, (nodeId + 1) << 14);
        send(0x8001, hello.reqId(), r);
        return connecting.get(10, TimeUnit.SECONDS);
    }

    /** Accepts a connection without answering anything (for tests of a failed HELLO). */
    SocketChannel accept() throws IOException {
        conn = server.accept();
        return conn;
    }

    static ByteBuffer le(int n) {
        return ByteBuffer.allocate(n).order(ByteOrder.LITTLE_ENDIAN);
    }

    Frame read() throws IOException {
        ByteBuffer h = le(16);
        fill(h);
        int len = h.getInt(0);
        ByteBuffer p = le(len - 16);
        fill(p);
        return new Frame(len, Short.toUnsignedInt(h.getShort(4)), Short.toUnsignedInt(h.getShort(6)), h.getInt(8),
                p.clear());
    }

    private void fill(ByteBuffer b) throws IOException {
        while (b.hasRemaining())
            if (conn.read(b) < 0)
                throw new EOFException("the daemon side closed the link");
    }

    void send(int type, int reqId, ByteBuffer payload) throws IOException {
        ByteBuffer f = le(16 + payload.capacity());
        f.putInt(0, 16 + payload.capacity()).putShort(4, (short) type).putInt(8, reqId);
        f.put(16, payload, 0, payload.capacity());
        while (f.hasRemaining())
            conn.write(f);
    }

    /** A reply to a request: type | 0x8000, its req_id, i32 error, then the body. */
    void reply(Frame request, int error, ByteBuffer body) throws IOException {
        int n = body == null ? 0 : body.capacity();
        ByteBuffer p = le(4 + n);
        p.putInt(0, error);
        if (body != null)
            p.put(4, body, 0, n);
        send(request.type() | 0x8000, request.reqId(), p);
    }

    void hangUp() throws IOException {
        conn.close();
    }

    @Override
    public void close() throws IOException {
        if (conn != null)
            conn.close();
        server.close();
    }
}
