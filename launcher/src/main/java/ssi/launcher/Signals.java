package ssi.launcher;

import java.util.Locale;

/**
 * Linux x86_64 signal names and numbers for `ssi kill`: "KILL", "SIGKILL", "kill", "9", and the
 * real-time signals as glibc numbers them (RTMIN = 34 .. RTMAX = 64; 32 and 33 are glibc-internal and
 * have no name, but may be given as numbers). Signal 0 only checks that the process exists.
 */
final class Signals {
    private Signals() {}

    static final int MAX = 64, RTMIN = 34, RTMAX = 64;

    /** Index = signal number; standard signals only. */
    private static final String[] NAMES = {null, "HUP", "INT", "QUIT", "ILL", "TRAP", "ABRT", "BUS", "FPE", "KILL",
            "USR1", "SEGV", "USR2", "PIPE", "ALRM", "TERM", "STKFLT", "CHLD", "CONT", "STOP", "TSTP", "TTIN", "TTOU",
            "URG", "XCPU", "XFSZ", "VTALRM", "PROF", "WINCH", "IO", "PWR", "SYS"};

    /** Parses a signal given by name (with or without SIG, any case) or number; IllegalArgumentException if unknown. */
    static int parse(String spec) {
        String s = spec.trim();
        if (!s.isEmpty() && s.chars().allMatch(Character::isDigit)) {
            int n;
            try {
                n = Integer.parseInt(s);
            } catch (NumberFormatException e) {
                n = -1; // too many digits
            }
            if (n < 0 || n > MAX) throw new IllegalArgumentException("signal number " + s + " out of range 0.." + MAX);
            return n;
        }
        String name = s.toUpperCase(Locale.ROOT);
        if (name.startsWith("SIG")) name = name.substring(3);
        for (int i = 1; i < NAMES.length; i++) {
            if (NAMES[i].equals(name)) return i;
        }
        switch (name) { // aliases the kernel headers define
            case "IOT": return 6;
            case "CLD": return 17;
            case "POLL": return 29;
            case "RTMIN": return RTMIN;
            case "RTMAX": return RTMAX;
            default: break;
        }
        int rt = realtime(name);
        if (rt > 0) return rt;
        throw new IllegalArgumentException("unknown signal '" + spec + "' (see `ssi kill -l`)");
    }

    /** RTMIN+k / RTMAX-k, or -1 if name is not of that form or out of range. */
    private static int realtime(String name) {
        int sign;
        int base;
        if (name.startsWith("RTMIN+")) {
            sign = 1;
            base = RTMIN;
        } else if (name.startsWith("RTMAX-")) {
            sign = -1;
            base = RTMAX;
        } else {
            return -1;
        }
        String k = name.substring(6);
        if (k.isEmpty() || k.length() > 2 || !k.chars().allMatch(Character::isDigit)) return -1;
        int n = base + sign * Integer.parseInt(k);
        return n >= RTMIN && n <= RTMAX ? n : -1;
    }

    /** The name without SIG (RTMIN+k for the first half of the real-time range, RTMAX-k for the second), or null. */
    static String name(int signal) {
        if (signal >= 1 && signal < NAMES.length) return NAMES[signal];
        if (signal == RTMIN) return "RTMIN";
        if (signal == RTMAX) return "RTMAX";
        if (signal > RTMIN && signal <= (RTMIN + RTMAX) / 2) return "RTMIN+" + (signal - RTMIN);
        if (signal > (RTMIN + RTMAX) / 2 && signal < RTMAX) return "RTMAX-" + (RTMAX - signal);
        return null;
    }

    /** The table `ssi kill -l` prints, laid out as bash's kill -l: " 1) SIGHUP ..." five per line. */
    static String table() {
        StringBuilder sb = new StringBuilder();
        int col = 0;
        for (int n = 1; n <= MAX; n++) {
            String name = name(n);
            if (name == null) continue;
            String cell = String.format("%2d) SIG%s", n, name);
            sb.append(cell);
            if (++col % 5 == 0) {
                sb.append('\n');
            } else {
                sb.repeat(' ', Math.max(1, 16 - cell.length()));
            }
        }
        if (col % 5 != 0) {
            int end = sb.length();
            while (sb.charAt(end - 1) == ' ') end--;
            sb.setLength(end);
            sb.append('\n');
        }
        return sb.toString();
    }
}
