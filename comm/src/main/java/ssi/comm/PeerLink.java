package ssi.comm;

import io.netty.buffer.ByteBuf;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFutureListener;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.handler.codec.TooLongFrameException;
import io.netty.handler.timeout.IdleStateEvent;
import io.netty.handler.timeout.IdleStateHandler;
import io.netty.util.concurrent.ScheduledFuture;

import javax.crypto.Mac;
import java.io.IOException;
import java.lang.System.Logger.Level;
import java.net.InetSocketAddress;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.TimeUnit;

/**
 * One TCP connection between this node and a peer. It runs the handshake (HELLO, AUTH: see
 * {@link LinkCrypto}), then checks the MAC and sequence of every frame, hands calls to the transport's
 * workers, completes the calls this node made over it, sends heartbeats, and closes itself when the peer
 * breaks the protocol or falls silent for downAfterMillis. Nothing reaches the RpcHandler before the peer has
 * proved the secret. Owner thread: the channel's event loop; {@link #call} and {@link #send} may be used from
 * any thread.
 */
final class PeerLink extends ChannelInboundHandlerAdapter {
    private static final System.Logger LOG = System.getLogger("ssi.comm");

    enum Role { DIALER, ACCEPTOR }

    /** What the transport does with a link's events; called on the link's event loop. */
    interface Owner {
        /** An unauthenticated inbound connection was refused; the owner logs it, rate-limited per source. */
        void rejected(PeerLink link, String reason, Level level);
        void authenticated(PeerLink link);
        void heard(int peerId);
        void incomingCall(PeerLink link, long callId, byte[] payload);
        void closed(PeerLink link);
    }

    private final CommContext ctx;
    private final Owner owner;
    private final Role role;
    private final int expectedPeer;
    private final byte[] secret;
    private final LinkEncoder encoder;
    private final Map<Long, CompletableFuture<byte[]>> pending = new ConcurrentHashMap<>();

    private Channel channel;
    private String remote = "?";
    private byte[] myNonce;
    private LinkCrypto.Transcript transcript;
    private Mac openMac;
    private long inSeq;
    private ScheduledFuture<?> handshakeTimer, heartbeats;
    private volatile int peerId;
    private volatile boolean authenticated;
    private volatile boolean closed;
    private volatile String failure;
    private volatile Level failureLevel = Level.INFO;

    /** expectedPeer: the node a DIALER means to reach; ignored for an ACCEPTOR, which learns it from HELLO. */
    PeerLink(CommContext ctx, Owner owner, Role role, int expectedPeer, LinkEncoder encoder) {
        this.ctx = ctx;
        this.owner = owner;
        this.role = role;
        this.expectedPeer = expectedPeer;
        this.secret = ctx.secret().bytes();
        this.encoder = encoder;
    }

    int peerId() { return peerId; }
    /** For a DIALER, the node it dials (known before any byte is read); 0 for an ACCEPTOR. */
    int expectedPeer() { return role == Role.DIALER ? expectedPeer : 0; }
    Role role() { return role; }
    boolean isAuthenticated() { return authenticated; }
    /** Why the link failed, null if it closed cleanly or is still open. */
    String failure() { return failure; }
    Level failureLevel() { return failureLevel; }
    /** The peer's ip:port. */
    String remote() { return remote; }
    /** The peer's ip, without the port that changes with every connection. */
    String remoteHost() {
        return channel != null && channel.remoteAddress() instanceof InetSocketAddress a && a.getAddress() != null
                ? a.getAddress().getHostAddress() : remote;
    }

    // ---- outbound, any thread ----

    /** Sends a call over this authenticated link; the future completes with the reply or fails. */
    void call(long callId, byte[] request, CompletableFuture<byte[]> result) {
        int peer = peerId;
        pending.put(callId, result);
        // channelInactive may have drained pending just before the put; nobody else would ever complete it.
        if (closed) {
            if (pending.remove(callId) != null) result.completeExceptionally(lost(peer));
            return;
        }
        long timeout = ctx.rpcTimeoutMillis();
        ScheduledFuture<?> timer;
        try {
            timer = channel.eventLoop().schedule(() -> {
                if (pending.remove(callId) != null) {
                    result.completeExceptionally(new NodeUnreachableException(peer,
                            "node " + peer + " did not answer within " + timeout + " ms"));
                }
            }, timeout, TimeUnit.MILLISECONDS);
        } catch (RejectedExecutionException e) {
            // The event loop is shutting down with the transport.
            if (pending.remove(callId) != null) result.completeExceptionally(lost(peer));
            return;
        }
        result.whenComplete((r, e) -> {
            timer.cancel(false);
            pending.remove(callId);
        });
        channel.writeAndFlush(new LinkWire.Call(callId, request)).addListener((ChannelFutureListener) f -> {
            if (!f.isSuccess() && pending.remove(callId) != null) {
                result.completeExceptionally(new NodeUnreachableException(peer,
                        "cannot send to node " + peer + ": " + f.cause(), f.cause()));
            }
        });
    }

