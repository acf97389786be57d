package ssi.launcher;

import ssi.comm.control.ControlMessages;
import ssi.comm.control.ControlMessages.Reply;
import ssi.comm.control.ControlMessages.Request;

import java.io.IOException;
import java.net.SocketTimeoutException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.channels.SocketChannel;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.OptionalInt;
import java.util.SortedSet;
import java.util.TreeSet;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Small helpers to talk to node daemons without ever hanging the CLI: a request with a deadline (a
 * watchdog thread closes the connection, which unblocks the read), PING probes, and the node ids that
 * have sockets of a given kind in a run directory.
 */
final class NodeProbe {
    private NodeProbe() {}

    private static final Pattern SOCKET = Pattern.compile("node-(\\d{1,3})\\.(ctl|launch|link)");

    /**
     * Sends one request and waits at most {@code timeout} for the reply. ControlClient has no timeout
     * of its own (the CLI usually wants to wait for a slow cluster-wide answer), so a hung daemon would
     * hang ssi forever without this.
     */
    static Reply call(ControlSource.Connection connection, Request request, Duration timeout) throws IOException {
        AtomicBoolean timedOut = new AtomicBoolean();
        Thread watchdog = Thread.ofPlatform().daemon().name("ssi-timeout").start(() -> {
            try {
                Thread.sleep(timeout);
                timedOut.set(true);
                connection.close();
            } catch (InterruptedException done) {
                // the reply came in time
            }
        });
        try {
            return connection.call(request);
        } catch (IOException e) {
            if (timedOut.get()) {
                throw new SocketTimeoutException("no answer within " + seconds(timeout));
            }
            throw e;
        } finally {
            watchdog.interrupt();
        }
    }

    /** The node id the daemon behind {@code socket} reports, or empty when nothing answers PING in time. */
    static OptionalInt ping(ControlSource source, Path socket, Duration timeout) {
        if (!Files.exists(socket)) return OptionalInt.empty();
        try (ControlSource.Connection c = source.open(socket)) {
            Reply r = call(c, new ControlMessages.Ping(), timeout);
            return r.isOk() ? OptionalInt.of(r.nodeId()) : OptionalInt.empty();
        } catch (IOException e) {
            return OptionalInt.empty();
        }
    }

    /** Ids N of the files node-N.{@code kind} in dir (kind: ctl, launch or link); empty if dir is missing. */
    static SortedSet<Integer> socketIds(Path dir, String kind) {
        SortedSet<Integer> ids = new TreeSet<>();
        if (!Files.isDirectory(dir)) return ids;
        try (DirectoryStream<Path> files = Files.newDirectoryStream(dir, "node-*." + kind)) {
            for (Path f : files) {
                Matcher m = SOCKET.matcher(f.getFileName().toString());
                if (m.matches() && m.group(2).equals(kind)) ids.add(Integer.parseInt(m.group(1)));
            }
        } catch (IOException e) {
            // an unreadable run dir simply has no sockets we could use; callers report "not running"
        }
        return ids;
    }

    /**
     * Whether something listens on a UNIX socket (a plain connect, closed at once). Used for the shim's
     * launch socket, which speaks no PING; a listener that is gone refuses the connection at once.
     */
    static boolean accepts(Path socket) {
        if (!Files.exists(socket)) return false;
        try (SocketChannel ch = SocketChannel.open(StandardProtocolFamily.UNIX)) {
            ch.connect(UnixDomainSocketAddress.of(socket));
            return true;
        } catch (IOException e) {
            return false;
        }
    }

    /** Whether node's daemon answers PING or its shim still accepts launches. */
    static boolean alive(ControlSource source, Path runDir, int node, Duration timeout) {
        return ping(source, ControlSource.socketOf(runDir, node), timeout).isPresent()
                || accepts(runDir.resolve("node-" + node + ".launch"));
    }

    /**
     * Deletes the sockets (ctl, launch, link) of every node that is not alive: their files outlive a
     * crashed node and would make the next daemon's bind fail. Returns the files it deleted.
     */
    static List<Path> removeStale(ControlSource source, Path runDir, Duration timeout) {
        SortedSet<Integer> ids = socketIds(runDir, "ctl");
        ids.addAll(socketIds(runDir, "launch"));
        ids.addAll(socketIds(runDir, "link"));
        List<Path> removed = new ArrayList<>();
        for (int id : ids) {
            if (alive(source, runDir, id, timeout)) continue;
            for (String kind : new String[] {"ctl", "launch", "link"}) {
                Path f = runDir.resolve("node-" + id + "." + kind);
                try {
                    if (Files.deleteIfExists(f)) removed.add(f);
                } catch (IOException e) {
                    // not ours to delete (another user's run dir?); the next start reports the real problem
                }
            }
        }
        return removed;
    }

    /** Shortest wait a probe gets, even at a deadline: a 0 s probe fails for sure and proves nothing. */
    static final Duration MIN_PROBE = Duration.ofMillis(250);

    /** Time left until deadlineNanos (a System.nanoTime value), never negative. */
    static Duration remaining(long deadlineNanos) {
        return Duration.ofNanos(Math.max(0, deadlineNanos - System.nanoTime()));
    }

    /**
     * Timeout of one probe made while polling towards a deadline: what is left, but at least
     * {@link #MIN_PROBE} and at most max. The last poll may overrun the deadline by up to max.
     */
    static Duration probeTimeout(long deadlineNanos, Duration max) {
        Duration left = remaining(deadlineNanos);
        if (left.compareTo(MIN_PROBE) < 0) left = MIN_PROBE;
        return left.compareTo(max) > 0 ? max : left;
    }

    /** Pause between two polls: period, or less when the deadline is nearer. */
    static void pause(long deadlineNanos, Duration period) throws InterruptedException {
        Duration left = remaining(deadlineNanos);
        Thread.sleep(left.compareTo(period) < 0 ? left : period);
    }

    /** "20 s", "1.5 s": how timeouts appear in messages. */
    static String seconds(Duration d) {
        long ms = d.toMillis();
        return ms % 1000 == 0 ? (ms / 1000) + " s" : String.format("%.1f s", ms / 1000.0);
    }
}
