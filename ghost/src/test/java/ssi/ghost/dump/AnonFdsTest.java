package ssi.ghost.dump;

import org.junit.jupiter.api.Test;
import ssi.ghost.image.Records;

import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.*;

/**
 * The fdinfo texts of eventfd, timerfd, signalfd and epoll, and /proc/PID/timers, as kernel 6.18 prints
 * them, read into records; the epoll check refuses a set whose watched fd was closed or reused.
 */
class AnonFdsTest {
    private static List<String> lines(String s) {
        return List.of(s.split("\n"));
    }

    @Test
    void kindsByLinkTarget() {
        assertEquals(Records.FD_EVENTFD, AnonFds.kind("anon_inode:[eventfd]"));
        assertEquals(Records.FD_TIMERFD, AnonFds.kind("anon_inode:[timerfd]"));
        assertEquals(Records.FD_SIGNALFD, AnonFds.kind("anon_inode:[signalfd]"));
        assertEquals(Records.FD_EPOLL, AnonFds.kind("anon_inode:[eventpoll]"));
        assertEquals(0, AnonFds.kind("anon_inode:inotify"));
        assertEquals(0, AnonFds.kind("anon_inode:[pidfd]"));
    }

    @Test
    void eventfd() {
        String info = "pos:\t0\nflags:\t02004002\nmnt_id:\t17\nino:\t1039\neventfd-count:                7\neventfd-id: 11\n"
                + "eventfd-semaphore: 0\n";
        assertEquals(new Records.EventFd(3, 7, false), AnonFds.parse(3, Records.FD_EVENTFD, lines(info), 0));
        String sem = info.replace("count:                7", "count: ffffffffffffffff".replace("ffffffffffffffff", "18446744073709551614"))
                .replace("semaphore: 0", "semaphore: 1");
        assertEquals(new Records.EventFd(4, -2, true), AnonFds.parse(4, Records.FD_EVENTFD, lines(sem), 0));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> AnonFds.parse(3, Records.FD_EVENTFD, lines("pos:\t0\nflags:\t02\n"), 0));
        assertTrue(e.getMessage().contains("eventfd-count"), e.getMessage());
    }

    @Test
    void timerfdRelativeAndAbsolute() {
        String info = "pos:\t0\nflags:\t04002\nmnt_id:\t17\nino:\t1039\nclockid: 1\nticks: 2\nsettime flags: 00\n"
                + "it_value: (0, 15759371)\nit_interval: (0, 20000000)\n";
        assertEquals(new Records.TimerFd(5, 1, 2, 0, 0, 15_759_371, 0, 20_000_000),
                AnonFds.parse(5, Records.FD_TIMERFD, lines(info), 123));
        // ABSTIME on a monotonic clock: recorded relative, the flag dropped
        String absMono = info.replace("settime flags: 00", "settime flags: 01");
        assertEquals(0, ((Records.TimerFd) AnonFds.parse(5, Records.FD_TIMERFD, lines(absMono), 123)).settimeFlags());
        // ABSTIME (and CANCEL_ON_SET) on CLOCK_REALTIME: the absolute deadline kept
        String absReal = info.replace("clockid: 1", "clockid: 0").replace("settime flags: 00", "settime flags: 03")
                .replace("(0, 15759371)", "(2, 900000000)");
        long now = 1_700_000_000L * 1_000_000_000L + 200_000_000L;
        assertEquals(new Records.TimerFd(5, 0, 2, 3, 1_700_000_003L, 100_000_000, 0, 20_000_000),
                AnonFds.parse(5, Records.FD_TIMERFD, lines(absReal), now));
    }

    @Test
    void signalfdAndEpoll() {
        assertEquals(new Records.SignalFd(6, 0x200), AnonFds.parse(6, Records.FD_SIGNALFD,
                lines("pos:\t0\nflags:\t04002\nmnt_id:\t17\nino:\t1039\nsigmask:\t0000000000000200\n"), 0));
        String ep = "pos:\t0\nflags:\t02000002\nmnt_id:\t17\nino:\t1039\n"
                + "tfd:        8 events:       19 data:             1003  pos:0 ino:281f54 sdev:f\n"
                + "tfd:        3 events: 80000019 data: ffffffffffffffff  pos:0 ino:40f sdev:10\n";
        assertEquals(new Records.Epoll(7, List.of(new Records.EpollTarget(8, 0x281f54, 0x19, 0x1003),
                        new Records.EpollTarget(3, 0x40f, 0x80000019, -1L))),
                AnonFds.parse(7, Records.FD_EPOLL, lines(ep), 0));
        assertEquals(new Records.Epoll(7, List.of()), AnonFds.parse(7, Records.FD_EPOLL, lines("pos:\t0\nflags:\t02\n"), 0));
    }

    @Test
    void anEpollSetWhoseWatchedFdIsGoneIsRefused() throws CheckpointException {
        Records.Fd ep = new Records.Fd(7, Records.FD_EPOLL, 2, false, 0, "anon_inode:[eventpoll]", 1039, -1, -1, 0).withFileId(1);
        Records.Fd pipe = new Records.Fd(8, Records.FD_PIPE, 0, false, 0, "pipe:[99]", 99, -1, -1, 0).withFileId(2);
        Records.Fd file = new Records.Fd(9, Records.FD_REG, 0, false, 0, "/tmp/x", 5, -1, -1, 0).withFileId(3);
        Records.Epoll set = new Records.Epoll(7, List.of(new Records.EpollTarget(8, 99, 1, 0)));
        AnonFds.checkEpolls(Map.of(100, List.of(ep, pipe)), Map.of(100, List.of(set)));
        CheckpointException closed = assertThrows(CheckpointException.class,
                () -> AnonFds.checkEpolls(Map.of(100, List.of(ep)), Map.of(100, List.of(set))));
        assertTrue(closed.getMessage().contains("process 100 fd 7 is an epoll set watching the file of inode 99 that was added "
                + "as fd 8, but fd 8 is closed now"), closed.getMessage());
        Records.Fd reused = new Records.Fd(8, Records.FD_REG, 0, false, 0, "/tmp/x", 5, -1, -1, 0).withFileId(3);
        CheckpointException other = assertThrows(CheckpointException.class,
                () -> AnonFds.checkEpolls(Map.of(100, List.of(ep, reused, file)), Map.of(100, List.of(set))));
        assertTrue(other.getMessage().contains("fd 8 is another file now (/tmp/x)"), other.getMessage());
    }

    @Test
    void posixTimersOfProc() {
        String t = "ID: 1\nsignal: 0/0000000000000000\nnotify: none/pid.19711\nClockID: 0\n"
                + "ID: 0\nsignal: 35/000000000000004d\nnotify: signal/pid.19711\nClockID: 1\n"
                + "ID: 2\nsignal: 34/00007f0000001000\nnotify: signal/tid.19712\nClockID: 1\n";
        assertEquals(List.of(new PosixTimers.Listed(1, 0, 0, Records.SIGEV_NONE, 19711, 0),
                new PosixTimers.Listed(0, 35, 0x4d, Records.SIGEV_SIGNAL, 19711, 1),
                new PosixTimers.Listed(2, 34, 0x7f0000001000L, Records.SIGEV_THREAD_ID, 19712, 1)),
                PosixTimers.parse(lines(t)));
    }
}
