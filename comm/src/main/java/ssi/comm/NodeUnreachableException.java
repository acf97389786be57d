package ssi.comm;

import java.io.IOException;

/**
 * A call could not reach its node or got no answer: unknown id, the node is DOWN or not connected, the link
 * dropped while the call was pending, or no reply came within rpcTimeoutMillis. The call may or may not have
 * run on the remote node.
 */
public class NodeUnreachableException extends IOException {
    private final int nodeId;

    public NodeUnreachableException(int nodeId, String message) {
        super(message);
        this.nodeId = nodeId;
    }

    public NodeUnreachableException(int nodeId, String message, Throwable cause) {
        super(message, cause);
        this.nodeId = nodeId;
    }

    /** The node the call was meant for. */
    public int nodeId() { return nodeId; }
}
