package ssi.shim;

/**
 * Receives the notifications of a {@link ShimLink}. Called on the link's reader thread ("shim-link"),
 * one at a time: it must not block (answer with {@link ShimLink#reply}, or hand the work to another
 * thread), or every trapped process of the node waits behind it.
 */
@FunctionalInterface
public interface NotificationHandler {
    void handle(Notification n);
}
