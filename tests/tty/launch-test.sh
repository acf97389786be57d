#!/bin/bash
# launch-test: what a program started by ./ssi-run sees and what the caller gets back, without a tty:
# exit statuses (plain, killed by a signal), argv, environment, cwd, umask, stdin, pids in the node's
# range (its own and its parent's), its process group (a node pid: the launch stub's, its parent), the
# shell's exec errors (127 and 126 with bash's messages), no fd leaked into the program, SIGTERM sent to
# the ssi-run client or to the client's process group reaching the program's trap exactly once.
# Uses the node of $SSI_NODE (default 1) in $SSI_RUN_DIR (default /run/ssi), as ssi-run does.
ROOT=$(cd "$(dirname "$(readlink -f "$0")")/../.." && pwd)
. "$ROOT/tests/lib/tst.sh"
tst_tmpdir
RUN="$ROOT/ssi-run"
NODE=${SSI_NODE:-1}
PID_LO=$((NODE << 14))
PID_HI=$(((NODE + 1) << 14))

# A broken launch must fail the test, not hang it.
ssi() { timeout --foreground -k 5 60 "$RUN" "$@"; }
in_range() { [[ $1 =~ ^[0-9]+$ ]] && [ "$1" -ge "$PID_LO" ] && [ "$1" -lt "$PID_HI" ]; }

out=$(ssi -- true 2>&1); rc=$?
if [ "$rc" != 0 ]; then
    tst_fail "ssi-run -- true exited $rc: $out (is node $NODE running in ${SSI_RUN_DIR:-/run/ssi}?)"
    tst_exit
fi
tst_pass "ssi-run -- true exits 0"

ssi -- bash -c 'exit 3'
tst_eq "the program's exit status is ssi-run's" "$?" "3"

{ ssi -- bash -c 'kill -TERM $$'; } 2>/dev/null   # no "Terminated" report from this shell
tst_eq "a program killed by SIGTERM makes ssi-run die of it (128+15)" "$?" "143"

err=$(ssi -- bash -c 'kill -KILL $$' 2>&1); rc=$?
tst_eq "a program killed by SIGKILL gives 137" "$rc" "137"
tst_eq "... and no 'node stopped' message while the node runs" "$err" ""

args=(plain 'two words' '"double"' "it's" '' '  lead and trail  ' '$HOME' 'star*' $'tab\there' $'new\nline')
want=$(printf '[%s]' "${args[@]}")
got=$(ssi -- printf '[%s]' "${args[@]}")
tst_eq "argv with spaces, quotes, empty and special arguments arrives intact" "$got" "$want"
got=$(ssi printf '%s|' -n --node x)
tst_eq "options after the program name belong to the program" "$got" "-n|--node|x|"

got=$(SSI_TEST_VAR='a value; with "stuff"' ssi -- sh -c 'printf %s "$SSI_TEST_VAR"')
tst_eq "an environment variable reaches the program" "$got" 'a value; with "stuff"'

mkdir -p "$TST_TMP/work dir"
cd "$TST_TMP/work dir" || exit 1
got=$(ssi -- pwd -P)
tst_eq "the working directory is the caller's" "$got" "$(pwd -P)"
got=$(umask 027; ssi -- sh -c umask)
tst_eq "the umask is the caller's" "$got" "0027"
cd "$TST_TMP" || exit 1

got=$(echo hi | ssi -- cat)
tst_eq "stdin passes through (echo hi | ssi-run -- cat)" "$got" "hi"
got=$(printf 'line1\nline2\n' | ssi -- sh -c 'read a; read b; echo "$b $a"')
tst_eq "the program reads its stdin line by line" "$got" "line2 line1"

pid=$(ssi -- sh -c 'echo $$')
if in_range "$pid"; then tst_pass "the program's pid $pid is in node $NODE's range [$PID_LO, $PID_HI)"
else tst_fail "the program's pid '$pid' is not in node $NODE's range [$PID_LO, $PID_HI)"; fi
ppid=$(ssi -- bash -c 'echo $PPID')
if in_range "$ppid"; then tst_pass "the program's parent pid $ppid is in node $NODE's range too"
else tst_fail "the program's parent pid '$ppid' is not in node $NODE's range [$PID_LO, $PID_HI)"; fi

