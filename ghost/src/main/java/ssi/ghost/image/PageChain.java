package ssi.ghost.image;

import ssi.ghost.image.Records.PageRun;
import ssi.ghost.image.Records.PageSpan;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * An incremental image and every image it builds on, newest first, and the page lookup through them:
 * a page of a VMA comes from the newest image of the chain that stores it (a PAGEMAP run there); a
 * PARENT_PAGES span sends the lookup one image up. A page that is in neither record of an image is not
 * present in it (zero, or the file's own for a private file mapping) and never comes from an older
 * image: a page dropped with MADV_DONTNEED stays dropped.
 *
 * <p>{@link #open} checks the chain before any page is used: each parent exists, is the image the child
 * was made from (its {@link Image#digest digest}) and of the same root process, and every PARENT_PAGES
 * span is held by some older image. A full image is a chain of one.
 *
 * <p>Owned by one thread (it keeps the pages files open; {@link #close} them).
 */
public final class PageChain implements AutoCloseable {
    /** More images than this in one chain is a loop or a mistake; take a full checkpoint. */
    static final int MAX_DEPTH = 1000;

    /** Receives page data in address order; data.length is a multiple of the page size. */
    @FunctionalInterface
    public interface Sink {
        void accept(long addr, byte[] data) throws IOException;
    }

    private final List<Image> images;
    /** Per image level: gpid -> pages file, opened on first use. */
    private final List<Map<Integer, PageFiles>> files = new ArrayList<>();
    /** The chunk read last from each pages file (a run sliced by several spans is read once). */
    private final Map<DataFile, Object[]> lastChunk = new HashMap<>();

    private PageChain(List<Image> images) {
        this.images = List.copyOf(images);
        for (int i = 0; i < images.size(); i++) files.add(new HashMap<>());
    }

    /** The images, newest (the one opened) first. */
    public List<Image> images() {
        return images;
    }

    /**
     * Loads every ancestor of newest and checks the chain's metadata (not the page data: {@link
     * #verifyData}). A missing, replaced or foreign parent is an {@link ImageException} naming it.
     */
    public static PageChain open(Image newest) throws IOException {
        List<Image> chain = new ArrayList<>();
        chain.add(newest);
        Set<Path> seen = new HashSet<>();
        seen.add(newest.dir().toAbsolutePath().normalize());
        Image child = newest;
        while (child.parent() != null) {
            Records.Parent p = child.parent();
            Path childInv = child.dir().resolve(ImageFormat.INVENTORY);
            Path dir = child.dir().resolve(p.path()).toAbsolutePath().normalize();
            if (chain.size() >= MAX_DEPTH || !seen.add(dir)) {
                throw new ImageException(childInv, 0, "the chain of parent images loops or is longer than " + MAX_DEPTH
                        + " images (at " + dir + ")");
            }
            if (!Files.isRegularFile(dir.resolve(ImageFormat.INVENTORY))) {
                throw new ImageException(childInv, 0, "its parent image " + dir + " (" + p.path() + ", made "
                        + java.time.Instant.ofEpochMilli(p.createdMillis()) + ") is missing: an incremental image needs "
                        + "every image it builds on; put it back, or restart from another image");
            }
            Image parent = Image.load(dir);
            int digest = parent.digest();
            if (digest != p.digest()) {
                throw new ImageException(childInv, 0, String.format("its parent image %s is not the one it was made from "
                        + "(digest %08x, expected %08x): that image was replaced or rewritten", dir, digest, p.digest()));
            }
            if (parent.inventory().rootGpid() != child.inventory().rootGpid()) {
                throw new ImageException(childInv, 0, "its parent image " + dir + " is of process "
                        + parent.inventory().rootGpid() + ", not " + child.inventory().rootGpid());
            }
            chain.add(parent);
            child = parent;
        }
        PageChain c = new PageChain(chain);
        c.checkSpans();
        return c;
    }

    /** Every PARENT_PAGES span of every image is held, page by page, by an older image. */
    private void checkSpans() throws IOException {
        for (int level = 0; level < images.size(); level++) {
            Image img = images.get(level);
            for (ProcessImage p : img.processes().values()) {
                for (Records.ParentPages pp : p.parentPages()) {
                    for (PageSpan s : pp.spans()) {
                        if (level + 1 >= images.size()) throw unresolved(img, p.gpid(), pp.vmaStart(), s.firstPage(), s.pages());
                        resolve(level + 1, p.gpid(), pp.vmaStart(), s.firstPage(), s.firstPage() + s.pages(), null, img);
                    }
                }
            }
        }
    }

    private static ImageException unresolved(Image img, int gpid, long vmaStart, long first, long count) {
        return new ImageException(img.dir().resolve(ImageFormat.processFile(gpid)), 0, "pages " + first + ".."
                + (first + count - 1) + " of the VMA at 0x" + Long.toHexString(vmaStart) + " are said to be in the parent "
                + "image, but no older image of the chain holds them: the chain is damaged");
    }

    /**
     * For a restart of img (whose own data the caller verified): null for a full image, else its chain,
     * opened and with the page data of every parent verified.
     */
    public static PageChain forRestore(Image img) throws IOException {
        if (!img.incremental()) return null;
        PageChain c = open(img);
        try {
            for (Image parent : c.images.subList(1, c.images.size())) parent.verifyData();
            return c;
        } catch (IOException | RuntimeException e) {
            c.close();
            throw e;
        }
    }

    /** Checks the CRC32C of every page chunk and file data blob of every image; returns the bytes checked. */
    public long verifyData() throws IOException {
        long n = 0;
        for (Image img : images) n += img.verifyData();
        return n;
    }

    /** One run of the lookup table of a VMA at one level: stored here (run != null) or in the parent. */
    private record Seg(long first, long end, PageRun run) {}

    private final Map<String, List<Seg>> segCache = new HashMap<>();

    private List<Seg> segs(int level, int gpid, long vmaStart) {
        return segCache.computeIfAbsent(level + "/" + gpid + "/" + vmaStart, k -> buildSegs(level, gpid, vmaStart));
    }

    private List<Seg> buildSegs(int level, int gpid, long vmaStart) {
        ProcessImage p = images.get(level).processes().get(gpid);
        List<Seg> out = new ArrayList<>();
        if (p == null) return out;
        for (Records.Pagemap m : p.pagemaps()) {
            if (m.vmaStart() != vmaStart) continue;
            for (PageRun r : m.runs()) out.add(new Seg(r.firstPage(), r.firstPage() + r.pages(), r));
        }
        for (Records.ParentPages pp : p.parentPages()) {
            if (pp.vmaStart() != vmaStart) continue;
            for (PageSpan s : pp.spans()) out.add(new Seg(s.firstPage(), s.firstPage() + s.pages(), null));
        }
        out.sort(Comparator.comparingLong(Seg::first));
        return out;
    }

    /**
     * Pages [from, to) of the VMA at vmaStart of process gpid, as the image at level holds them (every page
     * of the range must be there); with sink null only checks that they are. asker names the image
     * whose reference is being resolved, for the error.
     */
    private void resolve(int level, int gpid, long vmaStart, long from, long to, Sink sink, Image asker) throws IOException {
        long at = from;
        for (Seg s : segs(level, gpid, vmaStart)) {
            if (s.end() <= at) continue;
            if (s.first() >= to) break;
            if (s.first() > at) break; // a hole: pages the parent does not have
            long end = Math.min(to, s.end());
            if (s.run() == null) {
                if (level + 1 >= images.size()) throw unresolved(asker, gpid, vmaStart, at, end - at);
                resolve(level + 1, gpid, vmaStart, at, end, sink, asker);
            } else if (sink != null) {
                byte[] chunk = chunk(level, gpid, vmaStart, s.run());
                int off = (int) ((at - s.first()) * ImageFormat.PAGE_SIZE), len = (int) ((end - at) * ImageFormat.PAGE_SIZE);
                byte[] data = off == 0 && len == chunk.length ? chunk : java.util.Arrays.copyOfRange(chunk, off, off + len);
                sink.accept(vmaStart + at * ImageFormat.PAGE_SIZE, data);
            }
            at = end;
            if (at >= to) return;
        }
        if (at < to) throw unresolved(asker, gpid, vmaStart, at, to - at);
    }

    private byte[] chunk(int level, int gpid, long vmaStart, PageRun r) throws IOException {
        Map<Integer, PageFiles> byGpid = files.get(level);
        PageFiles pf = byGpid.get(gpid);
        if (pf == null) {
            pf = new PageFiles(images.get(level).dir(), gpid, false);
            byGpid.put(gpid, pf);
        }
        DataFile f = pf.of(r);
        Object[] last = lastChunk.get(f);
        if (last != null && (Long) last[0] == r.fileOffset()) return (byte[]) last[1];
        byte[] data = f.read(r.fileOffset(), (long) r.pages() * ImageFormat.PAGE_SIZE, r.crc(), "pages " + r.firstPage()
                + ".." + (r.firstPage() + r.pages() - 1) + " of the VMA at 0x" + Long.toHexString(vmaStart));
        lastChunk.put(f, new Object[] {r.fileOffset(), data});
        return data;
    }

    /**
     * Every present page of the VMA at vmaStart of process gpid, as of the newest image, in address
     * order: stored pages from the image that stores them, through the chain.
     */
    public void forEachRun(int gpid, long vmaStart, Sink sink) throws IOException {
        for (Seg s : segs(0, gpid, vmaStart)) resolve(0, gpid, vmaStart, s.first(), s.end(), sink, images.getFirst());
    }

    /**
     * How many present pages of the VMA at vmaStart of gpid each image of the chain provides (index 0:
     * the newest image itself), for `ssi image show`.
     */
    public long[] pagesByImage(int gpid, long vmaStart) throws IOException {
        long[] n = new long[images.size()];
        for (Seg s : segs(0, gpid, vmaStart)) count(0, gpid, vmaStart, s.first(), s.end(), n);
        return n;
    }

    private void count(int level, int gpid, long vmaStart, long from, long to, long[] n) throws IOException {
        long at = from;
        for (Seg s : segs(level, gpid, vmaStart)) {
            if (s.end() <= at) continue;
            if (s.first() >= to || s.first() > at) break;
            long end = Math.min(to, s.end());
            if (s.run() == null && level + 1 < images.size()) count(level + 1, gpid, vmaStart, at, end, n);
            else n[level] += end - at;
            at = end;
            if (at >= to) return;
        }
    }

    @Override
    public void close() throws IOException {
        IOException first = null;
        for (Map<Integer, PageFiles> m : files) {
            for (PageFiles f : m.values()) {
                try {
                    f.close();
                } catch (IOException e) {
                    if (first == null) first = e;
                }
            }
            m.clear();
        }
        lastChunk.clear();
        if (first != null) throw first;
    }
}
