package ssi.ghost.dump;

import ssi.ghost.image.Records;
import ssi.shim.LocalFds;
import ssi.shim.Tracee;
import ssi.shim.UnixDiag;

import java.io.IOException;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * What the fds of a frozen application share across the tree: which fds are one open file description
 * (kcmp KCMP_FILE: dup, fork), the two ends of socketpairs (sock_diag peers), and the bytes queued in
 * pipes (named or not) and on stream sockets (copied without taking them: tee(2) for a pipe, MSG_PEEK for a socket, on
 * a copy of the fd the daemon takes with pidfd_getfd). Stateless; runs on the checkpoint's thread while
 * every thread of the application is held stopped.
 */
final class SharedFds {
    private SharedFds() {}

    private static final int O_ACCMODE = 3, O_WRONLY = 1, SOCK_STREAM = 1, ESTABLISHED = 1, LISTEN = 10;

    /** The bytes to save, by pid then fd. */
    record Queues(Map<Integer, Map<Integer, byte[]>> data) {
        byte[] of(int pid, int fd) {
            return data.getOrDefault(pid, Map.of()).get(fd);
        }
    }

    /**
     * Gives every fd its fileId: fds (of any process of the tree) that kcmp says are one open file
     * description get one id, starting at 1, in tree order.
     */
    static Map<Integer, List<Records.Fd>> identify(Map<Integer, List<Records.Fd>> fdsByPid) throws IOException {
        record Ref(int pid, int index, Records.Fd fd) {}
        Map<String, List<List<Ref>>> groups = new HashMap<>(); // (kind, inode) -> clusters of one file each
        Map<Integer, List<Records.Fd>> out = new LinkedHashMap<>();
        int next = 1;
        for (var e : fdsByPid.entrySet()) {
            List<Records.Fd> l = new ArrayList<>(e.getValue());
            for (int i = 0; i < l.size(); i++) {
                Records.Fd f = l.get(i);
                List<List<Ref>> clusters = groups.computeIfAbsent(f.kind() + ":" + f.inode(), k -> new ArrayList<>());
                int id = 0;
                for (List<Ref> c : clusters) {
                    Ref first = c.getFirst();
                    if (LocalFds.sameFile(first.pid(), first.fd().fd(), e.getKey(), f.fd())) {
                        id = first.fd().fileId();
                        c.add(new Ref(e.getKey(), i, f));
                        break;
                    }
                }
                if (id == 0) {
                    id = next++;
                    f = f.withFileId(id);
                    List<Ref> c = new ArrayList<>();
                    c.add(new Ref(e.getKey(), i, f));
                    clusters.add(c);
                }
                l.set(i, f.withFileId(id));
            }
            out.put(e.getKey(), List.copyOf(l));
        }
        return out;
    }

    /** No two processes of the tree share one address space (a vfork child before its exec). */
    static void checkVfork(List<Integer> pids) throws IOException {
        for (int i = 0; i < pids.size(); i++) {
            for (int j = i + 1; j < pids.size(); j++) {
                if (LocalFds.sameVm(pids.get(i), pids.get(j)))
                    throw CheckpointException.unsupported("processes " + pids.get(i) + " and " + pids.get(j) + " share one "
                            + "address space (a vfork or CLONE_VM child that has not exec'd yet): not supported; try again in a moment");
            }
        }
    }

    /**
     * Every UNIX socket of the application is one end of a connected pair whose other end is in the
     * application too (or closed); a listening or bound socket, or one connected outside, is refused.
     */
    static void checkSockets(Map<Integer, List<Records.Fd>> fdsByPid, Map<Long, UnixDiag.Info> unix) throws CheckpointException {
        Map<Long, Boolean> inApp = new HashMap<>();
        for (List<Records.Fd> l : fdsByPid.values())
            for (Records.Fd f : l)
                if (f.kind() == Records.FD_UNIX) inApp.put(f.inode(), true);
        for (var e : fdsByPid.entrySet()) {
            for (Records.Fd f : e.getValue()) {
                if (f.kind() != Records.FD_UNIX) continue;
                String where = "process " + e.getKey() + " fd " + f.fd();
                UnixDiag.Info i = unix.get(f.inode());
                if (i == null)
                    throw CheckpointException.unsupported(where + " is a UNIX socket (inode " + f.inode() + ") that sock_diag "
                            + "does not list: not supported");
                if (i.state() == LISTEN || !i.name().isEmpty())
                    throw CheckpointException.unsupported(where + " is a UNIX socket " + (i.state() == LISTEN ? "listening" : "bound")
                            + " on " + (i.name().isEmpty() ? "(no name)" : i.name()) + ": only socketpairs are supported");
                if (i.peer() != 0 && !inApp.containsKey(i.peer()))
                    throw CheckpointException.unsupported(where + " is a UNIX socket connected to socket inode " + i.peer()
                            + ", which no process of the application holds: not supported");
            }
        }
    }

