package ssi.shim;

import static org.junit.jupiter.api.Assertions.*;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;
import java.nio.file.Path;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

@Timeout(30)
class ShimLinkTest {
    @TempDir
    Path dir;

    private FakeShim shim;
    private ShimLink link;
    private final BlockingQueue<Object> events = new LinkedBlockingQueue<>();
    private final CountDownLatch closed = new CountDownLatch(1);
    private final AtomicReference<String> closedOn = new AtomicReference<>();

    @BeforeEach
    void link() throws Exception {
        shim = new FakeShim(dir);
        link = shim.link(3);
    }

    @AfterEach
    void tearDown() throws IOException {
        link.close();
        shim.close();
    }

    private void start() {
        link.start(events::add, events::add, id -> events.add("gone " + id), () -> {
            closedOn.set(Thread.currentThread().getName());
            closed.countDown();
        });
    }

    private Object nextEvent() throws InterruptedException {
        Object e = events.poll(10, TimeUnit.SECONDS);
        assertNotNull(e, "no event from the link");
        return e;
    }

    @Test
    void helloGivesTheNodesPidRange() {
        assertEquals(3, link.nodeId());
        assertEquals(3 << 14, link.pidBase());
        assertEquals(4 << 14, link.pidLimit());
    }

    @Test
    void helloRefusedByTheShim() throws Exception {
        Path p = dir.resolve("refusing.link");
        try (var server = java.nio.channels.ServerSocketChannel.open(java.net.StandardProtocolFamily.UNIX)) {
            server.bind(java.net.UnixDomainSocketAddress.of(p));
            CompletableFuture<ShimLink> c = CompletableFuture.supplyAsync(() -> {
                try {
                    return ShimLink.connect(p);
                } catch (IOException e) {
                    throw new RuntimeException(e);
                }
            });
            try (SocketChannel conn = server.accept()) {
                conn.read(FakeShim.le(20));
                ByteBuffer r = FakeShim.le(16 + 20);
                r.putInt(0, 36).putShort(4, (short) 0x8001).putInt(8, 1).putInt(16, -93);
                conn.write(r);
                ExecutionException e = assertThrows(ExecutionException.class, () -> c.get(10, TimeUnit.SECONDS));
                ErrnoException ee = assertInstanceOf(ErrnoException.class, e.getCause().getCause());
                assertEquals(93, ee.errno());
                assertTrue(ee.getMessage().contains("EPROTONOSUPPORT"), ee.getMessage());
            }
        }
    }

    @Test
    void notificationInReplyOut() throws Exception {
        start();
        ByteBuffer p = FakeShim.le(88);
        p.putInt(0, 2).putLong(8, 0x7000000000000001L).putInt(16, 49160).putInt(20, 62).putInt(24, 0xc000003e)
                .putLong(32, 0x7f0000001234L);
        for (int i = 0; i < 6; i++)
            p.putLong(40 + 8 * i, 100 + i);
        shim.send(0x0002, 0, p);
        Notification n = assertInstanceOf(Notification.class, nextEvent());
        assertEquals(2, n.listenerId());
        assertEquals(0x7000000000000001L, n.id());
        assertEquals(49160, n.pid());
        assertEquals(62, n.nr());
        assertEquals(0xc000003e, n.arch());
        assertEquals(0x7f0000001234L, n.ip());
        assertArrayEquals(new long[] {100, 101, 102, 103, 104, 105}, n.args());

        link.reply(n, 0, -1, false);
        FakeShim.Frame r = shim.read();
        assertEquals(0x0003, r.type());
        assertEquals(16 + 28, r.len());
        assertEquals(2, r.payload().getInt(0));
        assertEquals(0, r.payload().getInt(4), "no CONTINUE");
        assertEquals(0x7000000000000001L, r.payload().getLong(8));
        assertEquals(0L, r.payload().getLong(16));
        assertEquals(-1, r.payload().getInt(24));

        link.reply(n, 0, 0, true);
        assertEquals(1, shim.read().payload().getInt(4), "CONTINUE flag");
        link.reply(n, 42, 0, false);
        assertEquals(42L, shim.read().payload().getLong(16));
        assertThrows(IllegalArgumentException.class, () -> link.reply(n, 1, 0, true));
        assertThrows(IllegalArgumentException.class, () -> link.reply(n, 0, 1, false));
    }

