package ssi.supervisor;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import ssi.comm.control.ControlMessages.ProcessInfo;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicReference;

import static org.junit.jupiter.api.Assertions.*;

/** ProcessTable on the host's real /proc (every pid counts as a cluster pid here) and on a hand-made one. */
class ProcessTableTest {
    private final List<Process> children = new ArrayList<>();

    @AfterEach
    void killChildren() {
        children.forEach(Process::destroyForcibly);
    }

    private Process spawn(String... cmd) throws IOException {
        Process p = new ProcessBuilder(cmd).start();
        children.add(p);
        return p;
    }

    static ProcessTable hostTable() {
        return new ProcessTable(Path.of("/proc"), TestLayouts.everyPidOn(1), new UserNames(Path.of("/etc/passwd")), 100);
    }

    /** Polls until the child has exec'd (its cmdline is the program's) and sleeps. */
    private static ProcessInfo awaitSleeping(ProcessTable table, long pid, String command) throws InterruptedException {
        for (int i = 0; i < 200; i++) {
            for (ProcessInfo p : table.ps(1)) {
                if (p.gpid() == pid && p.command().equals(command) && p.state().equals("S")) return p;
            }
            Thread.sleep(20);
        }
        fail("process " + pid + " never showed as a sleeping '" + command + "'");
        return null;
    }

    @Test
    void readsARealChild() throws Exception {
        ProcessTable table = hostTable();
        Process child = spawn("sleep", "30");
        ProcessInfo p = awaitSleeping(table, child.pid(), "sleep 30");
        ProcessTable.Entry self = table.read((int) ProcessHandle.current().pid());
        assertNotNull(self);
        assertEquals(ProcessHandle.current().pid(), p.ppid(), "the child's parent is this JVM");
        assertEquals(self.ruid(), p.uid(), "the child runs as the test's uid");
        assertEquals(self.pgid(), p.pgid(), "ProcessBuilder children stay in our process group");
        assertEquals(self.sid(), p.sid());
        assertEquals(1, p.node());
        assertTrue(p.cpuMillis() >= 0 && p.cpuMillis() < 10_000, "cpu " + p.cpuMillis());
        assertTrue(p.rssKiB() > 0, "a running sleep has resident pages");
        if (self.ruid() == 0) assertEquals("root", p.user());

        ProcessTable.Entry e = table.read((int) child.pid());
        assertNotNull(e);
        assertEquals("sleep", e.comm());
        assertEquals(e.pid(), e.tgid());
        assertTrue(e.startTime() >= self.startTime(), "a child starts after its parent");

        child.destroyForcibly().waitFor();
        assertNull(table.read((int) child.pid()), "a reaped process reads as null");
        assertTrue(table.ps(1).stream().noneMatch(x -> x.gpid() == child.pid()));
    }

    @Test
    void zombieShowsWithCommInBrackets() throws Exception {
        ProcessTable table = hostTable();
        // The shell forks sleep 0 and then sleeps itself without reaping it: sleep 0 stays a zombie.
        Process sh = spawn("sh", "-c", "sleep 0 & exec sleep 30");
        ProcessInfo zombie = null;
        for (int i = 0; i < 200 && zombie == null; i++) {
            for (ProcessInfo p : table.ps(1)) {
                if (p.ppid() == sh.pid() && p.state().equals("Z")) zombie = p;
            }
            Thread.sleep(20);
        }
        assertNotNull(zombie, "the unreaped child shows as a zombie");
        assertEquals("[sleep]", zombie.command());
        assertEquals(0, zombie.rssKiB());
    }

    @Test
    void processesExitingDuringScansDoNotThrow() throws Exception {
        ProcessTable table = hostTable();
        AtomicBoolean stop = new AtomicBoolean();
        AtomicReference<Throwable> spawnError = new AtomicReference<>();
        Thread churn = new Thread(() -> {
            try {
                while (!stop.get()) new ProcessBuilder("true").start().waitFor();
            } catch (Exception e) {
                spawnError.set(e);
            }
        });
        churn.start();
        try {
            for (int i = 0; i < 100; i++) {
                List<ProcessInfo> ps = table.ps(1);
                assertFalse(ps.isEmpty());
                table.nodeStatus();
                table.all();
            }
        } finally {
            stop.set(true);
            churn.join();
        }
        assertNull(spawnError.get());
    }

