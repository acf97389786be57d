package ssi.supervisor;

import java.nio.file.Path;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.atomic.AtomicInteger;

/** One daemon's request-handling stack over the host's /proc, as NodeDaemon wires it, minus the sockets. */
final class TestNode implements AutoCloseable {
    final int id;
    final ProcessTable table;
    final CapabilityTable caps;
    final NativeSignals natives = new NativeSignals();
    final LocalNode local;
    final ControlService service;
    final NodeRpcHandler rpc;
    final SignalDelivery delivery;
    final ExecutorService workers = Executors.newFixedThreadPool(4);
    final NodeLog log;
    final AtomicInteger shutdowns = new AtomicInteger();

    TestNode(int id, PidLayout layout, Cluster cluster, long killGraceMillis) {
        this.id = id;
        this.log = new NodeLog(id);
        this.table = new ProcessTable(Path.of("/proc"), layout, new UserNames(Path.of("/etc/passwd")), 100);
        this.caps = new CapabilityTable(table);
        this.local = new LocalNode(id, table, layout, caps, natives, log);
        this.service = new ControlService(local, cluster, layout, workers, 5_000, killGraceMillis, log);
        this.delivery = new SignalDelivery(table, layout, natives);
        this.rpc = new NodeRpcHandler(delivery, 10_000, shutdowns::incrementAndGet, log);
        rpc.serve(service);
    }

    /** True when the tests run as root (real uid 0), which signalling other users' processes needs. */
    static boolean isRoot() {
        return ProcessTableTest.hostTable().read((int) ProcessHandle.current().pid()).ruid() == 0;
    }

    @Override
    public void close() {
        workers.shutdownNow();
    }
}