    @Test
    void launchedAndListenerGone() throws Exception {
        start();
        byte[] path = "/bin/true".getBytes();
        ByteBuffer l = FakeShim.le(16 + path.length + 1);
        l.putInt(0, 49200).putInt(4, 1000).putInt(8, 1001).putInt(12, 9).put(16, path);
        shim.send(0x0004, 0, l);
        shim.send(0x0005, 0, FakeShim.le(4).putInt(0, 9));
        assertEquals(new Launched(49200, 1000, 1001, 9, "/bin/true"), nextEvent());
        assertEquals("gone 9", nextEvent());
    }

    @Test
    void handlerThatThrowsDoesNotStopTheLink() throws Exception {
        BlockingQueue<Integer> seen = new LinkedBlockingQueue<>();
        link.start(n -> {
            seen.add(n.nr());
            if (n.nr() == 1)
                throw new IllegalStateException("handler bug");
        }, l -> {}, id -> {}, closed::countDown);
        shim.send(0x0002, 0, FakeShim.le(88).putInt(20, 1));
        shim.send(0x0002, 0, FakeShim.le(88).putInt(20, 2));
        assertEquals(1, seen.poll(10, TimeUnit.SECONDS));
        assertEquals(2, seen.poll(10, TimeUnit.SECONDS));
        assertEquals(1, closed.getCount(), "link still open");
    }

    @Test
    void requestsCorrelatedWhenAnsweredOutOfOrder() throws Exception {
        start();
        // Two threads send at once; both requests are in flight when the shim answers them in reverse.
        CompletableFuture<CompletableFuture<ByteBuffer>> sendA = CompletableFuture.supplyAsync(
                () -> link.request(LinkFrames.GETREGS, LinkFrames.tidPayload(49170)));
        CompletableFuture<CompletableFuture<ByteBuffer>> sendB = CompletableFuture.supplyAsync(
                () -> link.request(LinkFrames.INJECT, FakeShim.le(56).putInt(0, 49171).putInt(4, 39)));
        CompletableFuture<ByteBuffer> a = sendA.get(10, TimeUnit.SECONDS), b = sendB.get(10, TimeUnit.SECONDS);
        FakeShim.Frame ra = shim.read(), rb = shim.read();
        if (ra.type() != LinkFrames.GETREGS) { // whichever sender won the write lock came first
            FakeShim.Frame t = ra;
            ra = rb;
            rb = t;
        }
        assertEquals(LinkFrames.GETREGS, ra.type());
        assertEquals(49170, ra.payload().getInt(0));
        assertEquals(LinkFrames.INJECT, rb.type());
        assertNotEquals(ra.reqId(), rb.reqId());

        shim.reply(rb, 0, FakeShim.le(8).putLong(0, 49171L));
        ByteBuffer bodyB = b.get(10, TimeUnit.SECONDS);
        assertFalse(a.isDone(), "answer to b must not complete a");
        assertEquals(4, bodyB.position(), "positioned after the error");
        assertEquals(49171L, bodyB.getLong());

        ByteBuffer regs = FakeShim.le(216);
        regs.putLong(128, 0x401000L);
        shim.reply(ra, 0, regs);
        ByteBuffer bodyA = a.get(10, TimeUnit.SECONDS);
        assertEquals(216, bodyA.remaining());
        assertEquals(0x401000L, Regs.read(bodyA).rip());

        CompletableFuture<ByteBuffer> c = link.request(LinkFrames.DETACH, LinkFrames.tidPayload(5));
        shim.reply(shim.read(), -3, null);
        ExecutionException e = assertThrows(ExecutionException.class, () -> c.get(10, TimeUnit.SECONDS));
        ErrnoException ee = assertInstanceOf(ErrnoException.class, e.getCause());
        assertEquals(3, ee.errno());
        assertTrue(ee.getMessage().contains("DETACH") && ee.getMessage().contains("ESRCH"), ee.getMessage());
    }

