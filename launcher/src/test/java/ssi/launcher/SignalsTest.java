package ssi.launcher;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Signal names and numbers as `ssi kill` reads and prints them (Linux x86_64 numbering). */
class SignalsTest {

    @Test
    void namesWithAndWithoutPrefixInAnyCase() {
        assertEquals(9, Signals.parse("KILL"));
        assertEquals(9, Signals.parse("SIGKILL"));
        assertEquals(9, Signals.parse("kill"));
        assertEquals(9, Signals.parse("SigKill"));
        assertEquals(15, Signals.parse("TERM"));
        assertEquals(1, Signals.parse("HUP"));
        assertEquals(10, Signals.parse("USR1"));
        assertEquals(12, Signals.parse("SIGUSR2"));
        assertEquals(17, Signals.parse("CHLD"));
        assertEquals(18, Signals.parse("CONT"));
        assertEquals(19, Signals.parse("STOP"));
        assertEquals(20, Signals.parse("TSTP"));
        assertEquals(31, Signals.parse("SYS"));
    }

    @Test
    void aliases() {
        assertEquals(6, Signals.parse("IOT"));
        assertEquals(6, Signals.parse("ABRT"));
        assertEquals(17, Signals.parse("SIGCLD"));
        assertEquals(29, Signals.parse("POLL"));
        assertEquals(29, Signals.parse("IO"));
    }

    @Test
    void numbers() {
        assertEquals(0, Signals.parse("0"));
        assertEquals(9, Signals.parse("9"));
        assertEquals(64, Signals.parse("64"));
        assertEquals(32, Signals.parse("32")); // no name, still a valid number
        assertThrows(IllegalArgumentException.class, () -> Signals.parse("65"));
        assertThrows(IllegalArgumentException.class, () -> Signals.parse("99999999999999"));
    }

    @Test
    void realtimeSignals() {
        assertEquals(34, Signals.parse("RTMIN"));
        assertEquals(35, Signals.parse("SIGRTMIN+1"));
        assertEquals(64, Signals.parse("RTMAX"));
        assertEquals(63, Signals.parse("rtmax-1"));
        assertEquals(64, Signals.parse("RTMIN+30"));
        assertThrows(IllegalArgumentException.class, () -> Signals.parse("RTMIN+31"));
        assertThrows(IllegalArgumentException.class, () -> Signals.parse("RTMAX-31"));
        assertThrows(IllegalArgumentException.class, () -> Signals.parse("RTMIN+"));
        assertThrows(IllegalArgumentException.class, () -> Signals.parse("RTMIN+x"));
    }

    @Test
    void unknownNamesAreRejectedWithAHint() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Signals.parse("FOO"));
        assertEquals("unknown signal 'FOO' (see `ssi kill -l`)", e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> Signals.parse(""));
        assertThrows(IllegalArgumentException.class, () -> Signals.parse("SIG"));
        assertThrows(IllegalArgumentException.class, () -> Signals.parse("-9"));
    }

    @Test
    void namesOfNumbers() {
        assertEquals("HUP", Signals.name(1));
        assertEquals("KILL", Signals.name(9));
        assertEquals("SYS", Signals.name(31));
        assertNull(Signals.name(0));
        assertNull(Signals.name(32));
        assertNull(Signals.name(33));
        assertEquals("RTMIN", Signals.name(34));
        assertEquals("RTMIN+15", Signals.name(49));
        assertEquals("RTMAX-14", Signals.name(50));
        assertEquals("RTMAX", Signals.name(64));
        assertNull(Signals.name(65));
    }

    @Test
    void everyNameRoundTrips() {
        for (int n = 1; n <= Signals.MAX; n++) {
            String name = Signals.name(n);
            if (name != null) assertEquals(n, Signals.parse(name), name);
        }
    }

    @Test
    void tableListsEveryNamedSignal() {
        String t = Signals.table();
        assertTrue(t.startsWith(" 1) SIGHUP       2) SIGINT"), t);
        assertTrue(t.contains("15) SIGTERM"), t);
        assertTrue(t.contains("34) SIGRTMIN"), t);
        assertTrue(t.endsWith("64) SIGRTMAX\n"), t);
        assertEquals(31 + 31, t.split("\\)").length - 1, "31 standard + 31 real-time signals");
        t.lines().forEach(l -> assertTrue(!l.endsWith(" "), "trailing blank in '" + l + "'"));
    }
}
