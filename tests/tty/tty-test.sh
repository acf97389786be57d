#!/bin/bash
# tty-test: terminal behaviour of programs started by ./ssi-run, driven through tmux. An outer bash runs
# `./ssi-run -- bash --norc -i; echo "RC=$?"`; in that inner bash: stdin is a tty, the bash leads its
# own process group and holds the terminal (tcgetpgrp), Ctrl-C ends a foreground sleep (status 130),
# Ctrl-Z stops it ("Stopped") and fg + Ctrl-C ends it, Ctrl-Z stops a cat, `exit 7` (twice: there is a
# stopped job) makes ssi-run exit 7 and gives the outer bash a usable terminal. Then the outer bash runs
# ssi-run directly, so that Ctrl-C and Ctrl-Z/fg travel through ssi-run's own job control and relay to
# the user's shell: a foreground program holds the terminal in a group of its own, Ctrl-C and Ctrl-Z/fg
# on a sleep, `ssi-run -- cat &` stopping on tty input then fg + typing + Ctrl-D, and
# `ssi-run -- bash -i &` stopping instead of taking the terminal, then fg giving a working prompt.
# Uses the node of $SSI_NODE (default 1) in $SSI_RUN_DIR (default /run/ssi), as ssi-run does.
ROOT=$(cd "$(dirname "$(readlink -f "$0")")/../.." && pwd)
. "$ROOT/tests/lib/tst.sh"
tst_need tmux
NODE=${SSI_NODE:-1}
PID_LO=$((NODE << 14))
PID_HI=$(((NODE + 1) << 14))

SOCK="ssi-tty-test-$$"
# sleep durations unique to this run, so that the processes it looks for (and cleans up) are its own
SL="9$$"
T=(tmux -L "$SOCK" -f /dev/null)
cleanup() {
    "${T[@]}" kill-server 2>/dev/null
    pkill -KILL -f "^sleep ${SL}[0-9]$" 2>/dev/null
}
trap cleanup EXIT

screen() { "${T[@]}" capture-pane -p -J -S -200 -t t 2>/dev/null; }
keys() { "${T[@]}" send-keys -t t "$@"; }
type_line() { keys -l "$1"; keys Enter; }
# wait_line REGEX [SECONDS]: until a whole line of the pane matches (the typed command line never does,
# because every check echoes something the shell computes, not the text typed)
wait_line() {
    local deadline=$((SECONDS + ${2:-15}))
    while [ "$SECONDS" -lt "$deadline" ]; do
        screen | grep -qxE -- "$1" && return 0
        sleep 0.1
    done
    return 1
}
# count_lines REGEX: how many lines of the pane match, to tell a new "Stopped" from an old one
count_lines() { screen | grep -cE -- "$1"; }
wait_count() {
    local deadline=$((SECONDS + ${3:-15}))
    while [ "$SECONDS" -lt "$deadline" ]; do
        [ "$(count_lines "$1")" -ge "$2" ] && return 0
        sleep 0.1
    done
    return 1
}
# wait_proc PATTERN STATE: a process whose command line is PATTERN exists in STATE (R/S/T)
wait_proc() {
    local deadline=$((SECONDS + 15)) p st
    while [ "$SECONDS" -lt "$deadline" ]; do
        for p in $(pgrep -f -- "$1"); do
            st=$(sed -E 's/^[0-9]+ \(.*\) (.).*/\1/' "/proc/$p/stat" 2>/dev/null)
            case "$2" in *"$st"*) [ -n "$st" ] && return 0 ;; esac
        done
        sleep 0.05
    done
    return 1
}
# all_in_state PATTERN STATE: every process whose command line matches is in STATE (at least one)
all_in_state() {
    local deadline=$((SECONDS + 15)) p st ok
    while [ "$SECONDS" -lt "$deadline" ]; do
        ok=
        for p in $(pgrep -f -- "$1"); do
            st=$(sed -E 's/^[0-9]+ \(.*\) (.).*/\1/' "/proc/$p/stat" 2>/dev/null)
            [ -z "$st" ] && continue
            if [ "$st" = "$2" ]; then ok=${ok:-yes}; else ok=no; fi
        done
        [ "$ok" = yes ] && return 0
        sleep 0.05
    done
    return 1
}
# wait_pid_state PID STATE: the process PID reaches STATE (R/S/T)
wait_pid_state() {
    local deadline=$((SECONDS + 15))
    while [ "$SECONDS" -lt "$deadline" ]; do
        [ "$(sed -E 's/^[0-9]+ \(.*\) (.).*/\1/' "/proc/$1/stat" 2>/dev/null)" = "$2" ] && return 0
        sleep 0.05
    done
    return 1
}
gone_proc() {
    local deadline=$((SECONDS + 15))
    while [ "$SECONDS" -lt "$deadline" ]; do
        pgrep -f -- "$1" >/dev/null || return 0
        sleep 0.05
    done
    return 1
}
fail_screen() { tst_fail "$1"; echo "---- pane ----"; screen | tail -15; echo "--------------"; }

