package ssi.ghost.image;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Comparator;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.*;

/**
 * A durable commit (what `ssi checkpoint --stop` asks for) leaves no page of the file dirty or under
 * write-back: the fsync happened. Asked of the kernel with cachestat(2) on a file of the module's target
 * directory (a disk file system here: tmpfs pages have no write-back to wait for). A commit that is not
 * durable gives the same bytes.
 */
class DurabilityTest {
    private static final long SYS_CACHESTAT = 451;
    private static final MethodHandle SYSCALL = Linker.nativeLinker().downcallHandle(
            Linker.nativeLinker().defaultLookup().find("syscall").orElseThrow(),
            FunctionDescriptor.of(ValueLayout.JAVA_LONG, ValueLayout.JAVA_LONG, ValueLayout.JAVA_INT, ValueLayout.ADDRESS,
                    ValueLayout.ADDRESS, ValueLayout.JAVA_INT),
            Linker.Option.firstVariadicArg(1));

    private Path dir;

    @BeforeEach
    void makeDir() throws IOException {
        Path target = Path.of("target");
        Files.createDirectories(target);
        dir = Files.createTempDirectory(target.toAbsolutePath(), "durability-");
    }

    @AfterEach
    void removeDir() throws IOException {
        try (Stream<Path> s = Files.walk(dir)) {
            for (Path p : s.sorted(Comparator.reverseOrder()).toList()) Files.deleteIfExists(p);
        }
    }

    private static final MethodHandle OPEN = Linker.nativeLinker().downcallHandle(
            Linker.nativeLinker().defaultLookup().find("open").orElseThrow(),
            FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.ADDRESS, ValueLayout.JAVA_INT), Linker.Option.firstVariadicArg(2));
    private static final MethodHandle CLOSE = Linker.nativeLinker().downcallHandle(
            Linker.nativeLinker().defaultLookup().find("close").orElseThrow(),
            FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.JAVA_INT));

    /** {dirty, writeback} pages of the file in the page cache (cachestat over the whole file). */
    private static long[] dirtyAndWriteback(Path file) throws Throwable {
        try (Arena a = Arena.ofConfined()) {
            int fd = (int) OPEN.invokeExact(a.allocateFrom(file.toString()), 0);
            assertTrue(fd >= 0, "open " + file);
            try {
                MemorySegment range = a.allocate(16, 8); // off 0, len 0: to the end
                MemorySegment cs = a.allocate(40, 8);
                long r = (long) SYSCALL.invokeExact(SYS_CACHESTAT, fd, range, cs, 0);
                assertEquals(0, r, "cachestat of " + file);
                return new long[] {cs.get(ValueLayout.JAVA_LONG, 8), cs.get(ValueLayout.JAVA_LONG, 16)};
            } finally {
                int c = (int) CLOSE.invokeExact(fd);
            }
        }
    }

    private static Path writePages(Path dir, boolean durable, int mib) throws IOException {
        DataWriter w = DataWriter.create(dir, ImageFormat.pagesFile(7), ImageFormat.MAGIC_PAGES, 7, durable);
        try {
            for (int i = 0; i < mib; i++) {
                ByteBuffer b = w.buffer();
                while (b.hasRemaining()) b.put((byte) (i + b.position()));
                b.flip();
                w.writeBuffer(0, b);
            }
            w.commit(0);
        } finally {
            w.close();
        }
        return dir.resolve(ImageFormat.pagesFile(7));
    }

    @Test
    void aDurablePagesFileIsOnDiskWhenCommitReturns() throws Throwable {
        Path f = writePages(dir, true, 8);
        long[] dw = dirtyAndWriteback(f);
        assertEquals(0, dw[0], "dirty pages of a durable commit");
        assertEquals(0, dw[1], "pages under write-back after a durable commit");
    }

    @Test
    void aDurableMetadataFileIsOnDiskWhenCommitReturns() throws Throwable {
        try (MetaWriter w = MetaWriter.create(dir, ImageFormat.INVENTORY, ImageFormat.MAGIC_INVENTORY)) {
            for (int i = 0; i < 2000; i++) w.record(ImageFormat.REC_PSTREE, out -> out.write(new byte[64]));
            w.commit(0, true);
        }
        long[] dw = dirtyAndWriteback(dir.resolve(ImageFormat.INVENTORY));
        assertEquals(0, dw[0], "dirty pages of a durable commit");
        assertEquals(0, dw[1], "pages under write-back after a durable commit");
    }

    @Test
    void aCommitThatIsNotDurableWritesTheSameBytes() throws Throwable {
        Path a = Files.createDirectory(dir.resolve("a")), b = Files.createDirectory(dir.resolve("b"));
        Path durable = writePages(a, true, 3), lazy = writePages(b, false, 3);
        assertArrayEquals(Files.readAllBytes(durable), Files.readAllBytes(lazy));
        assertFalse(Files.exists(b.resolve("." + ImageFormat.pagesFile(7) + ".tmp")), "no temporary left");
    }
}
