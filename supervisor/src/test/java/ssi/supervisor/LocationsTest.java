package ssi.supervisor;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;

class LocationsTest {
    private static final int N1 = 1 << 14, N2 = 2 << 14;

    @Test
    void aGpidLivesWhereItsProcIsThenWhereItMovedThenAtItsBirthNode(@TempDir Path proc) throws Exception {
        Locations at1 = new Locations(PidLayout.standard(), 1, proc);
        assertEquals(2, at1.nodeOf(N2 + 5), "another node's gpid, not here: its birth node");
        Files.createDirectory(proc.resolve(Integer.toString(N2 + 5)));
        assertEquals(1, at1.nodeOf(N2 + 5), "restarted here: here");
        assertEquals(1, at1.nodeOf(N1 + 7), "our own range, nothing known: here");
        at1.moved(2, List.of(N1 + 7, N2 + 9));
        assertEquals(2, at1.nodeOf(N1 + 7), "ours, restarted on node 2: there");
        assertEquals(2, at1.movedTo(N1 + 7));
        assertEquals(0, at1.movedTo(N2 + 9), "only gpids of our own range are remembered");
        Files.createDirectory(proc.resolve(Integer.toString(N1 + 7)));
        assertEquals(1, at1.nodeOf(N1 + 7), "the pid is ours again (a new process): here, whatever moved says");
        assertEquals(0, at1.movedTo(N1 + 7));
        assertEquals(0, at1.nodeOf(0));
    }

    @Test
    void movedRoundTrips() throws Exception {
        RpcEnvelope.Message m = RpcEnvelope.decode(RpcEnvelope.moved(3, List.of(N1 + 1, N1 + 2)));
        assertNotNull(m.moved());
        assertEquals(3, m.moved().node());
        assertEquals(List.of(N1 + 1, N1 + 2), m.moved().gpids());
    }
}
