package ssi.shim;

import java.io.EOFException;
import java.io.IOException;
import java.net.ProtocolException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.SocketChannel;
import java.nio.file.Path;
import java.util.Map;
import java.util.Objects;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Consumer;
import java.util.function.IntConsumer;

/**
 * The daemon's end of the link socket to the node's shim (docs/ARCHITECTURE.md "Link protocol"): trapped
 * syscalls come in as notifications and are answered with {@link #reply}; the shim's ptrace services are
 * requests correlated by req_id ({@link #request}, {@link #attach}).
 *
 * <p>Threads: one reader thread, "shim-link", started by {@link #start}, reads every frame and runs the
 * handlers and completes request futures on itself, so handlers and future callbacks must not block.
 * {@link #reply}, {@link #request} and {@link #close} may be called from any thread; writes are
 * serialized by a lock so frames never interleave.
 */
public final class ShimLink implements AutoCloseable {
    private static final System.Logger LOG = System.getLogger(ShimLink.class.getName());
    private static final int HELLO_REQ_ID = 1;

    private final Path path;
    private final SocketChannel channel;
    private final int nodeId, pidBase, pidLimit;
    private final Object writeLock = new Object();
    private final Map<Integer, Pending> pending = new ConcurrentHashMap<>();
    private final AtomicInteger lastReqId = new AtomicInteger(HELLO_REQ_ID);
    private volatile boolean closed;
    private volatile IOException closeReason;
    private Thread reader; // guarded by this

    private record Pending(int type, CompletableFuture<ByteBuffer> future) {}

    private ShimLink(Path path, SocketChannel channel, int nodeId, int pidBase, int pidLimit) {
        this.path = path;
        this.channel = channel;
        this.nodeId = nodeId;
        this.pidBase = pidBase;
        this.pidLimit = pidLimit;
    }

    /**
     * Connects to the shim's link socket and says HELLO (version 1). Blocks until the shim answers; the
     * shim accepts only its own daemon child (pid 2, root), so anything else is refused there.
     */
    public static ShimLink connect(Path linkSocket) throws IOException {
        SocketChannel ch = SocketChannel.open(StandardProtocolFamily.UNIX);
        try {
            ch.connect(UnixDomainSocketAddress.of(linkSocket));
            writeFully(ch, LinkFrames.hello(HELLO_REQ_ID));
            ByteBuffer frame = readFrame(ch);
            if (frame == null)
                throw new EOFException("the shim at " + linkSocket + " closed the link before answering HELLO "
                        + "(only the node daemon, pid 2 of the node, may link; see the node log)");
            LinkFrames f = new LinkFrames().wrap(frame);
            if (f.type() != (LinkFrames.HELLO | LinkFrames.REPLY_BIT) || f.reqId() != HELLO_REQ_ID)
                throw new ProtocolException("the shim at " + linkSocket + " answered HELLO with "
                        + LinkFrames.typeName(f.type()) + " req_id " + f.reqId());
            ByteBuffer p = f.payload();
            if (p.limit() < LinkFrames.Reply.BODY)
                throw new ProtocolException("HELLO reply without an error field from " + linkSocket);
            int error = p.getInt(LinkFrames.HelloReply.ERROR);
            if (error != 0)
                throw new ErrnoException(-error, "the shim at " + linkSocket + " refused HELLO version "
                        + LinkFrames.VERSION + " (a daemon and shim of different builds?)");
            if (p.limit() != LinkFrames.HelloReply.SIZE)
                throw new ProtocolException("HELLO reply of " + p.limit() + " bytes from " + linkSocket
                        + ", the contract says " + LinkFrames.HelloReply.SIZE);
            int version = p.getInt(LinkFrames.HelloReply.VERSION);
            if (version != LinkFrames.VERSION)
                throw new ProtocolException("the shim at " + linkSocket + " speaks link version " + version
                        + ", this daemon " + LinkFrames.VERSION);
            return new ShimLink(linkSocket, ch, p.getInt(LinkFrames.HelloReply.NODE_ID),
                    p.getInt(LinkFrames.HelloReply.PID_BASE), p.getInt(LinkFrames.HelloReply.PID_LIMIT));
        } catch (IOException | RuntimeException e) {
            ch.close();
            throw e;
        }
    }

