package ssi.supervisor;

import io.netty.bootstrap.ServerBootstrap;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufUtil;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFuture;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.MultiThreadIoEventLoopGroup;
import io.netty.channel.epoll.EpollDomainSocketChannel;
import io.netty.channel.epoll.EpollIoHandler;
import io.netty.channel.epoll.EpollServerDomainSocketChannel;
import io.netty.channel.unix.DomainSocketAddress;
import io.netty.handler.codec.LengthFieldBasedFrameDecoder;
import ssi.comm.control.ControlCodec;
import ssi.comm.control.ControlMessages;
import ssi.comm.control.ControlMessages.Reply;
import ssi.comm.control.ControlMessages.Request;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.Executor;
import java.util.concurrent.TimeUnit;

/**
 * The node's control socket (DIR/node-N.ctl, mode 0666): frames of a big-endian u32 length and a
 * {@link ControlCodec} request, answered in order on each connection. The caller is whoever SO_PEERCRED
 * says is connected; every permission check uses that uid. Garbage never takes the server down: a frame
 * with at least a type gets an EPROTO reply, anything less, or an oversized frame, closes that
 * connection only.
 *
 * <p>Threads: one Netty event loop ("ssid-control") does the socket I/O and framing; requests run on
 * the worker executor (they read /proc and wait for other nodes), chained per connection so replies
 * keep the order of the requests.
 */
final class ControlServer implements AutoCloseable {
    private final EventLoopGroup group;
    private final Channel server;
    private final Path socket;

    private ControlServer(EventLoopGroup group, Channel server, Path socket) {
        this.group = group;
        this.server = server;
        this.socket = socket;
    }

    /**
     * Binds the socket (replacing a stale one left by a dead daemon) and starts serving.
     *
     * @param onShutdown run once a successful SHUTDOWN reply has been written
     */
    static ControlServer start(Path socket, int maxRequestBytes, ControlService service, PeerCredentialSource credentials,
                               Executor workers, Runnable onShutdown, NodeLog log) throws IOException {
        Files.deleteIfExists(socket);
        EventLoopGroup group = new MultiThreadIoEventLoopGroup(1, r -> {
            Thread t = new Thread(r, "ssid-control");
            t.setDaemon(true);
            return t;
        }, EpollIoHandler.newFactory());
        try {
            Channel ch = new ServerBootstrap()
                    .group(group)
                    .channel(EpollServerDomainSocketChannel.class)
                    .childHandler(new ChannelInitializer<EpollDomainSocketChannel>() {
                        @Override
                        protected void initChannel(EpollDomainSocketChannel c) {
                            c.pipeline().addLast(new LengthFieldBasedFrameDecoder(maxRequestBytes, 0, 4, 0, 4),
                                    new Connection(service, credentials, workers, onShutdown, log));
                        }
                    })
                    .bind(new DomainSocketAddress(socket.toFile()))
                    .sync()
                    .channel();
            // Any local user may talk to the daemon: SO_PEERCRED, not the file mode, decides what they may do.
            Files.setPosixFilePermissions(socket, PosixFilePermissions.fromString("rw-rw-rw-"));
            return new ControlServer(group, ch, socket);
        } catch (Exception e) {
            group.shutdownGracefully(0, 0, TimeUnit.MILLISECONDS);
            throw new IOException("cannot serve the control socket " + socket + ": " + e.getMessage(), e);
        }
    }

    Path socket() {
        return socket;
    }

    @Override
    public void close() {
        server.close().awaitUninterruptibly(2, TimeUnit.SECONDS);
        group.shutdownGracefully(0, 1, TimeUnit.SECONDS).awaitUninterruptibly(3, TimeUnit.SECONDS);
        try {
            Files.deleteIfExists(socket);
        } catch (IOException ignored) {
            // the run directory is going away with the node anyway
        }
    }

    /** One client connection. Fields are touched on the event loop only. */
    private static final class Connection extends ChannelInboundHandlerAdapter {
        private static final int MAX_QUEUED = 16;
        private final ControlService service;
        private final PeerCredentialSource credentials;
        private final Executor workers;
        private final Runnable onShutdown;
        private final NodeLog log;
        private Caller caller;
        /** The previous request's completion: the next one starts after it, so replies stay in order. */
        private CompletableFuture<Void> tail = CompletableFuture.completedFuture(null);
        /** Requests read but not yet answered; past MAX_QUEUED the connection stops reading (backpressure). */
        private int queued;

        Connection(ControlService service, PeerCredentialSource credentials, Executor workers, Runnable onShutdown, NodeLog log) {
            this.service = service;
            this.credentials = credentials;
            this.workers = workers;
            this.onShutdown = onShutdown;
            this.log = log;
        }

        @Override
        public void channelActive(ChannelHandlerContext ctx) throws Exception {
            try {
                caller = credentials.credentials(ctx.channel());
            } catch (IOException | RuntimeException e) {
                log.error("control connection refused: cannot read its peer credentials", e);
                ctx.close();
                return;
            }
            super.channelActive(ctx);
        }

        @Override
        public void channelRead(ChannelHandlerContext ctx, Object msg) {
            byte[] frame;
            ByteBuf buf = (ByteBuf) msg;
            try {
                frame = ByteBufUtil.getBytes(buf);
            } finally {
                buf.release();
            }
            if (caller == null) return; // refused in channelActive; the close is under way
            Request request;
            try {
                request = ControlCodec.decodeRequest(frame);
            } catch (ControlCodec.ProtocolException e) {
                if (frame.length < 2) {
                    ctx.close(); // not even a type: nothing to answer
                    return;
                }
                Reply bad = Reply.error(ControlMessages.EPROTO, "malformed control request (" + e.getMessage()
                        + "); is ssi the same version as the daemon?");
                // an error reply does not depend on the request type, so any type encodes it
                enqueue(ctx, tail.thenRun(() -> write(ctx, ControlCodec.encodeReply(ControlMessages.PING, bad))));
                return;
            }
            Caller who = caller;
            enqueue(ctx, tail
                    .thenComposeAsync(v -> service.handle(who, request, false), workers)
                    .handle((reply, e) -> {
                        if (e != null) {
                            log.error("control request " + request + " from uid " + who.uid() + " failed", ControlService.cause(e));
                            reply = Reply.error(ControlMessages.EIO, "the node daemon failed: " + ControlService.cause(e));
                        }
                        ChannelFuture sent = write(ctx, ControlCodec.encodeReply(request.type(), reply));
                        if (ControlService.stopsNode(request, reply)) sent.addListener(f -> onShutdown.run());
                        return null;
                    }));
        }

        /** Makes next the new tail; a client that sends faster than it reads replies stops being read. */
        private void enqueue(ChannelHandlerContext ctx, CompletableFuture<Void> next) {
            tail = next;
            if (++queued == MAX_QUEUED) ctx.channel().config().setAutoRead(false);
            next.whenComplete((v, e) -> ctx.executor().execute(() -> {
                if (queued-- == MAX_QUEUED) ctx.channel().config().setAutoRead(true);
            }));
        }

        private static ChannelFuture write(ChannelHandlerContext ctx, byte[] body) {
            ByteBuf out = ctx.alloc().buffer(4 + body.length);
            out.writeInt(body.length).writeBytes(body);
            return ctx.writeAndFlush(out);
        }

        @Override
        public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
            if (!(cause instanceof IOException)) { // a reset by the peer is not worth a line
                log.error("control connection from uid " + (caller == null ? "?" : caller.uid()) + " closed", cause);
            }
            ctx.close();
        }
    }
}
