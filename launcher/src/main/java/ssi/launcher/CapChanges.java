package ssi.launcher;

import ssi.comm.control.Capabilities;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * The CHANGES arguments of `ssi capset` ("+CAN_MIGRATE,-DISTANT_FORK", names case-insensitive, '+'
 * optional) and the order in which the per-set changes are sent. Pure functions, tested alone.
 */
final class CapChanges {
    private CapChanges() {}

    /** Bits to raise and to lower in one set. */
    record Change(int raise, int lower) {
        boolean isEmpty() { return raise == 0 && lower == 0; }
    }

    /** One CAPSET request: set is one of Capabilities.EFFECTIVE ..; exactly one of raise/lower is non-zero. */
    record Step(int set, int raise, int lower) {}

    /** Parses one CHANGES list; IllegalArgumentException says what is wrong (unknown names list the known ones). */
    static Change parse(String spec) {
        if (spec.isBlank()) throw new IllegalArgumentException("no capability given");
        int raise = 0;
        int lower = 0;
        for (String token : spec.split(",", -1)) {
            String t = token.trim();
            boolean minus = t.startsWith("-");
            if (minus || t.startsWith("+")) t = t.substring(1).trim();
            if (t.isEmpty()) throw new IllegalArgumentException("empty capability name in '" + spec + "'");
            int bit = Capabilities.bit(t); // IllegalArgumentException naming the known capabilities
            if (minus) lower |= bit; else raise |= bit;
        }
        if ((raise & lower) != 0) {
            throw new IllegalArgumentException(Capabilities.names(raise & lower) + " both raised and lowered in '" + spec + "'");
        }
        return new Change(raise, lower);
    }

    // The daemon enforces effective <= permitted and inheritable effective <= inheritable permitted <=
    // permitted after every request. Raising goes from the outer set inwards (permitted first) and
    // lowering from the inner sets outwards (effective first), so no intermediate state breaks a rule.
    // All raises come before all lowers: raising the permitted set needs CHANGE_SSI_CAP in the
    // effective set, which the same command line may be dropping; no raise ever needs a prior lower.
    private static final int[] RAISE_ORDER = {Capabilities.PERMITTED, Capabilities.INHERITABLE_PERMITTED,
            Capabilities.EFFECTIVE, Capabilities.INHERITABLE_EFFECTIVE};
    private static final int[] LOWER_ORDER = {Capabilities.EFFECTIVE, Capabilities.INHERITABLE_EFFECTIVE,
            Capabilities.INHERITABLE_PERMITTED, Capabilities.PERMITTED};

    /** The CAPSET requests for the given changes (keyed by set number), in a rule-preserving order. */
    static List<Step> plan(Map<Integer, Change> bySet) {
        List<Step> steps = new ArrayList<>();
        for (int set : RAISE_ORDER) {
            Change c = bySet.get(set);
            if (c != null && c.raise() != 0) steps.add(new Step(set, c.raise(), 0));
        }
        for (int set : LOWER_ORDER) {
            Change c = bySet.get(set);
            if (c != null && c.lower() != 0) steps.add(new Step(set, 0, c.lower()));
        }
        return steps;
    }

    static String setName(int set) {
        return switch (set) {
            case Capabilities.EFFECTIVE -> "effective";
            case Capabilities.PERMITTED -> "permitted";
            case Capabilities.INHERITABLE_EFFECTIVE -> "inheritable effective";
            case Capabilities.INHERITABLE_PERMITTED -> "inheritable permitted";
            default -> "set " + set;
        };
    }
}
