package ssi.launcher;

import org.junit.jupiter.api.Test;
import ssi.comm.control.ControlMessages.NodeInfo;
import ssi.comm.control.ControlMessages.ProcessInfo;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

/** `ssi ps` filters and -o columns, and the `ssi nodes` table, on canned replies. */
class PsTableTest {
    // gpid, ppid, pgid, sid, node, uid, user, state, cpuMillis, rssKiB, command
    private static final ProcessInfo BASH = new ProcessInfo(16385, 1, 16385, 16385, 1, 0, "root", "Ss", 1500, 3200, "-bash");
    private static final ProcessInfo MAKE = new ProcessInfo(32769, 16385, 32769, 16385, 2, 1000, "alice", "S+", 61_000,
            10_240, "make -j4");
    private static final ProcessInfo CC = new ProcessInfo(16400, 32769, 32769, 16385, 1, 1000, "alice", "R+", 90_061_000L,
            123_456, "cc -c big.c");
    private static final ProcessInfo SLEEP = new ProcessInfo(49153, 16385, 49153, 16385, 3, 1001, "bob", "S", 0, 512, "sleep 100");
    private static final List<ProcessInfo> ALL = List.of(SLEEP, MAKE, BASH, CC); // unsorted, as a reply may be

    private static List<Integer> gpids(List<ProcessInfo> l) {
        return l.stream().map(ProcessInfo::gpid).toList();
    }

    @Test
    void noFilterShowsEverythingSortedByGpid() {
        assertEquals(List.of(16385, 16400, 32769, 49153), gpids(PsTable.select(ALL, List.of(), List.of(), List.of())));
    }

    @Test
    void usersByNameOrUid() {
        assertEquals(List.of(16400, 32769), gpids(PsTable.select(ALL, List.of("alice"), List.of(), List.of())));
        assertEquals(List.of(16400, 32769), gpids(PsTable.select(ALL, List.of("1000"), List.of(), List.of())));
        assertEquals(List.of(16385, 49153), gpids(PsTable.select(ALL, List.of("root", "1001"), List.of(), List.of())));
        assertEquals(List.of(), gpids(PsTable.select(ALL, List.of("nobody"), List.of(), List.of())));
    }

    @Test
    void gpidsAndUsersSelectInclusivelyAsInPs() {
        assertEquals(List.of(16385, 49153), gpids(PsTable.select(ALL, List.of(), List.of(49153, 16385, 7), List.of())));
        assertEquals(List.of(16400, 32769, 49153), gpids(PsTable.select(ALL, List.of("alice"), List.of(49153), List.of())));
    }

    @Test
    void onRestrictsToNodes() {
        assertEquals(List.of(16385, 16400), gpids(PsTable.select(ALL, List.of(), List.of(), List.of(1))));
        assertEquals(List.of(16400), gpids(PsTable.select(ALL, List.of("alice"), List.of(), List.of(1))));
        assertEquals(List.of(32769, 49153), gpids(PsTable.select(ALL, List.of(), List.of(), List.of(2, 3))));
        assertEquals(List.of(), gpids(PsTable.select(ALL, List.of("bob"), List.of(), List.of(1))));
    }

    @Test
    void defaultColumns() {
        String out = PsTable.render(PsTable.DEFAULT, PsTable.select(ALL, List.of(), List.of(), List.of()));
        assertEquals(""
                + " GPID NODE  PPID USER  STAT       TIME CMD\n"
                + "16385    1     1 root  Ss     00:00:01 -bash\n"
                + "16400    1 32769 alice R+   1-01:01:01 cc -c big.c\n"
                + "32769    2 16385 alice S+     00:01:01 make -j4\n"
                + "49153    3 16385 bob   S      00:00:00 sleep 100\n", out);
    }

    @Test
    void chosenColumnsInTheGivenOrder() {
        List<PsTable.Column> cols = PsTable.columns(List.of("cmd,uid", "RSS", "pgid,sid"));
        assertEquals(List.of(PsTable.Column.CMD, PsTable.Column.UID, PsTable.Column.RSS, PsTable.Column.PGID,
                PsTable.Column.SID), cols);
        assertEquals(""
                + "CMD          UID    RSS  PGID   SID\n"
                + "-bash          0   3200 16385 16385\n"
                + "cc -c big.c 1000 123456 32769 16385\n", PsTable.render(cols, List.of(BASH, CC)));
    }

    @Test
    void everyColumnAndPsAliases() {
        assertEquals(List.of(PsTable.Column.values()),
                PsTable.columns(List.of("gpid,node,ppid,pgid,sid,user,uid,stat,time,rss,cmd")));
        assertEquals(List.of(PsTable.Column.GPID, PsTable.Column.CMD, PsTable.Column.STAT, PsTable.Column.TIME),
                PsTable.columns(List.of("pid,args,state,cputime")));
        String header = PsTable.render(List.of(PsTable.Column.values()), List.of()).strip();
        assertEquals("GPID NODE PPID PGID SID USER UID STAT TIME RSS CMD", header);
    }

    @Test
    void badColumns() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> PsTable.columns(List.of("gpid,wchan")));
        assertEquals("unknown column 'wchan' (known: gpid,node,ppid,pgid,sid,user,uid,stat,time,rss,cmd)", e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> PsTable.columns(List.of("gpid,")));
    }

    @Test
    void cpuTimeFormat() {
        assertEquals("00:00:00", PsTable.cpuTime(0));
        assertEquals("00:00:00", PsTable.cpuTime(999));
        assertEquals("00:00:01", PsTable.cpuTime(1000));
        assertEquals("01:00:00", PsTable.cpuTime(3_600_000));
        assertEquals("23:59:59", PsTable.cpuTime(86_399_000));
        assertEquals("1-00:00:00", PsTable.cpuTime(86_400_000));
        assertEquals("12-03:04:05", PsTable.cpuTime((12L * 86400 + 3 * 3600 + 4 * 60 + 5) * 1000));
        assertEquals("00:00:00", PsTable.cpuTime(-5));
    }

    @Test
    void nodesTable() {
        String out = NodesCommand.format(List.of(
                new NodeInfo(2, "127.0.0.1:7702", "UP", 1.234, 16L << 30, 4L << 30, 42),
                new NodeInfo(1, "127.0.0.1:7701", "SELF", 0.0, 8L << 30, (8L << 30) - (512L << 20), 7),
                new NodeInfo(3, "127.0.0.1:7703", "DOWN", 0.0, 0, 0, 0)));
        assertEquals(""
                + "ID ADDRESS        STATE LOAD       MEM PROCS\n"
                + " 1 127.0.0.1:7701 SELF  0.00 512M/8.0G     7\n"
                + " 2 127.0.0.1:7702 UP    1.23   12G/16G    42\n"
                + " 3 127.0.0.1:7703 DOWN     -         -     -\n", out);
    }

    @Test
    void humanSizes() {
        assertEquals("0B", TextTable.human(0));
        assertEquals("1023B", TextTable.human(1023));
        assertEquals("1.0K", TextTable.human(1024));
        assertEquals("1.5K", TextTable.human(1536));
        assertEquals("10K", TextTable.human(10 * 1024));
        assertEquals("1.0M", TextTable.human(1024 * 1024 - 1)); // not "1024K"
        assertEquals("7.8G", TextTable.human(8_330_000_000L));
        assertEquals("512G", TextTable.human(512L << 30));
        assertEquals("2.0T", TextTable.human(2L << 40));
    }
}
