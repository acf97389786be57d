package ssi.shim;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Arrays;

/**
 * The general registers of a stopped x86_64 thread: the kernel's {@code struct user_regs_struct} (27
 * unsigned 64-bit fields, 216 bytes, including fs_base and gs_base), as PTRACE_GETREGS reports it and the
 * link's GETREGS/SETREGS carry it. An immutable value: {@code withX} returns a changed copy. Safe to share
 * between threads.
 */
public final class Regs {
    /** Fields, and bytes on the wire. */
    public static final int COUNT = 27, SIZE = COUNT * 8;

    // Field indexes in the kernel's order (arch/x86/include/asm/user_64.h).
    static final int R15 = 0;
    static final int R14 = 1;
    static final int R13 = 2;
    static final int R12 = 3;
    static final int RBP = 4;
    static final int RBX = 5;
    static final int R11 = 6;
    static final int R10 = 7;
    static final int R9 = 8;
    static final int R8 = 9;
    static final int RAX = 10;
    static final int RCX = 11;
    static final int RDX = 12;
    static final int RSI = 13;
    static final int RDI = 14;
    static final int ORIG_RAX = 15;
    static final int RIP = 16;
    static final int CS = 17;
    static final int EFLAGS = 18;
    static final int RSP = 19;
    static final int SS = 20;
    static final int FS_BASE = 21;
    static final int GS_BASE = 22;
    static final int DS = 23;
    static final int ES = 24;
    static final int FS = 25;
    static final int GS = 26;

    private static final String[] NAMES = {
        "r15", "r14", "r13", "r12", "rbp", "rbx", "r11", "r10", "r9", "r8", "rax", "rcx", "rdx", "rsi", "rdi",
        "orig_rax", "rip", "cs", "eflags", "rsp", "ss", "fs_base", "gs_base", "ds", "es", "fs", "gs",
    };

    private final long[] v;

    private Regs(long[] v) {
        this.v = v;
    }

    /** All 27 values in the kernel's order (r15 first, gs last). */
    public static Regs of(long... values) {
        if (values.length != COUNT)
            throw new IllegalArgumentException("user_regs_struct has " + COUNT + " fields, got " + values.length);
        return new Regs(values.clone());
    }

    /** Reads 216 bytes at the buffer's position (advancing it), little endian whatever the buffer's order. */
    public static Regs read(ByteBuffer b) {
        ByteBuffer le = b.slice().order(ByteOrder.LITTLE_ENDIAN);
        long[] v = new long[COUNT];
        for (int i = 0; i < COUNT; i++)
            v[i] = le.getLong(i * 8);
        b.position(b.position() + SIZE);
        return new Regs(v);
    }

    /** Writes the 216 wire bytes at the buffer's position (advancing it), little endian. */
    public void write(ByteBuffer b) {
        ByteBuffer le = b.slice().order(ByteOrder.LITTLE_ENDIAN);
        for (int i = 0; i < COUNT; i++)
            le.putLong(i * 8, v[i]);
        b.position(b.position() + SIZE);
    }

    /** A copy of the 27 values in the kernel's order. */
    public long[] toArray() {
        return v.clone();
    }

    private Regs with(int field, long x) {
        long[] c = v.clone();
        c[field] = x;
        return new Regs(c);
    }

    public long r15() { return v[R15]; }
    public long r14() { return v[R14]; }
    public long r13() { return v[R13]; }
    public long r12() { return v[R12]; }
    public long rbp() { return v[RBP]; }
    public long rbx() { return v[RBX]; }
    public long r11() { return v[R11]; }
    public long r10() { return v[R10]; }
    public long r9() { return v[R9]; }
    public long r8() { return v[R8]; }
    public long rax() { return v[RAX]; }
    public long rcx() { return v[RCX]; }
    public long rdx() { return v[RDX]; }
    public long rsi() { return v[RSI]; }
    public long rdi() { return v[RDI]; }
    public long origRax() { return v[ORIG_RAX]; }
    public long rip() { return v[RIP]; }
    public long cs() { return v[CS]; }
    public long eflags() { return v[EFLAGS]; }
    public long rsp() { return v[RSP]; }
    public long ss() { return v[SS]; }
    public long fsBase() { return v[FS_BASE]; }
    public long gsBase() { return v[GS_BASE]; }
    public long ds() { return v[DS]; }
    public long es() { return v[ES]; }
    public long fs() { return v[FS]; }
    public long gs() { return v[GS]; }

    public Regs withR15(long x) { return with(R15, x); }
    public Regs withR14(long x) { return with(R14, x); }
    public Regs withR13(long x) { return with(R13, x); }
    public Regs withR12(long x) { return with(R12, x); }
    public Regs withRbp(long x) { return with(RBP, x); }
    public Regs withRbx(long x) { return with(RBX, x); }
    public Regs withR11(long x) { return with(R11, x); }
    public Regs withR10(long x) { return with(R10, x); }
    public Regs withR9(long x) { return with(R9, x); }
    public Regs withR8(long x) { return with(R8, x); }
    public Regs withRax(long x) { return with(RAX, x); }
    public Regs withRcx(long x) { return with(RCX, x); }
    public Regs withRdx(long x) { return with(RDX, x); }
    public Regs withRsi(long x) { return with(RSI, x); }
    public Regs withRdi(long x) { return with(RDI, x); }
    public Regs withOrigRax(long x) { return with(ORIG_RAX, x); }
    public Regs withRip(long x) { return with(RIP, x); }
    public Regs withCs(long x) { return with(CS, x); }
    public Regs withEflags(long x) { return with(EFLAGS, x); }
    public Regs withRsp(long x) { return with(RSP, x); }
    public Regs withSs(long x) { return with(SS, x); }
    public Regs withFsBase(long x) { return with(FS_BASE, x); }
    public Regs withGsBase(long x) { return with(GS_BASE, x); }
    public Regs withDs(long x) { return with(DS, x); }
    public Regs withEs(long x) { return with(ES, x); }
    public Regs withFs(long x) { return with(FS, x); }
    public Regs withGs(long x) { return with(GS, x); }

    @Override
    public boolean equals(Object o) {
        return o instanceof Regs r && Arrays.equals(v, r.v);
    }

    @Override
    public int hashCode() {
        return Arrays.hashCode(v);
    }

    @Override
    public String toString() {
        StringBuilder sb = new StringBuilder("Regs[");
        for (int i = 0; i < COUNT; i++)
            sb.append(i == 0 ? "" : " ").append(NAMES[i]).append("=0x").append(Long.toHexString(v[i]));
        return sb.append(']').toString();
    }
}
