package ssi.comm.control;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/** SSI capability bits and set numbers, and their names as `ssi capset` prints and parses them. */
public final class Capabilities {
    private Capabilities() {}

    public static final int CAN_MIGRATE = 1, DISTANT_FORK = 2, CAN_CHECKPOINT = 4, SEE_LOCAL_PROC_STAT = 8,
            CHANGE_SSI_CAP = 16;
    public static final int ALL = 31;
    public static final int EFFECTIVE = 0, PERMITTED = 1, INHERITABLE_EFFECTIVE = 2, INHERITABLE_PERMITTED = 3;

    private static final String[] NAMES = {"CAN_MIGRATE", "DISTANT_FORK", "CAN_CHECKPOINT", "SEE_LOCAL_PROC_STAT",
            "CHANGE_SSI_CAP"};

    /** The bit of one capability name (case-insensitive), or an IllegalArgumentException naming the choices. */
    public static int bit(String name) {
        String n = name.trim().toUpperCase(Locale.ROOT);
        for (int i = 0; i < NAMES.length; i++) {
            if (NAMES[i].equals(n)) return 1 << i;
        }
        throw new IllegalArgumentException("unknown SSI capability '" + name + "' (known: " + String.join(", ", NAMES) + ")");
    }

    /** Comma-separated names of the bits in mask, or "none". */
    public static String names(int mask) {
        List<String> out = new ArrayList<>();
        for (int i = 0; i < NAMES.length; i++) {
            if ((mask & (1 << i)) != 0) out.add(NAMES[i]);
        }
        return out.isEmpty() ? "none" : String.join(",", out);
    }
}
