package ssi.shim;

import static org.junit.jupiter.api.Assertions.*;

import java.io.IOException;
import java.io.InputStream;
import java.io.StringReader;
import java.nio.charset.StandardCharsets;
import java.util.List;
import org.junit.jupiter.api.Test;

class SyscallTableTest {

    @Test
    void loadsEveryLineOfTheShippedTable() throws IOException {
        SyscallTable t = SyscallTable.load();
        String raw;
        try (InputStream in = SyscallTableTest.class.getResourceAsStream(SyscallTable.RESOURCE)) {
            raw = new String(in.readAllBytes(), StandardCharsets.UTF_8);
        }
        List<String> lines = raw.lines().filter(l -> !l.isBlank() && !l.startsWith("#")).toList();
        assertFalse(lines.isEmpty());
        assertEquals(lines.size(), t.entries().size());
        for (int i = 0; i < lines.size(); i++) {
            String[] col = lines.get(i).split("\t");
            SyscallTable.Entry e = t.entries().get(i);
            assertEquals(col[0], e.name());
            assertEquals(Integer.parseInt(col[1]), e.nr());
            assertEquals(col[2].equals("shim"), e.decidedByShim());
            assertEquals(col[3].equals("full"), e.fullySupported());
            assertEquals(col[4], e.what());
            assertSame(e, t.byNr(e.nr()));
        }
    }

    @Test
    void knownEntries() {
        SyscallTable t = SyscallTable.load();
        SyscallTable.Entry kill = t.byNr(62);
        assertNotNull(kill);
        assertEquals("kill", kill.name());
        assertTrue(kill.decidedByShim());
        assertFalse(kill.fullySupported());
        assertTrue(kill.what().contains("SI_QUEUE"), kill.what());
        assertEquals("tgkill", t.byNr(234).name());
        assertTrue(t.byNr(129).fullySupported(), "rt_sigqueueinfo is full");
        assertNull(t.byNr(39), "getpid is not trapped");
        assertThrows(UnsupportedOperationException.class, () -> t.entries().clear());
    }

    private static String parseError(String table) {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> SyscallTable.parse(new StringReader(table), "test.tsv"));
        return e.getMessage();
    }

    @Test
    void malformedLinesAreNamed() throws IOException {
        String ok = "# comment\n\nkill\t62\tshim\tpartial\tsomething\n";
        assertEquals(1, SyscallTable.parse(new StringReader(ok), "ok.tsv").entries().size());

        String m = parseError(ok + "tkill\t200\tshim\tpartial\n");
        assertTrue(m.startsWith("test.tsv line 4: expected 5"), m);
        m = parseError(ok + "tkill\t2x0\tshim\tfull\twhat\n");
        assertTrue(m.contains("line 4") && m.contains("'2x0' is not a number"), m);
        m = parseError(ok + "tkill\t200\tkernel\tfull\twhat\n");
        assertTrue(m.contains("line 4") && m.contains("decide"), m);
        m = parseError(ok + "tkill\t200\tshim\tsome\twhat\n");
        assertTrue(m.contains("line 4") && m.contains("support"), m);
        m = parseError(ok + "tkill\t62\tshim\tfull\twhat\n");
        assertTrue(m.contains("line 4") && m.contains("already listed as kill"), m);
        m = parseError(ok + "kill\t63\tshim\tfull\twhat\n");
        assertTrue(m.contains("line 4") && m.contains("kill is already listed"), m);
        m = parseError(ok + "tkill\t200\tshim\tfull\t\n");
        assertTrue(m.contains("line 4") && m.contains("empty"), m);
    }
}
