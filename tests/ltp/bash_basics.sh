#!/bin/bash
# bash_basics: pipelines (with PIPESTATUS and pipefail), subshells, command substitution, here-docs,
# read loops, redirections, and pid bookkeeping between bash and its children ($$, $BASHPID, $PPID).
. "$(dirname "$0")/../lib/tst.sh"
tst_tmpdir
cd "$TST_TMP" || exit 1

# pipelines
tst_eq "pipeline through sort and tr" "$(printf '3\n1\n2\n' | sort | tr '\n' ' ')" "1 2 3 "
false | true | (exit 3)
tst_eq "PIPESTATUS has every stage's status" "${PIPESTATUS[*]}" "1 0 3"
(set -o pipefail; false | true)
tst_eq "pipefail: the pipeline fails when a stage fails" "$?" "1"
tst_eq "a long pipeline of cats" "$(echo data | cat | cat | cat | cat | cat | cat | cat | cat)" "data"
n=$(yes line | head -n 5000 | wc -l)
tst_eq "yes | head: the writer dies of SIGPIPE, the count is exact" "$n" "5000"

# subshells
x=outer
(x=inner; exit 0)
tst_eq "a subshell's assignment does not leak" "$x" "outer"
tst_eq "a subshell sees the parent's variables" "$(echo "$x")" "outer"
(exit 7)
tst_eq "a subshell's exit status" "$?" "7"
sub=$(echo "$$ $BASHPID")
set -- $sub
tst_eq "\$\$ in a subshell is the parent shell's pid" "$1" "$$"
if [ -n "$2" ] && [ "$2" != "$$" ]; then tst_pass "\$BASHPID in a subshell is a new process"
else tst_fail "\$BASHPID in a subshell is '$2', main shell $$"; fi
tst_eq "\$BASHPID in the main shell is \$\$" "$BASHPID" "$$"
tst_eq "a child bash's \$PPID is our \$\$" "$(bash -c 'echo $PPID')" "$$"
tst_eq "\$PPID in a subshell is still the main shell's parent" "$( (echo $PPID) )" "$PPID"
# the parent we have now ($PPID is what bash saw at its start: a restart from a checkpoint gives the
# restored shell another parent, with another pid)
ppid_now=$(awk '{print $4}' /proc/$$/stat)
if [ -d "/proc/$ppid_now" ]; then tst_pass "our parent ($ppid_now) exists in /proc"
else tst_fail "our parent $ppid_now is not in /proc"; fi
read -r stat_pid _ < /proc/self/stat
tst_eq "/proc/self/stat read by the shell itself shows \$\$" "$stat_pid" "$$"
ext_pid=$(cut -d' ' -f1 /proc/self/stat)
if [ -n "$ext_pid" ] && [ "$ext_pid" != "$$" ] && [ "$ext_pid" != "$stat_pid" ]; then
    tst_pass "/proc/self/stat read by an external command shows that command's pid"
else tst_fail "cut read /proc/self/stat as pid '$ext_pid', shell is $$"; fi
tst_eq "the shell's own /proc/\$\$/stat names it" "$(cut -d' ' -f1 "/proc/$$/stat")" "$$"

# command substitution
tst_eq "nested \$(...)" "$(echo "a$(echo "b$(echo c)")")" "abc"
tst_eq "trailing newlines are stripped" "$(printf 'x\n\n\n')" "x"
y=$(exit 5)
tst_eq "the status of an assignment from \$(...) is the command's" "$?" "5"
tst_eq "backquotes" "`echo back`" "back"
tst_eq "arithmetic on substituted values" "$(( $(echo 6) * $(echo 7) ))" "42"

# here-documents
name=world
got=$(cat <<END
hello $name
$(echo sub) $((1 + 2))
END
)
tst_eq "here-doc with expansion" "$got" "hello world
sub 3"
got=$(cat <<'END'
hello $name $(echo no)
END
)
tst_eq "quoted here-doc is literal" "$got" 'hello $name $(echo no)'
got=$(cat <<-END
	tab-indented
		twice
	END
)
tst_eq "<<- strips leading tabs" "$got" "tab-indented
twice"
tst_eq "here-string" "$(tr a-z A-Z <<< "abc")" "ABC"

# read loops
printf 'a:1\nb:2\nc:3' > kv   # no newline after the last line
sum=0 names=
while IFS=: read -r k v || [ -n "$k" ]; do
    sum=$((sum + v))
    names+=$k
done < kv
tst_eq "read loop with IFS=: over a file (last line unterminated)" "$names $sum" "abc 6"
total=0
while read -r i; do total=$((total + i)); done < <(seq 1 100)
tst_eq "read loop over a process substitution" "$total" "5050"
count=0
seq 1 10 | while read -r i; do count=$((count + 1)); echo "$count" > last; done
tst_eq "a piped read loop runs in a subshell (its variable stays)" "$count $(cat last)" "0 10"
printf 'a\\b c\n' > bs
read -r raw < bs
tst_eq "read -r keeps backslashes" "$raw" 'a\b c'
read -r first rest < bs
tst_eq "read splits fields" "$first|$rest" 'a\b|c'
mapfile -t lines < kv
tst_eq "mapfile reads every line" "${#lines[@]} ${lines[2]}" "3 c:3"

# redirections and fds
exec 3> out3
echo via-fd3 >&3
exec 3>&-
tst_eq "exec 3> and >&3" "$(cat out3)" "via-fd3"
{ echo one; echo two >&2; } > o 2> e
tst_eq "stdout and stderr to different files" "$(cat o)/$(cat e)" "one/two"
ls /nonexistent-ssi-ltp 2>/dev/null
tst_eq "a failing command's status" "$?" "2"
tst_eq "command not found is 127" "$(nonexistent-ssi-ltp-command 2>/dev/null; echo $?)" "127"

cd / || true
tst_exit