    /** Sends a reply or a heartbeat; dropped if the link has closed meanwhile (the caller times out). */
    void send(LinkWire.Message m) {
        // After close the event loop may be gone, and Netty would complain about the listener it cannot run.
        if (closed || !channel.isActive()) return;
        channel.writeAndFlush(m).addListener((ChannelFutureListener) f -> {
            if (!f.isSuccess() && !closed) {
                LOG.log(Level.WARNING, "cannot send {0} to node {1} ({2}): {3}", m.getClass().getSimpleName(), peerId, remote, f.cause());
            }
        });
    }

    // ---- inbound, event loop ----

    @Override
    public void channelActive(ChannelHandlerContext c) {
        channel = c.channel();
        remote = channel.remoteAddress() instanceof InetSocketAddress a && a.getAddress() != null
                ? a.getAddress().getHostAddress() + ":" + a.getPort()
                : String.valueOf(channel.remoteAddress());
        myNonce = LinkCrypto.nonce();
        c.writeAndFlush(new LinkWire.Hello(ctx.nodeId(), myNonce));
        long limit = ctx.handshakeTimeoutMillis();
        handshakeTimer = c.executor().schedule(
                () -> fail(c, "did not authenticate within " + limit + " ms", Level.WARNING), limit, TimeUnit.MILLISECONDS);
    }

    @Override
    public void channelRead(ChannelHandlerContext c, Object msg) {
        ByteBuf body = (ByteBuf) msg;
        try {
            // Frames already decoded when the link failed must not be acted on.
            if (failure != null || closed) return;
            if (authenticated) {
                onSealed(c, body);
            } else {
                onHandshake(c, body);
            }
        } catch (LinkWire.ProtocolException e) {
            fail(c, e.getMessage(), Level.WARNING);
        } finally {
            body.release();
        }
    }

    private void onHandshake(ChannelHandlerContext c, ByteBuf body) throws LinkWire.ProtocolException {
        LinkWire.Message m = LinkWire.readHandshake(body);
        switch (m) {
            case LinkWire.Hello h -> {
                if (transcript != null) throw new LinkWire.ProtocolException("sent HELLO twice");
                checkClaimedId(h.nodeId());
                peerId = h.nodeId();
                transcript = role == Role.DIALER
                        ? new LinkCrypto.Transcript(myNonce, h.nonce(), ctx.nodeId(), peerId)
                        : new LinkCrypto.Transcript(h.nonce(), myNonce, peerId, ctx.nodeId());
                c.writeAndFlush(new LinkWire.Auth(LinkCrypto.proof(secret, transcript, myRole())));
            }
            case LinkWire.Auth a -> {
                if (transcript == null) throw new LinkWire.ProtocolException("sent AUTH before HELLO");
                if (!LinkCrypto.verifyProof(secret, transcript, peerRole(), a.proof())) {
                    throw new LinkWire.ProtocolException("node " + peerId + " failed authentication: its proof does not match this node's cluster"
                            + " secret (is DIR/secret the same on every node?)");
                }
                onAuthenticated(c);
            }
            default -> throw new LinkWire.ProtocolException("sent " + m.getClass().getSimpleName() + " during the handshake");
        }
    }

    private void checkClaimedId(int id) throws LinkWire.ProtocolException {
        if (role == Role.DIALER) {
            if (id != expectedPeer) {
                throw new LinkWire.ProtocolException("answers as node " + id + " at the address cluster.conf gives node "
                        + expectedPeer + "; check cluster.conf on both nodes");
            }
        } else if (id == ctx.nodeId()) {
            throw new LinkWire.ProtocolException("claims to be this node (" + id + ")");
        } else if (ctx.clusterConfig().node(id) == null) {
            throw new LinkWire.ProtocolException("claims node id " + id + ", which is not in this node's cluster configuration");
        }
    }

