package ssi.ghost.dump;

import ssi.ghost.image.DataWriter;
import ssi.ghost.image.Records;

import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * Open files of a process, from /proc/PID/fd (what each fd is) and /proc/PID/fdinfo (offset, flags).
 * Supported: regular files and directories by path (a deleted one with its bytes saved into the
 * image), the character devices every node has (/dev/null, zero, random, urandom), pipes whose other
 * end is inside the application or closed, UNIX sockets (SharedFds checks they are socketpairs inside
 * the application), the process's controlling terminal (FD_TTY: a restart gives it the caller's
 * terminal), and eventfds, timerfds, signalfds and epoll sets with their state from fdinfo (AnonFds).
 * Anything else (TCP/UDP sockets, other terminals, other devices, other
 * anonymous inodes, a pipe to the outside) is refused with a message naming the process, the fd and
 * what it is. Stateless; the pipe pairing runs once over the whole tree.
 */
final class Fds {
    private Fds() {}

    private static final int O_ACCMODE = 3, O_WRONLY = 1, O_CLOEXEC = 02000000;
    private static final List<String> DEVICES = List.of("/dev/null", "/dev/zero", "/dev/random", "/dev/urandom");
    private static final String DELETED = " (deleted)";

    /**
     * What dump found: the records, the deleted files whose bytes must be saved, and the bytes queued in
     * pipes and sockets to save on some of these fds (fd -> bytes; SharedFds fills it in).
     */
    record Found(List<Records.Fd> fds, Map<Integer, Path> deleted, Map<Integer, byte[]> queued, List<Records.FdState> states) {
        Found(List<Records.Fd> fds, Map<Integer, Path> deleted) {
            this(fds, deleted, Map.of(), List.of());
        }
    }

    /** The UNIX sockets of the node (sock_diag), asked once per checkpoint and only if some fd is a socket. */
    interface UnixSockets {
        Map<Long, ssi.shim.UnixDiag.Info> get() throws IOException;
    }

