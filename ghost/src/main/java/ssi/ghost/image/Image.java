package ssi.ghost.image;

import ssi.ghost.image.Records.Inventory;
import ssi.ghost.image.Records.TreeEntry;

import java.io.EOFException;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A whole image directory: inventory.img (who, when, where, the process tree, and for an incremental
 * image its parent) and one proc-GPID.img per process of the tree; the raw pages and file data stay on
 * disk and are read through {@link DataFile}. The inventory is written last, so its presence marks a
 * finished checkpoint. An incremental image alone is not enough to restore: {@link PageChain} finds its
 * ancestors. Immutable once loaded; any thread.
 *
 * @param parent the image this one builds on (PARENT record), or null for a full image
 */
public record Image(Path dir, Inventory inventory, List<TreeEntry> tree, Map<Integer, ProcessImage> processes,
                    Records.Parent parent, List<Records.SysvShm> sysvShm) {

    /** A full image (no parent) without SysV shared memory. */
    public Image(Path dir, Inventory inventory, List<TreeEntry> tree, Map<Integer, ProcessImage> processes) {
        this(dir, inventory, tree, processes, null, List.of());
    }

    /** The segment of that id, or null. */
    public Records.SysvShm sysvShm(int id) {
        for (Records.SysvShm s : sysvShm) if (s.id() == id) return s;
        return null;
    }

    /** Writes the inventory (call after every process file and data file is in place). */
    public static void writeInventory(Path dir, Inventory inv, List<TreeEntry> tree, int ownerUid) throws IOException {
        writeInventory(dir, inv, tree, null, ownerUid);
    }

    /** Writes the inventory of an image that builds on parent (null: a full image). */
    public static void writeInventory(Path dir, Inventory inv, List<TreeEntry> tree, Records.Parent parent, int ownerUid)
            throws IOException {
        writeInventory(dir, inv, tree, parent, List.of(), ownerUid, true);
    }

    /**
     * As above, with the application's SysV shared memory segments (their data written already); durable:
     * fsync'd before its rename (the directory's fsync is the caller's).
     */
    public static void writeInventory(Path dir, Inventory inv, List<TreeEntry> tree, Records.Parent parent,
                                      List<Records.SysvShm> shm, int ownerUid, boolean durable) throws IOException {
        try (MetaWriter w = MetaWriter.create(dir, ImageFormat.INVENTORY, ImageFormat.MAGIC_INVENTORY)) {
            w.record(ImageFormat.REC_INVENTORY, inv::write);
            for (TreeEntry e : tree) w.record(ImageFormat.REC_PSTREE, e::write);
            if (parent != null) w.record(ImageFormat.REC_PARENT, parent::write);
            for (Records.SysvShm s : shm) w.record(ImageFormat.REC_SYSV_SHM, s::write);
            w.commit(ownerUid, durable);
        }
    }

    /**
     * The identity a child image records for this one: CRC32C over the bytes of inventory.img and then of
     * each proc-GPID.img in tree order. Those files hold the CRC32C of every page chunk and file data
     * blob, so any other image (or a rewritten one) has, but for a 2^-32 chance, another digest.
     */
    public int digest() throws IOException {
        return digest(dir, tree.stream().filter(e -> !e.zombie()).map(TreeEntry::gpid).toList());
    }

    /** {@link #digest()} of the image in dir whose tree holds gpids, in tree order (without loading it). */
    public static int digest(Path dir, List<Integer> gpids) throws IOException {
        java.util.zip.CRC32C c = new java.util.zip.CRC32C();
        c.update(java.nio.file.Files.readAllBytes(dir.resolve(ImageFormat.INVENTORY)));
        for (int g : gpids) c.update(java.nio.file.Files.readAllBytes(dir.resolve(ImageFormat.processFile(g))));
        return (int) c.getValue();
    }

    /** Whether this image refers to a parent image for some of its pages. */
    public boolean incremental() {
        return parent != null;
    }

    /** Loads and checks the metadata of the image in dir (page data is checked by {@link #verifyData}). */
    public static Image load(Path dir) throws IOException {
        Path file = dir.resolve(ImageFormat.INVENTORY);
        Inventory inv = null;
        List<TreeEntry> tree = new ArrayList<>();
        Records.Parent parent = null;
        List<Records.SysvShm> shm = new ArrayList<>();
        for (MetaReader.Rec r : MetaReader.read(file, ImageFormat.MAGIC_INVENTORY)) {
            MetaReader.Dec d = r.dec(file);
            try {
                switch (r.type()) {
                    case ImageFormat.REC_INVENTORY -> {
                        if (inv != null) throw d.error("appears twice");
                        inv = Inventory.read(d.in());
                    }
                    case ImageFormat.REC_PSTREE -> tree.add(TreeEntry.read(d.in()));
                    case ImageFormat.REC_PARENT -> {
                        if (parent != null) throw d.error("appears twice");
                        parent = Records.Parent.read(d.in());
                    }
                    case ImageFormat.REC_SYSV_SHM -> {
                        Records.SysvShm x;
                        try {
                            x = Records.SysvShm.read(d.in());
                        } catch (EOFException e) {
                            throw e;
                        } catch (IOException e) {
                            throw d.error(e.getMessage());
                        }
                        for (Records.SysvShm o : shm) if (o.id() == x.id()) throw d.error("SysV segment " + x.id() + " twice");
                        shm.add(x);
                    }
                    default -> throw d.error("unknown record type in the inventory");
                }
            } catch (EOFException e) {
                throw d.error("shorter than its fields");
            }
            d.end();
        }
        if (inv == null) throw new ImageException(file, 0, "no INVENTORY record");
        if (tree.isEmpty() || tree.getFirst().gpid() != inv.rootGpid()) {
            throw new ImageException(file, 0, "the process tree does not start with the root process " + inv.rootGpid());
        }
        Map<Integer, ProcessImage> procs = new LinkedHashMap<>();
        for (TreeEntry e : tree) {
            if (e.zombie()) {
                if (e.gpid() == inv.rootGpid() || e.threads() != 0)
                    throw new ImageException(file, 0, "process " + e.gpid() + " is a zombie with threads, or the root");
                continue; // a zombie has no process file
            }
            procs.put(e.gpid(), ProcessImage.read(dir, e.gpid()));
        }
        for (ProcessImage p : procs.values()) {
            if (parent == null && !p.parentPages().isEmpty()) {
                throw new ImageException(dir.resolve(ImageFormat.processFile(p.gpid())), 0, "PARENT_PAGES records in an "
                        + "image without a parent (no PARENT record in " + ImageFormat.INVENTORY + ")");
            }
        }
        return new Image(dir, inv, List.copyOf(tree), procs, parent, List.copyOf(shm));
    }

    /** Reads every page run and file data blob and checks its CRC32C; returns the bytes checked. */
    public long verifyData() throws IOException {
        return verifyData(true);
    }

    /**
     * As {@link #verifyData()}; with pages false the page runs are only checked to lie inside their
     * file (a restart then checks each run's CRC32C as it copies it, before the process runs).
     */
    public long verifyData(boolean verifyPages) throws IOException {
        long total = 0;
        if (sysvShm.stream().anyMatch(x -> !x.runs().isEmpty())) {
            try (DataFile data = DataFile.open(dir.resolve(ImageFormat.SYSV_SHM_DATA), ImageFormat.MAGIC_FILEDATA,
                    inventory.rootGpid())) {
                for (Records.SysvShm x : sysvShm) {
                    for (Records.ShmRun r : x.runs()) {
                        data.verify(r.dataOffset(), r.length(), r.crc(), "bytes " + r.offset() + ".." + (r.offset() + r.length() - 1)
                                + " of SysV shared memory segment " + x.id());
                        total += r.length();
                    }
                }
            }
        }
        for (ProcessImage p : processes.values()) {
            if (!p.pagemaps().isEmpty()) {
                try (PageFiles files = new PageFiles(dir, p.gpid(), false)) {
                    for (Records.Pagemap m : p.pagemaps()) {
                        for (Records.PageRun r : m.runs()) {
                            String what = "pages " + r.firstPage() + ".." + (r.firstPage() + r.pages() - 1) + " of the VMA at 0x"
                                    + Long.toHexString(m.vmaStart());
                            DataFile pages = files.of(r);
                            if (verifyPages) pages.verify(r.fileOffset(), (long) r.pages() * ImageFormat.PAGE_SIZE, r.crc(), what);
                            else pages.checkBounds(r.fileOffset(), (long) r.pages() * ImageFormat.PAGE_SIZE, what);
                            total += (long) r.pages() * ImageFormat.PAGE_SIZE;
                        }
                    }
                }
            }
            boolean anyData = p.fds().stream().anyMatch(f -> f.dataOffset() >= 0);
            if (anyData) {
                try (DataFile data = DataFile.open(dir.resolve(ImageFormat.fileDataFile(p.gpid())), ImageFormat.MAGIC_FILEDATA, p.gpid())) {
                    for (Records.Fd f : p.fds()) {
                        if (f.dataOffset() < 0) continue;
                        data.verify(f.dataOffset(), f.dataLength(), f.dataCrc(), "the saved contents of fd " + f.fd());
                        total += f.dataLength();
                    }
                }
            }
        }
        return total;
    }
}
