package ssi.ghost.image;

import java.io.ByteArrayInputStream;
import java.io.DataInputStream;
import java.io.EOFException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * Reads one metadata file and checks everything the format lets it check before any record is used:
 * magic, version, every record's frame and CRC32C, and the END record with the right count (a file
 * cut short has none). Stateless; any thread.
 */
public final class MetaReader {
    private MetaReader() {}

    /** One checked record: its type, where it starts in the file, and its payload. */
    public record Rec(int type, long offset, byte[] payload) {
        /** A decoder over the payload; a field read past its end is reported against this record. */
        public Dec dec(Path file) {
            return new Dec(file, this);
        }
    }

    /** Reads a record's fields; a short payload becomes an {@link ImageException} naming file and offset. */
    public static final class Dec {
        private final Path file;
        private final Rec rec;
        private final DataInputStream in;

        Dec(Path file, Rec rec) {
            this.file = file;
            this.rec = rec;
            this.in = new DataInputStream(new ByteArrayInputStream(rec.payload()));
        }

        public DataInputStream in() { return in; }

        public ImageException error(String what) {
            return new ImageException(file, rec.offset(), ImageFormat.recordName(rec.type()) + " record: " + what);
        }

        /** Every field read: trailing bytes mean writer and reader disagree on the record. */
        public void end() throws ImageException {
            try {
                if (in.available() != 0) throw error(in.available() + " bytes left after the last field");
            } catch (IOException e) {
                throw error(e.toString());
            }
        }
    }

    /** Reads the records of an image file of the given kind, END excluded. */
    public static List<Rec> read(Path file, int magic) throws IOException {
        byte[] all;
        try {
            all = Files.readAllBytes(file);
        } catch (NoSuchFileException e) {
            throw new ImageException(file, 0, "missing: the image has no " + ImageFormat.magicName(magic)
                    + " file here (not an image directory, or a checkpoint that did not finish)");
        }
        ByteBuffer b = ByteBuffer.wrap(all);
        checkHeader(file, b, magic, all.length);
        b.position(ImageFormat.FILE_HEADER);
        List<Rec> out = new ArrayList<>();
        while (true) {
            long at = b.position();
            if (b.remaining() < ImageFormat.REC_HEADER) {
                throw new ImageException(file, at, "truncated: the file ends after " + out.size() + " records without an END record");
            }
            int type = Short.toUnsignedInt(b.getShort());
            int len = b.getInt();
            if (len < 0 || len > ImageFormat.MAX_RECORD) {
                throw new ImageException(file, at, "corrupted: record length " + Integer.toUnsignedString(len) + " is impossible");
            }
            if (b.remaining() < len + ImageFormat.REC_TRAILER) {
                throw new ImageException(file, at, "truncated: " + ImageFormat.recordName(type) + " record of " + len
                        + " bytes, but only " + b.remaining() + " bytes are left in the file");
            }
            byte[] payload = new byte[len];
            b.get(payload);
            int stored = b.getInt();
            int actual = ImageFormat.crc32c(all, (int) at, ImageFormat.REC_HEADER + len);
            if (stored != actual) {
                throw new ImageException(file, at, String.format("checksum mismatch in the %s record (CRC32C stored %08x, "
                        + "computed %08x): the image is corrupted", ImageFormat.recordName(type), stored, actual));
            }
            if (type == ImageFormat.REC_END) {
                int count = len == 4 ? ByteBuffer.wrap(payload).getInt() : -1;
                if (count != out.size()) {
                    throw new ImageException(file, at, "END record counts " + count + " records, the file holds " + out.size());
                }
                if (b.hasRemaining()) {
                    throw new ImageException(file, b.position(), b.remaining() + " bytes of garbage after the END record");
                }
                return out;
            }
            out.add(new Rec(type, at, payload));
        }
    }

    /** Magic, then version, of a metadata or raw data file (both start with magic u32, version u16). */
    static void checkHeader(Path file, ByteBuffer b, int magic, long size) throws ImageException {
        if (size < 6) throw new ImageException(file, size, "truncated: " + size + " bytes, shorter than the file header");
        int m = b.getInt(0);
        if (m != magic) {
            throw new ImageException(file, 0, String.format("wrong magic 0x%08x (%s), expected 0x%08x: not a %s image file",
                    m, ImageFormat.magicName(m), magic, ImageFormat.magicName(magic)));
        }
        int v = Short.toUnsignedInt(b.getShort(4));
        if (v != ImageFormat.VERSION) {
            throw new ImageException(file, 4, "image format version " + v + ", this ssi reads " + ImageFormat.VERSION);
        }
        if (size < ImageFormat.FILE_HEADER) {
            throw new ImageException(file, size, "truncated: " + size + " bytes, shorter than the file header");
        }
    }

    static ImageException shortRecord(Path file, Rec r, EOFException e) {
        return new ImageException(file, r.offset(), ImageFormat.recordName(r.type()) + " record is shorter than its fields");
    }
}
