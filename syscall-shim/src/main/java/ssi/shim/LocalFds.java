package ssi.shim;

import java.io.ByteArrayOutputStream;

/**
 * Operations the daemon makes on fds it took from a stopped process ({@link Tracee#takeFd}): compare
 * two fds of the node's processes (kcmp), copy the bytes queued in a pipe without taking them (tee),
 * peek at the bytes queued on a stream socket. Stateless; any thread (errno is per thread).
 */
public final class LocalFds {
    private LocalFds() {}

    private static final long SYS_KCMP = 312, SYS_TEE = 276;
    private static final int KCMP_FILE = 0, KCMP_VM = 1;
    private static final int F_GETPIPE_SZ = 1032, F_SETPIPE_SZ = 1031, O_CLOEXEC = 02000000, O_NONBLOCK = 04000;
    private static final int SPLICE_F_NONBLOCK = 2, MSG_PEEK = 2, MSG_DONTWAIT = 0x40;
    private static final int SOL_SOCKET = 1, SO_TYPE = 3, EAGAIN = 11;

    /** Do fd1 of pid1 and fd2 of pid2 refer to one open file description? */
    public static boolean sameFile(int pid1, int fd1, int pid2, int fd2) throws ErrnoException {
        long r = Libc.c().syscall6(SYS_KCMP, pid1, pid2, KCMP_FILE, fd1, fd2, 0);
        if (r < 0)
            throw new ErrnoException(Libc.errno(), "kcmp of fd " + fd1 + " of pid " + pid1 + " and fd " + fd2 + " of pid "
                    + pid2 + " failed");
        return r == 0;
    }

    /** Do two processes share one address space (a vfork child before its exec)? */
    public static boolean sameVm(int pid1, int pid2) throws ErrnoException {
        long r = Libc.c().syscall6(SYS_KCMP, pid1, pid2, KCMP_VM, 0, 0, 0);
        if (r < 0)
            throw new ErrnoException(Libc.errno(), "kcmp of the memory of pids " + pid1 + " and " + pid2 + " failed");
        return r == 0;
    }

    /** F_GETPIPE_SZ of a pipe fd of this JVM. */
    public static int pipeSize(int fd) throws ErrnoException {
        int r = Libc.c().fcntl(fd, F_GETPIPE_SZ, 0);
        if (r < 0)
            throw new ErrnoException(Libc.errno(), "F_GETPIPE_SZ of fd " + fd + " failed");
        return r;
    }

    /**
     * The bytes queued in the pipe whose read end (or write end: both see one buffer) is fd of this JVM,
     * copied with tee(2) into a pipe of our own and read from there; the pipe keeps them.
     */
    public static byte[] pipeContents(int fd) throws ErrnoException {
        int size = pipeSize(fd);
        int[] p = new int[2];
        Libc.C c = Libc.c();
        if (c.pipe2(p, O_CLOEXEC | O_NONBLOCK) < 0)
            throw new ErrnoException(Libc.errno(), "pipe2 failed");
        try {
            if (c.fcntl(p[1], F_SETPIPE_SZ, size) < 0)
                throw new ErrnoException(Libc.errno(), "F_SETPIPE_SZ " + size + " failed");
            long n = c.syscall6(SYS_TEE, fd, p[1], size, SPLICE_F_NONBLOCK, 0, 0);
            if (n < 0) {
                int e = Libc.errno();
                if (e == EAGAIN)
                    return new byte[0]; // empty
                throw new ErrnoException(e, "tee of pipe fd " + fd + " failed");
            }
            ByteArrayOutputStream out = new ByteArrayOutputStream((int) n);
            byte[] buf = new byte[(int) Math.max(1, n)];
            long left = n;
            while (left > 0) {
                long r = c.read(p[0], buf, left);
                if (r <= 0)
                    throw new ErrnoException(r < 0 ? Libc.errno() : 5, "read of the tee'd pipe bytes failed");
                out.write(buf, 0, (int) r);
                left -= r;
            }
            return out.toByteArray();
        } finally {
            c.close(p[0]);
            c.close(p[1]);
        }
    }

    /** SO_TYPE of a socket fd of this JVM (1 stream, 2 datagram, 5 seqpacket). */
    public static int socketType(int fd) throws ErrnoException {
        int[] v = new int[1], len = {4};
        if (Libc.c().getsockopt(fd, SOL_SOCKET, SO_TYPE, v, len) < 0)
            throw new ErrnoException(Libc.errno(), "getsockopt(SO_TYPE) of fd " + fd + " failed");
        return v[0];
    }

