#!/bin/bash
# busybox: a statically linked multi-call binary (Debian's busybox-static) works unmodified:
# busybox sh -c (pipelines, $$, subshells, exit status, traps), busybox ps sees its own pid and its
# parent shell, busybox sort/wc/seq/tr/cut/uniq. CONF when busybox is not installed.
. "$(dirname "$0")/../lib/tst.sh"
BB=$(command -v busybox) || tst_conf "busybox is not installed (apt-get install busybox-static)"
for applet in sh ps sort wc seq tr cut uniq head; do
    "$BB" --list | grep -qx "$applet" || tst_conf "this busybox has no '$applet' applet"
done
tst_tmpdir
cd "$TST_TMP" || exit 1
if file -L "$BB" 2>/dev/null | grep -q 'statically linked'; then
    echo "INFO: $BB is statically linked"
fi

tst_eq "busybox sh -c arithmetic" "$("$BB" sh -c 'echo $((6 * 7))')" "42"
"$BB" sh -c 'exit 5'
tst_eq "busybox sh -c exit status" "$?" "5"
tst_eq "busybox sh pipeline through busybox applets" \
    "$("$BB" sh -c "$BB seq 1 10 | $BB sort -rn | $BB head -n 3 | $BB tr '\n' ' '")" "10 9 8 "
tst_eq "busybox sh subshell and \$(...)" "$("$BB" sh -c 'x=1; (x=2); echo "$x $(echo sub)"')" "1 sub"
out=$("$BB" sh -c "echo \$\$; $BB sh -c 'echo \$PPID'; exit 0" | tr '\n' ' ')
set -- $out
if [ "$#" = 2 ] && [ "$1" = "$2" ]; then tst_pass "busybox sh: a child's \$PPID is the shell's \$\$"
else tst_fail "busybox sh: \$\$ and the child's \$PPID: '$out'"; fi
tst_eq "busybox sh trap on USR1 and EXIT" \
    "$("$BB" sh -c 'trap "echo usr1" USR1; trap "echo bye" EXIT; kill -USR1 $$; echo after')" "usr1
after
bye"
tst_eq "busybox sh background job and wait status" "$("$BB" sh -c '(exit 6) & wait $!; echo $?')" "6"
tst_eq "busybox sh read loop" "$(printf '1\n2\n3\n' | "$BB" sh -c 's=0; while read n; do s=$((s+n)); done; echo $s')" "6"

# ps: the exec'd ps has the shell's pid ($$ before exec), and lists its parent (our bash)
out=$("$BB" sh -c "echo \$\$; exec $BB ps -o pid,ppid,comm")
self=$(echo "$out" | head -n 1)
row=$(echo "$out" | tail -n +2 | "$BB" awk -v p="$self" '$1 == p')
if [ -n "$self" ] && [ -n "$row" ]; then
    tst_pass "busybox ps lists its own pid ($self)"
else
    tst_fail "busybox ps did not list its own pid '$self': $(echo "$out" | head -n 8 | tr '\n' ';')"
fi
tst_eq "busybox ps: its own row has our bash as parent and its command name" "$(echo "$row" | "$BB" awk '{print $2, $3}')" \
    "$$ $(basename "$BB" | "$BB" cut -c1-15)"
row=$(echo "$out" | tail -n +2 | "$BB" awk -v p="$$" '$1 == p')
tst_eq "busybox ps lists our bash by its pid" "$(echo "$row" | "$BB" awk '{print $3}')" "$(cat /proc/$$/comm)"

printf 'pear\napple\nfig\napple\n' > fruit
tst_eq "busybox sort" "$("$BB" sort fruit | tr '\n' ' ')" "apple apple fig pear "
tst_eq "busybox sort -u -r" "$("$BB" sort -u -r fruit | tr '\n' ' ')" "pear fig apple "
tst_eq "busybox sort -n on numbers" "$("$BB" seq 20 -3 1 | "$BB" sort -n | "$BB" head -n 2 | tr '\n' ' ')" "2 5 "
tst_eq "busybox sort -t: -k2n" "$(printf 'a:3\nb:1\nc:2\n' | "$BB" sort -t: -k2n | "$BB" cut -d: -f1 | tr -d '\n')" "bca"
tst_eq "busybox wc -l of 1000 lines" "$("$BB" seq 1 1000 | "$BB" wc -l | tr -d ' ')" "1000"

cd / || true
tst_exit