    @Test
    void traceeOverTheLink() throws Exception {
        start();
        CompletableFuture<Tracee> attaching = CompletableFuture.supplyAsync(() -> {
            try {
                return link.attach(49180);
            } catch (IOException e) {
                throw new RuntimeException(e);
            }
        });
        FakeShim.Frame f = shim.read();
        assertEquals(LinkFrames.ATTACH, f.type());
        assertEquals(49180, f.payload().getInt(0));
        shim.reply(f, 0, null);
        Tracee t = attaching.get(10, TimeUnit.SECONDS);
        assertEquals(49180, t.tid());

        CompletableFuture<Long> ret = CompletableFuture.supplyAsync(() -> {
            try {
                return t.syscall(9, 0, 4096, 3, 0x22, -1, 0);
            } catch (IOException e) {
                throw new RuntimeException(e);
            }
        });
        f = shim.read();
        assertEquals(LinkFrames.INJECT, f.type());
        assertEquals(16 + 56, f.len());
        ByteBuffer p = f.payload();
        assertEquals(49180, p.getInt(0));
        assertEquals(9, p.getInt(4));
        long[] want = {0, 4096, 3, 0x22, -1, 0};
        for (int i = 0; i < 6; i++)
            assertEquals(want[i], p.getLong(8 + 8 * i));
        shim.reply(f, 0, FakeShim.le(8).putLong(0, 0x7f1234560000L));
        assertEquals(0x7f1234560000L, ret.get(10, TimeUnit.SECONDS));

        // A read larger than one frame goes in pieces, each at the right address.
        int len = Tracee.MEM_CHUNK + 1000;
        CompletableFuture<byte[]> data = CompletableFuture.supplyAsync(() -> {
            try {
                return t.read(0x10000, len);
            } catch (IOException e) {
                throw new RuntimeException(e);
            }
        });
        long addr = 0x10000;
        int left = len;
        while (left > 0) {
            f = shim.read();
            assertEquals(LinkFrames.READMEM, f.type());
            int n = f.payload().getInt(4);
            assertEquals(Math.min(left, Tracee.MEM_CHUNK), n);
            assertEquals(addr, f.payload().getLong(8));
            ByteBuffer body = FakeShim.le(n);
            for (int i = 0; i < n; i++)
                body.put(i, (byte) (addr + i));
            shim.reply(f, 0, body);
            addr += n;
            left -= n;
        }
        byte[] got = data.get(10, TimeUnit.SECONDS);
        assertEquals(len, got.length);
        for (int i = 0; i < len; i++)
            assertEquals((byte) (0x10000 + i), got[i]);

        CompletableFuture<Integer> fd = CompletableFuture.supplyAsync(() -> {
            try {
                return t.giveFd(17, 42);
            } catch (IOException e) {
                throw new RuntimeException(e);
            }
        });
        f = shim.read();
        assertEquals(LinkFrames.GIVEFD, f.type());
        assertEquals(49180, f.payload().getInt(0));
        assertEquals(17, f.payload().getInt(4));
        assertEquals(42, f.payload().getInt(8));
        shim.reply(f, 0, FakeShim.le(4).putInt(0, 42));
        assertEquals(42, fd.get(10, TimeUnit.SECONDS));

        CompletableFuture<Void> setting = CompletableFuture.runAsync(() -> {
            try {
                t.setRegs(Regs.of(new long[27]).withRip(0x401000L));
            } catch (IOException e) {
                throw new RuntimeException(e);
            }
        });
        f = shim.read();
        assertEquals(LinkFrames.SETREGS, f.type());
        assertEquals(16 + 224, f.len());
        assertEquals(49180, f.payload().getInt(0));
        assertEquals(0x401000L, f.payload().getLong(8 + 128));
        shim.reply(f, -14, null);
        ExecutionException e = assertThrows(ExecutionException.class, () -> setting.get(10, TimeUnit.SECONDS));
        ErrnoException ee = assertInstanceOf(ErrnoException.class, e.getCause().getCause());
        assertEquals(14, ee.errno());
        assertTrue(ee.getMessage().contains("tid 49180"), ee.getMessage());

        CompletableFuture<Void> detaching = CompletableFuture.runAsync(() -> {
            try {
                t.close();
            } catch (IOException ex) {
                throw new RuntimeException(ex);
            }
        });
        f = shim.read();
        assertEquals(LinkFrames.DETACH, f.type());
        shim.reply(f, 0, null);
        detaching.get(10, TimeUnit.SECONDS);
        t.close(); // idempotent: nothing sent
        assertThrows(IllegalStateException.class, t::getRegs);
    }

