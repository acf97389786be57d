package ssi.comm;

import io.netty.bootstrap.ServerBootstrap;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFuture;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.ChannelOption;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.IoHandlerFactory;
import io.netty.channel.MultiThreadIoEventLoopGroup;
import io.netty.channel.ServerChannel;
import io.netty.channel.epoll.Epoll;
import io.netty.channel.epoll.EpollIoHandler;
import io.netty.channel.epoll.EpollServerSocketChannel;
import io.netty.channel.epoll.EpollSocketChannel;
import io.netty.channel.group.ChannelGroup;
import io.netty.channel.group.DefaultChannelGroup;
import io.netty.channel.nio.NioIoHandler;
import io.netty.channel.socket.nio.NioServerSocketChannel;
import io.netty.channel.socket.nio.NioSocketChannel;
import io.netty.util.concurrent.Future;
import io.netty.util.concurrent.GlobalEventExecutor;
import io.netty.util.concurrent.FastThreadLocalThread;

import java.io.IOException;
import java.lang.System.Logger.Level;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.ThreadFactory;
import java.util.concurrent.ThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;

/**
 * This node's end of the node-to-node network: listens on its cluster.conf address, keeps an authenticated
 * outbound link to every other node ({@link PeerDialer}), serves the calls that arrive on inbound links with
 * the {@link RpcHandler}, and tracks {@link Membership}. Every pair of nodes thus has two links, one per
 * direction of calls; each carries heartbeats both ways, so either one keeps the peer UP.
 * <p>
 * Threads: ssi-comm-boss accepts, ssi-comm-io-N run the links (Netty, native epoll), ssi-comm-rpc-N run the
 * handler, ssi-comm-membership runs the failure detector and the membership listeners. Public methods are
 * safe from any thread. Futures returned by {@link #call} complete on an io thread: chain with the *Async
 * methods or block in get()/join() on your own thread, never block inside a non-async stage.
 */
public final class NodeTransport implements AutoCloseable {
    private static final System.Logger LOG = System.getLogger("ssi.comm");
    /** Pipeline name of the frame decoder, which the link swaps for a larger one once authenticated. */
    static final String FRAMES = "frames";
    private static final boolean EPOLL = Epoll.isAvailable();
    private static final AtomicBoolean NIO_FALLBACK_LOGGED = new AtomicBoolean();
    private static final long CLOSE_WAIT_MILLIS = 3000;
    private static final byte[] EMPTY = new byte[0];
    private static final long MAX_QUEUED_BYTES = 256L << 20;
    /** A source that keeps failing the handshake the same way is reported at most once a minute. */
    private static final long REJECTION_QUIET_NANOS = TimeUnit.SECONDS.toNanos(60);
    /** Which transport (if any) owns the current thread, so close() never waits for its own thread. */
    private static final ThreadLocal<NodeTransport> OWNER = new ThreadLocal<>();

    private final CommContext ctx;
    private final RpcHandler handler;
    private final int selfId;
    private final Membership membership;
    private final EventLoopGroup boss, io;
    private final ThreadPoolExecutor rpc;
    private final ChannelGroup channels = new DefaultChannelGroup("ssi-comm", GlobalEventExecutor.INSTANCE);
    private final Map<Integer, PeerDialer> dialers;
    private final AtomicLong callIds = new AtomicLong();
    private final AtomicBoolean closed = new AtomicBoolean();
    private final Links links = new Links();
    /** Payload bytes of calls accepted but not yet started: with rpcQueue, bounds what peers can make us hold. */
    private final AtomicLong queuedBytes = new AtomicLong();

