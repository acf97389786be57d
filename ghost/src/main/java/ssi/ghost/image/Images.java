package ssi.ghost.image;

import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.PosixFilePermissions;

/**
 * File-system chores of an image directory: creating it private to its owner, restricting each file,
 * making the renames durable. Stateless; any thread.
 */
public final class Images {
    private Images() {}

    /**
     * Creates dir (and missing parents, mode 0700) for an image owned by ownerUid; true when it created
     * dir. An existing directory must not already hold an image: a checkpoint never overwrites one.
     */
    public static boolean prepareDir(Path dir, int ownerUid) throws IOException {
        if (Files.exists(dir.resolve(ImageFormat.INVENTORY))) {
            throw new IOException(dir + " already holds an image (" + ImageFormat.INVENTORY + "); give another directory");
        }
        if (!Files.isDirectory(dir)) {
            Path parent = dir.toAbsolutePath().getParent();
            if (parent != null && !Files.isDirectory(parent)) {
                Files.createDirectories(parent, PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rwx------")));
            }
            Files.createDirectory(dir);
            restrict(dir, ownerUid, true);
            return true;
        }
        restrict(dir, ownerUid, true);
        return false;
    }

    /**
     * After a failed checkpoint: removes what it wrote (temporaries and any file already renamed into
     * place for these processes, the inventory included) and the directory if it created it.
     */
    public static void removeImage(Path dir, java.util.List<Integer> pids, boolean createdDir) {
        removeTemporaries(dir);
        try {
            Files.deleteIfExists(dir.resolve(ImageFormat.INVENTORY));
            Files.deleteIfExists(dir.resolve(ImageFormat.SYSV_SHM_DATA));
            for (int pid : pids) {
                Files.deleteIfExists(dir.resolve(ImageFormat.processFile(pid)));
                for (int k = 0; k < ImageFormat.MAX_PAGE_STRIPES; k++) Files.deleteIfExists(dir.resolve(ImageFormat.pagesFile(pid, k)));
                Files.deleteIfExists(dir.resolve(ImageFormat.fileDataFile(pid)));
            }
            if (createdDir) Files.deleteIfExists(dir);
        } catch (IOException ignored) {
            // best effort after a failure that is being reported anyway (a non-empty directory stays)
        }
    }

    /** Mode 0600 (0700 for a directory) and owner uid; the group is left alone (the mode excludes it). */
    static void restrict(Path p, int ownerUid, boolean dir) throws IOException {
        Files.setPosixFilePermissions(p, PosixFilePermissions.fromString(dir ? "rwx------" : "rw-------"));
        Object cur = Files.getAttribute(p, "unix:uid", LinkOption.NOFOLLOW_LINKS);
        if (!(cur instanceof Integer u) || u != ownerUid) Files.setAttribute(p, "unix:uid", ownerUid, LinkOption.NOFOLLOW_LINKS);
    }

    /** fsync of the directory, so the renames into it survive a crash. */
    public static void syncDir(Path dir) throws IOException {
        try (FileChannel ch = FileChannel.open(dir, StandardOpenOption.READ)) {
            ch.force(true);
        }
    }

    /** Removes temporary files a failed checkpoint left (".*.tmp"). */
    public static void removeTemporaries(Path dir) {
        try (var s = Files.list(dir)) {
            for (Path p : s.toList()) {
                String n = p.getFileName().toString();
                if (n.startsWith(".") && n.endsWith(".tmp")) Files.deleteIfExists(p);
            }
        } catch (IOException ignored) {
            // best effort after a failure that is being reported anyway
        }
    }
}