    /** Inspects every fd of pid; throws an EOPNOTSUPP CheckpointException at the first unsupported one. */
    static Found dump(ProcFs fs, int pid, UnixSockets unix) throws IOException {
        Path fdDir = fs.dir(pid).resolve("fd");
        List<Records.Fd> out = new ArrayList<>();
        List<Records.FdState> states = new ArrayList<>();
        Map<Integer, Path> deleted = new HashMap<>();
        List<Integer> fds = new ArrayList<>();
        try (var s = Files.newDirectoryStream(fdDir)) {
            for (Path p : s) fds.add(Integer.parseInt(p.getFileName().toString()));
        }
        fds.sort(null);
        long ctty = -1; // read on the first terminal fd
        for (int fd : fds) {
            Path link = fdDir.resolve(Integer.toString(fd));
            String target;
            Map<String, String> info = new HashMap<>();
            List<String> lines;
            try {
                target = ProcFs.link(link);
                lines = Files.readAllLines(fs.dir(pid).resolve("fdinfo").resolve(Integer.toString(fd)));
                for (String line : lines) {
                    int c = line.indexOf(':');
                    if (c > 0) info.put(line.substring(0, c), line.substring(c + 1).trim());
                }
            } catch (NoSuchFileException e) {
                continue; // closed while we looked: it cannot be: the process is frozen; only a racing exit
            }
            int rawFlags = Integer.parseInt(info.getOrDefault("flags", "0"), 8);
            boolean cloexec = (rawFlags & O_CLOEXEC) != 0;
            int flags = rawFlags & ~O_CLOEXEC;
            long pos = Long.parseLong(info.getOrDefault("pos", "0"));
            String where = "process " + pid + " fd " + fd;
            if (target.startsWith("/")) {
                Map<String, Object> a = Files.readAttributes(link, "unix:mode,ino,rdev");
                int mode = (Integer) a.get("mode");
                long ino = (Long) a.get("ino");
                int type = mode & 0170000;
                boolean isDeleted = target.endsWith(DELETED);
                String path = isDeleted ? target.substring(0, target.length() - DELETED.length()) : target;
                if (type == 0100000 || type == 0040000) {
                    if (isDeleted && type == 0040000) throw CheckpointException.unsupported(where + " is a removed directory "
                            + path + ": not supported");
                    int kind = isDeleted ? Records.FD_REG_DELETED : Records.FD_REG;
                    if (isDeleted) deleted.put(fd, link);
                    out.add(new Records.Fd(fd, kind, flags, cloexec, pos, path, ino, -1, -1, 0));
                } else if (type == 0010000 && !isDeleted) {
                    // a named pipe: like a pipe (ends paired across the tree, bytes in flight saved), reopened by path
                    out.add(new Records.Fd(fd, Records.FD_FIFO, flags, cloexec, 0, path, ino, -1, -1, 0));
                } else if (type == 0020000 && !isDeleted && DEVICES.contains(path)) {
                    out.add(new Records.Fd(fd, Records.FD_CHR, flags, cloexec, pos, path, ino, -1, -1, 0));
                } else if (type == 0020000 && !isDeleted && Terminals.isTerminal((Long) a.get("rdev"))) {
                    long rdev = (Long) a.get("rdev");
                    if (ctty == -1) ctty = controllingTerminal(fs, pid);
                    boolean mine = ctty != 0 && (rdev == Terminals.DEV_TTY || Terminals.same(rdev, ctty));
                    if (!mine) throw CheckpointException.unsupported(where + " is the terminal " + path + " (" + dev(rdev)
                            + "), which is not the process's controlling terminal: only that one is supported");
                    out.add(new Records.Fd(fd, Records.FD_TTY, flags, cloexec, 0, path, ino, -1, -1, 0));
                } else {
                    String what = switch (type) {
                        case 0020000 -> "the character device " + path + " (" + dev((Long) a.get("rdev")) + "), which cannot be reopened on restore";
                        case 0060000 -> "the block device " + path;
                        case 0010000 -> "the named pipe " + path + ", removed since it was opened";
                        case 0140000 -> "the socket file " + path;
                        default -> "the file " + path + " of mode 0" + Integer.toOctalString(mode);
                    };
                    throw CheckpointException.unsupported(where + " is " + what + ": not supported");
                }
            } else if (target.startsWith("pipe:[")) {
                long ino = Long.parseLong(target.substring(6, target.length() - 1));
                out.add(new Records.Fd(fd, Records.FD_PIPE, flags, cloexec, pos, target, ino, -1, -1, 0));
            } else if (target.startsWith("socket:[")) {
                long ino = Long.parseLong(target.substring(8, target.length() - 1));
                if (!unix.get().containsKey(ino))
                    throw CheckpointException.unsupported(where + " is " + Sockets.describe(fs, pid, ino) + ": not supported");
                // a UNIX socket: SharedFds checks it is one end of a pair inside the application
                out.add(new Records.Fd(fd, Records.FD_UNIX, flags, cloexec, pos, target, ino, -1, -1, 0));
            } else if (AnonFds.kind(target) != 0) {
                int kind = AnonFds.kind(target);
                long ino = Long.parseLong(info.getOrDefault("ino", "0"));
                try {
                    states.add(AnonFds.parse(fd, kind, lines, realtimeNanos()));
                } catch (RuntimeException e) {
                    throw CheckpointException.unsupported(where + " is " + target + " whose fdinfo this ssi cannot read ("
                            + e.getMessage() + "): not supported");
                }
                out.add(new Records.Fd(fd, kind, flags, cloexec, pos, target, ino, -1, -1, 0));
            } else {
                throw CheckpointException.unsupported(where + " is " + target + ": not supported");
            }
        }
        return new Found(List.copyOf(out), deleted, Map.of(), List.copyOf(states));
    }

