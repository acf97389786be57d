package ssi.ghost.dump;

import org.junit.jupiter.api.Test;
import ssi.ghost.image.Records;

import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertDoesNotThrow;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Files of /proc/N entries a process has open: which a checkpoint takes (its own, its ancestors'). */
class ProcEntriesTest {
    private static Records.Fd reg(int fd, String path) {
        return new Records.Fd(fd, Records.FD_REG, 0, false, 0, path, 1, -1, 0, 0);
    }

    private static ProcTree.Member member(int pid, int ppid) {
        return new ProcTree.Member(pid, ppid, 100, 100, 0, 0, 0, 'S', "t");
    }

    @Test
    void theEntryPidOfAPath() {
        assertEquals(123, Records.Fd.procEntryPid("/proc/123/stat"));
        assertEquals(123, Records.Fd.procEntryPid("/proc/123"));
        assertEquals(7, Records.Fd.procEntryPid("/proc/7/task/8/status"));
        assertEquals(-1, Records.Fd.procEntryPid("/proc/meminfo"));
        assertEquals(-1, Records.Fd.procEntryPid("/proc/self/stat"));
        assertEquals(-1, Records.Fd.procEntryPid("/proc/"));
        assertEquals(-1, Records.Fd.procEntryPid("/procx/1/stat"));
        assertEquals(-1, Records.Fd.procEntryPid("/tmp/proc/1"));
        assertEquals(-1, Records.Fd.procEntryPid("/proc/12345678901/stat"));
    }

    @Test
    void itsOwnEntryAndItsAncestorsAreTakenAnotherProcesssIsRefusedByName() {
        ProcTree tree = new ProcTree(List.of(member(100, 1), member(101, 100), member(102, 101), member(103, 100)));
        assertDoesNotThrow(() -> Checkpointer.checkProcEntries(tree, Map.of(
                102, List.of(reg(3, "/proc/102/stat"), reg(4, "/proc/101/status"), reg(5, "/proc/100/fd"), reg(6, "/proc/meminfo")))));
        CheckpointException child = assertThrows(CheckpointException.class, () -> Checkpointer.checkProcEntries(tree,
                Map.of(100, List.of(reg(7, "/proc/102/stat")))));
        assertEquals(CheckpointException.EOPNOTSUPP, child.errno());
        assertTrue(child.getMessage().contains("process 100 has fd 7 open on /proc/102/stat, the /proc entry of process 102, not one of its ancestors"),
                child.getMessage());
        CheckpointException sibling = assertThrows(CheckpointException.class, () -> Checkpointer.checkProcEntries(tree,
                Map.of(101, List.of(reg(3, "/proc/103/stat")))));
        assertTrue(sibling.getMessage().contains("/proc/103/stat, the /proc entry of process 103, not one of its ancestors"),
                sibling.getMessage());
        CheckpointException outside = assertThrows(CheckpointException.class, () -> Checkpointer.checkProcEntries(tree,
                Map.of(101, List.of(reg(3, "/proc/1/status")))));
        assertTrue(outside.getMessage().contains("process 1, which is not part of the application"), outside.getMessage());
    }
}
