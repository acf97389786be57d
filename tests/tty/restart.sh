#!/bin/bash
# restart: a program that reads its terminal is checkpointed and restarted in another terminal, driven
# through tmux. In window a, `./ssi-run -- ttyread` reads lines from its terminal and answers each with
# its process group and the terminal's foreground group; `ssi checkpoint --stop` saves it (its fds 0-2
# are its controlling terminal: FD_TTY records). In window b, `./ssi restart IMG` brings it back in the
# foreground: lines typed in window b reach it and its answers appear there, its group is the
# terminal's foreground group (its own answer, and ps -o pgid,tpgid on the host), Ctrl-Z stops it and
# `fg` continues it, Ctrl-C ends it and `ssi restart` exits 130. The same image restarted from a caller
# without a terminal is refused, with nothing started, and a process holding a terminal that is not its
# controlling terminal (window b's, opened in window a) cannot be checkpointed.
# Uses the node of $SSI_NODE (default 1) in $SSI_RUN_DIR (default /run/ssi), as ssi-run does.
ROOT=$(cd "$(dirname "$(readlink -f "$0")")/../.." && pwd)
. "$ROOT/tests/lib/tst.sh"
tst_need tmux cc
tst_tmpdir
NODE=${SSI_NODE:-1}

SOCK="ssi-tty-restart-$$"
T=(tmux -L "$SOCK" -f /dev/null)
PROG=$TST_TMP/ttyread-$$
IMG=$TST_TMP/img
cleanup() {
    "${T[@]}" kill-server 2>/dev/null
    pkill -KILL -f "^$PROG\$" 2>/dev/null
    pkill -KILL -f "^sleep 9$$\$" 2>/dev/null
    [ "$BASHPID" = "$TST_MAIN_PID" ] && rm -rf "$TST_TMP"
}
trap cleanup EXIT

cat >"$PROG.c" <<'EOF'
#include <stdio.h>
#include <string.h>
#include <unistd.h>
int main(void)
{
    char line[256];
    printf("READY %d\n", (int)getpid());
    fflush(stdout);
    while (fgets(line, sizeof line, stdin)) {
        line[strcspn(line, "\n")] = 0;
        printf("GOT %s pgrp=%d fg=%d\n", line, (int)getpgrp(), (int)tcgetpgrp(0));
        fflush(stdout);
    }
    return 0;
}
EOF
cc -O1 -o "$PROG" "$PROG.c" || tst_conf "cannot compile the test program"

screen() { "${T[@]}" capture-pane -p -J -S -200 -t "$1" 2>/dev/null; }
keys() { local w=$1; shift; "${T[@]}" send-keys -t "$w" "$@"; }
type_line() { keys "$1" -l "$2"; keys "$1" Enter; }
# wait_line WINDOW REGEX [SECONDS]: until a whole line of the window's pane matches
wait_line() {
    local deadline=$((SECONDS + ${3:-15}))
    while [ "$SECONDS" -lt "$deadline" ]; do
        screen "$1" | grep -qxE -- "$2" && return 0
        sleep 0.1
    done
    return 1
}
fail_screen() { tst_fail "$2"; echo "---- window $1 ----"; screen "$1" | grep -v "^$" | tail -15; echo "--------------"; }
state_of() { sed -E 's/^[0-9]+ \(.*\) (.).*/\1/' "/proc/$1/stat" 2>/dev/null; }
wait_state() {
    local deadline=$((SECONDS + 15))
    while [ "$SECONDS" -lt "$deadline" ]; do
        [ "$(state_of "$1")" = "$2" ] && return 0
        sleep 0.05
    done
    return 1
}

env_args=()
[ -n "${SSI_RUN_DIR:-}" ] && env_args+=("SSI_RUN_DIR=$SSI_RUN_DIR")
[ -n "${SSI_NODE:-}" ] && env_args+=("SSI_NODE=$SSI_NODE")
"${T[@]}" new-session -d -s t -n a -x 160 -y 50 env "${env_args[@]}" TERM=xterm bash --norc \
    || tst_conf "tmux cannot start a session here"
"${T[@]}" new-window -d -t t -n b env "${env_args[@]}" TERM=xterm bash --norc
A=t:a B=t:b
for w in $A $B; do
    type_line $w "PS1='OUTER\$ '; cd '$ROOT'"
    wait_line $w 'OUTER\$ ' || { fail_screen $w "the bash of window $w never showed its prompt"; tst_exit; }
done

# ---- the original, in window a ----
type_line $A "./ssi-run -- '$PROG'; echo \"RC=\$?\""
if ! wait_line $A 'READY [0-9]+'; then fail_screen $A "the program never started under ssi-run"; tst_exit; fi
gpid=$(screen $A | grep -xE 'READY [0-9]+' | tail -1 | cut -d' ' -f2)
type_line $A "one"
if wait_line $A 'GOT one pgrp=[0-9]+ fg=[0-9]+'; then tst_pass "the program reads window a's terminal"
else fail_screen $A "the program never answered in window a"; tst_exit; fi

