package ssi.ghost.restore;

import static org.junit.jupiter.api.Assertions.*;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import ssi.shim.Regs;

class RestorerTest {
    private static Regs regs(long rax, long origRax, long rip) {
        return Regs.of(new long[27]).withRax(rax).withOrigRax(origRax).withRip(rip);
    }

    @Test
    void aSyscallInterruptedWithARestartCodeRunsAgain() {
        for (long code : new long[] {-512, -513, -514}) {
            Regs r = Restorer.resumeRegs(regs(code, 7, 0x401002));
            assertEquals(7, r.rax());
            assertEquals(0x401000, r.rip());
            assertEquals(-1, r.origRax(), "the kernel must not adjust them again");
        }
    }

    @Test
    void restartBlockRestartsTheSleepsFromTheStartAndFailsTheRestWithEintr() {
        Regs sleep = Restorer.resumeRegs(regs(-516, 230, 0x401002)); // clock_nanosleep
        assertEquals(230, sleep.rax());
        assertEquals(0x401000, sleep.rip());
        Regs other = Restorer.resumeRegs(regs(-516, 219, 0x401002)); // restart_syscall itself
        assertEquals(-4, other.rax());
        assertEquals(0x401002, other.rip());
    }

    @Test
    void resultsAndUserCodeAreLeftAlone() {
        Regs done = Restorer.resumeRegs(regs(5, 0, 0x401002)); // read returned 5
        assertEquals(5, done.rax());
        assertEquals(0x401002, done.rip());
        Regs user = Restorer.resumeRegs(regs(-514, -1, 0x401002)); // not in a syscall: rax is just a value
        assertEquals(-514, user.rax());
        assertEquals(0x401002, user.rip());
    }

    @Test
    void freeAreasAvoidEveryBusyRange() {
        long base = 1L << 32;
        assertEquals(base, Restorer.findFree(4096, List.of()));
        assertEquals(base + 0x3000, Restorer.findFree(0x2000, List.of(
                new long[] {base, base + 0x1000}, new long[] {base + 0x1800, base + 0x2800},
                new long[] {base + 0x5000, base + 0x6000})));
        // a gap too small is skipped
        assertEquals(base + 0x6000, Restorer.findFree(0x3000, List.of(
                new long[] {base + 0x5000, base + 0x6000}, new long[] {base, base + 0x3000})));
    }

    @Test
    void mapsLinesWithSpacesInTheirPath() {
        Restorer.MapsLine m = Restorer.parseMapsLine(
                "7f00aa000000-7f00aa021000 rw-p 00001000 fe:00 1234                       /tmp/a b/c d");
        assertEquals(0x7f00aa000000L, m.start());
        assertEquals(0x7f00aa021000L, m.end());
        assertEquals("rw-p", m.perms());
        assertEquals("/tmp/a b/c d", m.name());
        assertTrue(Restorer.parseMapsLine("7ffd1000-7ffd3000 r-xp 00000000 00:00 0  [vdso]").special());
        assertFalse(Restorer.parseMapsLine("ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0 [vsyscall]").special());
        assertEquals("", Restorer.parseMapsLine("7f00aa000000-7f00aa021000 rw-p 00000000 00:00 0").name());
    }

    /** Runs the moves on a model of the address space: MREMAP_FIXED destroys what is at the destination. */
    private static Map<String, long[]> simulate(Map<String, long[]> now, List<Restorer.SpecialMove> moves) {
        Map<String, long[]> at = new HashMap<>();
        now.forEach((k, v) -> at.put(k, v.clone()));
        for (Restorer.SpecialMove m : moves) {
            long[] cur = at.get(m.name());
            assertArrayEquals(new long[] {m.from(), m.from() + m.len()}, cur, "moving " + m.name() + " from where it is");
            for (Map.Entry<String, long[]> e : at.entrySet()) {
                if (e.getKey().equals(m.name()))
                    continue;
                long[] o = e.getValue();
                assertFalse(o[0] < m.to() + m.len() && m.to() < o[1], m + " lands on " + e.getKey());
            }
            assertFalse(m.from() < m.to() + m.len() && m.to() < m.from() + m.len(), m + " overlaps itself");
            at.put(m.name(), new long[] {m.to(), m.to() + m.len()});
        }
        return at;
    }

