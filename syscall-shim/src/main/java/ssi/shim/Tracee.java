package ssi.shim;

import java.io.IOException;
import java.io.InterruptedIOException;
import java.net.ProtocolException;
import java.nio.ByteBuffer;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;

/**
 * One thread of a cluster process, attached (PTRACE_SEIZE + PTRACE_INTERRUPT) and held stopped by the
 * shim, which is the tracer; every method is a blocking request over the {@link ShimLink}. {@link #close}
 * detaches and the thread runs on.
 *
 * <p>Threads: callable from any thread except the link's reader ("shim-link"); calls on one tracee are
 * serialized (a second caller waits), since the shim runs them in order on a stopped thread anyway.
 */
public final class Tracee implements AutoCloseable {
    /** Memory moves in pieces that fit in one link frame (the shim's limit is 1 MiB per frame). */
    static final int MEM_CHUNK = 512 * 1024;
    /** A file-to-memory copy moves in requests of this size (a few ms of the shim's time each). */
    static final int FD_CHUNK = 16 << 20;

    private final ShimLink link;
    private final int tid;
    private boolean detached; // guarded by this

    Tracee(ShimLink link, int tid) {
        this.link = link;
        this.tid = tid;
    }

    public int tid() {
        return tid;
    }

    public synchronized Regs getRegs() throws IOException {
        ByteBuffer body = call(LinkFrames.GETREGS, LinkFrames.tidPayload(tid), "read the registers");
        expectBody(body, Regs.SIZE, "GETREGS");
        return Regs.read(body);
    }

    public synchronized void setRegs(Regs regs) throws IOException {
        ByteBuffer p = LinkFrames.payload(LinkFrames.SetRegsReq.SIZE);
        p.putInt(LinkFrames.SetRegsReq.TID, tid);
        regs.write(p.position(LinkFrames.SetRegsReq.REGS));
        call(LinkFrames.SETREGS, p.clear(), "set the registers");
    }

    /** The XSAVE area in standard format (PTRACE_GETREGSET NT_X86_XSTATE): FPU, SSE, AVX... state. */
    public synchronized byte[] getXstate() throws IOException {
        ByteBuffer body = call(LinkFrames.GETXSTATE, LinkFrames.tidPayload(tid), "read the extended FPU state");
        if (body.remaining() < 4)
            throw new ProtocolException("GETXSTATE reply without a length");
        int len = body.getInt(body.position() + LinkFrames.XstateReq.REPLY_LEN);
        expectBody(body, 4 + len, "GETXSTATE");
        byte[] x = new byte[len];
        body.get(body.position() + LinkFrames.XstateReq.REPLY_DATA, x);
        return x;
    }

    public synchronized void setXstate(byte[] xsave) throws IOException {
        ByteBuffer p = LinkFrames.payload(LinkFrames.XstateReq.DATA + xsave.length);
        p.putInt(LinkFrames.XstateReq.TID, tid);
        p.putInt(LinkFrames.XstateReq.LEN, xsave.length);
        p.put(LinkFrames.XstateReq.DATA, xsave);
        call(LinkFrames.SETXSTATE, p, "set the extended FPU state");
    }

    /** The thread's rseq registration (PTRACE_GET_RSEQ_CONFIGURATION); pointer 0 when it has none. */
    public synchronized Rseq getRseq() throws IOException {
        ByteBuffer body = call(LinkFrames.GETRSEQ, LinkFrames.tidPayload(tid), "read the rseq registration");
        expectBody(body, LinkFrames.RseqReply.SIZE, "GETRSEQ");
        int at = body.position();
        return new Rseq(body.getLong(at + LinkFrames.RseqReply.POINTER), body.getInt(at + LinkFrames.RseqReply.SIZE_FIELD),
                body.getInt(at + LinkFrames.RseqReply.SIGNATURE), body.getInt(at + LinkFrames.RseqReply.FLAGS));
    }

    /** len bytes of the process's memory at addr; any unreadable byte fails the whole read with EFAULT. */
    /**
     * GETSIGMASK: the thread's blocked signal mask as it will be once it runs again in user code: inside
     * sigsuspend, ppoll, pselect or epoll_pwait that is the mask saved at the call, not the temporary
     * one (/proc's SigBlk shows the temporary one).
     */
    public synchronized long getSigmask() throws IOException {
        ByteBuffer b = call(LinkFrames.GETSIGMASK, LinkFrames.tidPayload(tid), "get the signal mask");
        expectBody(b, 8, "GETSIGMASK");
        return b.getLong(b.position());
    }

