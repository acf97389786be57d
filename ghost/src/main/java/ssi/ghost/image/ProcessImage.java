package ssi.ghost.image;

import ssi.ghost.image.Records.Creds;
import ssi.ghost.image.Records.Fd;
import ssi.ghost.image.Records.ITimers;
import ssi.ghost.image.Records.Mm;
import ssi.ghost.image.Records.Pagemap;
import ssi.ghost.image.Records.ProcessRec;
import ssi.ghost.image.Records.Rlimits;
import ssi.ghost.image.Records.SigActs;
import ssi.ghost.image.Records.ThreadRec;
import ssi.ghost.image.Records.Vma;

import java.io.IOException;
import java.io.EOFException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * Everything the metadata file proc-GPID.img holds about one process: one record of each
 * process-wide kind, one THREAD per thread, one VMA per mapping, one FD per open fd, one PAGEMAP per
 * VMA with stored pages, and in an incremental image one PARENT_PAGES per VMA with pages whose contents
 * are in the parent chain. Immutable; any thread.
 */
public record ProcessImage(ProcessRec process, Creds creds, Rlimits rlimits, List<ThreadRec> threads, SigActs sigacts,
                           Mm mm, ITimers itimers, List<Vma> vmas, List<Fd> fds, List<Pagemap> pagemaps,
                           List<Records.RseqRec> rseqs, List<Records.FileStat> files, List<Records.SigQueue> sigqueues,
                           List<Records.ParentPages> parentPages, List<Records.FdState> fdStates,
                           List<Records.PosixTimer> timers) {

    /** An image without anonymous-inode fds and POSIX timers. */
    public ProcessImage(ProcessRec process, Creds creds, Rlimits rlimits, List<ThreadRec> threads, SigActs sigacts,
                        Mm mm, ITimers itimers, List<Vma> vmas, List<Fd> fds, List<Pagemap> pagemaps,
                        List<Records.RseqRec> rseqs, List<Records.FileStat> files, List<Records.SigQueue> sigqueues,
                        List<Records.ParentPages> parentPages) {
        this(process, creds, rlimits, threads, sigacts, mm, itimers, vmas, fds, pagemaps, rseqs, files, sigqueues, parentPages,
                List.of(), List.of());
    }

    /** An image that refers to no parent image (every present page stored here). */
    public ProcessImage(ProcessRec process, Creds creds, Rlimits rlimits, List<ThreadRec> threads, SigActs sigacts,
                        Mm mm, ITimers itimers, List<Vma> vmas, List<Fd> fds, List<Pagemap> pagemaps,
                        List<Records.RseqRec> rseqs, List<Records.FileStat> files) {
        this(process, creds, rlimits, threads, sigacts, mm, itimers, vmas, fds, pagemaps, rseqs, files, List.of(), List.of());
    }

    /** An image without rseq registrations and file stats. */
    public ProcessImage(ProcessRec process, Creds creds, Rlimits rlimits, List<ThreadRec> threads, SigActs sigacts,
                        Mm mm, ITimers itimers, List<Vma> vmas, List<Fd> fds, List<Pagemap> pagemaps) {
        this(process, creds, rlimits, threads, sigacts, mm, itimers, vmas, fds, pagemaps, List.of(), List.of(), List.of(),
                List.of());
    }

    public int gpid() { return process.gpid(); }

    /** Writes proc-GPID.img (temp name, fsync, rename). */
    public void write(Path dir, int ownerUid) throws IOException {
        write(dir, ownerUid, true);
    }

    /** Writes proc-GPID.img (temp name, fsync when durable, rename). */
    public void write(Path dir, int ownerUid, boolean durable) throws IOException {
        try (MetaWriter w = MetaWriter.create(dir, ImageFormat.processFile(gpid()), ImageFormat.MAGIC_PROCESS)) {
            w.record(ImageFormat.REC_PROCESS, process::write);
            w.record(ImageFormat.REC_CREDS, creds::write);
            w.record(ImageFormat.REC_RLIMITS, rlimits::write);
            for (ThreadRec t : threads) w.record(ImageFormat.REC_THREAD, t::write);
            w.record(ImageFormat.REC_SIGACTS, sigacts::write);
            w.record(ImageFormat.REC_MM, mm::write);
            w.record(ImageFormat.REC_ITIMERS, itimers::write);
            for (Vma v : vmas) w.record(ImageFormat.REC_VMA, v::write);
            for (Fd f : fds) w.record(ImageFormat.REC_FD, f::write);
            for (Pagemap p : pagemaps) w.record(ImageFormat.REC_PAGEMAP, p::write);
            for (Records.RseqRec r : rseqs) w.record(ImageFormat.REC_RSEQ, r::write);
            for (Records.FileStat f : files) w.record(ImageFormat.REC_FILESTAT, f::write);
            for (Records.SigQueue q : sigqueues) w.record(ImageFormat.REC_SIGQUEUE, q::write);
            for (Records.ParentPages p : parentPages) w.record(ImageFormat.REC_PARENT_PAGES, p::write);
            for (Records.FdState f : fdStates) w.record(f.recordType(), f::write);
            for (Records.PosixTimer t : timers) w.record(ImageFormat.REC_POSIX_TIMER, t::write);
            w.commit(ownerUid, durable);
        }
    }

    /** Reads and checks proc-GPID.img: every record valid, each process-wide kind exactly once. */
    public static ProcessImage read(Path dir, int gpid) throws IOException {
        Path file = dir.resolve(ImageFormat.processFile(gpid));
        ProcessRec process = null;
        Creds creds = null;
        Rlimits rlimits = null;
        SigActs sigacts = null;
        Mm mm = null;
        ITimers itimers = null;
        List<ThreadRec> threads = new ArrayList<>();
        List<Vma> vmas = new ArrayList<>();
        List<Fd> fds = new ArrayList<>();
        List<Pagemap> pagemaps = new ArrayList<>();
        List<Records.RseqRec> rseqs = new ArrayList<>();
        List<Records.FileStat> files = new ArrayList<>();
        List<Records.SigQueue> sigqueues = new ArrayList<>();
        List<Records.ParentPages> parentPages = new ArrayList<>();
        List<Records.FdState> fdStates = new ArrayList<>();
        List<Records.PosixTimer> timers = new ArrayList<>();
        for (MetaReader.Rec r : MetaReader.read(file, ImageFormat.MAGIC_PROCESS)) {
            MetaReader.Dec d = r.dec(file);
            try {
                switch (r.type()) {
                    case ImageFormat.REC_PROCESS -> process = once(d, process, ProcessRec.read(d.in()));
                    case ImageFormat.REC_CREDS -> creds = once(d, creds, Creds.read(d.in()));
                    case ImageFormat.REC_RLIMITS -> rlimits = once(d, rlimits, Rlimits.read(d.in()));
                    case ImageFormat.REC_SIGACTS -> sigacts = once(d, sigacts, SigActs.read(d.in()));
                    case ImageFormat.REC_MM -> mm = once(d, mm, Mm.read(d.in()));
                    case ImageFormat.REC_ITIMERS -> itimers = once(d, itimers, ITimers.read(d.in()));
                    case ImageFormat.REC_THREAD -> threads.add(ThreadRec.read(d.in()));
                    case ImageFormat.REC_VMA -> vmas.add(Vma.read(d.in()));
                    case ImageFormat.REC_FD -> fds.add(Fd.read(d.in()));
                    case ImageFormat.REC_PAGEMAP -> pagemaps.add(Pagemap.read(d.in()));
                    case ImageFormat.REC_RSEQ -> rseqs.add(Records.RseqRec.read(d.in()));
                    case ImageFormat.REC_FILESTAT -> files.add(Records.FileStat.read(d.in()));
                    case ImageFormat.REC_SIGQUEUE -> sigqueues.add(Records.SigQueue.read(d.in()));
                    case ImageFormat.REC_PARENT_PAGES -> parentPages.add(Records.ParentPages.read(d.in()));
                    case ImageFormat.REC_EVENTFD -> fdStates.add(Records.EventFd.read(d.in()));
                    case ImageFormat.REC_TIMERFD -> fdStates.add(Records.TimerFd.read(d.in()));
                    case ImageFormat.REC_SIGNALFD -> fdStates.add(Records.SignalFd.read(d.in()));
                    case ImageFormat.REC_EPOLL -> fdStates.add(Records.Epoll.read(d.in()));
                    case ImageFormat.REC_POSIX_TIMER -> timers.add(Records.PosixTimer.read(d.in()));
                    default -> throw d.error("unknown record type in a process file");
                }
            } catch (EOFException e) {
                throw d.error("shorter than its fields");
            } catch (ImageException e) {
                throw e;
            } catch (IOException e) {
                throw d.error(e.getMessage());
            }
            d.end();
        }
        String missing = process == null ? "PROCESS" : creds == null ? "CREDS" : rlimits == null ? "RLIMITS"
                : sigacts == null ? "SIGACTS" : mm == null ? "MM" : itimers == null ? "ITIMERS" : threads.isEmpty() ? "THREAD" : null;
        if (missing != null) throw new ImageException(file, 0, "no " + missing + " record");
        if (process.gpid() != gpid) {
            throw new ImageException(file, 0, "holds process " + process.gpid() + ", expected " + gpid);
        }
        return new ProcessImage(process, creds, rlimits, List.copyOf(threads), sigacts, mm, itimers, List.copyOf(vmas),
                List.copyOf(fds), List.copyOf(pagemaps), List.copyOf(rseqs), List.copyOf(files), List.copyOf(sigqueues),
                List.copyOf(parentPages), List.copyOf(fdStates), List.copyOf(timers));
    }

    /** The state record of anonymous-inode fd fd, or null. */
    public Records.FdState fdState(int fd) {
        for (Records.FdState s : fdStates) if (s.fd() == fd) return s;
        return null;
    }

    private static <T> T once(MetaReader.Dec d, T old, T value) throws ImageException {
        if (old != null) throw d.error("appears twice");
        return value;
    }

    /** Present pages of this process whose contents are in the parent chain (0 for a full image). */
    public long parentPageCount() {
        long n = 0;
        for (Records.ParentPages p : parentPages) n += p.pages();
        return n;
    }

    /** Stored pages of this process. */
    public long storedPages() {
        long n = 0;
        for (Pagemap p : pagemaps) n += p.pages();
        return n;
    }
}
