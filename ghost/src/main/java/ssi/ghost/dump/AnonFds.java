package ssi.ghost.dump;

import ssi.ghost.image.Records;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * The anonymous-inode fds a checkpoint carries: eventfd, timerfd, signalfd and epoll sets, each read
 * from its /proc/PID/fdinfo text (the kernel's show_fdinfo of that kind), and the check that an epoll
 * set can be rebuilt: every file it watches is, at the fd number it was added by, still that file in
 * the process that will make the set again. Stateless; the checkpoint's thread.
 */
final class AnonFds {
    private AnonFds() {}

    private static final int TFD_TIMER_ABSTIME = 1, CLOCK_REALTIME = 0, CLOCK_REALTIME_ALARM = 8;

    /** The FD kind of an anonymous inode's link target, or 0 for one this checkpoint cannot carry. */
    static int kind(String target) {
        return switch (target) {
            case "anon_inode:[eventfd]" -> Records.FD_EVENTFD;
            case "anon_inode:[timerfd]" -> Records.FD_TIMERFD;
            case "anon_inode:[signalfd]" -> Records.FD_SIGNALFD;
            case "anon_inode:[eventpoll]" -> Records.FD_EPOLL;
            default -> 0;
        };
    }

    /**
     * The state of fd (of kind) from its fdinfo lines. realtimeNanos is CLOCK_REALTIME now: a timerfd armed
     * with TFD_TIMER_ABSTIME on a real-time clock keeps its absolute deadline (fdinfo shows the time left);
     * any other timerfd is recorded relative (time left, flags without ABSTIME and CANCEL_ON_SET).
     */
    static Records.FdState parse(int fd, int kind, List<String> fdinfo, long realtimeNanos) {
        Map<String, String> f = new HashMap<>();
        List<Records.EpollTarget> targets = new ArrayList<>();
        for (String line : fdinfo) {
            if (line.startsWith("tfd:")) {
                targets.add(epollTarget(line));
                continue;
            }
            int c = line.indexOf(':');
            if (c > 0) f.put(line.substring(0, c).trim(), line.substring(c + 1).trim());
        }
        return switch (kind) {
            case Records.FD_EVENTFD -> new Records.EventFd(fd, Long.parseUnsignedLong(need(f, "eventfd-count", fd)),
                    "1".equals(f.get("eventfd-semaphore")));
            case Records.FD_SIGNALFD -> new Records.SignalFd(fd, Long.parseUnsignedLong(need(f, "sigmask", fd), 16));
            case Records.FD_EPOLL -> new Records.Epoll(fd, List.copyOf(targets));
            case Records.FD_TIMERFD -> {
                int clock = Integer.parseInt(need(f, "clockid", fd));
                int flags = Integer.parseInt(need(f, "settime flags", fd), 8);
                long[] value = pair(need(f, "it_value", fd)), interval = pair(need(f, "it_interval", fd));
                boolean armed = value[0] != 0 || value[1] != 0;
                if ((flags & TFD_TIMER_ABSTIME) != 0 && armed && (clock == CLOCK_REALTIME || clock == CLOCK_REALTIME_ALARM)) {
                    long abs = realtimeNanos + value[0] * 1_000_000_000L + value[1];
                    value = new long[] {Math.floorDiv(abs, 1_000_000_000L), Math.floorMod(abs, 1_000_000_000L)};
                } else {
                    flags = 0; // relative to the restore: a monotonic deadline means nothing after another boot
                }
                yield new Records.TimerFd(fd, clock, Long.parseUnsignedLong(need(f, "ticks", fd)), flags, value[0], value[1],
                        interval[0], interval[1]);
            }
            default -> throw new IllegalArgumentException("fd kind " + kind + " is not an anonymous inode");
        };
    }

    /** "tfd:        8 events:       19 data:             1003  pos:0 ino:281f54 sdev:f" (hex but tfd and pos). */
    static Records.EpollTarget epollTarget(String line) {
        String[] w = line.trim().split("\\s+");
        int tfd = 0, events = 0;
        long data = 0, ino = 0;
        for (int i = 0; i < w.length; i++) {
            int c = w[i].indexOf(':');
            if (c < 0) continue;
            String key = w[i].substring(0, c), val = w[i].substring(c + 1);
            if (val.isEmpty() && i + 1 < w.length) val = w[++i]; // "tfd:   8" vs "pos:0"
            switch (key) {
                case "tfd" -> tfd = Integer.parseInt(val);
                case "events" -> events = Integer.parseUnsignedInt(val, 16);
                case "data" -> data = Long.parseUnsignedLong(val, 16);
                case "ino" -> ino = Long.parseUnsignedLong(val, 16);
                default -> { }
            }
        }
        return new Records.EpollTarget(tfd, ino, events, data);
    }

    /** "(12, 345)" -> {12, 345}. */
    private static long[] pair(String s) {
        String[] p = s.replace("(", "").replace(")", "").split(",");
        return new long[] {Long.parseLong(p[0].trim()), Long.parseLong(p[1].trim())};
    }

    private static String need(Map<String, String> f, String key, int fd) {
        String v = f.get(key);
        if (v == null) throw new IllegalArgumentException("fdinfo of fd " + fd + " has no '" + key + "' line");
        return v;
    }

    /**
     * An epoll set is made again by the first process (tree order) that holds its open file description,
     * with epoll_ctl on the fd numbers the targets were added by: each must be an fd of that process that is
     * still the same file (inode). fdsByPid carries fileIds; states are the FdState records by pid.
     */
    static void checkEpolls(Map<Integer, List<Records.Fd>> fdsByPid, Map<Integer, List<Records.FdState>> states)
            throws CheckpointException {
        java.util.Set<Integer> seen = new java.util.HashSet<>();
        for (var e : fdsByPid.entrySet()) {
            int pid = e.getKey();
            Map<Integer, Records.Fd> byFd = new HashMap<>();
            for (Records.Fd f : e.getValue()) byFd.put(f.fd(), f);
            for (Records.FdState s : states.getOrDefault(pid, List.of())) {
                if (!(s instanceof Records.Epoll ep)) continue;
                Records.Fd self = byFd.get(ep.fd());
                if (self == null || (self.fileId() != 0 && !seen.add(self.fileId()))) continue;
                for (Records.EpollTarget t : ep.targets()) {
                    Records.Fd tf = byFd.get(t.tfd());
                    if (tf == null || tf.inode() != t.inode()) {
                        throw CheckpointException.unsupported("process " + pid + " fd " + ep.fd() + " is an epoll set watching "
                                + "the file of inode " + t.inode() + " that was added as fd " + t.tfd() + ", but fd " + t.tfd()
                                + (tf == null ? " is closed now" : " is another file now (" + tf.path() + ")")
                                + ": the set cannot be rebuilt; not supported");
                    }
                }
            }
        }
    }
}