out=$("$ROOT/ssi" checkpoint "$gpid" -o "$IMG" --stop </dev/null 2>&1)
tst_eq "ssi checkpoint --stop of a program on a terminal succeeds" "$?" "0"
wait_line $A 'RC=137' || fail_screen $A "the original did not end with the checkpoint (--stop)"
show=$("$ROOT/ssi" image show "$IMG" </dev/null 2>&1)
if grep -qE '^ +0 terminal +/dev/pts/[0-9]+' <<<"$show"; then tst_pass "fd 0 is saved as the terminal"
else tst_fail "fd 0 is not a terminal record in the image: $(grep -E '^ +[0-9] ' <<<"$show")"; fi

# ---- another terminal than the controlling one: refused at checkpoint, naming it ----
bpts=$("${T[@]}" display -p -t $B '#{pane_tty}')
SL="9$$"
type_line $A "./ssi-run -- bash -c 'exec 5<>$bpts; exec sleep $SL'"
host=
for _ in $(seq 1 150); do host=$(pgrep -f "^sleep $SL\$" | head -1); [ -n "$host" ] && break; sleep 0.1; done
other=$(awk '$1 == "NSpid:" {print $NF}' "/proc/$host/status" 2>/dev/null)
if [ -n "$other" ]; then
    out=$("$ROOT/ssi" checkpoint "$other" -o "$TST_TMP/img-other" </dev/null 2>&1); rc=$?
    tst_eq "a checkpoint of a process holding another terminal fails" "$rc" "1"
    if grep -q "fd 5 is the terminal $bpts (char [0-9]*:[0-9]*), which is not the process's controlling terminal" <<<"$out"; then
        tst_pass "... naming the fd and the terminal"
    else
        tst_fail "... with the message: $out"
    fi
    kill -KILL "$host"
else
    fail_screen $A "the sleep holding window b's terminal never ran"
fi

# ---- no terminal: refused, nothing started ----
err=$(setsid "$ROOT/ssi" restart "$IMG" </dev/null 2>&1 >/dev/null); rc=$?
tst_eq "a restart without a terminal is refused (125)" "$rc" "125"
if grep -q "had its terminal" <<<"$err" && grep -q "nothing was started" <<<"$err"; then
    tst_pass "... and says why: $err"
else
    tst_fail "... with an unclear message: $err"
fi
if pgrep -f "^$PROG\$" >/dev/null; then tst_fail "... but a process was started"; else tst_pass "... and nothing runs"; fi

# ---- the restart, in window b ----
type_line $B "./ssi restart '$IMG'; echo \"RC=\$?\""
type_line $B "two"
if wait_line $B "GOT two pgrp=[0-9]+ fg=[0-9]+"; then
    tst_pass "input typed in window b reaches the restored program, and its output appears there"
    line=$(screen $B | grep -xE 'GOT two pgrp=[0-9]+ fg=[0-9]+' | tail -1)
    pg=${line#*pgrp=}; pg=${pg%% *}; fg=${line##*fg=}
    tst_eq "the restored program's group is its terminal's foreground group (tcgetpgrp)" "$fg" "$pg"
else
    fail_screen $B "the restored program never answered in window b"
fi
host=$(pgrep -f "^$PROG\$" | head -1)
if [ -n "$host" ]; then
    read -r hpg htp < <(ps -o pgid=,tpgid= -p "$host")
    tst_eq "ps -o pgid,tpgid: the restored program is the foreground job of window b's terminal" "$htp" "$hpg"
    bpts=$("${T[@]}" display -p -t $B '#{pane_tty}')
    tst_eq "its stdin is window b's terminal" "$(readlink "/proc/$host/fd/0")" "$bpts"
else
    tst_fail "no restored process on the host"
fi

keys $B C-z
if [ -n "$host" ] && wait_state "$host" T; then tst_pass "Ctrl-Z stops the restored program"
else fail_screen $B "Ctrl-Z did not stop the restored program"; fi
wait_line $B '.*Stopped.*' || fail_screen $B "the shell of window b did not report the stop"
# bash went on with the rest of the command line at the stop: fg's status is now the job's
type_line $B "fg; echo \"RC=\$?\""
type_line $B "three"
if wait_line $B "GOT three pgrp=[0-9]+ fg=[0-9]+"; then tst_pass "after fg it reads window b's terminal again"
else fail_screen $B "no answer after fg"; fi
keys $B C-c
# bash abandons the rest of a command line whose job died of Ctrl-C: ask for the status anew
wait_line $B 'OUTER\$ '
type_line $B 'echo "RC=$?"'
if wait_line $B 'RC=130'; then tst_pass "Ctrl-C ends it and ssi restart exits 130"
else fail_screen $B "Ctrl-C did not end the restored program with status 130"; fi
tst_exit