    private NodeTransport(CommContext ctx, RpcHandler handler) {
        this.ctx = ctx;
        this.handler = handler;
        this.selfId = ctx.nodeId();
        IoHandlerFactory ioHandlers;
        if (EPOLL) {
            ioHandlers = EpollIoHandler.newFactory();
        } else {
            if (NIO_FALLBACK_LOGGED.compareAndSet(false, true)) {
                LOG.log(Level.WARNING, "native epoll is unavailable ({0}); node links fall back to Java NIO",
                        String.valueOf(Epoll.unavailabilityCause()));
            }
            ioHandlers = NioIoHandler.newFactory();
        }
        this.boss = new MultiThreadIoEventLoopGroup(1, threads("ssi-comm-boss", false, true), ioHandlers);
        this.io = new MultiThreadIoEventLoopGroup(ctx.ioThreads(), threads("ssi-comm-io-", true, true), ioHandlers);
        this.rpc = new ThreadPoolExecutor(ctx.rpcThreads(), ctx.rpcThreads(), 60, TimeUnit.SECONDS,
                new ArrayBlockingQueue<>(ctx.rpcQueue()), threads("ssi-comm-rpc-", true, false));
        rpc.allowCoreThreadTimeOut(true);
        this.membership = new Membership(ctx, threads("ssi-comm-membership", false, false));
        Map<Integer, PeerDialer> d = new TreeMap<>();
        for (NodeAddress n : ctx.clusterConfig().nodes()) {
            if (n.id() != selfId) d.put(n.id(), new PeerDialer(this, ctx, n, io.next()));
        }
        this.dialers = Map.copyOf(d);
    }

    /**
     * Starts this node's transport: validates ctx (conclude()), binds the node's host:port, and starts
     * connecting to every other node, retrying for as long as the transport is open. Throws IOException if
     * the address cannot be bound.
     */
    public static NodeTransport start(CommContext ctx, RpcHandler handler) throws IOException {
        ctx.conclude();
        if (handler == null) throw new IllegalArgumentException("handler is null");
        NodeTransport t = new NodeTransport(ctx, handler);
        try {
            t.listen();
        } catch (IOException | RuntimeException e) {
            t.close();
            throw e;
        }
        t.membership.start();
        t.dialers.values().forEach(PeerDialer::start);
        LOG.log(Level.INFO, "node {0}: comm listening on {1} ({2}), {3} peers", t.selfId,
                ctx.clusterConfig().node(t.selfId).hostPort(), EPOLL ? "epoll" : "nio", t.dialers.size());
        return t;
    }

    private void listen() throws IOException {
        NodeAddress me = ctx.clusterConfig().node(selfId);
        ServerBootstrap b = new ServerBootstrap()
                .group(boss, io)
                .channel(serverChannelClass())
                // A restarted node must get its port back although the old connections linger in TIME_WAIT.
                .option(ChannelOption.SO_REUSEADDR, true)
                .option(ChannelOption.SO_BACKLOG, 128)
                .childOption(ChannelOption.TCP_NODELAY, true)
                .childHandler(initializer(PeerLink.Role.ACCEPTOR, 0));
        ChannelFuture f = b.bind(me.host(), me.port()).awaitUninterruptibly();
        if (!f.isSuccess()) {
            throw new IOException("node " + selfId + " cannot listen on " + me.hostPort() + " (from cluster.conf): "
                    + f.cause().getMessage(), f.cause());
        }
        channels.add(f.channel());
    }

    /**
     * Calls nodeId's handler with request. Completes with its answer, or exceptionally with
     * {@link NodeUnreachableException} (unknown id, node DOWN or not connected, link lost, no reply within
     * rpcTimeoutMillis) or {@link RemoteException} (the handler threw). Calling this node's own id runs the
     * handler here, on a worker thread. A request larger than a frame can carry fails with
     * IllegalArgumentException.
     */
    public CompletableFuture<byte[]> call(int nodeId, byte[] request) {
        CompletableFuture<byte[]> result = new CompletableFuture<>();
        if (request.length > LinkWire.MAX_PAYLOAD) {
            result.completeExceptionally(new IllegalArgumentException("request of " + request.length
                    + " bytes exceeds the " + LinkWire.MAX_PAYLOAD + "-byte limit of a call"));
            return result;
        }
        if (closed.get()) {
            result.completeExceptionally(new NodeUnreachableException(nodeId, "node " + selfId + "'s transport is closed"));
            return result;
        }
        if (nodeId == selfId) {
            callSelf(request, result);
            return result;
        }
        PeerDialer d = dialers.get(nodeId);
        if (d == null) {
            result.completeExceptionally(new NodeUnreachableException(nodeId, "node " + nodeId + " is not in the cluster configuration"));
            return result;
        }
        if (membership.state(nodeId) == NodeState.DOWN) {
            result.completeExceptionally(new NodeUnreachableException(nodeId, "node " + nodeId + " is DOWN"));
            return result;
        }
        PeerLink link = d.link();
        if (link == null) {
            result.completeExceptionally(new NodeUnreachableException(nodeId, "node " + selfId + " has no link to node " + nodeId + " right now"));
            return result;
        }
        // A copy, because the bytes are encoded later on an io thread and the caller may reuse its array.
        link.call(callIds.incrementAndGet(), request.clone(), result);
        return result;
    }