# /proc/<pid>/stat after "pid (comm) ": state ppid pgrp session ...
stat_fields() { sed -E 's/^[0-9]+ \(.*\) //' "$1"; }
read -r _ ppid pgrp sid _ < <(ssi -- sed -E 's/^[0-9]+ \(.*\) //' /proc/self/stat)
if in_range "$pgrp" && [ "$pgrp" = "$ppid" ]; then
    tst_pass "the program's process group $pgrp is a node pid: its parent's, the launch stub's"
else
    tst_fail "the program's process group is '$pgrp' (parent '$ppid'), not its parent in node $NODE's range"
fi
# The session leader is the caller's, outside the node: the node's pid namespace has no number for it.
tst_eq "the program's session id reads 0 (its leader is outside the node)" "$sid" "0"
got=$(ssi -- bash -c 'set -m; sleep 30 & p=$!; read -r _ _ g _ < <(sed -E "s/^[0-9]+ \(.*\) //" /proc/$p/stat)
      kill $p; [ "$g" = "$p" ] && echo "SETPGID_OK" || echo "pid $p pgid $g"')
tst_eq "setpgid between the program's processes works (set -m: a job leads its own group)" "$got" "SETPGID_OK"

err=$(ssi -- ssi-no-such-command-xyz 2>&1); rc=$?
tst_eq "a command not found in PATH gives 127" "$rc" "127"
tst_eq "... with the shell's message" "$err" "ssi-run: ssi-no-such-command-xyz: command not found"
err=$(ssi -- ./no-such-file 2>&1); rc=$?
tst_eq "a missing path gives 127" "$rc" "127"
tst_eq "... with the shell's message" "$err" "ssi-run: ./no-such-file: No such file or directory"
printf 'echo never\n' > notexec
err=$(ssi -- ./notexec 2>&1); rc=$?
tst_eq "a file without execute permission gives 126" "$rc" "126"
tst_eq "... with the shell's message" "$err" "ssi-run: ./notexec: Permission denied"
mkdir -p adir
err=$(ssi -- ./adir 2>&1); rc=$?
tst_eq "a directory gives 126" "$rc" "126"
tst_eq "... with the shell's message" "$err" "ssi-run: ./adir: Is a directory"
printf 'echo "no shebang $1"\n' > noshebang
chmod +x noshebang
got=$(ssi -- ./noshebang arg 2>&1)
tst_eq "a script without #! runs under /bin/sh, as in a shell" "$got" "no shebang arg"
mkdir -p bin && cp noshebang bin/ssi-test-cmd
got=$(PATH="$TST_TMP/bin:$PATH" ssi -- ssi-test-cmd viapath 2>&1)
tst_eq "a command is found through PATH" "$got" "no shebang viapath"

# Compare with the same command run natively, so that descriptors the harness itself leaves open are
# not blamed on ssi-run; then require the bare minimum when the native run has it.
native=$(ls /proc/self/fd | tr '\n' ' ')
got=$(ssi -- ls /proc/self/fd | tr '\n' ' ')
tst_eq "the program inherits the same fds as when run directly" "$got" "$native"
if [ "$native" = "0 1 2 3 " ]; then
    tst_eq "the program holds only 0, 1, 2 and ls's own directory fd" "$got" "0 1 2 3 "
fi

# SIGTERM to the client (not to the program): the program's trap must run and decide the status.
ready="$TST_TMP/ready"
"$RUN" -- bash -c 'trap "echo TRAPPED; exit 42" TERM; echo READY > "$0"; while :; do sleep 0.05; done' \
    "$ready" > "$TST_TMP/trap.out" 2>&1 &
client=$!
for _ in $(seq 200); do [ -s "$ready" ] && break; sleep 0.05; done
if [ -s "$ready" ]; then
    kill -TERM "$client"
    ( sleep 20; kill -KILL "$client" 2>/dev/null ) & watchdog=$!
    wait "$client"; rc=$?
    kill "$watchdog" 2>/dev/null; wait "$watchdog" 2>/dev/null
    tst_eq "SIGTERM to ssi-run runs the program's trap (its exit status comes back)" "$rc" "42"
    tst_eq "... and the trap's output appears" "$(cat "$TST_TMP/trap.out")" "TRAPPED"
else
    kill -KILL "$client" 2>/dev/null
    tst_fail "the trap test program never started: $(cat "$TST_TMP/trap.out")"
fi

# SIGTERM to the client's whole process group, as a shell's `kill %job` or a session hangup sends it:
# the program is in a group of its own, so it gets the signal once (forwarded by the client), not twice.
# The client is started by setsid so that its group is its own, not this script's.
if command -v setsid >/dev/null; then
    rm -f "$ready"
    setsid "$RUN" -- bash -c 'trap "n=\$((n+1))" TERM; n=0; echo READY > "$0"
        while [ "$n" = 0 ]; do sleep 0.05; done; sleep 0.5; echo "TRAPS=$n"' "$ready" \
        > "$TST_TMP/pgrp.out" 2>&1 &
    client=$!
    for _ in $(seq 200); do [ -s "$ready" ] && break; sleep 0.05; done
    read -r _ _ cpgid _ < <(stat_fields "/proc/$client/stat")
    if [ -s "$ready" ] && [ "$cpgid" = "$client" ]; then
        kill -TERM -- "-$cpgid"
        ( sleep 20; kill -KILL "$client" 2>/dev/null ) & watchdog=$!
        wait "$client"; rc=$?
        kill "$watchdog" 2>/dev/null; wait "$watchdog" 2>/dev/null
        tst_eq "kill -TERM -<ssi-run's pgid> runs the program's TERM trap exactly once" \
            "$rc $(cat "$TST_TMP/pgrp.out")" "0 TRAPS=1"
    else
        kill -KILL "$client" 2>/dev/null
        tst_fail "the process group test did not start (client pgid '$cpgid'): $(cat "$TST_TMP/pgrp.out")"
    fi
fi

# `kill 0` from the program signals its process group, ssi-run's processes included; the trap must run
# once, as natively, not once more through ssi-run's forwarding. In a session of its own, so that the
# group is only the program's.
if command -v setsid >/dev/null; then
    count='trap "n=\$((n+1))" USR1; n=0; kill -USR1 0; sleep 0.3; echo "$n"'
    native=$(setsid -w bash -c "$count")
    got=$(setsid -w "$RUN" -- bash -c "$count")
    tst_eq "a signal the program sends to its own process group reaches it once, as natively" "$got" "$native"
fi

# SIGTSTP sent to the client stops the program and then the client itself; SIGCONT resumes both.
# Only where the kernel honours SIGTSTP here (not in an orphaned process group): check natively first.
state() { sed -E 's/^[0-9]+ \(.*\) (.).*/\1/' "/proc/$1/stat" 2>/dev/null; }
wait_state() { for _ in $(seq 100); do [ "$(state "$1")" = "$2" ] && return 0; sleep 0.05; done; return 1; }
sleep 30 & native_pid=$!
kill -TSTP "$native_pid"
if wait_state "$native_pid" T; then
    kill -KILL "$native_pid"; wait "$native_pid" 2>/dev/null
    rm -f "$ready"
    "$RUN" -- bash -c 'echo $$ > "$0"; exec sleep 30' "$ready" &
    client=$!
    for _ in $(seq 200); do [ -s "$ready" ] && break; sleep 0.05; done
    kill -TSTP "$client"
    if wait_state "$client" T; then tst_pass "SIGTSTP to ssi-run stops the job (the client shows stopped)"
    else tst_fail "SIGTSTP to ssi-run: the client is in state '$(state "$client")', not stopped"; fi
    kill -CONT "$client"
    if wait_state "$client" S; then tst_pass "SIGCONT resumes it"
    else tst_fail "SIGCONT: the client is in state '$(state "$client")'"; fi
    kill -TERM "$client"
    { wait "$client"; } 2>/dev/null   # no "Terminated" job report on our stderr
    tst_eq "the resumed program still gets SIGTERM (143)" "$?" "143"
else
    kill -KILL "$native_pid"; wait "$native_pid" 2>/dev/null
    echo "INFO: SIGTSTP does not stop a job in this process group (orphaned); stop relay not checked"
fi

tst_exit