    /**
     * A signal the shim held back from this thread while it held it, with its siginfo (128 bytes) and the
     * queue it came from: the process's shared one, or the thread's own.
     */
    public record HeldSignal(boolean shared, byte[] siginfo) {}

    /**
     * GETDEFERRED: the signals that reached this thread while the shim held it, oldest first: the shim
     * took them at their delivery, so they are in no kernel queue (a checkpoint saves them), and queues them
     * again at the detach. ErrnoException EOVERFLOW: more arrived than the shim keeps (some are lost).
     */
    public synchronized java.util.List<HeldSignal> getHeldSignals() throws IOException {
        ByteBuffer b = call(LinkFrames.GETDEFERRED, LinkFrames.tidPayload(tid), "get the held-back signals");
        if (b.remaining() < 4)
            throw new ProtocolException("GETDEFERRED reply without a count");
        int at = b.position(), n = b.getInt(at + LinkFrames.HeldSig.COUNT);
        if (n < 0 || n > LinkFrames.HeldSig.MAX)
            throw new ProtocolException("GETDEFERRED reply with " + n + " signals");
        expectBody(b, LinkFrames.HeldSig.ENTRIES + n * LinkFrames.HeldSig.SIZE, "GETDEFERRED");
        java.util.List<HeldSignal> out = new java.util.ArrayList<>(n);
        for (int i = 0; i < n; i++) {
            int e = at + LinkFrames.HeldSig.ENTRIES + i * LinkFrames.HeldSig.SIZE;
            byte[] si = new byte[LinkFrames.PeekSigReq.SIGINFO];
            b.get(e + LinkFrames.HeldSig.SIGINFO, si);
            out.add(new HeldSignal(b.getInt(e + LinkFrames.HeldSig.SHARED) != 0, si));
        }
        return out;
    }

    public synchronized byte[] read(long addr, int len) throws IOException {
        if (len < 0)
            throw new IllegalArgumentException("negative length " + len);
        byte[] out = new byte[len];
        for (int off = 0; off < len; off += MEM_CHUNK) {
            int n = Math.min(MEM_CHUNK, len - off);
            ByteBuffer p = LinkFrames.payload(LinkFrames.MemReq.DATA);
            p.putInt(LinkFrames.MemReq.PID, tid);
            p.putInt(LinkFrames.MemReq.LEN, n);
            p.putLong(LinkFrames.MemReq.ADDR, addr + off);
            ByteBuffer body = call(LinkFrames.READMEM, p, "read " + n + " bytes at 0x" + Long.toHexString(addr + off));
            expectBody(body, n, "READMEM");
            body.get(body.position(), out, off, n);
        }
        return out;
    }

    /** Writes data at addr, into read-only mappings too (the shim falls back to /proc/pid/mem). */
    public synchronized void write(long addr, byte[] data) throws IOException {
        for (int off = 0; off < data.length; off += MEM_CHUNK) {
            int n = Math.min(MEM_CHUNK, data.length - off);
            ByteBuffer p = LinkFrames.payload(LinkFrames.MemReq.DATA + n);
            p.putInt(LinkFrames.MemReq.PID, tid);
            p.putInt(LinkFrames.MemReq.LEN, n);
            p.putLong(LinkFrames.MemReq.ADDR, addr + off);
            p.put(LinkFrames.MemReq.DATA, data, off, n);
            call(LinkFrames.WRITEMEM, p, "write " + n + " bytes at 0x" + Long.toHexString(addr + off));
        }
    }

    /**
     * Copies len bytes at offset of daemonFd (an fd of this JVM on a regular file, e.g. a {@link RawFile})
     * to addr, like {@link #write} but with no byte crossing the link: the shim takes a copy of the fd
     * (WRITEMEM_FD) and copies from the file itself. Requests of at most {@link #FD_CHUNK} bytes, so the
     * shim, which serves one request at a time, is never held for long.
     */
    public synchronized void writeFromFile(long addr, int daemonFd, long offset, long len) throws IOException {
        if (len < 0 || offset < 0)
            throw new IllegalArgumentException("negative offset or length (" + offset + ", " + len + ")");
        for (long off = 0; off < len; off += FD_CHUNK) {
            long n = Math.min(FD_CHUNK, len - off);
            ByteBuffer p = LinkFrames.payload(LinkFrames.MemFdReq.SIZE);
            p.putInt(LinkFrames.MemFdReq.PID, tid);
            p.putInt(LinkFrames.MemFdReq.DAEMON_FD, daemonFd);
            p.putLong(LinkFrames.MemFdReq.OFFSET, offset + off);
            p.putLong(LinkFrames.MemFdReq.LEN, n);
            p.putLong(LinkFrames.MemFdReq.ADDR, addr + off);
            call(LinkFrames.WRITEMEM_FD, p, "copy " + n + " bytes at offset " + (offset + off) + " of our fd " + daemonFd
                    + " to 0x" + Long.toHexString(addr + off));
        }
    }