    /** What this node believes about every node. */
    public Membership membership() {
        return membership;
    }

    /**
     * Closes the listening socket and every link (pending calls fail with NodeUnreachableException), then
     * stops the threads. Idempotent. Called from one of this transport's own threads (e.g. a handler serving a
     * shutdown request) it starts the same shutdown without waiting for it.
     */
    @Override
    public void close() {
        if (!closed.compareAndSet(false, true)) return;
        boolean ownThread = OWNER.get() == this;
        membership.close();
        var closing = channels.close();
        if (!ownThread) closing.awaitUninterruptibly(CLOSE_WAIT_MILLIS);
        Future<?> b = boss.shutdownGracefully(0, CLOSE_WAIT_MILLIS, TimeUnit.MILLISECONDS);
        Future<?> i = io.shutdownGracefully(0, CLOSE_WAIT_MILLIS, TimeUnit.MILLISECONDS);
        rpc.shutdown();
        if (ownThread) return;
        b.awaitUninterruptibly(CLOSE_WAIT_MILLIS);
        i.awaitUninterruptibly(CLOSE_WAIT_MILLIS);
        try {
            if (!rpc.awaitTermination(CLOSE_WAIT_MILLIS, TimeUnit.MILLISECONDS)) {
                LOG.log(Level.WARNING, "node {0}: rpc handlers still running {1} ms after close; interrupting them",
                        selfId, CLOSE_WAIT_MILLIS);
                failDrained(rpc.shutdownNow());
            }
        } catch (InterruptedException e) {
            failDrained(rpc.shutdownNow());
            Thread.currentThread().interrupt();
        }
        LOG.log(Level.INFO, "node {0}: comm closed", selfId);
    }

    boolean isClosed() {
        return closed.get();
    }

    // ---- package-private plumbing for PeerDialer and PeerLink ----

    Class<? extends Channel> socketChannelClass() {
        return EPOLL ? EpollSocketChannel.class : NioSocketChannel.class;
    }

    private Class<? extends ServerChannel> serverChannelClass() {
        return EPOLL ? EpollServerSocketChannel.class : NioServerSocketChannel.class;
    }

    ChannelInitializer<Channel> initializer(PeerLink.Role role, int expectedPeer) {
        return new ChannelInitializer<>() {
            @Override
            protected void initChannel(Channel ch) {
                channels.add(ch);
                // close() may have run its channels.close() just before the add; this channel would outlive it.
                if (closed.get()) {
                    ch.close();
                    return;
                }
                LinkEncoder encoder = new LinkEncoder();
                ch.pipeline()
                        .addLast(FRAMES, LinkWire.frameDecoder(LinkWire.MAX_HANDSHAKE_FRAME))
                        .addLast("encoder", encoder)
                        .addLast("link", new PeerLink(ctx, links, role, expectedPeer, encoder));
            }
        };
    }

    /** The transport's side of every link's events. */
    private final class Links implements PeerLink.Owner {
        /** Per "source ip + reason": {nanoTime last logged, connections refused since without a log line}. */
        private final Map<String, long[]> rejections = new HashMap<>();

        @Override
        public void rejected(PeerLink link, String reason, Level level) {
            String more;
            synchronized (rejections) {
                long now = System.nanoTime();
                String key = link.remoteHost() + " " + reason;
                long[] last = rejections.get(key);
                if (last != null && now - last[0] < REJECTION_QUIET_NANOS) {
                    last[1]++;
                    return;
                }
                if (rejections.size() >= 1024) rejections.clear(); // a scan from many addresses must not grow this
                more = last != null && last[1] > 0 ? " (and " + last[1] + " more times since the last report)" : "";
                rejections.put(key, new long[] {now, 0});
            }
            LOG.log(level, "node {0}: refused connection from {1}: {2}{3}", selfId, link.remote(), reason, more);
        }

        @Override
        public void authenticated(PeerLink link) {
            // Membership first: a caller that sees the dialer's link must also see the peer UP.
            membership.heard(link.peerId());
            if (link.role() == PeerLink.Role.DIALER) dialers.get(link.expectedPeer()).authenticated(link);
        }

