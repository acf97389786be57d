package ssi.comm;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;

import javax.crypto.Mac;
import java.io.DataInputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.net.Socket;
import java.net.SocketException;
import java.net.SocketTimeoutException;

/**
 * A hand-driven peer on a plain blocking socket, for tests that need to misbehave at a chosen byte: it can
 * send garbage, or complete the handshake honestly (as a dialer claiming some node id) and then tamper.
 * Owner thread: the test thread.
 */
final class RawPeer implements AutoCloseable {
    final Socket socket;
    private final DataInputStream in;
    private final OutputStream out;
    private Mac seal, open;
    private long outSeq, inSeq;

    RawPeer(int port) throws IOException {
        socket = new Socket("127.0.0.1", port);
        socket.setSoTimeout(5000);
        in = new DataInputStream(socket.getInputStream());
        out = socket.getOutputStream();
    }

    void send(byte[] bytes) throws IOException {
        out.write(bytes);
        out.flush();
    }

    static byte[] frame(LinkWire.Message m, Mac mac, long seq) {
        ByteBuf b = Unpooled.buffer();
        LinkWire.write(m, mac, seq, b);
        byte[] bytes = new byte[b.readableBytes()];
        b.readBytes(bytes);
        return bytes;
    }

    private byte[] readBody() throws IOException {
        int n = in.readInt();
        byte[] body = new byte[n];
        in.readFully(body);
        return body;
    }

    /**
     * Runs the dialer's side of the handshake as node myId with the given secret; afterBytes (the frames to
     * send right after AUTH, in the same write) is built from this peer's sealing key. Returns false if the
     * node's proof did not verify.
     */
    boolean authenticate(byte[] secret, int myId, java.util.function.Supplier<byte[]> afterAuth) throws IOException {
        LinkWire.Hello theirs = (LinkWire.Hello) LinkWire.readHandshake(Unpooled.wrappedBuffer(readBody()));
        byte[] nonce = LinkCrypto.nonce();
        var t = new LinkCrypto.Transcript(nonce, theirs.nonce(), myId, theirs.nodeId());
        seal = LinkCrypto.sessionMac(secret, t, LinkCrypto.DIALER);
        open = LinkCrypto.sessionMac(secret, t, LinkCrypto.ACCEPTOR);
        var bytes = new java.io.ByteArrayOutputStream();
        bytes.writeBytes(frame(new LinkWire.Hello(myId, nonce), null, 0));
        bytes.writeBytes(frame(new LinkWire.Auth(LinkCrypto.proof(secret, t, LinkCrypto.DIALER)), null, 0));
        bytes.writeBytes(afterAuth.get());
        send(bytes.toByteArray());
        LinkWire.Auth auth = (LinkWire.Auth) LinkWire.readHandshake(Unpooled.wrappedBuffer(readBody()));
        return LinkCrypto.verifyProof(secret, t, LinkCrypto.ACCEPTOR, auth.proof());
    }

    /** The next sealed frame this peer would send (advances its sequence number). */
    byte[] sealed(LinkWire.Message m) {
        return frame(m, seal, outSeq++);
    }

    /** The next message from the node that is not a heartbeat. */
    LinkWire.Message readMessage() throws IOException {
        while (true) {
            LinkWire.Message m = LinkWire.readSealed(Unpooled.wrappedBuffer(readBody()), open, inSeq++);
            if (!(m instanceof LinkWire.Heartbeat)) return m;
        }
    }

    /** True once the node has closed the connection (EOF or reset), reading and dropping whatever comes first. */
    boolean closedByNode(long withinMillis) throws IOException {
        long deadline = System.nanoTime() + withinMillis * 1_000_000;
        socket.setSoTimeout(100);
        byte[] sink = new byte[4096];
        while (System.nanoTime() < deadline) {
            try {
                if (in.read(sink) < 0) return true;
            } catch (SocketTimeoutException e) {
                // still open; keep waiting
            } catch (SocketException e) {
                return true; // reset by the node
            }
        }
        return false;
    }

    @Override
    public void close() throws IOException {
        socket.close();
    }
}