    /** The bytes queued for reading on a stream socket fd of this JVM, left queued (MSG_PEEK), at most max. */
    public static byte[] peekStream(int fd, int max) throws ErrnoException {
        byte[] buf = new byte[max];
        long n = Libc.c().recv(fd, buf, max, MSG_PEEK | MSG_DONTWAIT);
        if (n < 0) {
            int e = Libc.errno();
            if (e == EAGAIN)
                return new byte[0];
            throw new ErrnoException(e, "recv(MSG_PEEK) of socket fd " + fd + " failed");
        }
        return java.util.Arrays.copyOf(buf, (int) n);
    }

    /**
     * The messages queued for reading on a datagram or seqpacket socket fd of this JVM, each whole, in
     * order, left queued: MSG_PEEK with the socket's peek offset (SO_PEEK_OFF) set to 0, so each peek
     * returns the next message, then set back to what it was. At most maxBytes in all; a message longer
     * than the buffer, or an empty one (the peek offset cannot step over it), is an EOPNOTSUPP error.
     */
    public static java.util.List<byte[]> peekDatagrams(int fd, int maxBytes) throws ErrnoException {
        final int SO_PEEK_OFF = 42, MSG_TRUNC = 0x20, EOPNOTSUPP = 95;
        Libc.C c = Libc.c();
        int[] old = new int[1], len = {4};
        if (c.getsockopt(fd, SOL_SOCKET, SO_PEEK_OFF, old, len) < 0)
            throw new ErrnoException(Libc.errno(), "getsockopt(SO_PEEK_OFF) of socket fd " + fd + " failed");
        if (c.setsockopt(fd, SOL_SOCKET, SO_PEEK_OFF, new int[] {0}, 4) < 0)
            throw new ErrnoException(Libc.errno(), "setsockopt(SO_PEEK_OFF) of socket fd " + fd + " failed");
        java.util.List<byte[]> out = new java.util.ArrayList<>();
        try {
            byte[] buf = new byte[256 * 1024];
            int total = 0;
            while (true) {
                long n = c.recv(fd, buf, buf.length, MSG_PEEK | MSG_DONTWAIT | MSG_TRUNC);
                if (n < 0) {
                    int e = Libc.errno();
                    if (e == EAGAIN) break;
                    throw new ErrnoException(e, "recv(MSG_PEEK) of socket fd " + fd + " failed");
                }
                if (n == 0 || n > buf.length)
                    throw new ErrnoException(EOPNOTSUPP, "socket fd " + fd + " holds a" + (n == 0 ? "n empty message" : " message of "
                            + n + " bytes") + ", which cannot be saved");
                total += (int) n;
                if (total > maxBytes)
                    throw new ErrnoException(EOPNOTSUPP, "socket fd " + fd + " holds more than " + maxBytes + " queued bytes");
                out.add(java.util.Arrays.copyOf(buf, (int) n));
            }
        } finally {
            c.setsockopt(fd, SOL_SOCKET, SO_PEEK_OFF, old, 4);
        }
        return out;
    }

    /** Writes all of data to fd of this JVM (a pipe's write end, a socket); the fd must not be non-blocking-full. */
    public static void writeAll(int fd, byte[] data) throws ErrnoException {
        int off = 0;
        while (off < data.length) {
            byte[] rest = off == 0 ? data : java.util.Arrays.copyOfRange(data, off, data.length);
            long w = Libc.c().write(fd, rest, rest.length);
            if (w <= 0)
                throw new ErrnoException(w < 0 ? Libc.errno() : 5, "write of " + rest.length + " queued bytes failed");
            off += (int) w;
        }
    }

    /** F_SETPIPE_SZ of a pipe fd of this JVM. */
    public static void setPipeSize(int fd, int size) throws ErrnoException {
        if (Libc.c().fcntl(fd, F_SETPIPE_SZ, size) < 0)
            throw new ErrnoException(Libc.errno(), "F_SETPIPE_SZ " + size + " of fd " + fd + " failed");
    }

    /** Closes an fd of this JVM, ignoring errors (cleanup paths). */
    public static void closeQuietly(int fd) {
        if (fd >= 0)
            Libc.c().close(fd);
    }

    /** F_SETFL with the status flags of an fd record (O_NONBLOCK, O_APPEND...; the access mode is ignored). */
    public static void setStatusFlags(int fd, int flags) throws ErrnoException {
        if (Libc.c().fcntl(fd, 4 /* F_SETFL */, flags & ~(3 | O_CLOEXEC)) < 0)
            throw new ErrnoException(Libc.errno(), "F_SETFL of fd " + fd + " failed");
    }

