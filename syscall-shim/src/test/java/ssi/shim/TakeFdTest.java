package ssi.shim;

import static org.junit.jupiter.api.Assertions.*;

import java.io.FileOutputStream;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** pidfd_open + pidfd_getfd through jnr-ffi, on an untraced child (so ProcessBuilder is fine here). */
@Timeout(30)
class TakeFdTest {
    private Process child;

    @BeforeEach
    void startChild() throws Exception {
        child = new ProcessBuilder("sleep", "30").redirectError(ProcessBuilder.Redirect.DISCARD).start();
    }

    @AfterEach
    void stopChild() throws Exception {
        child.destroyForcibly().waitFor();
    }

    @Test
    void takesTheChildsStdoutPipe() throws Exception {
        int fd = Tracee.takeFd((int) child.pid(), 1);
        try {
            String ours = Files.readSymbolicLink(Path.of("/proc/self/fd/" + fd)).toString();
            String theirs = Files.readSymbolicLink(Path.of("/proc/" + child.pid() + "/fd/1")).toString();
            assertTrue(ours.startsWith("pipe:"), ours);
            assertEquals(theirs, ours, "the same pipe as the child's fd 1");
            // Bytes written through our copy come out of the pipe the JVM reads the child's stdout from.
            try (FileOutputStream out = new FileOutputStream("/proc/self/fd/" + fd)) {
                out.write("through the taken fd".getBytes(StandardCharsets.UTF_8));
            }
            InputStream in = child.getInputStream();
            assertEquals("through the taken fd", new String(in.readNBytes(20), StandardCharsets.UTF_8));
        } finally {
            Tracee.closeFd(fd);
        }
        ErrnoException e = assertThrows(ErrnoException.class, () -> Tracee.closeFd(fd));
        assertEquals(9, e.errno(), "closed: a second close is EBADF");
    }

    @Test
    void errorsNameThePidAndFd() throws Exception {
        int pid = (int) child.pid();
        ErrnoException e = assertThrows(ErrnoException.class, () -> Tracee.takeFd(pid, 999));
        assertEquals(9, e.errno());
        assertTrue(e.getMessage().contains("fd 999") && e.getMessage().contains("pid " + pid)
                && e.getMessage().contains("EBADF"), e.getMessage());

        Process gone = new ProcessBuilder("true").start();
        gone.waitFor();
        int gonePid = (int) gone.pid();
        e = assertThrows(ErrnoException.class, () -> Tracee.takeFd(gonePid, 0));
        assertEquals(3, e.errno());
        assertTrue(e.getMessage().contains("pid " + gonePid) && e.getMessage().contains("ESRCH"), e.getMessage());
    }
}
