package ssi.supervisor;

import org.junit.jupiter.api.Test;
import ssi.comm.control.ControlMessages;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.*;
import static ssi.comm.control.Capabilities.*;

/** Kerrighed capability semantics on a modelled process tree (forks, exits, pid reuse). */
class CapabilityTableTest {
    /** A process tree the test forks and kills at will; start times grow like the kernel's. */
    static final class Tree implements ProcessTree {
        private final Map<Integer, Node> nodes = new LinkedHashMap<>();
        private long clock = 1000;

        Node fork(int pid, int ppid, int ruid) {
            if (nodes.containsKey(pid)) throw new IllegalStateException("pid " + pid + " is in use");
            Node n = new Node(pid, ppid, clock++, ruid);
            nodes.put(pid, n);
            return n;
        }

        void exit(int pid) {
            nodes.remove(pid);
        }

        @Override public Node node(int pid) { return nodes.get(pid); }

        @Override public List<Node> all() { return new ArrayList<>(nodes.values()); }
    }

    private static final int DEFAULT_P = CAN_MIGRATE | DISTANT_FORK | CAN_CHECKPOINT | SEE_LOCAL_PROC_STAT;
    private static final int DEFAULT_E = CAN_MIGRATE | CAN_CHECKPOINT;

    private final Tree tree = new Tree();
    private final CapabilityTable caps = new CapabilityTable(tree);

    private static Refused refused(int errno, ThrowingRunnable r) {
        Refused e = assertThrows(Refused.class, r::run);
        assertEquals(errno, e.errno, e.getMessage());
        return e;
    }

    interface ThrowingRunnable { void run() throws Exception; }

    @Test
    void launchedProcessesGetTheNodeDefaults() throws Refused {
        tree.fork(100, 0, 1000);
        tree.fork(101, 0, 0);
        caps.launched(100, 1000);
        caps.launched(101, 0);
        assertEquals(new CapabilityTable.Sets(DEFAULT_P, DEFAULT_E, DEFAULT_P, DEFAULT_E), caps.get(100));
        int rootP = DEFAULT_P | CHANGE_SSI_CAP;
        assertEquals(new CapabilityTable.Sets(rootP, DEFAULT_E, rootP, DEFAULT_E), caps.get(101), "root also gets CHANGE_SSI_CAP");
        refused(ControlMessages.ESRCH, () -> caps.get(999));
    }

    @Test
    void childrenInheritTheInheritableSets() throws Refused {
        tree.fork(100, 0, 0);
        caps.launched(100, 0);
        // root shapes its inheritable sets: children may not migrate, but may checkpoint
        caps.set(100, INHERITABLE_EFFECTIVE, 0, CAN_MIGRATE, 0);
        caps.set(100, INHERITABLE_PERMITTED, 0, CAN_MIGRATE | CHANGE_SSI_CAP, 0);
        tree.fork(200, 100, 0);
        tree.fork(300, 200, 0); // a grandchild, with no record in between
        CapabilityTable.Sets parent = caps.get(100);
        CapabilityTable.Sets child = caps.get(200);
        assertEquals(parent.inheritablePermitted(), child.permitted(), "child.P = parent.IP");
        assertEquals(parent.inheritableEffective(), child.effective(), "child.E = parent.IE");
        assertEquals(parent.inheritablePermitted(), child.inheritablePermitted());
        assertEquals(parent.inheritableEffective(), child.inheritableEffective());
        assertEquals(0, child.permitted() & (CAN_MIGRATE | CHANGE_SSI_CAP));
        assertEquals(CAN_CHECKPOINT, child.effective());
        assertEquals(child, caps.get(300));
        assertEquals(DEFAULT_P | CHANGE_SSI_CAP, parent.permitted(), "the parent's own P did not change");
    }

    @Test
    void aChangeDoesNotLeakIntoChildrenForkedBeforeIt() throws Refused {
        tree.fork(100, 0, 1000);
        caps.launched(100, 1000);
        tree.fork(200, 100, 1000);  // forked before the change, never looked at
        tree.fork(300, 200, 1000);  // its child, also before the change
        caps.set(100, INHERITABLE_EFFECTIVE, 0, CAN_CHECKPOINT, 1000);
        tree.fork(201, 100, 1000);  // forked after the change
        assertEquals(DEFAULT_E, caps.get(200).effective(), "a child forked before keeps what it inherited");
        assertEquals(DEFAULT_E, caps.get(300).effective(), "and so does its subtree");
        assertEquals(CAN_MIGRATE, caps.get(201).effective(), "a child forked after gets the new IE");
        assertEquals(CAN_MIGRATE, caps.get(201).inheritableEffective());
    }

    @Test
    void aReusedPidDoesNotInheritTheDeadProcessRecord() throws Refused {
        tree.fork(100, 0, 1000);
        caps.launched(100, 1000);
        caps.set(100, EFFECTIVE, 0, CAN_MIGRATE | CAN_CHECKPOINT, 1000);
        assertEquals(0, caps.get(100).effective());
        tree.exit(100);
        tree.fork(100, 0, 1000); // same pid, new process
        assertEquals(DEFAULT_E, caps.get(100).effective(), "the new process 100 has the defaults");

        // A reused parent pid: the child's parent is the new 150, not the dead one whose record remains.
        tree.fork(150, 0, 1000);
        caps.launched(150, 1000);
        caps.set(150, INHERITABLE_EFFECTIVE, 0, CAN_MIGRATE, 1000);
        tree.exit(150);
        Tree.Node reborn = tree.fork(150, 0, 1000);
        tree.fork(151, reborn.pid(), 1000);
        assertEquals(DEFAULT_E, caps.get(151).effective());
    }

