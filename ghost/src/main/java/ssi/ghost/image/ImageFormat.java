package ssi.ghost.image;

import java.util.zip.CRC32C;

/**
 * The constants of the ghost image format (docs/IMAGE-FORMAT.md): file names, one magic per file kind,
 * the format version and one record type per kind of kernel object. Changing the layout of any record
 * means a new {@link #VERSION}; readers refuse every version but their own, so an old ssi never
 * misreads a newer image. Constants only; any thread.
 */
public final class ImageFormat {
    private ImageFormat() {}

    /** The one version this code writes and reads. */
    public static final int VERSION = 4;

    // Magics: ASCII tags read as big-endian u32, so `od -c` of a file shows what it is.
    public static final int MAGIC_INVENTORY = 0x53534949; // "SSII"
    public static final int MAGIC_PROCESS = 0x53534950;   // "SSIP"
    public static final int MAGIC_PAGES = 0x53534947;     // "SSIG"
    public static final int MAGIC_FILEDATA = 0x53534946;  // "SSIF"

    public static final String INVENTORY = "inventory.img";

    public static String processFile(int gpid) { return "proc-" + gpid + ".img"; }

    public static String pagesFile(int gpid) { return pagesFile(gpid, 0); }

    /**
     * Version 4: a process's pages may be in several files, its page stripes (written in parallel, one
     * thread each): stripe 0 is pages-GPID.img, stripe k > 0 pages-GPID-k.img; a PAGEMAP run names its stripe.
     */
    public static String pagesFile(int gpid, int stripe) {
        return stripe == 0 ? "pages-" + gpid + ".img" : "pages-" + gpid + "-" + stripe + ".img";
    }

    /** How many page stripes a checkpoint writes (at most; one that stays empty is not kept). */
    public static final int PAGE_STRIPES = 2;
    /** The most page stripes a reader accepts in a run (a larger stripe number is a corrupted record). */
    public static final int MAX_PAGE_STRIPES = 16;

    public static String fileDataFile(int gpid) { return "filedata-" + gpid + ".img"; }

    /** The contents of the application's SysV shared memory segments (MAGIC_FILEDATA, gpid: the root's). */
    public static final String SYSV_SHM_DATA = "sysv-shm.img";

    /** Raw data files (pages, file data) start their payload here, page aligned so a restorer may mmap it. */
    public static final int DATA_START = 4096;
    /** Header of a raw data file: magic u32, version u16, reserved u16, gpid i32, then zeros up to DATA_START. */
    public static final int DATA_HEADER = 12;

    public static final int PAGE_SIZE = 4096;

    // Record types. 0xFFFF closes every metadata file; its absence means the file is truncated.
    public static final int REC_INVENTORY = 1;
    public static final int REC_PSTREE = 2;
    public static final int REC_PROCESS = 10;
    public static final int REC_CREDS = 11;
    public static final int REC_RLIMITS = 12;
    public static final int REC_THREAD = 13;
    public static final int REC_SIGACTS = 14;
    public static final int REC_MM = 15;
    public static final int REC_VMA = 16;
    public static final int REC_FD = 17;
    public static final int REC_PAGEMAP = 18;
    public static final int REC_ITIMERS = 19;
    /** Version 2: a thread's rseq registration, and stat of the files the process uses. */
    public static final int REC_RSEQ = 20;
    public static final int REC_FILESTAT = 21;
    /** Version 3: queued signals with their siginfo (PSTREE, THREAD and FD grew fields in version 3). */
    public static final int REC_SIGQUEUE = 22;
    /**
     * Version 3: incremental images. PARENT (inventory) names the image this one builds on; PARENT_PAGES
     * (process file) lists the present pages of a VMA whose contents are in the parent chain.
     */
    public static final int REC_PARENT = 30;
    public static final int REC_PARENT_PAGES = 31;
    /**
     * Version 3: the state of anonymous-inode fds (one record per such fd, next to its FD record's kind)
     * and the POSIX timers of a process.
     */
    public static final int REC_EVENTFD = 35;
    public static final int REC_TIMERFD = 36;
    public static final int REC_SIGNALFD = 37;
    public static final int REC_EPOLL = 38;
    public static final int REC_POSIX_TIMER = 39;
    /** Version 3: a SysV shared memory segment of the application (inventory), its data in SYSV_SHM_DATA. */
    public static final int REC_SYSV_SHM = 40;
    public static final int REC_END = 0xFFFF;

    /** Record header: u16 type, u32 payload length; trailer: u32 CRC32C of header and payload. */
    public static final int REC_HEADER = 6, REC_TRAILER = 4;
    /** Metadata file header: u32 magic, u16 version, u16 reserved. */
    public static final int FILE_HEADER = 8;
    /** No record is this big (a thread's xstate is a few KiB, a pagemap of a huge VMA a few MiB). */
    public static final int MAX_RECORD = 64 << 20;

    public static String recordName(int type) {
        return switch (type) {
            case REC_INVENTORY -> "INVENTORY";
            case REC_PSTREE -> "PSTREE";
            case REC_PROCESS -> "PROCESS";
            case REC_CREDS -> "CREDS";
            case REC_RLIMITS -> "RLIMITS";
            case REC_THREAD -> "THREAD";
            case REC_SIGACTS -> "SIGACTS";
            case REC_MM -> "MM";
            case REC_VMA -> "VMA";
            case REC_FD -> "FD";
            case REC_PAGEMAP -> "PAGEMAP";
            case REC_ITIMERS -> "ITIMERS";
            case REC_RSEQ -> "RSEQ";
            case REC_FILESTAT -> "FILESTAT";
            case REC_SIGQUEUE -> "SIGQUEUE";
            case REC_PARENT -> "PARENT";
            case REC_PARENT_PAGES -> "PARENT_PAGES";
            case REC_EVENTFD -> "EVENTFD";
            case REC_TIMERFD -> "TIMERFD";
            case REC_SIGNALFD -> "SIGNALFD";
            case REC_EPOLL -> "EPOLL";
            case REC_POSIX_TIMER -> "POSIX_TIMER";
            case REC_SYSV_SHM -> "SYSV_SHM";
            case REC_END -> "END";
            default -> "type " + type;
        };
    }

    public static String magicName(int magic) {
        return switch (magic) {
            case MAGIC_INVENTORY -> "inventory";
            case MAGIC_PROCESS -> "process";
            case MAGIC_PAGES -> "pages";
            case MAGIC_FILEDATA -> "file data";
            default -> String.format("0x%08x", magic);
        };
    }

    static int crc32c(byte[] b, int off, int len) {
        CRC32C c = new CRC32C();
        c.update(b, off, len);
        return (int) c.getValue();
    }
}