    /**
     * Runs one syscall in the stopped thread and restores its registers; returns the raw result, a
     * negative errno when the syscall failed (an ErrnoException means the injection itself failed).
     */
    public synchronized long syscall(int nr, long... args) throws IOException {
        if (args.length > 6)
            throw new IllegalArgumentException("a syscall takes at most 6 arguments, got " + args.length);
        ByteBuffer p = LinkFrames.payload(LinkFrames.InjectReq.SIZE);
        p.putInt(LinkFrames.InjectReq.TID, tid);
        p.putInt(LinkFrames.InjectReq.NR, nr);
        for (int i = 0; i < args.length; i++)
            p.putLong(LinkFrames.InjectReq.ARGS + 8 * i, args[i]);
        ByteBuffer body = call(LinkFrames.INJECT, p, "inject syscall " + nr);
        expectBody(body, 8, "INJECT");
        return body.getLong(body.position() + LinkFrames.InjectReq.REPLY_RET);
    }

    /**
     * Runs several syscalls in the stopped thread, in order, like {@link #syscall} each, in one request
     * (INJECT_MANY) per {@link LinkFrames.InjectManyReq#MAX} calls: the shim lets the thread run them as a
     * loop of code in a page it maps for that and unmaps after, one resume instead of one per call (or
     * one by one where it cannot map code). Only for calls that leave the address space alone (no mmap,
     * munmap, mprotect, brk...): see {@link #syscalls(int[], long[][], long)} for those. nrs[i] runs with
     * args[i]; returns the raw results.
     */
    public long[] syscalls(int[] nrs, long[][] args) throws IOException {
        return syscalls(nrs, args, 0);
    }

    /**
     * As {@link #syscalls(int[], long[][])}, with the shim's code and table at {@code at}: the page-aligned
     * start of {@link LinkFrames.InjectManyReq#AREA} free bytes that none of the calls touches (then the
     * calls may map, unmap and remap anything else), or 0 for wherever the kernel puts them.
     */
    public long[] syscalls(int[] nrs, long[][] args, long at) throws IOException {
        if ((at & 4095) != 0)
            throw new IllegalArgumentException(String.format("the area for the calls' code at %x is not page aligned", at));
        return injectMany(nrs, args, at);
    }

    /**
     * As {@link #syscalls(int[], long[][])}, with the shim's code and table in an area the caller mapped
     * in the process for that and keeps: {@link LinkFrames.InjectManyReq#AREA} bytes at the page-aligned
     * {@code area}, its first page readable and executable, the others writable. Nothing is mapped,
     * protected or unmapped (three resumes fewer than {@link #syscalls(int[], long[][])}, and no wait on
     * a walk of the page tables, such as PAGEMAP_SCAN, running meanwhile); the calls must leave the area
     * alone.
     */
    public long[] syscallsIn(long area, int[] nrs, long[][] args) throws IOException {
        if (area == 0 || (area & 4095) != 0)
            throw new IllegalArgumentException(String.format("the area for the calls' code at %x is not page aligned", area));
        return injectMany(nrs, args, area | LinkFrames.InjectManyReq.MAPPED);
    }

    private synchronized long[] injectMany(int[] nrs, long[][] args, long at) throws IOException {
        if (nrs.length != args.length)
            throw new IllegalArgumentException(nrs.length + " syscalls but " + args.length + " argument lists");
        for (long[] a : args) {
            if (a.length > 6)
                throw new IllegalArgumentException("a syscall takes at most 6 arguments, got " + a.length);
        }
        long[] out = new long[nrs.length];
        for (int from = 0; from < nrs.length; from += LinkFrames.InjectManyReq.MAX) {
            int n = Math.min(LinkFrames.InjectManyReq.MAX, nrs.length - from);
            ByteBuffer p = LinkFrames.payload(LinkFrames.InjectManyReq.SIZE + n * LinkFrames.InjectManyReq.CALL_SIZE);
            p.putInt(LinkFrames.InjectManyReq.TID, tid);
            p.putInt(LinkFrames.InjectManyReq.COUNT, n);
            p.putLong(LinkFrames.InjectManyReq.AT, at);
            for (int k = 0; k < n; k++) {
                int off = LinkFrames.InjectManyReq.SIZE + k * LinkFrames.InjectManyReq.CALL_SIZE;
                p.putLong(off, nrs[from + k]);
                for (int i = 0; i < args[from + k].length; i++) p.putLong(off + 8 + 8 * i, args[from + k][i]);
            }
            ByteBuffer body = call(LinkFrames.INJECT_MANY, p, "inject " + n + " syscalls");
            expectBody(body, 8 * n, "INJECT_MANY");
            for (int k = 0; k < n; k++) out[from + k] = body.getLong(body.position() + 8 * k);
        }
        return out;
    }

