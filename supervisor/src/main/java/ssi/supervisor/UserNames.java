package ssi.supervisor;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.util.HashMap;
import java.util.Map;

/**
 * uid -> user name from the passwd file, as ps shows it (the number when the uid has no entry). The
 * file is parsed again only when its modification time changes. Thread-safe (synchronized; the map is
 * tiny and looked up once per process in a ps).
 */
final class UserNames {
    private final Path passwd;
    private FileTime loadedAt;
    private Map<Integer, String> names = Map.of();

    UserNames(Path passwd) {
        this.passwd = passwd;
    }

    synchronized String name(int uid) {
        refresh();
        String n = names.get(uid);
        return n != null ? n : Integer.toString(uid);
    }

    private void refresh() {
        FileTime t;
        try {
            t = Files.getLastModifiedTime(passwd);
        } catch (IOException e) {
            names = Map.of(); // no passwd file: every user shows as a number
            loadedAt = null;
            return;
        }
        if (t.equals(loadedAt)) return;
        Map<Integer, String> m = new HashMap<>();
        try {
            for (String line : Files.readAllLines(passwd, StandardCharsets.UTF_8)) {
                // name:password:uid:gid:gecos:home:shell
                String[] f = line.split(":", -1);
                if (f.length < 3 || f[0].isEmpty() || line.startsWith("#")) continue;
                try {
                    m.putIfAbsent(Integer.parseUnsignedInt(f[2]), f[0]); // the first entry wins, like getpwuid
                } catch (NumberFormatException ignored) {
                    // a malformed line names no uid
                }
            }
        } catch (IOException e) {
            return; // keep the previous names; try again on the next lookup
        }
        names = m;
        loadedAt = t;
    }
}
