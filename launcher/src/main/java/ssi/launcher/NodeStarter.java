package ssi.launcher;

import ssi.comm.NodeAddress;

import java.io.IOException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Optional;

/**
 * Starts one node for `ssi cluster start`. The real one runs {@code ssi-shim --detach}
 * ({@link ShimNodeStarter}); tests use fakes that bring up fake control servers instead.
 */
interface NodeStarter {

    /** Checks, before anything is written, that nodes can be started at all (binaries present...). */
    void check() throws SsiException;

    /** Begins starting node in the background; returns at once. IOException when it cannot even begin. */
    Launch start(Path runDir, NodeAddress node, Optional<String> netns) throws IOException;

    /** A node being started. */
    interface Launch {
        /**
         * Waits at most timeout for the starter to finish; returns null when it reports success, else
         * why it failed (for the shim: the message its --detach parent printed).
         */
        String await(Duration timeout) throws InterruptedException;

        /** Gives up on this start (kills the starter if it still runs). */
        void abort();
    }
}