env_args=()
[ -n "${SSI_RUN_DIR:-}" ] && env_args+=("SSI_RUN_DIR=$SSI_RUN_DIR")
[ -n "${SSI_NODE:-}" ] && env_args+=("SSI_NODE=$SSI_NODE")
"${T[@]}" new-session -d -s t -x 160 -y 50 env "${env_args[@]}" TERM=xterm bash --norc \
    || tst_conf "tmux cannot start a session here"
type_line "PS1='OUTER\$ '; cd '$ROOT'"
wait_line 'OUTER\$ ' || { fail_screen "the outer bash never showed its prompt"; tst_exit; }

# ---- an interactive bash under ssi-run ----
type_line './ssi-run -- bash --norc -i; echo "RC=$?"'
wait_line 'bash-[0-9.]+[#$] *' || fail_screen "no prompt from the inner bash"
type_line "PS1='INNER\$ '"
type_line 'echo "PID_$$"'
if wait_line 'PID_[0-9]+'; then
    pid=$(screen | grep -xE 'PID_[0-9]+' | tail -1 | cut -d_ -f2)
    if [ "$pid" -ge "$PID_LO" ] && [ "$pid" -lt "$PID_HI" ]; then
        tst_pass "the inner bash runs on node $NODE (pid $pid)"
    else
        tst_fail "the inner bash has pid $pid, outside node $NODE's range [$PID_LO, $PID_HI)"
    fi
else
    fail_screen "the inner bash under ssi-run never answered"
    tst_exit
fi

type_line '[ -t 0 ] && echo TTY_OK'
if wait_line 'TTY_OK'; then tst_pass "stdin of the program is a tty ([ -t 0 ])"
else fail_screen "[ -t 0 ] is false under ssi-run"; fi
type_line '[ -t 1 ] && [ -t 2 ] && echo "OUT_$((6*7))"'
if wait_line 'OUT_42'; then tst_pass "stdout and stderr of the program are the tty"
else fail_screen "stdout/stderr are not a tty under ssi-run"; fi

# bash -i makes a group of its own and takes the terminal for it, which it can only do when its
# process group and the terminal's foreground are visible in the node (fields 5 and 8 of stat)
type_line 'read -r s < /proc/$$/stat; set -- ${s##*) }; echo "PG_$3_$6_$$"'
if wait_line 'PG_[0-9]+_[0-9]+_[0-9]+'; then
    pg=$(screen | grep -xE 'PG_[0-9]+_[0-9]+_[0-9]+' | tail -1)
    tst_eq "the inner bash leads its process group and is the terminal's foreground (PG_pgrp_tpgid_pid)" \
        "$pg" "PG_${pid}_${pid}_${pid}"
else
    fail_screen "the inner bash did not report its process group"
fi

type_line "sleep ${SL}1"
if wait_proc "^sleep ${SL}1$" S; then
    keys C-c
    type_line 'echo "RC_$?"'
    if wait_line 'RC_130'; then tst_pass "Ctrl-C ends a foreground sleep in the inner bash (\$? = 130)"
    else fail_screen "Ctrl-C in the inner bash: no RC_130"; fi
else
    fail_screen "sleep ${SL}1 never started in the inner bash"
fi

