#!/bin/bash
# bash_jobs: background jobs and wait with their statuses (exit codes, killed jobs, wait -n -p),
# and traps on EXIT, INT, TERM and USR1 fired by kill $$ in a child bash, including a trap that
# interrupts a wait.
. "$(dirname "$0")/../lib/tst.sh"
tst_tmpdir
cd "$TST_TMP" || exit 1

# the trap tests need signals at their default disposition: a non-interactive bash cannot trap a
# signal that was ignored when it started (e.g. SIGINT for a job started with & by a script)
if env --default-signal true 2>/dev/null; then
    fresh_bash() { env --default-signal bash "$@"; }
else
    fresh_bash() { bash "$@"; }
fi

# background jobs and wait
(exit 3) & p1=$!
(sleep 0.2; exit 5) & p2=$!
sleep 100 & p3=$!
# signal it only once it runs sleep: before its exec it is still a copy of this shell
for _ in $(seq 1 3000); do [ "$(cat /proc/$p3/comm 2>/dev/null)" = sleep ] && break; sleep 0.01; done
if kill -0 "$p3" 2>/dev/null; then tst_pass "kill -0 on a running background job"
else tst_fail "kill -0 $p3 failed for a running job"; fi
kill -TERM "$p3"
wait "$p1"; s1=$?
wait "$p2"; s2=$?
wait "$p3"; s3=$?
tst_eq "wait \$! returns a background job's exit code" "$s1" "3"
tst_eq "wait returns the code of a job that ends later" "$s2" "5"
tst_eq "wait on a job killed by SIGTERM returns 128+15" "$s3" "143"
wait "$PPID" 2>/dev/null
tst_eq "wait on a pid that is not our child returns 127" "$?" "127"
pids="$p1 $p2 $p3"
uniq_count=$(printf '%s\n' $pids | sort -u | wc -l)
tst_eq "background jobs got distinct pids" "$uniq_count" "3"

(exit 11) & q1=$!
(exit 12) & q2=$!
wait -n -p done_pid; sa=$?
wait -n -p done_pid2; sb=$?
if { [ "$done_pid" = "$q1" ] && [ "$sa" = 11 ] && [ "$done_pid2" = "$q2" ] && [ "$sb" = 12 ]; } ||
   { [ "$done_pid" = "$q2" ] && [ "$sa" = 12 ] && [ "$done_pid2" = "$q1" ] && [ "$sb" = 11 ]; }; then
    tst_pass "wait -n -p reports each job's pid with its own status"
else
    tst_fail "wait -n -p: $done_pid=$sa, $done_pid2=$sb; jobs were $q1 (11) and $q2 (12)"
fi

for i in 1 2 3 4 5 6; do (exit "$i") & done
wait
tst_eq "wait with no argument waits for all and returns 0" "$?" "0"

# many concurrent jobs writing to one file
for i in $(seq 1 20); do echo "$i" >> many & done
wait
tst_eq "20 concurrent background writers" "$(sort -n many | tr '\n' ' ')" "$(seq 1 20 | tr '\n' ' ')"

# traps
out=$(fresh_bash -c '
trap "echo exit-trap" EXIT
trap "echo usr1-trap" USR1
trap "echo int-trap" INT
kill -USR1 $$
echo after-usr1
kill -INT $$
echo after-int
exit 4')
st=$?
tst_eq "USR1 and INT traps run after kill \$\$, then the EXIT trap" "$out" "usr1-trap
after-usr1
int-trap
after-int
exit-trap"
tst_eq "exit status is kept after the EXIT trap" "$st" "4"

out=$(fresh_bash -c '
trap "echo term-trap; exit 7" TERM
trap "echo exit-trap" EXIT
kill $$
echo not-reached')
st=$?
tst_eq "kill \$\$ runs the TERM trap, whose exit runs the EXIT trap" "$out" "term-trap
exit-trap"
tst_eq "status set by exit in the TERM trap" "$st" "7"

out=$(fresh_bash -c 'kill $$; echo not-reached')
st=$?
tst_eq "kill \$\$ without a trap kills the shell (status 143)" "$out/$st" "/143"

out=$(fresh_bash -c 'trap "" USR1; kill -USR1 $$; echo survived')
tst_eq "an ignored USR1 (trap \"\") does nothing" "$out" "survived"

out=$(fresh_bash -c 'trap "echo once" USR1; kill -USR1 $$; trap - USR1; kill -USR1 $$; echo not-reached')
st=$?
tst_eq "trap - restores the default (USR1 kills: 128+10)" "$out/$st" "once/138"

out=$(fresh_bash -c 'trap "echo \"usr1 in \$BASHPID\"" USR1; sh -c "kill -USR1 \$PPID"; echo "me $$"')
set -- $out
if [ "$#" = 5 ] && [ "$1 $2" = "usr1 in" ] && [ "$3" = "$5" ] && [ "$4" = me ]; then
    tst_pass "a signal sent by a child process to the shell (kill \$PPID) runs the trap in the shell"
else
    tst_fail "child kill -USR1 \$PPID: output '$out'"
fi

# a trapped signal interrupts wait: wait returns 128+signal, the trap runs
out=$(fresh_bash -c '
trap "echo got-usr1" USR1
sleep 100 & sleeper=$!
( while kill -USR1 $$ 2>/dev/null; do sleep 0.2; done ) & sender=$!
wait $sleeper
echo "wait=$?"
kill $sleeper $sender 2>/dev/null
wait $sleeper 2>/dev/null
echo "sleeper=$?"' | sort -u)
tst_eq "a USR1 trap interrupts wait (wait returns 138), then kill ends the job (143)" "$out" "got-usr1
sleeper=143
wait=138"

# the EXIT trap runs in the shell that set it, after a subshell exits
out=$(fresh_bash -c 'trap "echo parent-exit" EXIT; (echo in-subshell); echo end')
tst_eq "EXIT trap runs once, in the shell that set it" "$out" "in-subshell
end
parent-exit"

cd / || true
tst_exit
