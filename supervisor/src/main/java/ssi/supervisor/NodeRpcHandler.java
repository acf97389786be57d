package ssi.supervisor;

import ssi.comm.RpcHandler;
import ssi.comm.control.ControlCodec;
import ssi.comm.control.ControlMessages.Reply;

import java.io.IOException;
import java.util.concurrent.TimeUnit;

/**
 * Serves the RPCs other daemons send to this one (see {@link RpcEnvelope}): control requests, answered
 * locally only, and trapped signals to deliver here. Runs on comm's worker executor; it may block there
 * for as long as a local SHUTDOWN takes (the kill grace time).
 */
final class NodeRpcHandler implements RpcHandler {
    /** After a remote SHUTDOWN, how long the reply gets to leave before this daemon stops. */
    private static final long STOP_DELAY_MILLIS = 300;

    private volatile ControlService service;
    private final SignalDelivery signals;
    private final long answerTimeoutMillis;
    private final Runnable onShutdown;
    private final NodeLog log;

    private volatile Locations locations;
    private volatile ssi.supervisor.Cluster cluster;

    NodeRpcHandler(SignalDelivery signals, long answerTimeoutMillis, Runnable onShutdown, NodeLog log) {
        this.signals = signals;
        this.answerTimeoutMillis = answerTimeoutMillis;
        this.onShutdown = onShutdown;
        this.log = log;
    }

    /** Starts answering control requests (until then they fail: the node is still starting). */
    void serve(ControlService service) {
        this.service = service;
    }

    /** Where gpids went (MOVED), and the cluster to forward a signal for one there. */
    void route(Locations locations, ssi.supervisor.Cluster cluster) {
        this.locations = locations;
        this.cluster = cluster;
    }

    @Override
    public byte[] handle(int fromNode, byte[] request) throws Exception {
        RpcEnvelope.Message m = RpcEnvelope.decode(request);
        Locations where = locations;
        if (m.moved() != null) {
            if (where != null) where.moved(m.moved().node(), m.moved().gpids());
            return new byte[0];
        }
        if (m.signal() != null) {
            int errno = signals.deliver(m.signal());
            // a process of this node's range restarted elsewhere: the birth node forwards, once
            int target = Math.abs(m.signal().pid());
            int to = where == null || errno != 3 || target == 0 ? 0 : where.movedTo(target);
            if (to != 0 && to != fromNode && cluster != null) {
                return cluster.call(to, request).get(answerTimeoutMillis, TimeUnit.MILLISECONDS);
            }
            return RpcEnvelope.signalReply(errno);
        }
        ControlService service = this.service;
        if (service == null) throw new IOException("node daemon is still starting; try again");
        Reply reply = service.handle(new Caller(m.callerUid(), 0), m.control(), true)
                .get(answerTimeoutMillis, TimeUnit.MILLISECONDS);
        if (ControlService.stopsNode(m.control(), reply)) {
            log.info("node " + fromNode + " asked this node to shut down");
            // comm sends the reply after this method returns; give it a moment before closing the transport
            Thread.ofPlatform().name("ssid-stop").daemon().start(() -> {
                try {
                    Thread.sleep(STOP_DELAY_MILLIS);
                } catch (InterruptedException ignored) {
                    // stop now
                }
                onShutdown.run();
            });
        }
        return ControlCodec.encodeReply(m.control().type(), reply);
    }
}
