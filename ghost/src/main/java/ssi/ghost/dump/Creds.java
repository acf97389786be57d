package ssi.ghost.dump;

import ssi.ghost.image.Records;

import java.io.IOException;
import java.util.Map;

/**
 * Credentials of a process: uids, gids, supplementary groups, umask, Linux capabilities and
 * no_new_privs, from /proc/PID/status (the kernel prints all of them there). Restore sits beside it
 * in ssi.ghost.restore. Stateless.
 */
final class Creds {
    private Creds() {}

    static Records.Creds dump(ProcFs fs, int pid) throws IOException {
        Map<String, String> st = ProcFs.status(fs.dir(pid));
        int[] uids = ProcFs.ints(st, "Uid"), gids = ProcFs.ints(st, "Gid");
        if (uids.length != 4 || gids.length != 4) {
            throw new CheckpointException(CheckpointException.EIO, "process " + pid + ": no Uid/Gid lines in its status");
        }
        String umask = st.get("Umask");
        if (umask == null) throw new CheckpointException(CheckpointException.EIO, "process " + pid + ": no Umask in its status");
        return new Records.Creds(uids, gids, ProcFs.ints(st, "Groups"), Integer.parseInt(umask, 8),
                ProcFs.hex(st, "CapInh"), ProcFs.hex(st, "CapPrm"), ProcFs.hex(st, "CapEff"), ProcFs.hex(st, "CapBnd"),
                ProcFs.hex(st, "CapAmb"), "1".equals(st.get("NoNewPrivs")));
    }
}