    /**
     * The bytes queued in each pipe and on each UNIX socket of the application, saved on the first fd
     * (tree order) of that pipe or socket; a pipe's records get its capacity in aux. The messages of a
     * datagram or seqpacket socket are saved one by one with their lengths ({@link #frames}).
     */
    static Map<Integer, List<Records.Fd>> queues(Map<Integer, List<Records.Fd>> fdsByPid, Map<Long, UnixDiag.Info> unix,
                                                 Map<Integer, Map<Integer, byte[]>> data) throws IOException {
        Map<String, Integer> pipeSize = new HashMap<>();
        Map<Long, Boolean> saved = new HashMap<>();
        // tee(2) reads from a read end: one per pipe or FIFO (checkPipes made sure the application has one)
        Map<String, int[]> readEnd = new HashMap<>();
        for (var e : fdsByPid.entrySet())
            for (Records.Fd f : e.getValue())
                if (Fds.isPipe(f) && !isWriteEnd(f)) readEnd.putIfAbsent(Fds.pipeKey(f), new int[] {e.getKey(), f.fd()});
        Map<Integer, List<Records.Fd>> out = new LinkedHashMap<>();
        for (var e : fdsByPid.entrySet()) {
            int pid = e.getKey();
            List<Records.Fd> l = new ArrayList<>();
            for (Records.Fd f : e.getValue()) {
                if (Fds.isPipe(f)) {
                    String key = Fds.pipeKey(f);
                    if (!pipeSize.containsKey(key)) {
                        int[] r = readEnd.get(key);
                        int copy = r == null ? Tracee.takeFd(pid, f.fd()) : Tracee.takeFd(r[0], r[1]);
                        try {
                            pipeSize.put(key, LocalFds.pipeSize(copy));
                            // no read end: nobody can read what is queued any more (writes fail with EPIPE)
                            byte[] q = r == null ? new byte[0] : LocalFds.pipeContents(copy);
                            if (q.length > 0) data.computeIfAbsent(pid, k -> new HashMap<>()).put(f.fd(), q);
                        } finally {
                            LocalFds.closeQuietly(copy);
                        }
                    }
                    f = new Records.Fd(f.fd(), f.kind(), f.flags(), f.cloexec(), f.pos(), f.path(), f.inode(), f.dataOffset(),
                            f.dataLength(), f.dataCrc(), f.fileId(), 0, pipeSize.get(key));
                } else if (f.kind() == Records.FD_UNIX) {
                    UnixDiag.Info i = unix.get(f.inode());
                    f = new Records.Fd(f.fd(), f.kind(), f.flags(), f.cloexec(), f.pos(), f.path(), f.inode(), f.dataOffset(),
                            f.dataLength(), f.dataCrc(), f.fileId(), i.peer(), i.type());
                    if (i.rqueue() > 0 && saved.putIfAbsent(f.inode(), true) == null) {
                        int copy = Tracee.takeFd(pid, f.fd());
                        try {
                            byte[] q;
                            if (i.type() == SOCK_STREAM) {
                                q = LocalFds.peekStream(copy, (int) Math.min(i.rqueue(), 64L << 20));
                            } else {
                                try {
                                    q = frames(LocalFds.peekDatagrams(copy, 64 << 20));
                                } catch (ssi.shim.ErrnoException x) {
                                    throw CheckpointException.unsupported("process " + pid + " fd " + f.fd() + " is a UNIX "
                                            + (i.type() == 2 ? "datagram" : "seqpacket") + " socket whose queued messages "
                                            + "cannot be saved (" + x.getMessage() + ")");
                                }
                            }
                            if (q.length > 0) data.computeIfAbsent(pid, k -> new HashMap<>()).put(f.fd(), q);
                        } finally {
                            LocalFds.closeQuietly(copy);
                        }
                    }
                }
                l.add(f);
            }
            out.put(pid, List.copyOf(l));
        }
        return out;
    }

    /** Messages of a datagram or seqpacket socket as saved: each as a big-endian u32 length, then its bytes. */
    static byte[] frames(List<byte[]> messages) {
        int n = 0;
        for (byte[] m : messages) n += 4 + m.length;
        java.nio.ByteBuffer b = java.nio.ByteBuffer.allocate(n);
        for (byte[] m : messages) b.putInt(m.length).put(m);
        return b.array();
    }

    static boolean isWriteEnd(Records.Fd f) {
        return (f.flags() & O_ACCMODE) == O_WRONLY;
    }
}
