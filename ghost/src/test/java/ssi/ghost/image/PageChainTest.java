package ssi.ghost.image;

import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.TreeMap;

import static org.junit.jupiter.api.Assertions.*;
import static ssi.ghost.image.Records.*;

/**
 * Incremental images (format version 3) on a synthetic chain of three images of one process with one
 * 8-page VMA: img0 stores pages 0-5 (value 10 + page), img1 rewrites page 2 (value 100 + page) and refers to
 * 0-1 and 3-5, img2 rewrites page 4 (200 + page), refers to 0-3 and drops page 5 (MADV_DONTNEED: in no
 * record). The lookup takes each page from the newest image that stores it and never brings page 5
 * back; PARENT and PARENT_PAGES records round-trip; a missing parent, a replaced one (digest), a parent
 * of another process and a span no older image holds are refused naming the image; the printer shows
 * the parent and where pages come from.
 */
class PageChainTest {
    @TempDir
    Path tmp;
    static final int GPID = 16390;
    static final long VMA = 0x10000000L;
    Path img0, img1, img2;

    /** One page per entry: page index -> fill byte; stored as one run per consecutive stretch. */
    private static ProcessImage proc(Path dir, TreeMap<Integer, Integer> stored, List<PageSpan> fromParent) throws IOException {
        List<PageRun> runs = new ArrayList<>();
        try (DataWriter pages = DataWriter.create(dir, ImageFormat.pagesFile(GPID), ImageFormat.MAGIC_PAGES, GPID)) {
            for (var e : stored.entrySet()) {
                byte[] b = new byte[ImageFormat.PAGE_SIZE];
                Arrays.fill(b, (byte) (int) e.getValue());
                DataWriter.Chunk c = pages.append(ByteBuffer.wrap(b));
                runs.add(new PageRun(e.getKey(), 1, c.offset(), c.crc()));
            }
            pages.commit(0);
        }
        long[] regs = new long[27];
        List<SigAction> acts = new ArrayList<>();
        for (int s = 1; s <= 64; s++) acts.add(new SigAction(s, 0, 0, 0, 0));
        long[] lim = new long[16];
        Arrays.fill(lim, -1);
        return new ProcessImage(new ProcessRec(GPID, "p", List.of("p"), "/bin/p", "/", "/", 0),
                new Creds(new int[4], new int[4], new int[0], 022, 0, 0, 0, 0, 0, false), new Rlimits(lim, lim.clone()),
                List.of(new ThreadRec(GPID, regs, new byte[0], 0, 0, 0, 2, 0)), new SigActs(0, acts),
                new Mm(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, new byte[0]), new ITimers(new long[12]),
                List.of(new Vma(VMA, VMA + 8 * ImageFormat.PAGE_SIZE, PROT_READ | PROT_WRITE, false, 0, 0, 0, 0, "", VMA_ANON,
                        "rd wr mr mw me ac uw")),
                List.of(), runs.isEmpty() ? List.of() : List.of(new Pagemap(VMA, runs)), List.of(), List.of(), List.of(),
                fromParent.isEmpty() ? List.of() : List.of(new ParentPages(VMA, fromParent)));
    }

    private static Path image(Path dir, TreeMap<Integer, Integer> stored, List<PageSpan> fromParent, Path parent, long created)
            throws IOException {
        Images.prepareDir(dir, 0);
        proc(dir, stored, fromParent).write(dir, 0);
        Parent p = null;
        if (parent != null) {
            Image pi = Image.load(parent);
            p = new Parent(dir.relativize(parent).toString(), pi.inventory().createdMillis(), GPID, pi.digest());
        }
        Image.writeInventory(dir, new Inventory(created, 1, 0, GPID, "h"), List.of(new TreeEntry(GPID, 1, GPID, 0, 0, 4, 1)), p, 0);
        return dir;
    }

    private static TreeMap<Integer, Integer> pages(int... pairs) {
        TreeMap<Integer, Integer> m = new TreeMap<>();
        for (int i = 0; i < pairs.length; i += 2) m.put(pairs[i], pairs[i + 1]);
        return m;
    }

    @BeforeEach
    void chain() throws IOException {
        img0 = image(tmp.resolve("img0"), pages(0, 10, 1, 11, 2, 12, 3, 13, 4, 14, 5, 15), List.of(), null, 1000);
        img1 = image(tmp.resolve("img1"), pages(2, 102), List.of(new PageSpan(0, 2), new PageSpan(3, 3)), img0, 2000);
        img2 = image(tmp.resolve("img2"), pages(4, 204), List.of(new PageSpan(0, 4)), img1, 3000);
    }

    /** page index -> first byte of each page the chain yields for the VMA, in the order it yields them. */
    private static List<String> lookup(PageChain c) throws IOException {
        List<String> out = new ArrayList<>();
        c.forEachRun(GPID, VMA, (addr, data) -> {
            assertEquals(0, data.length % ImageFormat.PAGE_SIZE);
            for (int i = 0; i < data.length / ImageFormat.PAGE_SIZE; i++) {
                out.add((addr - VMA) / ImageFormat.PAGE_SIZE + i + "=" + data[i * ImageFormat.PAGE_SIZE]);
            }
        });
        return out;
    }

