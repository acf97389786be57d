package ssi.shim;

/**
 * A thread's rseq registration as PTRACE_GET_RSEQ_CONFIGURATION reports it (link request GETRSEQ):
 * the area's address (0: none registered), its registered length, the abort signature and the flags.
 * An immutable value.
 */
public record Rseq(long pointer, int size, int signature, int flags) {
    /** Is an rseq area registered? */
    public boolean registered() {
        return pointer != 0;
    }
}