    private void onAuthenticated(ChannelHandlerContext c) {
        handshakeTimer.cancel(false);
        encoder.seal(LinkCrypto.sessionMac(secret, transcript, myRole()));
        openMac = LinkCrypto.sessionMac(secret, transcript, peerRole());
        authenticated = true;
        c.pipeline().addBefore(c.name(), "idle", new IdleStateHandler(ctx.downAfterMillis(), 0, 0, TimeUnit.MILLISECONDS));
        long beat = ctx.heartbeatIntervalMillis();
        heartbeats = c.executor().scheduleAtFixedRate(() -> {
            // A peer that stopped reading gets no pile of heartbeats; it will be dropped as silent anyway.
            if (channel.isWritable()) send(LinkWire.Heartbeat.INSTANCE);
        }, beat, beat, TimeUnit.MILLISECONDS);
        LOG.log(Level.DEBUG, "link with node {0} ({1}, {2}) authenticated", peerId, remote, role);
        owner.authenticated(this);
        // Last, because Netty hands the bytes the old decoder still holds (frames that came in the same read
        // as AUTH) to the replacement at once, re-entering channelRead: the link must be fully up by then.
        c.pipeline().replace(NodeTransport.FRAMES, NodeTransport.FRAMES, LinkWire.frameDecoder(LinkWire.MAX_FRAME));
    }

    private void onSealed(ChannelHandlerContext c, ByteBuf body) throws LinkWire.ProtocolException {
        LinkWire.Message m = LinkWire.readSealed(body, openMac, inSeq++);
        owner.heard(peerId);
        switch (m) {
            case LinkWire.Call call -> owner.incomingCall(this, call.callId(), call.payload());
            case LinkWire.Reply r -> {
                CompletableFuture<byte[]> f = pending.remove(r.callId());
                if (f != null) f.complete(r.payload());
            }
            case LinkWire.Failure r -> {
                CompletableFuture<byte[]> f = pending.remove(r.callId());
                if (f != null) f.completeExceptionally(new RemoteException(peerId, r.remoteClass(), r.message()));
            }
            case LinkWire.Heartbeat h -> {}
            default -> throw new LinkWire.ProtocolException("sent " + m.getClass().getSimpleName() + " after authenticating");
        }
    }

    @Override
    public void userEventTriggered(ChannelHandlerContext c, Object evt) {
        if (evt instanceof IdleStateEvent) {
            fail(c, "silent for " + ctx.downAfterMillis() + " ms", Level.INFO);
        } else {
            c.fireUserEventTriggered(evt);
        }
    }

    @Override
    public void exceptionCaught(ChannelHandlerContext c, Throwable cause) {
        if (cause instanceof TooLongFrameException) {
            int limit = authenticated ? LinkWire.MAX_FRAME : LinkWire.MAX_HANDSHAKE_FRAME;
            fail(c, "sent a frame longer than " + limit + " bytes" + (authenticated ? "" : " before authenticating"), Level.WARNING);
        } else if (cause instanceof IOException) {
            fail(c, "connection lost: " + cause.getMessage(), Level.INFO);
        } else {
            LOG.log(Level.WARNING, "unexpected error on link " + describe(), cause);
            fail(c, "internal error: " + cause, Level.WARNING);
        }
    }

    @Override
    public void channelInactive(ChannelHandlerContext c) {
        closed = true;
        if (handshakeTimer != null) handshakeTimer.cancel(false);
        if (heartbeats != null) heartbeats.cancel(false);
        int peer = peerId;
        for (Long id : pending.keySet()) {
            CompletableFuture<byte[]> f = pending.remove(id);
            if (f != null) f.completeExceptionally(lost(peer));
        }
        if (authenticated && failure == null) LOG.log(Level.INFO, "link with node {0} ({1}) closed", peer, remote);
        owner.closed(this);
    }

    /**
     * Closes the link for a reason, logged once per link. A peer that keeps failing the handshake must not
     * flood the log, so those failures go to the owner (inbound) or the {@link PeerDialer} (outbound), which
     * log a run of identical failures once.
     */
    private void fail(ChannelHandlerContext c, String reason, Level level) {
        if (failure != null) return;
        failure = reason;
        failureLevel = level;
        if (authenticated) {
            LOG.log(level, "closing link {0}: {1}", describe(), reason);
        } else if (role == Role.ACCEPTOR) {
            owner.rejected(this, reason, level);
        }
        c.close();
    }

    private String describe() {
        if (authenticated) return "with node " + peerId + " (" + remote + ")";
        return role == Role.DIALER ? "to node " + expectedPeer + " at " + remote : "from " + remote + " (not authenticated)";
    }

    private NodeUnreachableException lost(int peer) {
        String why = failure;
        return new NodeUnreachableException(peer, "link to node " + peer + " closed" + (why == null ? "" : ": " + why));
    }

    private byte myRole() { return role == Role.DIALER ? LinkCrypto.DIALER : LinkCrypto.ACCEPTOR; }

    private byte peerRole() { return role == Role.DIALER ? LinkCrypto.ACCEPTOR : LinkCrypto.DIALER; }
}
