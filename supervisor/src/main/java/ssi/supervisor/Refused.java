package ssi.supervisor;

import ssi.comm.control.ControlMessages.Reply;

/**
 * A request refused with an errno and a message a person can act on; becomes an error reply on the
 * control socket. Thrown by the local operations (capabilities, kill) on whatever thread runs them.
 */
final class Refused extends Exception {
    private static final long serialVersionUID = 1L;
    final int errno;

    Refused(int errno, String message) {
        super(message, null, false, false); // an answer, not a failure: no stack trace needed
        this.errno = errno;
    }

    Reply reply() {
        return Reply.error(errno, getMessage());
    }
}
