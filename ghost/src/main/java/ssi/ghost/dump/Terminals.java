package ssi.ghost.dump;

/**
 * Which character devices are terminals, for the FD_TTY records of a checkpoint and the caller's terminal
 * of a foreground restart: /dev/pts/N (majors 136..143), /dev/ttyN and /dev/ttySN (4), /dev/tty and
 * /dev/console (5:0, 5:1). /dev/ptmx (5:2), a pty master, is not one. Device numbers are st_rdev in
 * Linux's new_encode_dev layout (tty_nr of /proc/PID/stat uses its low 32 bits). Stateless.
 */
public final class Terminals {
    private Terminals() {}

    /** /dev/tty, which always names the opener's controlling terminal. */
    public static final long DEV_TTY = 5 << 8;

    public static boolean isTerminal(long rdev) {
        long major = major(rdev), minor = minor(rdev);
        return (major >= 136 && major <= 143) || major == 4 || (major == 5 && minor <= 1);
    }

    /** Whether a and b (an st_rdev and a tty_nr, say) name the same device. */
    static boolean same(long a, long b) {
        return major(a) == major(b) && minor(a) == minor(b);
    }

    public static long major(long rdev) { return ((rdev >>> 8) & 0xfff) | ((rdev >>> 32) & ~0xfffL); }

    public static long minor(long rdev) { return (rdev & 0xff) | ((rdev >>> 12) & ~0xffL); }

    /** "char 136:3" */
    public static String describe(long rdev) {
        return "char " + major(rdev) + ":" + minor(rdev);
    }
}
