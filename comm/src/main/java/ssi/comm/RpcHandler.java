package ssi.comm;

/**
 * Serves the calls peers make to this node. Runs on a comm worker thread (ssi-comm-rpc-N), never on an
 * event loop, so it may block; several calls may run at once. Whatever it throws goes back to the caller
 * as a {@link RemoteException} carrying the exception's message. Only authenticated peers reach it;
 * fromNode is the id the peer proved with the cluster secret.
 */
@FunctionalInterface
public interface RpcHandler {
    byte[] handle(int fromNode, byte[] request) throws Exception;
}