    /** This node's id (1..255). */
    public int nodeId() {
        return nodeId;
    }

    /** First cluster pid of this node. */
    public int pidBase() {
        return pidBase;
    }

    /** One past the last cluster pid of this node. */
    public int pidLimit() {
        return pidLimit;
    }

    /**
     * Starts the reader thread "shim-link". The handlers run on it, in frame order, and must not block.
     * onClosed runs once when the link ends (shim gone, protocol error, or {@link #close}); by then every
     * pending request has failed.
     */
    public void start(NotificationHandler onNotif, Consumer<Launched> onLaunched, IntConsumer onListenerGone,
                      Runnable onClosed) {
        Objects.requireNonNull(onNotif);
        Objects.requireNonNull(onLaunched);
        Objects.requireNonNull(onListenerGone);
        Objects.requireNonNull(onClosed);
        Thread t;
        synchronized (this) {
            if (reader != null)
                throw new IllegalStateException("the shim link is already started");
            // A daemon thread: a link nobody closed must not keep the JVM alive.
            t = Thread.ofPlatform().name("shim-link").daemon(true)
                    .unstarted(() -> readLoop(onNotif, onLaunched, onListenerGone, onClosed));
            reader = t;
        }
        t.start();
    }

    /**
     * Answers a notification: the trapped syscall returns val, or fails with error (0 or a negative errno,
     * as seccomp takes it), or with cont runs natively (then val and error must be 0).
     */
    public void reply(Notification n, long val, int error, boolean cont) throws IOException {
        if (error > 0 || error < -4095)
            throw new IllegalArgumentException("error must be 0 or a negative errno, not " + error);
        if (cont && (val != 0 || error != 0))
            throw new IllegalArgumentException("a CONTINUE reply carries no value or error (the kernel refuses it)");
        send(LinkFrames.notifReply(n.listenerId(), n.id(), val, error, cont));
    }

    /**
     * Sends a request; the future completes on the reader thread with the reply payload (little endian,
     * positioned after the i32 error), or exceptionally with an {@link ErrnoException} when the shim
     * answers an error, or an IOException when the link fails first.
     */
    public CompletableFuture<ByteBuffer> request(int type, ByteBuffer payload) {
        if (type <= 0 || type >= LinkFrames.REPLY_BIT)
            throw new IllegalArgumentException("not a request type: " + type);
        synchronized (this) {
            if (reader == null)
                throw new IllegalStateException("start() the shim link before sending requests: nobody would "
                        + "read the reply");
        }
        ByteBuffer frame = LinkFrames.frame(type, 0, 0, payload);
        int reqId = nextReqId();
        frame.putInt(LinkFrames.Hdr.REQ_ID, reqId);
        CompletableFuture<ByteBuffer> future = new CompletableFuture<>();
        pending.put(reqId, new Pending(type, future));
        // The reader sets closed before it fails what is pending, so either it sees this entry or we see closed.
        if (closed) {
            pending.remove(reqId);
            future.completeExceptionally(linkClosed());
            return future;
        }
        try {
            send(frame);
        } catch (IOException e) {
            pending.remove(reqId);
            future.completeExceptionally(e);
        }
        return future;
    }

    /** PTRACE_SEIZE + PTRACE_INTERRUPT through the shim; blocks until tid is stopped. */
    public Tracee attach(int tid) throws IOException {
        Tracee.roundTrip(this, LinkFrames.ATTACH, LinkFrames.tidPayload(tid), "attach to tid " + tid);
        return new Tracee(this, tid);
    }