    @Test
    void eachPageComesFromTheNewestImageThatStoresItAndDroppedPagesStayDropped() throws IOException {
        Image newest = Image.load(img2);
        assertTrue(newest.incremental());
        assertEquals(new Parent("../img1", 2000, GPID, Image.load(img1).digest()), newest.parent());
        assertEquals(List.of(new ParentPages(VMA, List.of(new PageSpan(0, 4)))), newest.processes().get(GPID).parentPages());
        assertEquals(4, newest.processes().get(GPID).parentPageCount());
        try (PageChain c = PageChain.open(newest)) {
            assertEquals(List.of(img2, img1, img0), c.images().stream().map(Image::dir).toList());
            assertEquals(List.of("0=10", "1=11", "2=102", "3=13", "4=-52"), lookup(c)); // 204 as a signed byte
            assertArrayEquals(new long[] {1, 1, 3}, c.pagesByImage(GPID, VMA));
            assertEquals(8L * ImageFormat.PAGE_SIZE, c.verifyData()); // 1 + 1 + 6 pages stored in the three images
        }
        try (PageChain c = PageChain.open(Image.load(img1))) {
            assertEquals(List.of("0=10", "1=11", "2=102", "3=13", "4=14", "5=15"), lookup(c));
        }
        try (PageChain full = PageChain.open(Image.load(img0))) {
            assertEquals(1, full.images().size());
            assertNull(PageChain.forRestore(Image.load(img0)), "a full image needs no chain");
        }
    }

    @Test
    void aChainMovedAsAWholeStillHolds() throws IOException {
        Path moved = Files.createDirectory(tmp.resolve("moved"));
        for (Path p : List.of(img0, img1, img2)) Files.move(p, moved.resolve(p.getFileName()));
        try (PageChain c = PageChain.open(Image.load(moved.resolve("img2")))) {
            assertEquals(List.of("0=10", "1=11", "2=102", "3=13", "4=-52"), lookup(c));
        }
    }

    @Test
    void missingReplacedOrForeignParentsAreRefusedNamingThem() throws IOException {
        Files.move(img1, tmp.resolve("img1.away"));
        ImageException missing = assertThrows(ImageException.class, () -> PageChain.open(Image.load(img2)));
        assertTrue(missing.getMessage().contains("its parent image " + img1 + " (../img1, made ") && missing.getMessage()
                .contains("is missing"), missing.getMessage());
        assertEquals(img2.resolve(ImageFormat.INVENTORY), missing.file());

        // another image (img0, a full one) in img1's place
        Files.move(img0, img1);
        ImageException swapped = assertThrows(ImageException.class, () -> PageChain.open(Image.load(img2)));
        assertTrue(swapped.getMessage().contains("its parent image " + img1 + " is not the one it was made from (digest "),
                swapped.getMessage());
        ImageException restore = assertThrows(ImageException.class, () -> PageChain.forRestore(Image.load(img2)));
        assertTrue(restore.getMessage().contains("is not the one it was made from"), restore.getMessage());
    }

    @Test
    void aSpanNoOlderImageHoldsIsADamagedChain() throws IOException {
        // img1b refers to page 6, which img0 never had
        Path bad = image(tmp.resolve("img1b"), pages(2, 102), List.of(new PageSpan(5, 2)), img0, 2500);
        ImageException e = assertThrows(ImageException.class, () -> PageChain.open(Image.load(bad)));
        assertTrue(e.getMessage().contains("pages 6..6 of the VMA at 0x10000000 are said to be in the parent image, but no "
                + "older image of the chain holds them"), e.getMessage());
    }

    @Test
    void parentPagesWithoutAParentAreRefused() throws IOException {
        Path dir = tmp.resolve("orphan");
        Images.prepareDir(dir, 0);
        proc(dir, pages(0, 1), List.of(new PageSpan(1, 1))).write(dir, 0);
        Image.writeInventory(dir, new Inventory(1, 1, 0, GPID, "h"), List.of(new TreeEntry(GPID, 1, GPID, 0, 0, 4, 1)), 0);
        ImageException e = assertThrows(ImageException.class, () -> Image.load(dir));
        assertTrue(e.getMessage().contains("PARENT_PAGES records in an image without a parent"), e.getMessage());
    }

    @Test
    void printerNamesTheParentAndWhereThePagesComeFrom() throws IOException {
        Image img = Image.load(img2);
        StringWriter sw = new StringWriter();
        try (PageChain c = PageChain.open(img)) {
            ImagePrinter.print(img, c, null, c.verifyData(), new PrintWriter(sw));
        }
        String out = sw.toString();
        assertTrue(out.contains("incremental: builds on the parent image ../img1 (made 1970-01-01T00:00:02Z, digest "), out);
        assertTrue(out.contains("chain of 3 images, newest first: [0] " + img2 + " <- [1] " + img1 + " <- [2] " + img0), out);
        assertTrue(out.contains("1 process(es), 1 page(s) stored (0.0 MiB), 4 page(s) in the parent chain (0.0 MiB), every "
                + "checksum of the chain verified"), out);
        assertTrue(out.contains("000010000000-000010008000 rw-p anon          8 pages,      1 stored,      4 in parent ([1] 1 [2] 3)"), out);

        StringWriter broken = new StringWriter();
        ImagePrinter.print(img, null, "its parent image X is missing", -1, new PrintWriter(broken));
        assertTrue(broken.toString().contains("chain: cannot be used: its parent image X is missing"), broken.toString());
    }
}