    @Test
    void writeFromFileSendsFileRangesInBoundedRequests() throws Exception {
        start();
        Tracee t = attached(49181);
        long len = 2L * Tracee.FD_CHUNK + 8192;
        CompletableFuture<Void> copying = CompletableFuture.runAsync(() -> {
            try {
                t.writeFromFile(0x7f0000000000L, 23, 4096, len);
            } catch (IOException e) {
                throw new RuntimeException(e);
            }
        });
        long done = 0;
        while (done < len) {
            FakeShim.Frame f = shim.read();
            assertEquals(LinkFrames.WRITEMEM_FD, f.type());
            assertEquals(16 + LinkFrames.MemFdReq.SIZE, f.len());
            ByteBuffer p = f.payload();
            long n = p.getLong(LinkFrames.MemFdReq.LEN);
            assertEquals(49181, p.getInt(LinkFrames.MemFdReq.PID));
            assertEquals(23, p.getInt(LinkFrames.MemFdReq.DAEMON_FD));
            assertEquals(4096 + done, p.getLong(LinkFrames.MemFdReq.OFFSET));
            assertEquals(0x7f0000000000L + done, p.getLong(LinkFrames.MemFdReq.ADDR));
            assertEquals(Math.min(Tracee.FD_CHUNK, len - done), n);
            assertTrue(n <= LinkFrames.MemFdReq.MAX_LEN);
            shim.reply(f, 0, null);
            done += n;
        }
        copying.get(10, TimeUnit.SECONDS);

        CompletableFuture<Void> failing = CompletableFuture.runAsync(() -> {
            try {
                t.writeFromFile(0x1000, 23, 1L << 40, 4096);
            } catch (IOException e) {
                throw new RuntimeException(e);
            }
        });
        FakeShim.Frame f = shim.read();
        assertEquals(LinkFrames.WRITEMEM_FD, f.type());
        shim.reply(f, -22, null);
        ExecutionException e = assertThrows(ExecutionException.class, () -> failing.get(10, TimeUnit.SECONDS));
        ErrnoException ee = assertInstanceOf(ErrnoException.class, e.getCause().getCause());
        assertEquals(22, ee.errno());
        assertTrue(ee.getMessage().contains("our fd 23"), ee.getMessage());
        assertThrows(IllegalArgumentException.class, () -> t.writeFromFile(0x1000, 23, 0, -1));
    }

    @Test
    void rawFileIsTheSameOpenFileAsItsProcPath() throws Exception {
        Path f = dir.resolve("data");
        java.nio.file.Files.writeString(f, "pages of a checkpoint");
        try (RawFile raw = RawFile.openRead(f)) {
            assertTrue(raw.fd() > 2);
            java.nio.file.Files.delete(f); // the open file outlives its name
            assertEquals("pages of a checkpoint", java.nio.file.Files.readString(raw.procPath()));
        }
        ErrnoException e = assertThrows(ErrnoException.class, () -> RawFile.openRead(dir.resolve("missing")));
        assertEquals(2, e.errno());
    }

    private Tracee attached(int tid) throws Exception {
        CompletableFuture<Tracee> attaching = CompletableFuture.supplyAsync(() -> {
            try {
                return link.attach(tid);
            } catch (IOException e) {
                throw new RuntimeException(e);
            }
        });
        FakeShim.Frame f = shim.read();
        assertEquals(LinkFrames.ATTACH, f.type());
        shim.reply(f, 0, null);
        return attaching.get(10, TimeUnit.SECONDS);
    }