stopped_before=$(count_lines 'Stopped')
type_line "sleep ${SL}2"
if wait_proc "^sleep ${SL}2$" S; then
    keys C-z
    if wait_count 'Stopped' $((stopped_before + 1)) && wait_proc "^sleep ${SL}2$" T; then
        tst_pass "Ctrl-Z stops a sleep in the inner bash (\"Stopped\")"
        type_line 'fg'
        if wait_proc "^sleep ${SL}2$" S; then
            keys C-c
            type_line 'echo "FG_$?"'
            if wait_line 'FG_130' && gone_proc "^sleep ${SL}2$"; then
                tst_pass "fg then Ctrl-C ends it"
            else
                fail_screen "fg + Ctrl-C in the inner bash: no FG_130 or the sleep survived"
            fi
        else
            fail_screen "fg did not resume the sleep in the inner bash"
        fi
    else
        fail_screen "Ctrl-Z in the inner bash did not stop the sleep"
    fi
else
    fail_screen "sleep ${SL}2 never started in the inner bash"
fi

stopped_before=$(count_lines 'Stopped')
type_line 'cat'
# bash reads no further while cat runs, so cat reads this line: it shows twice (echo and copy)
type_line "typed${SL}"
if wait_count "^typed${SL}$" 2; then
    keys C-z
    if wait_count 'Stopped' $((stopped_before + 1)); then
        tst_pass "Ctrl-Z stops a cat reading the terminal in the inner bash"
    else
        fail_screen "Ctrl-Z in the inner bash did not stop cat"
    fi
else
    fail_screen "cat in the inner bash did not copy a typed line"
fi

outer_before=$(count_lines '^OUTER\$ ')
type_line 'exit 7'
# bash refuses the first exit while a job is stopped, and ends the stopped cat on the second
wait_line 'There are stopped jobs\.' 5 && type_line 'exit 7'
if wait_line 'RC=7'; then tst_pass "exit 7 in the inner bash makes ssi-run exit 7"
else fail_screen "ssi-run did not exit 7 after 'exit 7'"; fi
wait_count '^OUTER\$ ' $((outer_before + 1)) || fail_screen "the outer bash did not get its prompt back"
type_line 'echo "USABLE_$((3*5))"'
if wait_line 'USABLE_15'; then tst_pass "after the inner bash exits, the outer bash reads the terminal again"
else fail_screen "the outer bash cannot use the terminal after the inner bash exited"; fi

# ---- ssi-run's own relay, seen by the user's shell ----
# a foreground program: its group is its parent's (the launch stub) and holds the terminal
type_line "./ssi-run -- sh -c 'read -r s < /proc/\$\$/stat; set -- \${s##*) }; echo \"JOBPG_\$2_\$3_\$6\"'"
if wait_line 'JOBPG_[0-9]+_[0-9]+_[0-9]+'; then
    fg_line=$(screen | grep -xE 'JOBPG_[0-9]+_[0-9]+_[0-9]+' | tail -1)
    if [[ $fg_line =~ ^JOBPG_([0-9]+)_([0-9]+)_([0-9]+)$ ]] && [ "${BASH_REMATCH[1]}" = "${BASH_REMATCH[2]}" ] \
        && [ "${BASH_REMATCH[2]}" = "${BASH_REMATCH[3]}" ] && [ "${BASH_REMATCH[2]}" -ge "$PID_LO" ] \
        && [ "${BASH_REMATCH[2]}" -lt "$PID_HI" ]; then
        tst_pass "a foreground program's group is its parent's node pid and holds the terminal ($fg_line)"
    else
        tst_fail "a foreground program sees ppid_pgrp_tpgid = $fg_line, not one node pid three times"
    fi
else
    fail_screen "ssi-run -- sh did not report its process group"
fi

type_line "./ssi-run -- sleep ${SL}3"
if wait_proc "^sleep ${SL}3$" S; then
    keys C-c
    type_line 'echo "OC_$?"'
    if wait_line 'OC_130'; then tst_pass "Ctrl-C ends ssi-run -- sleep (\$? = 130 in the user's shell)"
    else fail_screen "Ctrl-C on ssi-run -- sleep: no OC_130"; fi
else
    fail_screen "ssi-run -- sleep ${SL}3 never started"
fi