    /**
     * Installs a copy of daemonFd (an fd of this JVM) in the process at targetFd, replacing what was
     * there, or at its lowest free fd when targetFd is negative; returns the fd number it got there.
     */
    public synchronized int giveFd(int daemonFd, int targetFd) throws IOException {
        ByteBuffer p = LinkFrames.payload(LinkFrames.GiveFdReq.SIZE);
        p.putInt(LinkFrames.GiveFdReq.TID, tid);
        p.putInt(LinkFrames.GiveFdReq.DAEMON_FD, daemonFd);
        p.putInt(LinkFrames.GiveFdReq.TARGET_FD, targetFd);
        ByteBuffer body = call(LinkFrames.GIVEFD, p, "give our fd " + daemonFd + " as fd " + targetFd);
        expectBody(body, 4, "GIVEFD");
        return body.getInt(body.position() + LinkFrames.GiveFdReq.REPLY_FD);
    }

    /** Detaches: the thread runs on. Idempotent. */
    @Override
    public synchronized void close() throws IOException {
        if (detached)
            return;
        detached = true;
        roundTrip(link, LinkFrames.DETACH, LinkFrames.tidPayload(tid), "detach from tid " + tid);
    }

    /**
     * Takes a copy of fd of process pid into this JVM (pidfd_open + pidfd_getfd; needs ptrace access to
     * pid, which the daemon has in its node). The copy is close-on-exec and owned by the caller: release
     * it with {@link #closeFd}.
     */
    public static int takeFd(int pid, int fd) throws ErrnoException {
        Libc.C c = Libc.c();
        long pidfd = c.syscall(Libc.SYS_PIDFD_OPEN, pid, 0, 0);
        if (pidfd < 0)
            throw new ErrnoException(Libc.errno(), "pidfd_open of pid " + pid + " (to take its fd " + fd + ") failed");
        long copy = c.syscall(Libc.SYS_PIDFD_GETFD, pidfd, fd, 0);
        int err = Libc.errno();
        c.close((int) pidfd);
        if (copy < 0)
            throw new ErrnoException(err, "pidfd_getfd of fd " + fd + " of pid " + pid + " failed");
        return (int) copy;
    }

    /** Closes an fd of this JVM obtained from {@link #takeFd}. */
    public static void closeFd(int fd) throws ErrnoException {
        if (Libc.c().close(fd) < 0)
            throw new ErrnoException(Libc.errno(), "close of fd " + fd + " failed");
    }

    private ByteBuffer call(int type, ByteBuffer payload, String what) throws IOException {
        if (detached)
            throw new IllegalStateException("tid " + tid + " is detached");
        return roundTrip(link, type, payload, what + " of tid " + tid);
    }

    private static void expectBody(ByteBuffer body, int len, String type) throws ProtocolException {
        if (body.remaining() != len)
            throw new ProtocolException(type + " reply body of " + body.remaining() + " bytes, expected " + len);
    }

    /**
     * Sends a request and waits for its reply; failures come back as exceptions with the caller's context
     * and stack.
     */
    static ByteBuffer roundTrip(ShimLink link, int type, ByteBuffer payload, String what) throws IOException {
        if (link.onReaderThread())
            throw new IllegalStateException("cannot " + what + " on the shim-link thread: it would wait for a reply"
                    + " only it can read");
        return await(link.request(type, payload), what);
    }

    /** Waits for a reply; failures come back as exceptions with the caller's context and stack. */
    private static ByteBuffer await(CompletableFuture<ByteBuffer> reply, String what) throws IOException {
        try {
            return reply.get();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new InterruptedIOException("interrupted while waiting to " + what + " (the request is still "
                    + "running in the shim)");
        } catch (ExecutionException e) {
            Throwable cause = e.getCause();
            if (cause instanceof ErrnoException ee)
                throw new ErrnoException("cannot " + what, ee);
            if (cause instanceof IOException io)
                throw new IOException("cannot " + what + ": " + io.getMessage(), io);
            throw new IOException("cannot " + what, cause);
        }
    }
}
