# Turns syscalls.tsv into a C header: one SSI_SYSCALL(name, nr, decide_by_shim) line per trapped syscall.
BEGIN { FS = "\t"; print "/* generated from syscalls.tsv by gen-syscalls.awk: do not edit */" }
/^#/ || NF < 4 { next }
{ printf "SSI_SYSCALL(%s, %d, %d)\n", $1, $2, ($3 == "shim") }