stopped_before=$(count_lines 'Stopped')
type_line "./ssi-run -- sleep ${SL}4"
if wait_proc "^sleep ${SL}4$" S; then
    keys C-z
    if wait_count "Stopped.*ssi-run -- sleep ${SL}4" 1 && wait_proc "^sleep ${SL}4$" T; then
        tst_pass "Ctrl-Z on ssi-run -- sleep: the user's shell shows the job Stopped"
        if all_in_state "ssi-run -- sleep ${SL}4" T; then
            tst_pass "... the ssi-run client and its launch stub are stopped too"
        else
            tst_fail "ssi-run's own processes are not all stopped after Ctrl-Z"
        fi
        type_line 'fg'
        if wait_proc "^sleep ${SL}4$" S; then
            keys C-c
            type_line 'echo "OF_$?"'
            if wait_line 'OF_130' && gone_proc "sleep ${SL}4"; then
                tst_pass "fg then Ctrl-C ends it (\$? = 130)"
            else
                fail_screen "fg + Ctrl-C on ssi-run: no OF_130 or a process survived"
            fi
        else
            fail_screen "fg did not resume ssi-run -- sleep"
        fi
    else
        fail_screen "Ctrl-Z on ssi-run -- sleep: no Stopped job"
    fi
else
    fail_screen "ssi-run -- sleep ${SL}4 never started"
fi

# Under a non-interactive caller (a script, make) that shares ssi-run's process group: Ctrl-Z must
# stop the caller's whole job at once and Ctrl-C end it, as natively, although the terminal's signals
# went to the program's group only.
type_line "bash --norc -c './ssi-run -- sleep ${SL}7; echo AFTER_\$((7*7))'"
if wait_proc "^sleep ${SL}7$" S; then
    keys C-z
    if wait_count "Stopped.*ssi-run -- sleep ${SL}7" 1 && wait_proc "^sleep ${SL}7$" T; then
        tst_pass "one Ctrl-Z stops a script running ssi-run: the user's shell shows the job Stopped"
        type_line 'fg'
        if wait_proc "^sleep ${SL}7$" S; then
            keys C-c
            type_line 'echo "NC_$?"'
            if wait_line 'NC_130' && ! screen | grep -qx 'AFTER_49'; then
                tst_pass "fg then Ctrl-C ends the script too, as natively (130, no next command)"
            else
                fail_screen "Ctrl-C on a script running ssi-run: no NC_130, or the script went on"
            fi
        else
            fail_screen "fg did not resume the script running ssi-run"
        fi
    else
        fail_screen "Ctrl-Z on a script running ssi-run: no Stopped job"
    fi
else
    fail_screen "bash -c './ssi-run -- sleep ${SL}7' never started"
fi

# In a pipeline the other members share ssi-run's process group, the caller's job: one that reads the
# terminal must keep it while the program runs (the program's stdout is the pipe here).
type_line "./ssi-run -- sh -c 'echo PIPED_\$((6*7)); exec sleep 2' | { read -r x; read -r y < /dev/tty; echo \"GOT_\${x}_\$y\"; cat; }"
type_line "fromtty${SL}"
if wait_line "GOT_PIPED_42_fromtty${SL}"; then
    tst_pass "a pipeline member beside ssi-run reads the terminal while the program runs"
else
    fail_screen "a pipeline member beside ssi-run could not read the terminal"
    keys C-c
fi
type_line 'echo "PIPEDONE_$?"'
wait_line 'PIPEDONE_0' || fail_screen "the pipeline with ssi-run did not end with status 0"
# Ctrl-C on such a pipeline: the terminal stayed with the caller's job, ssi-run forwards it
type_line "./ssi-run -- sleep ${SL}6 | cat"
if wait_proc "^sleep ${SL}6$" S; then
    keys C-c
    type_line 'echo "PC_${PIPESTATUS[*]}"'
    if wait_line 'PC_130 130' && gone_proc "^sleep ${SL}6$"; then
        tst_pass "Ctrl-C ends ssi-run -- sleep | cat (both 130)"
    else
        fail_screen "Ctrl-C on ssi-run -- sleep | cat: no PC_130 130 or the sleep survived"
    fi
else
    fail_screen "ssi-run -- sleep ${SL}6 | cat never started"
fi