    @Test
    void specialMappingsSwapPlacesWithoutLandingOnEachOther() throws Exception {
        long p = 4096, b = 0x7f0000000000L;
        // the stub: vvar 4 pages, vvar_vclock 2, vdso 2, contiguous at b; the process had them 2 pages lower,
        // so vdso's new place is where vvar_vclock is, and vvar's overlaps its own
        Map<String, long[]> now = new HashMap<>(Map.of(
                "[vvar]", new long[] {b, b + 4 * p}, "[vvar_vclock]", new long[] {b + 4 * p, b + 6 * p},
                "[vdso]", new long[] {b + 6 * p, b + 8 * p}));
        long t = b - 2 * p;
        List<RestorePlan.Special> targets = List.of(
                new RestorePlan.Special("[vdso]", t + 6 * p, t + 8 * p), // listed first on purpose
                new RestorePlan.Special("[vvar]", t, t + 4 * p),
                new RestorePlan.Special("[vvar_vclock]", t + 4 * p, t + 6 * p));
        List<Restorer.SpecialMove> moves = Restorer.planSpecialMoves(now, targets, List.of());
        Map<String, long[]> end = simulate(now, moves);
        for (RestorePlan.Special s : targets)
            assertArrayEquals(new long[] {s.start(), s.end()}, end.get(s.name()), s.name());
        assertEquals(6, moves.size(), "three out of the way, three into place: " + moves);

        // vdso goes where vvar is, vvar somewhere free: vdso must not be put in place before vvar left
        now = new HashMap<>(Map.of("[vvar]", new long[] {b, b + 4 * p}, "[vdso]", new long[] {b + 6 * p, b + 8 * p}));
        targets = List.of(new RestorePlan.Special("[vdso]", b, b + 2 * p),
                new RestorePlan.Special("[vvar]", b + 100 * p, b + 104 * p));
        moves = Restorer.planSpecialMoves(now, targets, List.of());
        end = simulate(now, moves);
        for (RestorePlan.Special s : targets)
            assertArrayEquals(new long[] {s.start(), s.end()}, end.get(s.name()), s.name());
    }

    @Test
    void specialMappingsFarAwayMoveOnceAndThoseInPlaceStay() throws Exception {
        long p = 4096;
        Map<String, long[]> now = new HashMap<>(Map.of(
                "[vvar]", new long[] {0x7f0000000000L, 0x7f0000000000L + 4 * p},
                "[vdso]", new long[] {0x7f1000000000L, 0x7f1000000000L + 2 * p}));
        List<RestorePlan.Special> targets = List.of(
                new RestorePlan.Special("[vvar]", 0x7e0000000000L, 0x7e0000000000L + 4 * p),
                new RestorePlan.Special("[vdso]", 0x7f1000000000L, 0x7f1000000000L + 2 * p));
        List<Restorer.SpecialMove> moves = Restorer.planSpecialMoves(now, targets, List.of());
        assertEquals(List.of(new Restorer.SpecialMove("[vvar]", 0x7f0000000000L, 4 * p, 0x7e0000000000L)), moves);
        RestorePlan.Special bigger = new RestorePlan.Special("[vdso]", 0x7f1000000000L, 0x7f1000000000L + 3 * p);
        RestoreException e = assertThrows(RestoreException.class,
                () -> Restorer.planSpecialMoves(now, List.of(bigger), List.of()));
        assertTrue(e.getMessage().contains("different kernel"), e.getMessage());
    }

    @Test
    void signalNames() {
        assertEquals("SIGUSR1", Restorer.sigName(10));
        assertEquals("SIGSYS", Restorer.sigName(31));
        assertEquals("SIGRT2", Restorer.sigName(34));
    }
}