    /** open(2) in this JVM with raw flags (O_CLOEXEC added); the fd is the caller's to close. */
    public static int open(String path, int flags) throws ErrnoException {
        int fd = Libc.c().open(path, flags | O_CLOEXEC, 0);
        if (fd < 0)
            throw new ErrnoException(Libc.errno(), "open of " + path + " failed");
        return fd;
    }

    /** poll(2) of one fd of this JVM with events, without waiting: the revents. */
    public static int poll(int fd, int events) throws ErrnoException {
        java.nio.ByteBuffer b = java.nio.ByteBuffer.allocate(8).order(java.nio.ByteOrder.nativeOrder());
        b.putInt(0, fd).putShort(4, (short) events);
        byte[] a = b.array();
        if (Libc.c().poll(a, 1, 0) < 0)
            throw new ErrnoException(Libc.errno(), "poll of fd " + fd + " failed");
        return java.nio.ByteBuffer.wrap(a).order(java.nio.ByteOrder.nativeOrder()).getShort(6) & 0xffff;
    }

    /**
     * The byte ranges [start, end) of [from, to) of file fd of this JVM that hold data (lseek
     * SEEK_DATA / SEEK_HOLE: for shared memory, the pages that were ever written or faulted in).
     */
    public static java.util.List<long[]> dataRanges(int fd, long from, long to) throws ErrnoException {
        final int SEEK_DATA = 3, SEEK_HOLE = 4, ENXIO = 6;
        java.util.List<long[]> out = new java.util.ArrayList<>();
        long at = from;
        while (at < to) {
            long d = Libc.c().lseek(fd, at, SEEK_DATA);
            if (d < 0) {
                int e = Libc.errno();
                if (e == ENXIO) break; // no data after at
                throw new ErrnoException(e, "lseek(SEEK_DATA) of fd " + fd + " failed");
            }
            if (d >= to) break;
            long h = Libc.c().lseek(fd, d, SEEK_HOLE);
            if (h < 0) throw new ErrnoException(Libc.errno(), "lseek(SEEK_HOLE) of fd " + fd + " failed");
            out.add(new long[] {d, Math.min(h, to)});
            at = h;
        }
        return out;
    }

    private static final long SYS_SHMAT = 30, SYS_SHMCTL = 31, SYS_SHMDT = 67;

    /**
     * Attaches SysV shared memory segment id read-only in this JVM (its IPC namespace) and returns the
     * address; {@link #shmDetach} undoes it.
     */
    public static long shmAttachReadOnly(int id) throws ErrnoException {
        final int SHM_RDONLY = 010000;
        long r = Libc.c().syscall(SYS_SHMAT, id, 0, SHM_RDONLY);
        if (r < 0 && r > -4096)
            throw new ErrnoException(Libc.errno(), "shmat of SysV shared memory segment " + id + " failed");
        return r;
    }

    public static void shmDetach(long addr) throws ErrnoException {
        if (Libc.c().syscall(SYS_SHMDT, addr, 0, 0) < 0)
            throw new ErrnoException(Libc.errno(), "shmdt failed");
    }

    /** shmctl(id, IPC_RMID): the segment goes once nothing has it attached any more. */
    public static void shmRemove(int id) throws ErrnoException {
        if (Libc.c().syscall(SYS_SHMCTL, id, 0 /* IPC_RMID */, 0) < 0)
            throw new ErrnoException(Libc.errno(), "shmctl(IPC_RMID) of SysV shared memory segment " + id + " failed");
    }

    /** kill(pid, sig) from this JVM (pid in its pid namespace). */
    public static void signal(int pid, int sig) throws ErrnoException {
        if (Libc.c().syscall(62 /* kill */, pid, sig, 0) < 0)
            throw new ErrnoException(Libc.errno(), "kill(" + pid + ", " + sig + ") failed");
    }

    /**
     * semctl(id, num, GETPID) in this JVM's IPC namespace: the pid that operated last on semaphore num of
     * SysV semaphore set id (0: none yet, or the set is gone since: EINVAL, EIDRM).
     */
    public static int semaphoreLastPid(int id, int num) throws ErrnoException {
        final int SYS_SEMCTL = 66, GETPID = 11, EINVAL = 22, EIDRM = 43;
        long r = Libc.c().syscall6(SYS_SEMCTL, id, num, GETPID, 0, 0, 0);
        if (r >= 0) return (int) r;
        int e = Libc.errno();
        if (e == EINVAL || e == EIDRM) return 0;
        throw new ErrnoException(e, "semctl(" + id + ", " + num + ", GETPID) failed");
    }
}
