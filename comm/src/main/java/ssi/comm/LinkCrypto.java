package ssi.comm;

import javax.crypto.Mac;
import javax.crypto.spec.SecretKeySpec;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.security.GeneralSecurityException;
import java.security.MessageDigest;
import java.security.SecureRandom;

/**
 * The cryptography of a node link ({@link LinkWire} has the frame layout):
 * <ul>
 * <li>each side sends a fresh 32-byte nonce and its node id (HELLO);</li>
 * <li>each side proves it knows the cluster secret with
 *     proof(role) = HMAC-SHA256(secret, "ssi-auth" | dialerNonce | acceptorNonce | dialerId | acceptorId | role)
 *     (AUTH); the role byte keeps one side's proof from being reflected back as the other's;</li>
 * <li>each direction then gets its own key,
 *     key(sender) = HMAC-SHA256(secret, "ssi-session" | dialerNonce | acceptorNonce | dialerId | acceptorId | sender),
 *     and every later frame carries HMAC-SHA256(key, seq | frame body) truncated to 16 bytes, where seq counts
 *     the frames of that direction from 0 and is never sent: a changed, replayed, dropped or reordered frame
 *     fails the check.</li>
 * </ul>
 * Stateless functions; a {@link Mac} from {@link #sessionMac} belongs to one link direction and its owner thread.
 */
final class LinkCrypto {
    private LinkCrypto() {}

    static final int NONCE_BYTES = 32, PROOF_BYTES = 32, MAC_BYTES = 16;
    static final byte DIALER = 0, ACCEPTOR = 1;
    private static final String HMAC = "HmacSHA256";
    private static final byte[] AUTH_LABEL = "ssi-auth".getBytes(StandardCharsets.US_ASCII);
    private static final byte[] SESSION_LABEL = "ssi-session".getBytes(StandardCharsets.US_ASCII);
    private static final SecureRandom RANDOM = new SecureRandom();

    /** What both sides said in their HELLOs, by role; every proof and key is bound to all of it. */
    record Transcript(byte[] dialerNonce, byte[] acceptorNonce, int dialerId, int acceptorId) {}

    static byte[] nonce() {
        byte[] n = new byte[NONCE_BYTES];
        RANDOM.nextBytes(n);
        return n;
    }

    /** The proof the side playing role sends. */
    static byte[] proof(byte[] secret, Transcript t, byte role) {
        return hmac(secret, AUTH_LABEL, t, role);
    }

    /** Constant-time check of the proof the side playing role sent. */
    static boolean verifyProof(byte[] secret, Transcript t, byte role, byte[] proof) {
        return MessageDigest.isEqual(proof(secret, t, role), proof);
    }

    /** A MAC keyed for the frames that the side playing sender sends on this link. */
    static Mac sessionMac(byte[] secret, Transcript t, byte sender) {
        return mac(hmac(secret, SESSION_LABEL, t, sender));
    }

    /** The truncated MAC of one frame body with its sequence number; leaves mac ready for the next frame. */
    static byte[] frameMac(Mac mac, long seq, ByteBuffer body) {
        mac.update(ByteBuffer.allocate(Long.BYTES).putLong(0, seq));
        mac.update(body);
        byte[] full = mac.doFinal();
        byte[] out = new byte[MAC_BYTES];
        System.arraycopy(full, 0, out, 0, MAC_BYTES);
        return out;
    }

    private static byte[] hmac(byte[] secret, byte[] label, Transcript t, byte role) {
        Mac m = mac(secret);
        m.update(label);
        m.update(t.dialerNonce());
        m.update(t.acceptorNonce());
        m.update(ByteBuffer.allocate(9).putInt(t.dialerId()).putInt(t.acceptorId()).put(role).flip());
        return m.doFinal();
    }

    private static Mac mac(byte[] key) {
        try {
            Mac m = Mac.getInstance(HMAC);
            m.init(new SecretKeySpec(key, HMAC));
            return m;
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException("this JVM has no " + HMAC + ", which every Java SE runtime must provide", e);
        }
    }
}