# A background program reading the terminal stops with SIGTTIN, as natively, and the user's shell
# sees its job "Stopped (tty input)"; fg hands it the terminal.
type_line './ssi-run -- cat & echo "BG_$!"'
if wait_line 'BG_[0-9]+'; then
    bg=$(screen | grep -xE 'BG_[0-9]+' | tail -1 | cut -d_ -f2)
    if wait_pid_state "$bg" T; then
        type_line 'jobs -l'   # the long format names the stop signal
        if wait_line '\[[0-9]+\]\+ +[0-9]+ Stopped \(tty input\) +\./ssi-run -- cat'; then
            tst_pass "ssi-run -- cat &: the user's shell shows the job Stopped (tty input)"
        else
            fail_screen "ssi-run -- cat & stopped, but not as 'Stopped (tty input)'"
        fi
        type_line 'fg'
        type_line "typedbg${SL}"
        if wait_count "^typedbg${SL}$" 2; then
            tst_pass "... fg resumes it and it reads the line typed"
        else
            fail_screen "after fg, ssi-run -- cat did not copy a typed line"
        fi
        keys C-d
        type_line 'echo "CAT_$?"'
        if wait_line 'CAT_0'; then tst_pass "... Ctrl-D ends it (\$? = 0)"
        else fail_screen "Ctrl-D did not end ssi-run -- cat"; keys C-c; fi
    else
        fail_screen "ssi-run -- cat & did not stop (client $bg)"
        kill -KILL "$bg" 2>/dev/null
    fi
else
    fail_screen "ssi-run -- cat & did not start"
fi

# An interactive bash started in the background must not believe it is in the foreground: it stops
# itself (SIGTTIN) until fg gives it the terminal, then prompts and reads.
bg_before=$(count_lines '^BG_[0-9]+$')
type_line './ssi-run -- bash --norc -i & echo "BG_$!"'
if wait_count '^BG_[0-9]+$' $((bg_before + 1)); then
    bg=$(screen | grep -xE 'BG_[0-9]+' | tail -1 | cut -d_ -f2)
    if wait_pid_state "$bg" T; then
        type_line 'jobs -l'   # the long format names the stop signal
        if wait_line '\[[0-9]+\]\+ +[0-9]+ Stopped \(tty input\) +\./ssi-run -- bash --norc -i'; then
            tst_pass "ssi-run -- bash -i &: the user's shell shows the job Stopped (tty input)"
        else
            fail_screen "ssi-run -- bash -i & stopped, but not as 'Stopped (tty input)'"
        fi
        prompts=$(count_lines '^bash-[0-9.]+[#$] ')
        type_line 'fg'
        if wait_count '^bash-[0-9.]+[#$] ' $((prompts + 1)); then
            type_line 'echo "BGI_$((2+3))"'
            if wait_line 'BGI_5'; then tst_pass "... fg gives it the terminal: it prompts and reads"
            else fail_screen "the inner bash brought to the foreground does not read"; fi
            type_line 'exit 5'
            type_line 'echo "BGX_$?"'
            if wait_line 'BGX_5'; then tst_pass "... and exit 5 there gives the user's shell 5 and the terminal"
            else fail_screen "no BGX_5 after exit 5 in the inner bash"; fi
        else
            fail_screen "fg gave no prompt from the background bash -i"
            kill -KILL "$bg" 2>/dev/null
        fi
    else
        fail_screen "ssi-run -- bash -i & did not stop (client $bg)"
        kill -KILL "$bg" 2>/dev/null
    fi
else
    fail_screen "ssi-run -- bash -i & did not start"
fi

# An interactive bash under ssi-run takes the terminal for its own process group; ssi-run takes it back
# when the program ends, so a non-interactive caller can still read the terminal.
type_line "bash --norc -c './ssi-run -- bash --norc -i; read -t 10 x; echo \"READ_\$? \$x\"'"
exits_before=$(count_lines '^exit$')
if wait_line 'bash-[0-9.]+[#$] *'; then
    type_line 'exit'
    # "exit" alone on a line is what bash -i prints as it leaves (the typed line has a prompt)
    wait_count '^exit$' $((exits_before + 1))
    type_line 'typed-after'
    if wait_line 'READ_0 typed-after'; then
        tst_pass "after the inner bash exits, its non-interactive caller reads the terminal again"
    else
        fail_screen "the caller of ssi-run -- bash -i could not read the terminal after it exited"
        keys C-c
    fi
else
    fail_screen "no prompt from bash -i under a non-interactive caller"
fi
wait_line 'OUTER\$ ' || fail_screen "the outer bash did not get its prompt back"

type_line 'echo "JOBS_$(jobs | wc -l)"'
if wait_line 'JOBS_0'; then tst_pass "no job is left behind in the user's shell"
else fail_screen "jobs are left in the user's shell"; fi

tst_exit