    /**
     * SPAWN_STUB: the shim starts a restore stub with exactly this pid in the node's pid namespace
     * (clone3 set_tid), its own child, with no fds, and holds it stopped under ptrace; the returned
     * Tracee drives it like an attached thread (its memory and signal state are still copies of the
     * shim's: a restore replaces them). Blocks until the stub is stopped.
     *
     * @throws ErrnoException EEXIST when pid is in use on this node, EINVAL when it is node-internal
     *         (below 1 &lt;&lt; 14) or above the node's pid_max
     */
    public Tracee spawnStub(int pid) throws IOException {
        ByteBuffer p = LinkFrames.payload(LinkFrames.SpawnStubReq.SIZE);
        p.putInt(LinkFrames.SpawnStubReq.PID, pid);
        ByteBuffer body;
        try {
            body = Tracee.roundTrip(this, LinkFrames.SPAWN_STUB, p, "spawn a restore stub with pid " + pid);
        } catch (ErrnoException e) {
            if (e.errno() == 17)
                throw new ErrnoException("gpid " + pid + " is taken on node " + nodeId, e);
            throw e;
        }
        if (body.remaining() != 4)
            throw new ProtocolException("SPAWN_STUB reply body of " + body.remaining() + " bytes, expected 4");
        int got = body.getInt(body.position() + LinkFrames.SpawnStubReq.REPLY_PID);
        if (got != pid)
            throw new ProtocolException("SPAWN_STUB for pid " + pid + " answered pid " + got);
        return new Tracee(this, pid);
    }

    /**
     * INSTALL_FILTER: the shim injects the node's seccomp trap filter (with no_new_privs) into tid, a
     * stopped tracee (a restore stub), and registers a copy of its listener like a launched program's
     * (the daemon hears LAUNCHED with the tracee's pid, real uid/gid and executable). From then on every
     * syscall the filter traps waits on the shim, so the caller must inject none of them into tid any
     * more (the shim would wait on the tracee it holds stopped). Blocks until the shim answers.
     *
     * @return the listener id the shim gave it
     * @throws ErrnoException EBUSY when tid already runs under a seccomp filter, ESRCH when the shim does
     *         not trace it; after a failure the tracee should be killed (a filter that is in force
     *         cannot be taken back)
     */
    public int installFilter(int tid) throws IOException {
        ByteBuffer body = Tracee.roundTrip(this, LinkFrames.INSTALL_FILTER, LinkFrames.tidPayload(tid),
                "install the node's seccomp filter into tid " + tid);
        if (body.remaining() != LinkFrames.InstallFilterReq.REPLY_SIZE)
            throw new ProtocolException("INSTALL_FILTER reply body of " + body.remaining() + " bytes, expected "
                    + LinkFrames.InstallFilterReq.REPLY_SIZE);
        return body.getInt(body.position() + LinkFrames.InstallFilterReq.REPLY_LISTENER_ID);
    }

    /**
     * CLONE_INTO: the shim injects clone3 into parent (a stopped tracee) with these flags and
     * set_tid = {newTid}, tracing the result: a new process (flags without CLONE_THREAD, exit signal
     * exitSignal) or thread, held in its first stop, returned as a Tracee. It starts where the injected
     * call returned, with the parent's registers and rax 0: set its registers before it runs.
     * scratch is 128 writable bytes in the parent for the clone_args.
     *
     * @throws ErrnoException EEXIST when newTid is taken, EINVAL for flags the shim refuses
     */
    public Tracee cloneInto(Tracee parent, int newTid, long flags, int exitSignal, long scratch) throws IOException {
        ByteBuffer p = LinkFrames.payload(LinkFrames.CloneReq.SIZE);
        p.putInt(LinkFrames.CloneReq.TID, parent.tid());
        p.putInt(LinkFrames.CloneReq.NEW_TID, newTid);
        p.putLong(LinkFrames.CloneReq.FLAGS, flags);
        p.putInt(LinkFrames.CloneReq.EXIT_SIGNAL, exitSignal);
        p.putLong(LinkFrames.CloneReq.SCRATCH, scratch);
        ByteBuffer body;
        try {
            body = Tracee.roundTrip(this, LinkFrames.CLONE_INTO, p, "clone " + newTid + " from " + parent.tid());
        } catch (ErrnoException e) {
            if (e.errno() == 17)
                throw new ErrnoException("gpid " + newTid + " is taken on node " + nodeId, e);
            throw e;
        }
        if (body.remaining() != 4 || body.getInt(body.position()) != newTid)
            throw new ProtocolException("CLONE_INTO for tid " + newTid + " answered something else");
        return new Tracee(this, newTid);
    }