    @Test
    void halfVanishedProcessesAreSkipped(@TempDir Path proc) throws Exception {
        String stat = "%d (a b) c) S 1 %d %d 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 1 0 12345 1000 10 18446744073709551615";
        String status = "Name:\tx\nTgid:\t%d\nUid:\t1000\t1001\t1002\t1003\nVmRSS:\t    2048 kB\n";
        // 100: complete
        Path p100 = Files.createDirectories(proc.resolve("100"));
        Files.writeString(p100.resolve("stat"), stat.formatted(100, 100, 100));
        Files.writeString(p100.resolve("status"), status.formatted(100));
        Files.write(p100.resolve("cmdline"), "prog\0--flag\0x y\0".getBytes());
        // 101: exited between reading stat and status
        Path p101 = Files.createDirectories(proc.resolve("101"));
        Files.writeString(p101.resolve("stat"), stat.formatted(101, 101, 101));
        // 102: the directory is listed but already empty
        Files.createDirectories(proc.resolve("102"));
        // 103: stat and status there, cmdline gone (exited before ps read it)
        Path p103 = Files.createDirectories(proc.resolve("103"));
        Files.writeString(p103.resolve("stat"), stat.formatted(103, 103, 103));
        Files.writeString(p103.resolve("status"), status.formatted(103));
        // 5: a node-internal pid, below the layout's cluster range
        Path p5 = Files.createDirectories(proc.resolve("5"));
        Files.writeString(p5.resolve("stat"), stat.formatted(5, 5, 5));
        Files.writeString(p5.resolve("status"), status.formatted(5));
        Files.writeString(proc.resolve("loadavg"), "1.25 0.50 0.10 2/300 999\n");
        Files.writeString(proc.resolve("meminfo"), "MemTotal:       1000 kB\nMemFree:         10 kB\nMemAvailable:    400 kB\n");
        Path passwd = proc.resolve("passwd");
        Files.writeString(passwd, "root:x:0:0::/root:/bin/sh\nalice:x:1000:1000::/home/alice:/bin/sh\n");

        PidLayout fromFifty = new PidLayout() {
            @Override public int nodeOf(int gpid) { return 1; }
            @Override public boolean isClusterPid(int pid) { return pid >= 50; }
        };
        ProcessTable table = new ProcessTable(proc, fromFifty, new UserNames(passwd), 100);
        List<ProcessInfo> ps = table.ps(3);
        assertEquals(1, ps.size(), "only the complete cluster process: " + ps);
        ProcessInfo p = ps.get(0);
        assertEquals(new ProcessInfo(100, 1, 100, 100, 3, 1000, "alice", "S", 3000, 2048, "prog --flag x y"), p);

        ProcessTable.Entry e = table.read(100);
        assertEquals("a b) c", e.comm(), "comm may hold spaces and parentheses");
        assertEquals(1001, e.euid());
        assertEquals(1002, e.suid());
        assertEquals(12345, e.startTime());
        assertNull(table.read(101));
        assertNull(table.read(102));
        assertNull(table.node(5), "node-internal pids are no cluster processes");

        ProcessTable.NodeStatus s = table.nodeStatus();
        assertEquals(1.25, s.load1());
        assertEquals(1000 * 1024, s.memTotalBytes());
        assertEquals(400 * 1024, s.memAvailableBytes());
        assertEquals(4, s.processes(), "100..103 are cluster pids that exist, 5 is not counted");
    }

    @Test
    void hostNodeStatusIsSane() {
        ProcessTable.NodeStatus s = hostTable().nodeStatus();
        assertTrue(s.memTotalBytes() > 0);
        assertTrue(s.memAvailableBytes() > 0 && s.memAvailableBytes() <= s.memTotalBytes());
        assertTrue(s.load1() >= 0);
        assertTrue(s.processes() >= 1);
    }

    @Test
    void unknownUidsShowAsNumbers(@TempDir Path dir) throws Exception {
        Path passwd = dir.resolve("passwd");
        Files.writeString(passwd, "# comment\nbob:x:1000:1000::/:/bin/sh\nbroken line\nbob2:x:1000:1::/:/bin/sh\n");
        UserNames names = new UserNames(passwd);
        assertEquals("bob", names.name(1000), "the first entry for a uid wins");
        assertEquals("4242", names.name(4242));
        Files.delete(passwd);
        assertEquals("1000", names.name(1000), "without a passwd file every user is a number");
    }

    @Test
    void readsOwnMemory() {
        ProcessTable table = hostTable();
        assertNull(table.readMemory((int) ProcessHandle.current().pid(), 0, 16), "page 0 is never mapped");
        assertNull(table.readMemory(Integer.MAX_VALUE, 4096, 16), "no such process");
    }
}
