package ssi.launcher;

import ssi.comm.control.ControlMessages;
import ssi.comm.control.ControlMessages.Reply;

/**
 * Turns the errno status of a control reply into the words a person expects (the strerror text,
 * then the daemon's own explanation in parentheses), e.g. "Operation not permitted (owned by another
 * user)". Only the statuses the protocol defines have a name; others print their number.
 */
final class Errno {
    private Errno() {}

    static String strerror(int errno) {
        return switch (errno) {
            case ControlMessages.EPERM -> "Operation not permitted";
            case ControlMessages.ENOENT -> "No such file or directory";
            case ControlMessages.ESRCH -> "No such process";
            case ControlMessages.EIO -> "Input/output error";
            case ControlMessages.ENODEV -> "No such node";
            case ControlMessages.EINVAL -> "Invalid argument";
            case ControlMessages.EPROTO -> "Protocol error";
            case ControlMessages.EEXIST -> "File exists";
            case ControlMessages.EOPNOTSUPP -> "Operation not supported";
            default -> "error " + errno;
        };
    }

    /** "strerror (daemon message)" for a failed reply. */
    static String describe(Reply reply) {
        String msg = reply.message() == null ? "" : reply.message().trim();
        return msg.isEmpty() ? strerror(reply.status()) : strerror(reply.status()) + " (" + msg + ")";
    }
}
