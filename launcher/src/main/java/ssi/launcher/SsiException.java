package ssi.launcher;

/**
 * An operation of the ssi CLI failed (exit status 1). It carries the three parts every ssi error
 * message has, so a person can act on it: what failed, why, and what to do about it. Printed by
 * {@link Ssi} as {@code ssi: <what>: <why>; <todo>}.
 */
final class SsiException extends Exception {
    private final String what;
    private final String why;
    private final String todo;

    SsiException(String what, String why, String todo) {
        super(what + ": " + why + (todo == null || todo.isEmpty() ? "" : "; " + todo));
        this.what = what;
        this.why = why;
        this.todo = todo;
    }

    String what() { return what; }

    String why() { return why; }

    String todo() { return todo; }
}
