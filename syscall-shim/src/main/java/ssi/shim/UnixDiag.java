package ssi.shim;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.HashMap;
import java.util.Map;

/**
 * The UNIX sockets of the caller's network namespace as sock_diag (NETLINK_SOCK_DIAG, unix_diag)
 * reports them: type, state, the inode of the peer, the bytes queued to read and the bound name. This
 * is how a checkpoint pairs the two ends of a socketpair (nothing in /proc names a socket's peer).
 * Stateless; any thread.
 */
public final class UnixDiag {
    private UnixDiag() {}

    /** One socket: inode, SOCK_* type, TCP-like state (1 established, 7 closed, 10 listening), peer inode (0: none). */
    public record Info(long inode, int type, int state, long peer, long rqueue, String name) {}

    private static final int AF_NETLINK = 16, AF_UNIX = 1, SOCK_RAW = 3, SOCK_CLOEXEC = 02000000, NETLINK_SOCK_DIAG = 4;
    private static final int SOCK_DIAG_BY_FAMILY = 20, NLM_F_REQUEST = 1, NLM_F_DUMP = 0x300;
    private static final int NLMSG_DONE = 3, NLMSG_ERROR = 2;
    private static final int UDIAG_SHOW_NAME = 1, UDIAG_SHOW_PEER = 4, UDIAG_SHOW_RQLEN = 0x10;
    private static final int UNIX_DIAG_NAME = 0, UNIX_DIAG_PEER = 2, UNIX_DIAG_RQLEN = 4;

    /** Every UNIX socket of this network namespace, by inode. */
    public static Map<Long, Info> all() throws IOException {
        Libc.C c = Libc.c();
        int fd = c.socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
        if (fd < 0)
            throw new ErrnoException(Libc.errno(), "socket(AF_NETLINK, NETLINK_SOCK_DIAG) failed");
        try {
            ByteBuffer req = ByteBuffer.allocate(16 + 24).order(ByteOrder.nativeOrder());
            req.putInt(0, 40).putShort(4, (short) SOCK_DIAG_BY_FAMILY).putShort(6, (short) (NLM_F_REQUEST | NLM_F_DUMP))
                    .putInt(8, 1).putInt(12, 0);
            // struct unix_diag_req: u8 family, u8 protocol, u16 pad, u32 states, u32 ino, u32 show, u32 cookie[2]
            req.put(16, (byte) AF_UNIX).putInt(20, -1).putInt(24, 0)
                    .putInt(28, UDIAG_SHOW_NAME | UDIAG_SHOW_PEER | UDIAG_SHOW_RQLEN);
            if (c.send(fd, req.array(), 40, 0) != 40)
                throw new ErrnoException(Libc.errno(), "sending the sock_diag request failed");
            Map<Long, Info> out = new HashMap<>();
            byte[] buf = new byte[1 << 16];
            for (;;) {
                long n = c.recv(fd, buf, buf.length, 0);
                if (n < 0)
                    throw new ErrnoException(Libc.errno(), "reading the sock_diag answer failed");
                ByteBuffer b = ByteBuffer.wrap(buf, 0, (int) n).order(ByteOrder.nativeOrder());
                int at = 0;
                while (at + 16 <= n) {
                    int len = b.getInt(at), type = b.getShort(at + 4) & 0xffff;
                    if (len < 16 || at + len > n)
                        throw new IOException("sock_diag: a message of " + len + " bytes at " + at + " of " + n);
                    if (type == NLMSG_DONE)
                        return out;
                    if (type == NLMSG_ERROR)
                        throw new ErrnoException(-b.getInt(at + 16), "sock_diag refused the dump of UNIX sockets");
                    parse(b, at + 16, at + len, out);
                    at += (len + 3) & ~3;
                }
            }
        } finally {
            c.close(fd);
        }
    }

    /** struct unix_diag_msg (u8 family, type, state, pad; u32 ino; u32 cookie[2]) then attributes. */
    private static void parse(ByteBuffer b, int from, int to, Map<Long, Info> out) {
        int type = b.get(from + 1) & 0xff, state = b.get(from + 2) & 0xff;
        long ino = b.getInt(from + 4) & 0xffffffffL;
        long peer = 0, rq = 0;
        String name = "";
        int at = from + 16;
        while (at + 4 <= to) {
            int len = b.getShort(at) & 0xffff, kind = b.getShort(at + 2) & 0xffff;
            if (len < 4 || at + len > to)
                break;
            switch (kind) {
                case UNIX_DIAG_PEER -> peer = b.getInt(at + 4) & 0xffffffffL;
                case UNIX_DIAG_RQLEN -> rq = b.getInt(at + 4) & 0xffffffffL;
                case UNIX_DIAG_NAME -> {
                    byte[] raw = new byte[len - 4];
                    b.get(at + 4, raw);
                    name = raw.length > 0 && raw[0] == 0 ? "@" + new String(raw, 1, raw.length - 1, StandardCharsets.UTF_8)
                            : new String(raw, StandardCharsets.UTF_8).replace("\0", "");
                }
                default -> { }
            }
            at += (len + 3) & ~3;
        }
        out.put(ino, new Info(ino, type, state, peer, rq, name));
    }
}
