package ssi.ghost.dump;

import ssi.ghost.image.Records;
import ssi.shim.Tracee;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.util.ArrayList;
import java.util.List;

/**
 * The POSIX timers (timer_create) of a process: id, signal and sigev_value, how they notify and the
 * clock from /proc/PID/timers, the time left and the interval from an injected timer_gettime, the
 * overrun count from an injected timer_getoverrun. Stateless; the checkpoint's thread, with the
 * process frozen and a scratch page mapped.
 */
final class PosixTimers {
    private PosixTimers() {}

    private static final int SYS_TIMER_GETTIME = 224, SYS_TIMER_GETOVERRUN = 225;

    /** What /proc/PID/timers says of one timer (the value comes from timer_gettime). */
    record Listed(int id, int signal, long sigval, int how, int tid, int clockId) {}

    /**
     * Parses /proc/PID/timers: per timer "ID: 0", "signal: 35/000000000000004d" (signal/sigev_value),
     * "notify: signal/pid.123" (signal, none or thread; "tid" when SIGEV_THREAD_ID), "ClockID: 1".
     */
    static List<Listed> parse(List<String> lines) {
        List<Listed> out = new ArrayList<>();
        int id = -1, signal = 0, how = 0, tid = 0;
        long sigval = 0;
        for (String raw : lines) {
            String line = raw.trim();
            int c = line.indexOf(':');
            if (c < 0) continue;
            String key = line.substring(0, c), val = line.substring(c + 1).trim();
            switch (key) {
                case "ID" -> id = Integer.parseInt(val);
                case "signal" -> {
                    int s = val.indexOf('/');
                    signal = Integer.parseInt(val.substring(0, s));
                    sigval = Long.parseUnsignedLong(val.substring(s + 1), 16);
                }
                case "notify" -> {
                    int s = val.indexOf('/'), d = val.indexOf('.', s);
                    String word = val.substring(0, s);
                    boolean thread = val.substring(s + 1, d).equals("tid");
                    how = switch (word) {
                        case "none" -> Records.SIGEV_NONE;
                        case "thread" -> 2; // SIGEV_THREAD: glibc's own, never seen by the kernel alone
                        default -> Records.SIGEV_SIGNAL;
                    } | (thread ? Records.SIGEV_THREAD_ID : 0);
                    tid = Integer.parseInt(val.substring(d + 1));
                }
                case "ClockID" -> {
                    out.add(new Listed(id, signal, sigval, how, tid, Integer.parseInt(val)));
                    id = -1;
                }
                default -> { }
            }
        }
        return out;
    }

    /** Every timer of pid with its current value, read through injected syscalls in thread t. */
    static List<Records.PosixTimer> dump(ProcFs fs, int pid, Tracee t, Scratch s) throws IOException {
        List<String> lines;
        try {
            lines = Files.readAllLines(fs.dir(pid).resolve("timers"));
        } catch (NoSuchFileException e) {
            return List.of();
        }
        List<Records.PosixTimer> out = new ArrayList<>();
        for (Listed l : parse(lines)) {
            s.call(t, "timer_gettime of timer " + l.id(), SYS_TIMER_GETTIME, l.id(), s.addr);
            ByteBuffer b = s.read(32);
            long overrun = s.call(t, "timer_getoverrun of timer " + l.id(), SYS_TIMER_GETOVERRUN, l.id());
            int how = l.how();
            if (how != Records.SIGEV_SIGNAL && how != Records.SIGEV_NONE && how != Records.SIGEV_THREAD_ID) {
                throw CheckpointException.unsupported("process " + pid + " has POSIX timer " + l.id() + " with sigev_notify "
                        + how + ": not supported");
            }
            out.add(new Records.PosixTimer(l.id(), l.clockId(), how, how == Records.SIGEV_THREAD_ID ? l.tid() : 0,
                    l.signal(), l.sigval(), b.getLong(16), b.getLong(24), b.getLong(0), b.getLong(8), (int) overrun));
        }
        return out;
    }
}
