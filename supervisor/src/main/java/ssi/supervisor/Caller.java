package ssi.supervisor;

/**
 * Who asked: the uid every permission check uses, and the caller's pid in this node's pid namespace
 * (0 when the caller runs outside the cluster, or when the request came from another node).
 */
record Caller(int uid, int pid) {}