    @Test
    void spawnStubGivesATraceeOrSaysThePidIsTaken() throws Exception {
        start();
        CompletableFuture<Tracee> spawning = CompletableFuture.supplyAsync(() -> {
            try {
                return link.spawnStub(49200);
            } catch (IOException e) {
                throw new RuntimeException(e);
            }
        });
        FakeShim.Frame f = shim.read();
        assertEquals(0x001A, f.type());
        assertEquals(16 + 4, f.len());
        assertEquals(49200, f.payload().getInt(0));
        shim.reply(f, 0, FakeShim.le(4).putInt(0, 49200));
        Tracee t = spawning.get(10, TimeUnit.SECONDS);
        assertEquals(49200, t.tid());

        // the stub is a tracee like any other: requests name its pid
        CompletableFuture<Long> ret = CompletableFuture.supplyAsync(() -> {
            try {
                return t.syscall(39);
            } catch (IOException e) {
                throw new RuntimeException(e);
            }
        });
        f = shim.read();
        assertEquals(0x0018, f.type());
        assertEquals(49200, f.payload().getInt(0));
        shim.reply(f, 0, FakeShim.le(8).putLong(0, 49200));
        assertEquals(49200L, ret.get(10, TimeUnit.SECONDS));

        CompletableFuture<Tracee> taken = CompletableFuture.supplyAsync(() -> {
            try {
                return link.spawnStub(49201);
            } catch (IOException e) {
                throw new RuntimeException(e);
            }
        });
        f = shim.read();
        assertEquals(0x001A, f.type());
        assertEquals(49201, f.payload().getInt(0));
        shim.reply(f, -17, null);
        ExecutionException e = assertThrows(ExecutionException.class, () -> taken.get(10, TimeUnit.SECONDS));
        ErrnoException ee = assertInstanceOf(ErrnoException.class, e.getCause().getCause());
        assertEquals(17, ee.errno());
        assertTrue(ee.getMessage().contains("gpid 49201 is taken") && ee.getMessage().contains("EEXIST"),
                ee.getMessage());

        CompletableFuture<Rseq> rseq = CompletableFuture.supplyAsync(() -> {
            try {
                return t.getRseq();
            } catch (IOException ex) {
                throw new RuntimeException(ex);
            }
        });
        f = shim.read();
        assertEquals(0x001B, f.type());
        assertEquals(16 + 4, f.len());
        assertEquals(49200, f.payload().getInt(0));
        shim.reply(f, 0, FakeShim.le(24).putLong(0, 0x7f0012345678L).putInt(8, 32).putInt(12, 0x53053053).putInt(16, 0));
        assertEquals(new Rseq(0x7f0012345678L, 32, 0x53053053, 0), rseq.get(10, TimeUnit.SECONDS));
        assertTrue(rseq.get().registered());

        // a reply naming another pid is a broken contract, not a stub
        CompletableFuture<Tracee> wrong = CompletableFuture.supplyAsync(() -> {
            try {
                return link.spawnStub(49202);
            } catch (IOException ex) {
                throw new RuntimeException(ex);
            }
        });
        f = shim.read();
        shim.reply(f, 0, FakeShim.le(4).putInt(0, 49203));
        e = assertThrows(ExecutionException.class, () -> wrong.get(10, TimeUnit.SECONDS));
        assertInstanceOf(java.net.ProtocolException.class, e.getCause().getCause());
    }

