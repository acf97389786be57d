package ssi.ghost.image;

import java.io.IOException;
import java.nio.file.Path;

/**
 * The page files (stripes) of one process of an image, each opened on first use ({@link
 * ImageFormat#pagesFile(int, int)}): a PAGEMAP run names the stripe its pages are in. Owned by one
 * thread; {@link #close} closes what was opened.
 */
public final class PageFiles implements AutoCloseable {
    private final Path dir;
    private final int gpid;
    private final boolean withFd;
    private final DataFile[] open = new DataFile[ImageFormat.MAX_PAGE_STRIPES];

    /** withFd: each file is held by a raw fd as well ({@link DataFile#openWithFd}), for the shim to copy from. */
    public PageFiles(Path dir, int gpid, boolean withFd) {
        this.dir = dir;
        this.gpid = gpid;
        this.withFd = withFd;
    }

    /** The file of stripe k (a missing file is the image's error, naming it). */
    public DataFile stripe(int k) throws IOException {
        if (k < 0 || k >= open.length) throw new IllegalArgumentException("page stripe " + k);
        DataFile f = open[k];
        if (f == null) {
            Path p = dir.resolve(ImageFormat.pagesFile(gpid, k));
            f = withFd ? DataFile.openWithFd(p, ImageFormat.MAGIC_PAGES, gpid) : DataFile.open(p, ImageFormat.MAGIC_PAGES, gpid);
            open[k] = f;
        }
        return f;
    }

    /** The file run r lies in. */
    public DataFile of(Records.PageRun r) throws IOException {
        return stripe(r.file());
    }

    @Override
    public void close() throws IOException {
        IOException first = null;
        for (int k = 0; k < open.length; k++) {
            if (open[k] == null) continue;
            try {
                open[k].close();
            } catch (IOException e) {
                if (first == null) first = e;
            }
            open[k] = null;
        }
        if (first != null) throw first;
    }
}