    @Test
    void setsMustStaySubsets() throws Refused {
        tree.fork(101, 0, 1000);
        caps.launched(101, 1000);
        Refused eNotInP = refused(ControlMessages.EINVAL, () -> caps.set(101, EFFECTIVE, CHANGE_SSI_CAP, 0, 0));
        assertTrue(eNotInP.getMessage().contains("effective set") && eNotInP.getMessage().contains("permitted set"),
                eNotInP.getMessage());
        Refused ieNotInIp = refused(ControlMessages.EINVAL, () -> caps.set(101, INHERITABLE_EFFECTIVE, CHANGE_SSI_CAP, 0, 0));
        assertTrue(ieNotInIp.getMessage().contains("inheritable effective set")
                && ieNotInIp.getMessage().contains("inheritable permitted set"), ieNotInIp.getMessage());
        Refused ipNotInP = refused(ControlMessages.EINVAL, () -> caps.set(101, PERMITTED, 0, DISTANT_FORK, 0));
        assertTrue(ipNotInP.getMessage().contains("inheritable permitted set") && ipNotInP.getMessage().contains("DISTANT_FORK"),
                "IP still holds DISTANT_FORK: " + ipNotInP.getMessage());
        Refused eStillHolds = refused(ControlMessages.EINVAL, () -> caps.set(101, PERMITTED, 0, CAN_MIGRATE, 0));
        assertTrue(eStillHolds.getMessage().contains("CAN_MIGRATE"), eStillHolds.getMessage());
        assertEquals(CapabilityTable.defaults(1000), caps.get(101), "refused changes change nothing");

        // the legal order: lower from IP first, then from P
        caps.set(101, INHERITABLE_PERMITTED, 0, DISTANT_FORK, 0);
        assertEquals(DEFAULT_P & ~DISTANT_FORK, caps.set(101, PERMITTED, 0, DISTANT_FORK, 0).permitted());

        refused(ControlMessages.EINVAL, () -> caps.set(101, 4, CAN_MIGRATE, 0, 0));
        refused(ControlMessages.EINVAL, () -> caps.set(101, EFFECTIVE, 64, 0, 0));
        refused(ControlMessages.EINVAL, () -> caps.set(101, EFFECTIVE, CAN_MIGRATE, CAN_MIGRATE, 0));
        refused(ControlMessages.ESRCH, () -> caps.set(999, EFFECTIVE, 0, CAN_MIGRATE, 0));
    }

    @Test
    void raisingIntoPermittedNeedsChangeSsiCapOrRoot() throws Refused {
        tree.fork(100, 0, 1000);
        caps.launched(100, 1000);
        caps.set(100, INHERITABLE_PERMITTED, 0, DISTANT_FORK, 1000);
        caps.set(100, PERMITTED, 0, DISTANT_FORK, 1000); // lowering is always open to the owner
        Refused e = refused(ControlMessages.EPERM, () -> caps.set(100, PERMITTED, DISTANT_FORK, 0, 1000));
        assertTrue(e.getMessage().contains("CHANGE_SSI_CAP"), e.getMessage());
        assertEquals(DEFAULT_P & ~DISTANT_FORK, caps.get(100).permitted());

        // root may raise; once the process holds CHANGE_SSI_CAP in E, its owner may raise too
        caps.set(100, PERMITTED, DISTANT_FORK | CHANGE_SSI_CAP, 0, 0);
        caps.set(100, EFFECTIVE, CHANGE_SSI_CAP, 0, 1000);
        caps.set(100, INHERITABLE_PERMITTED, 0, SEE_LOCAL_PROC_STAT, 1000);
        caps.set(100, PERMITTED, 0, SEE_LOCAL_PROC_STAT, 1000);
        assertEquals(DEFAULT_P | CHANGE_SSI_CAP, caps.set(100, PERMITTED, SEE_LOCAL_PROC_STAT, 0, 1000).permitted(),
                "with CHANGE_SSI_CAP in E the owner may raise into P");
    }

    @Test
    void onlyTheOwnerOrRootMayChangeAProcess() throws Refused {
        tree.fork(100, 0, 1000);
        caps.launched(100, 1000);
        Refused e = refused(ControlMessages.EPERM, () -> caps.set(100, EFFECTIVE, 0, CAN_MIGRATE, 1001));
        assertTrue(e.getMessage().contains("uid 1001") && e.getMessage().contains("uid 1000"), e.getMessage());
        assertEquals(DEFAULT_E, caps.get(100).effective());
        assertEquals(DEFAULT_E & ~CAN_MIGRATE, caps.set(100, EFFECTIVE, 0, CAN_MIGRATE, 0).effective(), "root may");
    }

    @Test
    void recordsOfGoneProcessesAreForgotten() throws Refused {
        for (int pid = 100; pid < 110; pid++) {
            tree.fork(pid, 0, 1000);
            caps.launched(pid, 1000);
        }
        assertEquals(10, caps.recordCount());
        for (int pid = 100; pid < 107; pid++) tree.exit(pid);
        tree.fork(100, 0, 1000); // reuses a pid: the old record must go too
        caps.forgetGone();
        assertEquals(3, caps.recordCount());
        caps.launched(555, 0); // a process that is already gone gets no record
        assertEquals(3, caps.recordCount());
    }

    @Test
    void noRecordedAncestorMeansDefaultsOfTheTopProcess() throws Refused {
        tree.fork(50, 0, 0);        // e.g. the ssi-run launch stub, never LAUNCHED
        tree.fork(60, 50, 1000);    // a child that changed uid
        assertEquals(CapabilityTable.defaults(0), caps.get(60), "the top of the chain counts as launched by its uid");
    }
}
