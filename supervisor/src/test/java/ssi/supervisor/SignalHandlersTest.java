package ssi.supervisor;

import jnr.ffi.Memory;
import jnr.ffi.Pointer;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import ssi.comm.NodeState;
import ssi.shim.Notification;
import ssi.shim.SyscallTable;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.*;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * Trapped signal syscalls crossing nodes: node 1's SignalHandlers gets notifications as the shim would
 * send them (the "trapped process" is this JVM), node 2 delivers through rt_sigqueueinfo to real child
 * processes. Host pids in {@link #onNode2} belong to node 2; node 3 is down.
 */
class SignalHandlersTest {
    static final int SIGUSR1 = 10, SIGKILL = 9, SIGTERM = 15;
    static final int AUDIT_ARCH_X86_64 = 0xC000003E;
    static final Path PYTHON = Path.of("/usr/bin/python3");

    record Answer(long val, int error, boolean cont) {}

    final Set<Integer> onNode2 = ConcurrentHashMap.newKeySet();
    final List<Process> children = new ArrayList<>();
    final BlockingQueue<Answer> answers = new LinkedBlockingQueue<>();
    final int self = (int) ProcessHandle.current().pid();
    InMemoryCluster cluster;
    TestNode n1, n2;
    SignalHandlers handlers;
    long notifId;

    @BeforeEach
    void start() {
        PidLayout layout = TestLayouts.split(1, 2, onNode2);
        cluster = new InMemoryCluster().node(1, NodeState.UP).node(2, NodeState.UP).node(3, NodeState.DOWN);
        n1 = new TestNode(1, layout, cluster.viewFrom(1), 3_000);
        n2 = new TestNode(2, layout, cluster.viewFrom(2), 3_000);
        cluster.serve(1, n1.rpc);
        cluster.serve(2, n2.rpc);
        handlers = new SignalHandlers(1, layout, n1.table, cluster.viewFrom(1), n1.workers,
                (n, val, error, cont) -> answers.add(new Answer(val, error, cont)), SyscallTable.load(), 5_000, n1.log);
    }

    @AfterEach
    void stop() {
        children.forEach(Process::destroyForcibly);
        n1.close();
        n2.close();
        cluster.close();
    }

    Process spawnOnNode2(String... cmd) throws IOException {
        Process p = new ProcessBuilder(cmd).start();
        children.add(p);
        onNode2.add((int) p.pid());
        return p;
    }

    /** Traps syscall nr as called by this JVM and waits for the daemon's answer. */
    Answer trap(int nr, long... args) throws InterruptedException {
        long[] six = new long[6];
        System.arraycopy(args, 0, six, 0, args.length);
        handlers.onNotification(new Notification(7, ++notifId, self, nr, AUDIT_ARCH_X86_64, 0x401000, six));
        Answer a = answers.poll(10, TimeUnit.SECONDS);
        assertNotNull(a, "no answer to trapped syscall " + nr);
        return a;
    }

    static Answer errno(int e) { return new Answer(0, -e, false); }
    static final Answer OK = new Answer(0, 0, false);
    static final Answer CONTINUE = new Answer(0, 0, true);

    /** A python child that blocks SIGUSR1, says "ready", and prints si_code si_pid si_uid of the one it gets. */
    Process siginfoPrinter() throws Exception {
        assumeTrue(Files.isExecutable(PYTHON), "needs " + PYTHON);
        Process p = spawnOnNode2(PYTHON.toString(), "-c", String.join("\n",
                "import signal",
                "signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGUSR1])",
                "print('ready', flush=True)",
                "i = signal.sigwaitinfo([signal.SIGUSR1])",
                "print(i.si_code, i.si_pid, i.si_uid, flush=True)"));
        assertEquals("ready", line(p));
        return p;
    }

    static String line(Process p) throws Exception {
        BufferedReader r = new BufferedReader(new InputStreamReader(p.getInputStream()));
        return CompletableFuture.supplyAsync(() -> {
            try {
                return r.readLine();
            } catch (IOException e) {
                throw new RuntimeException(e);
            }
        }).get(10, TimeUnit.SECONDS);
    }

    static int ruid(int pid) {
        return ProcessTableTest.hostTable().read(pid).ruid();
    }

    @Test
    void killReachesTheOwnerNodeWithTheSendersIdentity() throws Exception {
        assumeTrue(TestNode.isRoot(), "needs root");
        Process p = siginfoPrinter();
        assertEquals(OK, trap(SignalHandlers.NR_KILL, p.pid(), SIGUSR1));
        assertEquals("-1 " + self + " " + ruid(self), line(p), "SI_QUEUE from this process's gpid and uid");
        assertTrue(p.waitFor(5, TimeUnit.SECONDS));
    }

    @Test
    void rtSigqueueinfoCarriesTheCallersSiginfo() throws Exception {
        assumeTrue(TestNode.isRoot(), "needs root");
        Process p = siginfoPrinter();
        Pointer info = Memory.allocateDirect(jnr.ffi.Runtime.getSystemRuntime(), SigInfo.SIZE);
        ByteBuffer b = ByteBuffer.allocate(SigInfo.SIZE).order(ByteOrder.LITTLE_ENDIAN)
                .putInt(0, 99).putInt(8, SigInfo.SI_QUEUE).putInt(16, 4242).putInt(20, 77).putLong(24, 5);
        info.put(0, b.array(), 0, SigInfo.SIZE);
        assertEquals(OK, trap(SignalHandlers.NR_RT_SIGQUEUEINFO, p.pid(), SIGUSR1, info.address()));
        assertEquals("-1 4242 77", line(p), "the caller's si_pid/si_uid travel as the kernel would keep them");

        info.putInt(8, 0); // SI_USER: only the kernel may claim it
        assertEquals(errno(1), trap(SignalHandlers.NR_RT_SIGQUEUEINFO, p.pid(), SIGUSR1, info.address()));
        info.putInt(8, SigInfo.SI_TKILL);
        assertEquals(errno(1), trap(SignalHandlers.NR_RT_SIGQUEUEINFO, p.pid(), SIGUSR1, info.address()));
        assertEquals(errno(14), trap(SignalHandlers.NR_RT_SIGQUEUEINFO, p.pid(), SIGUSR1, 0), "EFAULT for a bad pointer");
    }

    @Test
    void threadDirectedSignals() throws Exception {
        assumeTrue(TestNode.isRoot(), "needs root");
        Process a = spawnOnNode2("sleep", "60");
        Process b = spawnOnNode2("sleep", "60");
        assertEquals(OK, trap(SignalHandlers.NR_TGKILL, a.pid(), a.pid(), SIGTERM));
        assertEquals(OK, trap(SignalHandlers.NR_TKILL, b.pid(), SIGKILL));
        assertTrue(a.waitFor(5, TimeUnit.SECONDS) && b.waitFor(5, TimeUnit.SECONDS));
        assertEquals(128 + SIGTERM, a.exitValue());
        assertEquals(128 + SIGKILL, b.exitValue());
        Process c = spawnOnNode2("sleep", "60");
        assertEquals(errno(3), trap(SignalHandlers.NR_TGKILL, c.pid(), self, SIGTERM), "tid not in that thread group");
        assertTrue(c.isAlive());
    }

    @Test
    void processGroupOnAnotherNode() throws Exception {
        assumeTrue(TestNode.isRoot(), "needs root");
        Process leader = spawnOnNode2("setsid", "sleep", "60");
        ProcessTable.Entry e = null;
        for (int i = 0; i < 250; i++) {
            e = n2.table.read((int) leader.pid());
            if (e != null && e.comm().equals("sleep")) break;
            Thread.sleep(20);
        }
        assumeTrue(e != null && e.pgid() == leader.pid(), "setsid made the child a group leader");
        assertEquals(OK, trap(SignalHandlers.NR_KILL, -leader.pid(), SIGTERM));
        assertTrue(leader.waitFor(5, TimeUnit.SECONDS));
        assertEquals(errno(3), trap(SignalHandlers.NR_KILL, -leader.pid(), 0), "the group is empty now");
    }

    @Test
    void answersWithoutDelivering() throws Exception {
        Process p = spawnOnNode2("sleep", "60");
        assertEquals(OK, trap(SignalHandlers.NR_KILL, p.pid(), 0), "signal 0: it exists and we may");
        assertEquals(errno(3), trap(SignalHandlers.NR_KILL, (2L << 22) + 5, 0), "no such process on node 2");
        assertEquals(errno(3), trap(SignalHandlers.NR_KILL, (3L << 22) + 5, SIGTERM), "node 3 is down");
        assertEquals(errno(3), trap(SignalHandlers.NR_KILL, (9L << 22) + 5, SIGTERM), "no node 9");
        assertEquals(errno(22), trap(SignalHandlers.NR_KILL, p.pid(), 65), "bad signal number");
        assertEquals(errno(22), trap(SignalHandlers.NR_TKILL, 0, SIGTERM));
        assertEquals(CONTINUE, trap(SignalHandlers.NR_KILL, 0, 0), "own process group: native");
        assertEquals(CONTINUE, trap(SignalHandlers.NR_KILL, self, 0), "a pid of this node: native");
        assertEquals(OK, trap(SignalHandlers.NR_KILL, -1, 0), "kill(-1): answered by the daemons, never native");
        assertEquals(errno(38), trap(39 /* getpid */), "not a signal syscall");
        assertTrue(p.isAlive(), "nothing above delivered a signal to it");
    }

    @Test
    void theOwnerChecksTheSendersCredentials() throws Exception {
        assumeTrue(TestNode.isRoot(), "needs root");
        Process p = spawnOnNode2("sleep", "60");
        int pid = (int) p.pid();
        SignalOrder asUser = new SignalOrder(SignalOrder.Scope.PROCESS, pid, 0, SIGTERM, 5000, 1000, 1000, null);
        assertEquals(1, n2.delivery.deliver(asUser), "EPERM: uid 1000 may not signal root's process");
        SignalOrder setuidRoot = new SignalOrder(SignalOrder.Scope.PROCESS, pid, 0, 0, 5000, 1000, 0, null);
        assertEquals(0, n2.delivery.deliver(setuidRoot), "an effective uid of 0 may");
        SignalOrder realRootOnly = new SignalOrder(SignalOrder.Scope.PROCESS, pid, 0, 0, 5000, 0, 1000, null);
        assertEquals(0, n2.delivery.deliver(realRootOnly), "the real uid matches the target's");
        assertTrue(p.isAlive());
        // the same order through the RPC envelope
        byte[] reply = n2.rpc.handle(1, RpcEnvelope.signal(asUser));
        assertEquals(1, RpcEnvelope.decodeSignalReply(reply));
        assertTrue(p.isAlive());
    }
}