    /**
     * PEEKSIGINFO: the queued siginfos (128 bytes each, at most 64) of a stopped tracee's own queue, or of
     * its process's shared queue, oldest first, left queued.
     */
    public java.util.List<byte[]> peekSiginfo(int tid, boolean shared) throws IOException {
        java.util.List<byte[]> out = new java.util.ArrayList<>();
        // a page of at most 64 a request, from where the last one ended, until a short page: every queued one
        while (true) {
            ByteBuffer p = LinkFrames.payload(LinkFrames.PeekSigReq.SIZE);
            p.putInt(LinkFrames.PeekSigReq.TID, tid);
            p.putInt(LinkFrames.PeekSigReq.SHARED, shared ? 1 : 0);
            p.putInt(LinkFrames.PeekSigReq.OFFSET, out.size());
            ByteBuffer body = Tracee.roundTrip(this, LinkFrames.PEEKSIGINFO, p, "read the pending signals of " + tid);
            int at = body.position();
            int n = body.getInt(at);
            if (n < 0 || n > LinkFrames.PeekSigReq.MAX || body.remaining() != 4 + n * LinkFrames.PeekSigReq.SIGINFO)
                throw new ProtocolException("PEEKSIGINFO reply of " + body.remaining() + " bytes for " + n + " siginfos");
            for (int i = 0; i < n; i++) {
                byte[] si = new byte[LinkFrames.PeekSigReq.SIGINFO];
                body.get(at + 4 + i * si.length, si);
                out.add(si);
            }
            if (n < LinkFrames.PeekSigReq.MAX) return out;
        }
    }

    /** Closes the socket; the reader thread then fails every pending request and runs onClosed. */
    @Override
    public void close() throws IOException {
        closed = true;
        channel.close();
        boolean started;
        synchronized (this) {
            started = reader != null;
        }
        if (!started)
            failPending(linkClosed());
    }

    /** Is the caller the reader thread, which must never wait for a reply it has to read itself? */
    synchronized boolean onReaderThread() {
        return Thread.currentThread() == reader;
    }

    private int nextReqId() {
        // 0 is never used, and 1 was HELLO's.
        return lastReqId.updateAndGet(i -> i == Integer.MAX_VALUE ? HELLO_REQ_ID + 1 : i + 1);
    }

    private void send(ByteBuffer frame) throws IOException {
        if (closed)
            throw linkClosed();
        // SocketChannel is interruptible: an I/O call by an interrupted thread closes the channel, which
        // here would take the whole node's link down because some caller was cancelled. So the flag is
        // set aside for the write (a thread interrupted during the write itself still closes it).
        boolean interrupted = Thread.interrupted();
        try {
            synchronized (writeLock) {
                writeFully(channel, frame);
            }
        } catch (IOException e) {
            // A partly written frame leaves the stream out of step: the link cannot be used any more.
            channel.close();
            throw e;
        } finally {
            if (interrupted)
                Thread.currentThread().interrupt();
        }
    }

    private IOException linkClosed() {
        IOException why = closeReason;
        return new IOException("the link to the shim at " + path + " is closed"
                + (why != null ? ": " + why.getMessage() : ""), why);
    }

