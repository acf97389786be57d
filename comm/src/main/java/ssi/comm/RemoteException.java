package ssi.comm;

import java.io.IOException;

/**
 * The remote node's {@link RpcHandler} threw. getMessage() is the handler exception's message, unchanged;
 * {@link #remoteClass()} names its class on the remote side.
 */
public class RemoteException extends IOException {
    private final int nodeId;
    private final String remoteClass;

    public RemoteException(int nodeId, String remoteClass, String message) {
        super(message);
        this.nodeId = nodeId;
        this.remoteClass = remoteClass;
    }

    /** The node whose handler failed. */
    public int nodeId() { return nodeId; }

    /** Fully qualified class name of the exception the handler threw. */
    public String remoteClass() { return remoteClass; }
}
