package ssi.ghost.dump;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The few /proc readers the dump needs: stat fields, status lines, task lists. The daemon runs in the
 * node's pid and mount namespaces as root, so every pid here is a gpid and every file is readable.
 * Stateless; any thread.
 */
final class ProcFs {
    private final Path proc;

    ProcFs(Path proc) {
        this.proc = proc;
    }

    Path dir(int pid) {
        return proc.resolve(Integer.toString(pid));
    }

    Path root() {
        return proc;
    }

    /** Fields of /proc/pid/stat from field 3 (state) on: f[0] is field 3. comm is taken out at the last ')'. */
    record Stat(String comm, String[] f) {
        char state() { return f[0].charAt(0); }
        int ppid() { return Integer.parseInt(f[1]); }
        int pgid() { return Integer.parseInt(f[2]); }
        int sid() { return Integer.parseInt(f[3]); }
        /** Field n of stat(5) (1-based) as an unsigned number. */
        long field(int n) { return Long.parseUnsignedLong(f[n - 3]); }
    }

    /** stat of pid, or null when it is gone. */
    Stat stat(Path dir) {
        try {
            String s = Files.readString(dir.resolve("stat"), StandardCharsets.UTF_8);
            int open = s.indexOf('('), close = s.lastIndexOf(')');
            return new Stat(s.substring(open + 1, close), s.substring(close + 2).trim().split(" "));
        } catch (IOException | RuntimeException e) {
            return null;
        }
    }

    /** status as "Key" -> "value" (trimmed). */
    static Map<String, String> status(Path dir) throws IOException {
        Map<String, String> m = new LinkedHashMap<>();
        for (String line : Files.readAllLines(dir.resolve("status"), StandardCharsets.UTF_8)) {
            int c = line.indexOf(':');
            if (c > 0) m.put(line.substring(0, c), line.substring(c + 1).trim());
        }
        return m;
    }

    static long hex(Map<String, String> status, String key) {
        String v = status.get(key);
        return v == null ? 0 : Long.parseUnsignedLong(v, 16);
    }

    static int[] ints(Map<String, String> status, String key) {
        String v = status.get(key);
        if (v == null || v.isEmpty()) return new int[0];
        String[] w = v.split("\\s+");
        int[] out = new int[w.length];
        for (int i = 0; i < w.length; i++) out[i] = Integer.parseUnsignedInt(w[i]);
        return out;
    }

    /** The tids of pid, ascending; empty when it is gone. */
    List<Integer> tids(int pid) {
        return numbers(dir(pid).resolve("task"));
    }

    List<Integer> pids() {
        return numbers(proc);
    }

    private static List<Integer> numbers(Path d) {
        List<Integer> out = new ArrayList<>();
        try (var s = Files.newDirectoryStream(d)) {
            for (Path p : s) {
                String n = p.getFileName().toString();
                if (!n.isEmpty() && n.chars().allMatch(Character::isDigit)) out.add(Integer.parseInt(n));
            }
        } catch (NoSuchFileException e) {
            return out;
        } catch (IOException e) {
            return out;
        }
        out.sort(null);
        return out;
    }

    static String link(Path p) throws IOException {
        return Files.readSymbolicLink(p).toString();
    }
}
