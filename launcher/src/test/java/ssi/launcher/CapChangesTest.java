package ssi.launcher;

import org.junit.jupiter.api.Test;
import ssi.comm.control.Capabilities;

import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The CHANGES lists of `ssi capset` and the order of the resulting CAPSET requests. */
class CapChangesTest {

    @Test
    void plusMinusAndBareNames() {
        assertEquals(new CapChanges.Change(Capabilities.CAN_MIGRATE, 0), CapChanges.parse("+CAN_MIGRATE"));
        assertEquals(new CapChanges.Change(Capabilities.CAN_MIGRATE, 0), CapChanges.parse("CAN_MIGRATE"));
        assertEquals(new CapChanges.Change(0, Capabilities.DISTANT_FORK), CapChanges.parse("-DISTANT_FORK"));
        assertEquals(new CapChanges.Change(Capabilities.CAN_MIGRATE | Capabilities.CAN_CHECKPOINT, Capabilities.CHANGE_SSI_CAP),
                CapChanges.parse("+can_migrate, -Change_Ssi_Cap,CAN_CHECKPOINT"));
        assertEquals(new CapChanges.Change(Capabilities.SEE_LOCAL_PROC_STAT, 0), CapChanges.parse("see_local_proc_stat,+SEE_LOCAL_PROC_STAT"));
    }

    @Test
    void unknownNameListsTheKnownOnes() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> CapChanges.parse("+CAN_MIGRATE,-FLY"));
        assertEquals("unknown SSI capability 'FLY' (known: CAN_MIGRATE, DISTANT_FORK, CAN_CHECKPOINT, SEE_LOCAL_PROC_STAT, "
                + "CHANGE_SSI_CAP)", e.getMessage());
    }

    @Test
    void malformedLists() {
        assertThrows(IllegalArgumentException.class, () -> CapChanges.parse(""));
        assertThrows(IllegalArgumentException.class, () -> CapChanges.parse("  "));
        assertThrows(IllegalArgumentException.class, () -> CapChanges.parse("+"));
        assertThrows(IllegalArgumentException.class, () -> CapChanges.parse("CAN_MIGRATE,,DISTANT_FORK"));
        assertThrows(IllegalArgumentException.class, () -> CapChanges.parse("CAN_MIGRATE,"));
        assertThrows(IllegalArgumentException.class, () -> CapChanges.parse("+-CAN_MIGRATE"));
        IllegalArgumentException both = assertThrows(IllegalArgumentException.class,
                () -> CapChanges.parse("+CAN_MIGRATE,-can_migrate"));
        assertTrue(both.getMessage().startsWith("CAN_MIGRATE both raised and lowered"), both.getMessage());
    }

    @Test
    void raisesGoOuterSetFirstThenLowersInnerSetFirst() {
        Map<Integer, CapChanges.Change> all = Map.of(
                Capabilities.EFFECTIVE, new CapChanges.Change(1, 2),
                Capabilities.PERMITTED, new CapChanges.Change(4, 8),
                Capabilities.INHERITABLE_EFFECTIVE, new CapChanges.Change(16, 1),
                Capabilities.INHERITABLE_PERMITTED, new CapChanges.Change(2, 4));
        assertEquals(List.of(
                new CapChanges.Step(Capabilities.PERMITTED, 4, 0),
                new CapChanges.Step(Capabilities.INHERITABLE_PERMITTED, 2, 0),
                new CapChanges.Step(Capabilities.EFFECTIVE, 1, 0),
                new CapChanges.Step(Capabilities.INHERITABLE_EFFECTIVE, 16, 0),
                new CapChanges.Step(Capabilities.EFFECTIVE, 0, 2),
                new CapChanges.Step(Capabilities.INHERITABLE_EFFECTIVE, 0, 1),
                new CapChanges.Step(Capabilities.INHERITABLE_PERMITTED, 0, 4),
                new CapChanges.Step(Capabilities.PERMITTED, 0, 8)), CapChanges.plan(all));
    }

    @Test
    void planKeepsSubsetRulesOnAModelOfTheSets() {
        // Model check: starting from a valid state, apply every step of a plan and check the rules
        // effective <= permitted, inh. effective <= inh. permitted <= permitted after each one.
        int[] start = {Capabilities.CAN_MIGRATE, Capabilities.ALL, 0, Capabilities.CAN_MIGRATE}; // E, P, IE, IP
        // drop CAN_MIGRATE everywhere and raise DISTANT_FORK everywhere in one call
        Map<Integer, CapChanges.Change> changes = Map.of(
                Capabilities.EFFECTIVE, CapChanges.parse("-CAN_MIGRATE,+DISTANT_FORK"),
                Capabilities.PERMITTED, CapChanges.parse("-CAN_MIGRATE"),
                Capabilities.INHERITABLE_PERMITTED, CapChanges.parse("-CAN_MIGRATE,+DISTANT_FORK"),
                Capabilities.INHERITABLE_EFFECTIVE, CapChanges.parse("+DISTANT_FORK"));
        int[] s = start.clone();
        for (CapChanges.Step step : CapChanges.plan(changes)) {
            s[step.set()] = (s[step.set()] | step.raise()) & ~step.lower();
            assertEquals(0, s[Capabilities.EFFECTIVE] & ~s[Capabilities.PERMITTED], "E <= P after " + step);
            assertEquals(0, s[Capabilities.INHERITABLE_PERMITTED] & ~s[Capabilities.PERMITTED], "IP <= P after " + step);
            assertEquals(0, s[Capabilities.INHERITABLE_EFFECTIVE] & ~s[Capabilities.INHERITABLE_PERMITTED], "IE <= IP after " + step);
        }
        assertEquals(Capabilities.DISTANT_FORK, s[Capabilities.EFFECTIVE]);
        assertEquals(Capabilities.ALL & ~Capabilities.CAN_MIGRATE, s[Capabilities.PERMITTED]);
    }

    @Test
    void emptyChangesNeedNoRequest() {
        assertEquals(List.of(), CapChanges.plan(Map.of()));
    }
}