        @Override
        public void heard(int peerId) {
            membership.heard(peerId);
        }

        @Override
        public void incomingCall(PeerLink link, long callId, byte[] payload) {
            String overloaded = null;
            if (queuedBytes.addAndGet(payload.length) > MAX_QUEUED_BYTES) {
                overloaded = "node " + selfId + " is overloaded: over " + (MAX_QUEUED_BYTES >> 20) + " MiB of calls wait for a worker";
            } else {
                try {
                    rpc.execute(new Serve(link, callId, payload));
                    return;
                } catch (RejectedExecutionException e) {
                    overloaded = closed.get() ? "node " + selfId + " is shutting down"
                            : "node " + selfId + " is overloaded: " + ctx.rpcQueue() + " calls already wait for a worker";
                }
            }
            queuedBytes.addAndGet(-payload.length);
            link.send(new LinkWire.Failure(callId, RejectedExecutionException.class.getName(), overloaded));
        }

        @Override
        public void closed(PeerLink link) {
            // A dialer's link reports to its dialer whether it got up or not, so the dialer can retry.
            if (link.role() == PeerLink.Role.DIALER) dialers.get(link.expectedPeer()).lost(link);
        }
    }

    /** One incoming call, run on a worker. */
    private final class Serve implements Runnable {
        private final PeerLink link;
        private final long callId;
        private final byte[] payload;

        Serve(PeerLink link, long callId, byte[] payload) {
            this.link = link;
            this.callId = callId;
            this.payload = payload;
        }

        @Override
        public void run() {
            queuedBytes.addAndGet(-payload.length);
            LinkWire.Message reply;
            try {
                byte[] out = handler.handle(link.peerId(), payload);
                if (out == null) out = EMPTY;
                reply = out.length > LinkWire.MAX_PAYLOAD
                        ? new LinkWire.Failure(callId, IllegalArgumentException.class.getName(), "reply of " + out.length
                                + " bytes exceeds the " + LinkWire.MAX_PAYLOAD + "-byte limit of a call")
                        : new LinkWire.Reply(callId, out);
            } catch (Exception e) {
                reply = new LinkWire.Failure(callId, e.getClass().getName(), message(e));
            }
            link.send(reply);
        }
    }

    /** A call to this node itself: the same handler, on a worker, with the same timeout. */
    private final class LocalCall implements Runnable {
        private final byte[] request;
        private final CompletableFuture<byte[]> result;

        LocalCall(byte[] request, CompletableFuture<byte[]> result) {
            this.request = request;
            this.result = result;
        }

        @Override
        public void run() {
            try {
                byte[] out = handler.handle(selfId, request);
                result.complete(out == null ? EMPTY : out);
            } catch (Exception e) {
                result.completeExceptionally(new RemoteException(selfId, e.getClass().getName(), message(e)));
            }
        }

        void fail(String why) {
            result.completeExceptionally(new NodeUnreachableException(selfId, why));
        }
    }

    private void callSelf(byte[] request, CompletableFuture<byte[]> result) {
        LocalCall task = new LocalCall(request.clone(), result);
        try {
            long timeout = ctx.rpcTimeoutMillis();
            var timer = io.next().schedule(() -> task.fail("node " + selfId + " did not answer itself within " + timeout + " ms"),
                    timeout, TimeUnit.MILLISECONDS);
            result.whenComplete((r, e) -> timer.cancel(false));
            rpc.execute(task);
        } catch (RejectedExecutionException e) {
            result.completeExceptionally(new RemoteException(selfId, RejectedExecutionException.class.getName(),
                    closed.get() ? "node " + selfId + " is shutting down" : "node " + selfId + " is overloaded"));
        }
    }

    private static void failDrained(List<Runnable> drained) {
        for (Runnable r : drained) {
            if (r instanceof LocalCall c) c.fail("transport closed before the call ran");
        }
    }

    private static String message(Throwable t) {
        return t.getMessage() != null ? t.getMessage() : t.getClass().getName();
    }

    private ThreadFactory threads(String name, boolean numbered, boolean netty) {
        AtomicInteger n = new AtomicInteger();
        return r -> {
            Runnable owned = () -> {
                OWNER.set(this);
                r.run();
            };
            String threadName = numbered ? name + n.incrementAndGet() : name;
            return netty ? new FastThreadLocalThread(owned, threadName) : new Thread(owned, threadName);
        };
    }
}
