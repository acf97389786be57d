package ssi.launcher;

import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;
import ssi.ghost.image.Image;
import ssi.ghost.image.ImageException;
import ssi.ghost.image.PageChain;
import ssi.ghost.image.ImagePrinter;

import java.io.IOException;
import java.nio.file.Path;
import java.util.concurrent.Callable;

/**
 * {@code ssi image}: works on checkpoint images locally, with no cluster needed. {@code show} checks
 * the whole image (magics, version, every record's and every page chunk's CRC32C) and prints it as
 * text; a damaged image fails with the file and offset of the damage.
 */
@Command(name = "image", description = "Inspect checkpoint images (no cluster needed).",
        subcommands = {ImageCommand.Show.class})
final class ImageCommand implements Callable<Integer> {
    @Spec
    CommandSpec spec;

    @Option(names = {"-h", "--help"}, usageHelp = true, description = "Show this help and exit.")
    boolean help;

    @Override
    public Integer call() {
        throw new ParameterException(spec.commandLine(), "missing command (show)");
    }

    @Command(name = "show", description = "Check an image and print it as text: process tree, then per process its "
            + "credentials, cwd, rlimits, signal handlers and masks, threads, VMAs with stored pages, and fds.",
            footer = {"", "Exit status 1 if the image is truncated, corrupted (a checksum fails) or of another format version."})
    static final class Show implements Callable<Integer> {
        @Option(names = {"-h", "--help"}, usageHelp = true, description = "Show this help and exit.")
        boolean help;

        @Parameters(index = "0", paramLabel = "DIR", description = "Image directory written by `ssi checkpoint`.")
        Path dir;

        @Option(names = "--no-verify", description = "Do not read the page data to check its checksums (faster).")
        boolean noVerify;

        private final Ssi ssi;

        Show(Ssi ssi) {
            this.ssi = ssi;
        }

        @Override
        public Integer call() throws SsiException {
            try {
                Image img = Image.load(dir);
                if (!img.incremental()) {
                    long verified = noVerify ? -1 : img.verifyData();
                    ImagePrinter.print(img, verified, ssi.out());
                    return 0;
                }
                // an incremental image: the chain of parents is checked (and verified) with it
                PageChain chain;
                try {
                    chain = PageChain.open(img);
                } catch (ImageException e) {
                    ImagePrinter.print(img, null, e.getMessage(), noVerify ? -1 : img.verifyData(), ssi.out());
                    throw new SsiException("image show " + dir, e.getMessage(), "this image cannot be restarted without its parents");
                }
                try (chain) {
                    long verified = noVerify ? -1 : chain.verifyData();
                    ImagePrinter.print(img, chain, null, verified, ssi.out());
                }
                return 0;
            } catch (IOException e) {
                throw new SsiException("image show " + dir, e.getMessage(), "the image is damaged or not an image; take a new checkpoint");
            }
        }
    }
}
