package ssi.comm;

import io.netty.bootstrap.Bootstrap;
import io.netty.channel.ChannelFuture;
import io.netty.channel.ChannelOption;
import io.netty.channel.ChannelFutureListener;
import io.netty.channel.EventLoop;

import java.lang.System.Logger.Level;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;

/**
 * Keeps this node's outbound link to one peer: connects, and after any failure or loss connects again with
 * a backoff that starts at {@link #MIN_BACKOFF_MILLIS} and doubles up to reconnectMaxMillis (with jitter, so
 * a restarted cluster does not reconnect in lockstep). The outbound link carries this node's calls to the
 * peer; the peer's calls to this node arrive on the peer's own outbound link. A run of identical failures is
 * logged once. Owner thread: one event loop, fixed at construction; {@link #link()} may be read from any thread.
 */
final class PeerDialer {
    private static final System.Logger LOG = System.getLogger("ssi.comm");
    static final long MIN_BACKOFF_MILLIS = 50;

    private final NodeTransport transport;
    private final CommContext ctx;
    private final NodeAddress peer;
    private final EventLoop loop;
    private volatile PeerLink link;
    private long backoff = MIN_BACKOFF_MILLIS;
    private String lastLogged;

    PeerDialer(NodeTransport transport, CommContext ctx, NodeAddress peer, EventLoop loop) {
        this.transport = transport;
        this.ctx = ctx;
        this.peer = peer;
        this.loop = loop;
    }

    /** The authenticated outbound link, or null while there is none. */
    PeerLink link() { return link; }

    void start() {
        loop.execute(this::connect);
    }

    private void connect() {
        if (transport.isClosed()) return;
        Bootstrap b = new Bootstrap()
                .group(loop)
                .channel(transport.socketChannelClass())
                .option(ChannelOption.CONNECT_TIMEOUT_MILLIS, (int) Math.min(Integer.MAX_VALUE, ctx.connectTimeoutMillis()))
                .option(ChannelOption.TCP_NODELAY, true)
                .handler(transport.initializer(PeerLink.Role.DIALER, peer.id()));
        b.connect(peer.host(), peer.port()).addListener((ChannelFutureListener) this::connected);
    }

    private void connected(ChannelFuture f) {
        // A connected channel reports back through authenticated() and lost() when its link does.
        if (!f.isSuccess()) retry("cannot connect: " + f.cause().getMessage(), Level.INFO);
    }

    /** Called by the link on this dialer's loop once the peer has proved the secret. */
    void authenticated(PeerLink l) {
        link = l;
        backoff = MIN_BACKOFF_MILLIS;
        if (lastLogged != null) LOG.log(Level.INFO, "link to node {0} at {1} is up", peer.id(), peer.hostPort());
        lastLogged = null;
    }

    /** Called by the link on this dialer's loop when its channel has closed, whether it got up or not. */
    void lost(PeerLink l) {
        boolean wasUp = l.isAuthenticated();
        if (link == l) link = null;
        if (wasUp) {
            // An established link that drops is retried at once: the peer is most likely restarting.
            backoff = MIN_BACKOFF_MILLIS;
            schedule();
        } else {
            retry(l.failure() == null ? "connection closed during the handshake" : l.failure(), l.failureLevel());
        }
    }

    private void retry(String why, Level level) {
        if (transport.isClosed()) return;
        if (!why.equals(lastLogged)) {
            LOG.log(level, "link to node {0} at {1}: {2}; retrying every {3} ms at most",
                    peer.id(), peer.hostPort(), why, ctx.reconnectMaxMillis());
            lastLogged = why;
        }
        schedule();
        backoff = Math.min(backoff * 2, ctx.reconnectMaxMillis());
    }

    private void schedule() {
        if (transport.isClosed()) return;
        long delay = Math.max(1, (long) (backoff * (0.8 + 0.4 * ThreadLocalRandom.current().nextDouble())));
        try {
            loop.schedule(this::connect, delay, TimeUnit.MILLISECONDS);
        } catch (RejectedExecutionException e) {
            // The event loop is shutting down with the transport: nothing left to reconnect.
        }
    }
}
