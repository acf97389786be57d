package ssi.shim;

/**
 * The shim started a program for an ssi-run client (link LAUNCHED, 0x0004): from now on its trapped
 * syscalls arrive as notifications of listenerId. Immutable.
 *
 * @param pid  the program's pid in the node namespace (a gpid)
 * @param path the program path as the client gave it
 */
public record Launched(int pid, int uid, int gid, int listenerId, String path) {}