    /**
     * Every pipe end must have its other end inside the application, or closed: bytes and EOF of a pipe
     * to a process we do not restore cannot be reproduced, but a pipe whose writer is gone (the reader
     * gets the rest, then EOF) or whose reader is gone (a write fails with EPIPE) can. Which of the two a
     * lone end is, poll(2) on a copy of it says: POLLHUP on a read end without writers, POLLERR on a
     * write end without readers. Ends is pid -> fds of that process.
     */
    static void checkPipes(Map<Integer, List<Records.Fd>> ends) throws IOException {
        Map<String, Integer> readers = new HashMap<>(), writers = new HashMap<>();
        for (List<Records.Fd> l : ends.values()) {
            for (Records.Fd f : l) {
                if (!isPipe(f)) continue;
                if ((f.flags() & O_ACCMODE) != O_WRONLY) readers.merge(pipeKey(f), 1, Integer::sum);
                if ((f.flags() & O_ACCMODE) != O_RDONLY) writers.merge(pipeKey(f), 1, Integer::sum); // a FIFO may be O_RDWR
            }
        }
        for (var e : ends.entrySet()) {
            for (Records.Fd f : e.getValue()) {
                if (!isPipe(f)) continue;
                boolean write = (f.flags() & O_ACCMODE) == O_WRONLY;
                if ((write ? readers : writers).containsKey(pipeKey(f))) continue;
                int copy = ssi.shim.Tracee.takeFd(e.getKey(), f.fd());
                int revents;
                try {
                    revents = ssi.shim.LocalFds.poll(copy, write ? POLLOUT : POLLIN);
                } finally {
                    ssi.shim.LocalFds.closeQuietly(copy);
                }
                if ((revents & (write ? POLLERR : POLLHUP)) == 0) {
                    throw CheckpointException.unsupported("process " + e.getKey() + " fd " + f.fd() + " is the " + (write ? "write" : "read")
                            + " end of " + (f.kind() == Records.FD_FIFO ? "the named pipe " + f.path() : "a pipe")
                            + " (inode " + f.inode() + ") whose other end is outside the application"
                            + (f.kind() == Records.FD_FIFO ? " (or was never opened)" : "") + ": not supported");
                }
            }
        }
    }

    /**
     * No process outside the application may hold an end of one of its pipes, even when the application
     * holds both ends (which {@link #checkPipes} cannot tell): the restart would bring the pipe back
     * without that holder (its reader gone, a write gets SIGPIPE; its writer gone, a read gets EOF). The
     * usual one is an orphan: a descendant whose parent exited is the node init's child, no longer in the
     * tree. Looks at the fds of every other process of fs (the node's).
     */
    static void checkPipeHolders(ProcFs fs, Map<Integer, List<Records.Fd>> ends) throws CheckpointException {
        Map<Long, String> pipes = new HashMap<>();
        Map<String, String> fifos = new HashMap<>(); // a named pipe by its path (another holder's link shows the same)
        for (var e : ends.entrySet())
            for (Records.Fd f : e.getValue()) {
                if (f.kind() == Records.FD_PIPE) pipes.putIfAbsent(f.inode(), "process " + e.getKey() + " fd " + f.fd());
                if (f.kind() == Records.FD_FIFO) fifos.putIfAbsent(f.path(), "process " + e.getKey() + " fd " + f.fd());
            }
        if (pipes.isEmpty() && fifos.isEmpty()) return;
        for (int pid : fs.pids()) {
            if (ends.containsKey(pid)) continue;
            List<Path> fds = new ArrayList<>();
            try (var dir = Files.newDirectoryStream(fs.dir(pid).resolve("fd"))) {
                for (Path fd : dir) fds.add(fd);
            } catch (IOException | RuntimeException e) {
                continue; // gone meanwhile, or no fd table to read (a zombie, a kernel thread)
            }
            for (Path fd : fds) {
                String target;
                try {
                    target = ProcFs.link(fd);
                } catch (IOException e) {
                    continue; // closed meanwhile
                }
                String where = fifos.get(target);
                if (where == null && target.startsWith("pipe:[") && target.endsWith("]"))
                    where = pipes.get(Long.parseLong(target.substring(6, target.length() - 1)));
                if (where == null) continue;
                ProcFs.Stat st = fs.stat(fs.dir(pid));
                throw CheckpointException.unsupported(where + " is an end of a pipe (" + target + ") that process " + pid + " ("
                        + (st == null ? "?" : st.comm() + ", parent " + st.ppid()) + "), which is not part of the application, "
                        + "holds too (fd " + fd.getFileName() + "; a descendant whose parent exited is no longer in the "
                        + "application's tree): not supported");
            }
        }
    }

    private static final short POLLIN = 1, POLLOUT = 4, POLLERR = 8, POLLHUP = 16;
    private static final int O_RDONLY = 0;

    /** A pipe or a named pipe: one pipe object, its ends paired by {@link #pipeKey}. */
    static boolean isPipe(Records.Fd f) {
        return f.kind() == Records.FD_PIPE || f.kind() == Records.FD_FIFO;
    }

    /** Names the pipe object of an end: pipes and FIFOs live on different filesystems, so inodes alone may clash. */
    static String pipeKey(Records.Fd f) {
        return (f.kind() == Records.FD_FIFO ? "f:" : "p:") + f.inode();
    }