    private void readLoop(NotificationHandler onNotif, Consumer<Launched> onLaunched, IntConsumer onListenerGone,
                          Runnable onClosed) {
        LinkFrames f = new LinkFrames();
        try {
            ByteBuffer frame;
            while ((frame = readFrame(channel)) != null) {
                f.wrap(frame);
                int type = f.type();
                if ((type & LinkFrames.REPLY_BIT) != 0) {
                    complete(f);
                    continue;
                }
                switch (type) {
                    case LinkFrames.NOTIF -> {
                        Notification n = LinkFrames.decodeNotif(f.payload());
                        runHandler(() -> onNotif.handle(n), n);
                    }
                    case LinkFrames.LAUNCHED -> {
                        Launched l = LinkFrames.decodeLaunched(f.payload());
                        runHandler(() -> onLaunched.accept(l), l);
                    }
                    case LinkFrames.LISTENER_GONE -> {
                        int id = LinkFrames.decodeListenerGone(f.payload());
                        runHandler(() -> onListenerGone.accept(id), "listener " + id + " gone");
                    }
                    default -> throw new ProtocolException("the shim sent an unexpected " + LinkFrames.typeName(type)
                            + " frame: this daemon and the shim disagree on the link contract");
                }
            }
            if (!closed)
                closeReason = new EOFException("the shim closed the link");
        } catch (IOException e) {
            if (!closed)
                closeReason = e;
        } finally {
            closed = true;
            try {
                channel.close();
            } catch (IOException e) {
                LOG.log(System.Logger.Level.DEBUG, "closing the link socket", e);
            }
            IOException why = closeReason;
            if (why != null)
                LOG.log(System.Logger.Level.WARNING, "link to the shim at " + path + " lost: " + why.getMessage());
            failPending(linkClosed());
            runHandler(onClosed, "link closed");
        }
    }

    // A throwing handler must not take the link (and every trapped process of the node) down with it.
    private static void runHandler(Runnable r, Object what) {
        try {
            r.run();
        } catch (RuntimeException e) {
            LOG.log(System.Logger.Level.ERROR, "shim link handler failed on " + what, e);
        }
    }

    private void complete(LinkFrames f) throws ProtocolException {
        Pending p = pending.remove(f.reqId());
        if (p == null)
            throw new ProtocolException("the shim sent a " + LinkFrames.typeName(f.type()) + " for req_id "
                    + f.reqId() + ", which no request is waiting for");
        ByteBuffer payload = f.payload();
        if (f.type() != (p.type() | LinkFrames.REPLY_BIT) || payload.limit() < LinkFrames.Reply.BODY) {
            p.future().completeExceptionally(new ProtocolException("the shim answered " + LinkFrames.typeName(p.type())
                    + " req_id " + f.reqId() + " with a " + LinkFrames.typeName(f.type()) + " of "
                    + payload.limit() + " bytes"));
            return;
        }
        int error = payload.getInt(LinkFrames.Reply.ERROR);
        if (error != 0) {
            p.future().completeExceptionally(new ErrnoException(Math.abs(error), "the shim's "
                    + LinkFrames.typeName(p.type()) + " failed"));
            return;
        }
        p.future().complete(payload.position(LinkFrames.Reply.BODY));
    }

    private void failPending(IOException why) {
        for (Integer id : pending.keySet()) {
            Pending p = pending.remove(id);
            if (p != null)
                p.future().completeExceptionally(why);
        }
    }

    private static void writeFully(SocketChannel ch, ByteBuffer b) throws IOException {
        b.position(0);
        while (b.hasRemaining())
            ch.write(b);
    }

    /** One whole frame (header at index 0, little endian), or null at a clean end of stream. */
    private static ByteBuffer readFrame(SocketChannel ch) throws IOException {
        ByteBuffer hdr = ByteBuffer.allocate(LinkFrames.Hdr.SIZE).order(ByteOrder.LITTLE_ENDIAN);
        if (!readFully(ch, hdr, true))
            return null;
        int len = hdr.getInt(LinkFrames.Hdr.LEN);
        if (len < LinkFrames.Hdr.SIZE || len > LinkFrames.MAX_FRAME)
            throw new ProtocolException("the shim sent a frame length of " + Integer.toUnsignedString(len)
                    + ": the stream is garbage");
        ByteBuffer frame = ByteBuffer.allocate(len).order(ByteOrder.LITTLE_ENDIAN);
        frame.put(hdr.flip());
        readFully(ch, frame, false);
        return frame.clear();
    }

    /** False at an end of stream before the first byte when that is allowed (between frames). */
    private static boolean readFully(SocketChannel ch, ByteBuffer b, boolean eofAllowedAtStart) throws IOException {
        while (b.hasRemaining()) {
            if (ch.read(b) < 0) {
                if (eofAllowedAtStart && b.position() == 0)
                    return false;
                throw new EOFException("the shim closed the link in the middle of a frame");
            }
        }
        return true;
    }
}
