package ssi.launcher;

import ssi.comm.control.ControlCodec;
import ssi.comm.control.ControlMessages.Reply;
import ssi.comm.control.ControlMessages.Request;

import java.io.IOException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.function.Function;

/**
 * A node daemon's control socket as far as the CLI can tell: a JDK UNIX-domain server that decodes
 * requests with {@link ControlCodec}, answers them with a handler and records them. Like a real
 * daemon that died, closing it leaves the socket file behind (nobody unlinks it).
 */
final class FakeControlServer implements AutoCloseable {
    final Path socket;
    final List<Request> requests = new CopyOnWriteArrayList<>();
    private final ServerSocketChannel server;
    private final List<SocketChannel> clients = new CopyOnWriteArrayList<>();
    private final Thread acceptor;
    private volatile Function<Request, Reply> handler;
    private volatile boolean closed;

    FakeControlServer(Path socket, Function<Request, Reply> handler) throws IOException {
        this.socket = socket;
        this.handler = handler;
        server = ServerSocketChannel.open(StandardProtocolFamily.UNIX);
        server.bind(UnixDomainSocketAddress.of(socket));
        acceptor = Thread.ofPlatform().daemon().name("fake-ctl-" + socket.getFileName()).start(this::acceptLoop);
    }

    void handler(Function<Request, Reply> h) {
        handler = h;
    }

    private void acceptLoop() {
        while (!closed) {
            try {
                SocketChannel c = server.accept();
                if (closed) {
                    c.close();
                    return;
                }
                clients.add(c);
                Thread.ofPlatform().daemon().start(() -> serve(c));
            } catch (IOException e) {
                return; // closed
            }
        }
    }

    private void serve(SocketChannel c) {
        try (c) {
            while (true) {
                ByteBuffer len = ByteBuffer.allocate(4);
                if (!readFully(c, len)) return;
                ByteBuffer body = ByteBuffer.allocate(len.flip().getInt());
                if (!readFully(c, body)) return;
                Request r = ControlCodec.decodeRequest(body.array());
                requests.add(r);
                Reply reply = handler.apply(r);
                if (reply == null) return; // simulate a daemon that hangs up without answering
                byte[] out = ControlCodec.encodeReply(r.type(), reply);
                ByteBuffer frame = ByteBuffer.allocate(4 + out.length).putInt(out.length).put(out).flip();
                while (frame.hasRemaining()) c.write(frame);
            }
        } catch (IOException e) {
            // the client went away, or we were closed
        }
    }

    private static boolean readFully(SocketChannel c, ByteBuffer b) throws IOException {
        while (b.hasRemaining()) {
            if (c.read(b) < 0) return false;
        }
        return true;
    }

    /** Closes a little later, from another thread: lets a SHUTDOWN reply reach the client first. */
    void closeSoon() {
        Thread.ofPlatform().daemon().start(() -> {
            try {
                Thread.sleep(50);
            } catch (InterruptedException ignored) {
                // close now
            }
            close();
        });
    }

    boolean isClosed() {
        return closed;
    }

    @Override
    public void close() {
        closed = true;
        try {
            server.close();
            // JDK 25 defers the real close of a listener while a thread is blocked in accept(): until
            // that thread has left accept(), new connects still succeed. Wait for it, so a closed fake
            // really refuses connections like a dead daemon.
            if (Thread.currentThread() != acceptor) acceptor.join(5000);
        } catch (IOException ignored) {
            // nothing to do in a test helper
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        for (SocketChannel c : clients) {
            try {
                c.close();
            } catch (IOException ignored) {
                // idem
            }
        }
    }
}