    /**
     * Copies the bytes of every deleted-but-open file, and the queued bytes of pipes and sockets, into
     * data; returns the fds with their data chunk.
     */
    static List<Records.Fd> saveDeleted(int pid, Found found, DataWriter data) throws IOException {
        List<Records.Fd> out = new ArrayList<>();
        for (Records.Fd f : found.fds()) {
            byte[] queued = found.queued().get(f.fd());
            if (queued != null) {
                DataWriter.Chunk c = data.append(java.nio.ByteBuffer.wrap(queued));
                out.add(f.withData(c.offset(), c.length(), c.crc()));
                continue;
            }
            Path link = found.deleted().get(f.fd());
            if (link == null) {
                out.add(f);
                continue;
            }
            // Opening the magic link reopens the very inode, which has no name any more; the bytes are
            // streamed, never held whole in the daemon's heap.
            DataWriter.Chunk c;
            try (FileChannel ch = FileChannel.open(link, StandardOpenOption.READ)) {
                c = data.appendAll(ch);
            }
            out.add(f.withData(c.offset(), c.length(), c.crc()));
        }
        return out;
    }

    private static long realtimeNanos() {
        java.time.Instant now = java.time.Instant.now();
        return now.getEpochSecond() * 1_000_000_000L + now.getNano();
    }

    /** tty_nr of /proc/pid/stat (field 7): the session's controlling terminal, 0 when it has none. */
    private static long controllingTerminal(ProcFs fs, int pid) {
        ProcFs.Stat st = fs.stat(fs.dir(pid));
        return st == null ? 0 : st.field(7);
    }

    private static String dev(long rdev) {
        return Terminals.describe(rdev);
    }

    /** Names a socket by inode from /proc/PID/net/* (the process's own network namespace). */
    static final class Sockets {
        private Sockets() {}

        static String describe(ProcFs fs, int pid, long ino) {
            Path net = fs.dir(pid).resolve("net");
            for (String proto : new String[] {"tcp", "tcp6", "udp", "udp6"}) {
                for (String[] f : table(net.resolve(proto))) {
                    if (f.length > 9 && f[9].equals(Long.toString(ino))) {
                        String kind = proto.startsWith("tcp") ? "a TCP socket" : "a UDP socket";
                        String rem = addr(f[2]);
                        boolean listening = proto.startsWith("tcp") && f[3].equals("0A");
                        if (listening) return kind + " listening on " + addr(f[1]);
                        return kind + (f[2].endsWith(":0000") ? " bound to " + addr(f[1]) : " to " + rem);
                    }
                }
            }
            for (String[] f : table(net.resolve("unix"))) {
                if (f.length > 6 && f[6].equals(Long.toString(ino))) {
                    return "a UNIX socket" + (f.length > 7 ? " " + f[7] : "");
                }
            }
            return "socket inode " + ino + " (not TCP, UDP or UNIX)";
        }

        private static List<String[]> table(Path p) {
            List<String[]> out = new ArrayList<>();
            try {
                List<String> lines = Files.readAllLines(p, StandardCharsets.US_ASCII);
                for (String l : lines.subList(Math.min(1, lines.size()), lines.size())) out.add(l.trim().split("\\s+"));
            } catch (IOException e) {
                // no such protocol table in this kernel or namespace
            }
            return out;
        }

        /** "0100007F:0050" -> "127.0.0.1:80"; IPv6 as 4 little-endian words. */
        static String addr(String hex) {
            int c = hex.indexOf(':');
            String h = hex.substring(0, c);
            int port = Integer.parseInt(hex.substring(c + 1), 16);
            if (h.length() == 8) {
                long v = Long.parseLong(h, 16);
                return (v & 0xff) + "." + ((v >> 8) & 0xff) + "." + ((v >> 16) & 0xff) + "." + ((v >> 24) & 0xff) + ":" + port;
            }
            StringBuilder b = new StringBuilder("[");
            for (int w = 0; w < 4; w++) {
                long v = Long.parseLong(h.substring(8 * w, 8 * w + 8), 16);
                long be = Long.reverseBytes(v) >>> 32;
                b.append(w == 0 ? "" : ":").append(Long.toHexString(be >>> 16)).append(':').append(Long.toHexString(be & 0xffff));
            }
            return b.append("]:").append(port).toString();
        }
    }

}
