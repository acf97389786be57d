#!/bin/bash
# make_gcc: make -j2 builds a generated C program (12 .c files + a header) with gcc; the program's
# output is checked against the value computed here; a second make has nothing to do; touching one
# source rebuilds only that object; make reports a compile error with a failing status.
. "$(dirname "$0")/../lib/tst.sh"
tst_need make gcc
tst_tmpdir
cd "$TST_TMP" || exit 1

N=12
{
    echo '#ifndef PARTS_H'
    echo '#define PARTS_H'
    for i in $(seq 1 $N); do echo "long part$i(long x);"; done
    echo '#endif'
} > parts.h

expected=0
for i in $(seq 1 $N); do
    # part_i(x) = x * i + i * i, summed below for x = 1000
    cat > "part$i.c" <<END
#include "parts.h"
long part$i(long x) { return x * $i + $i * $i; }
END
    expected=$((expected + 1000 * i + i * i))
done
{
    echo '#include <stdio.h>'
    echo '#include <unistd.h>'
    echo '#include "parts.h"'
    echo 'int main(void) {'
    echo '    long sum = 0;'
    for i in $(seq 1 $N); do echo "    sum += part$i(1000);"; done
    echo '    printf("sum=%ld pid_ok=%d\n", sum, getpid() > 0);'
    echo '    return 0;'
    echo '}'
} > main.c
objs=$(for i in $(seq 1 $N); do printf 'part%d.o ' "$i"; done)
printf 'CFLAGS = -O2 -Wall\nOBJS = main.o %s\n\nprog: $(OBJS)\n\t$(CC) -o $@ $(OBJS)\n\n%%.o: %%.c parts.h\n\t$(CC) $(CFLAGS) -c -o $@ $<\n\nclean:\n\trm -f prog $(OBJS)\n' \
    "$objs" > Makefile

make -j2 > build.log 2>&1
st=$?
tst_eq "make -j2 succeeds" "$st" "0"
[ "$st" = 0 ] || sed 's/^/    build: /' build.log | tail -20
tst_eq "make built all 13 objects" "$(ls ./*.o 2>/dev/null | wc -l)" "13"
tst_eq "the program prints the expected sum" "$(./prog)" "sum=$expected pid_ok=1"

make -q
tst_eq "a second make has nothing to do (make -q returns 0)" "$?" "0"

sleep 1 # file times come from a coarse clock: make must see part5.c as newer
touch part5.c
make -j2 > rebuild.log 2>&1
tst_eq "after touching part5.c only part5.o is recompiled" "$(grep -c -- '-c -o' rebuild.log) $(grep -c 'part5.o' rebuild.log)" "1 2"
tst_eq "the relinked program still works" "$(./prog)" "sum=$expected pid_ok=1"

sed -i 's/return x/return y/' part7.c
make -j2 > broken.log 2>&1
st=$?
if [ "$st" -ne 0 ] && grep -q "part7.c" broken.log && grep -qi "error" broken.log; then
    tst_pass "a compile error makes make fail and names the file"
else
    tst_fail "broken part7.c: make exit $st"
fi

make clean > /dev/null
make -j2 -s > /dev/null 2>&1
tst_eq "make -j2 after clean with the error still fails" "$?" "2"

cd / || true
tst_exit