    @Test
    void installFilterSendsTheTidAndReturnsTheListenerId() throws Exception {
        start();
        CompletableFuture<Integer> installing = CompletableFuture.supplyAsync(() -> {
            try {
                return link.installFilter(49210);
            } catch (IOException e) {
                throw new RuntimeException(e);
            }
        });
        FakeShim.Frame f = shim.read();
        assertEquals(0x001C, f.type());
        assertEquals(16 + 4, f.len());
        assertEquals(49210, f.payload().getInt(0));
        shim.reply(f, 0, FakeShim.le(4).putInt(0, 0x200001));
        assertEquals(0x200001, installing.get(10, TimeUnit.SECONDS));

        CompletableFuture<Integer> busy = CompletableFuture.supplyAsync(() -> {
            try {
                return link.installFilter(49211);
            } catch (IOException e) {
                throw new RuntimeException(e);
            }
        });
        f = shim.read();
        assertEquals(0x001C, f.type());
        assertEquals(49211, f.payload().getInt(0));
        shim.reply(f, -16, null);
        ExecutionException e = assertThrows(ExecutionException.class, () -> busy.get(10, TimeUnit.SECONDS));
        ErrnoException ee = assertInstanceOf(ErrnoException.class, e.getCause().getCause());
        assertEquals(16, ee.errno());
        assertTrue(ee.getMessage().contains("tid 49211"), ee.getMessage());

        // a reply without the listener id breaks the contract
        CompletableFuture<Integer> shortReply = CompletableFuture.supplyAsync(() -> {
            try {
                return link.installFilter(49212);
            } catch (IOException ex) {
                throw new RuntimeException(ex);
            }
        });
        f = shim.read();
        shim.reply(f, 0, FakeShim.le(2));
        e = assertThrows(ExecutionException.class, () -> shortReply.get(10, TimeUnit.SECONDS));
        assertInstanceOf(java.net.ProtocolException.class, e.getCause().getCause());
    }

    @Test
    void shimGoingAwayFailsPendingRequestsAndReportsClosed() throws Exception {
        start();
        CompletableFuture<ByteBuffer> a = link.request(LinkFrames.GETREGS, LinkFrames.tidPayload(1));
        shim.read();
        shim.hangUp();
        assertTrue(closed.await(10, TimeUnit.SECONDS), "onClosed ran");
        assertEquals("shim-link", closedOn.get());
        ExecutionException e = assertThrows(ExecutionException.class, () -> a.get(10, TimeUnit.SECONDS));
        assertInstanceOf(IOException.class, e.getCause());
        CompletableFuture<ByteBuffer> late = link.request(LinkFrames.GETREGS, LinkFrames.tidPayload(1));
        assertThrows(ExecutionException.class, () -> late.get(10, TimeUnit.SECONDS));
    }

    @Test
    void interruptedCallerDoesNotCloseTheLink() throws Exception {
        start();
        CompletableFuture<ByteBuffer> a;
        Thread.currentThread().interrupt();
        try {
            a = link.request(LinkFrames.GETREGS, LinkFrames.tidPayload(1));
        } finally {
            assertTrue(Thread.interrupted(), "the caller's interrupt flag is kept");
        }
        shim.reply(shim.read(), 0, FakeShim.le(216));
        assertEquals(216, a.get(10, TimeUnit.SECONDS).remaining());
        assertEquals(1, closed.getCount(), "link still open");
    }

    @Test
    void unknownFrameClosesTheLink() throws Exception {
        start();
        shim.send(0x0077, 0, FakeShim.le(4));
        assertTrue(closed.await(10, TimeUnit.SECONDS), "a frame outside the contract ends the link");
    }

    @Test
    void closeByTheDaemonRunsOnClosed() throws Exception {
        start();
        CompletableFuture<ByteBuffer> a = link.request(LinkFrames.GETREGS, LinkFrames.tidPayload(1));
        link.close();
        assertTrue(closed.await(10, TimeUnit.SECONDS));
        assertThrows(ExecutionException.class, () -> a.get(10, TimeUnit.SECONDS));
    }

    @Test
    void blockingCallOnTheReaderThreadIsRefused() throws Exception {
        BlockingQueue<Throwable> failures = new LinkedBlockingQueue<>();
        link.start(n -> {
            try {
                link.attach(n.pid());
                failures.add(new AssertionError("attach on the reader thread returned"));
            } catch (Throwable t) {
                failures.add(t);
            }
        }, l -> {}, id -> {}, () -> {});
        shim.send(0x0002, 0, FakeShim.le(88).putInt(16, 49190));
        assertInstanceOf(IllegalStateException.class, failures.poll(10, TimeUnit.SECONDS));
    }
}
