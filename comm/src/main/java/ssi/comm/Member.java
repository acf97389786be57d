package ssi.comm;

/**
 * A snapshot of one node as this node sees it. lastHeardMillis is the wall-clock time (epoch ms) of the
 * last authenticated frame from that node, 0 if none was ever heard; for SELF it is the snapshot time.
 */
public record Member(int id, NodeAddress address, NodeState state, long lastHeardMillis) {}
