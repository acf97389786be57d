# tst.sh: reporting helpers for the LTP-style script tests (tests/ltp/*.sh), sourced with
#   . "$(dirname "$0")/../lib/tst.sh"
# Same convention as tests/ltp/tst.h: lines "PASS: ...", "FAIL: ...", "CONF: ..."; exit 0 when all
# checks passed, 1 when any failed, 32 when the test does not apply (CONF). Checks must run in the
# main shell (not in a pipeline's subshell), or their failures are not counted.

TST_FAILURES=0

tst_pass() { echo "PASS: $*"; }
tst_fail() { echo "FAIL: $*"; TST_FAILURES=$((TST_FAILURES + 1)); }
# The whole test does not apply here: report why and exit as skipped.
tst_conf() { echo "CONF: $*"; exit 32; }

# tst_eq DESCRIPTION GOT EXPECTED
tst_eq() {
    if [ "$2" = "$3" ]; then
        tst_pass "$1"
    else
        tst_fail "$1 (got '$(printf '%s' "$2" | head -c 300)', expected '$(printf '%s' "$3" | head -c 300)')"
    fi
}

# tst_ok DESCRIPTION COMMAND...: passes when the command succeeds
tst_ok() {
    local desc=$1
    shift
    if "$@"; then
        tst_pass "$desc"
    else
        tst_fail "$desc (command failed with status $?: $*)"
    fi
}

# tst_need PROGRAM...: CONF unless every program is on PATH
tst_need() {
    local p
    for p in "$@"; do
        command -v "$p" >/dev/null 2>&1 || tst_conf "$p is not installed"
    done
}

# tst_tmpdir: makes $TST_TMP, removed when the script exits. Only the main shell removes it: a
# background job killed between its fork and its exec is still a copy of this shell and would run
# the EXIT trap too.
tst_tmpdir() {
    TST_TMP=$(mktemp -d "${TMPDIR:-/tmp}/ssi-ltp.XXXXXX") || { echo "FAIL: mktemp -d failed"; exit 1; }
    TST_MAIN_PID=$$
    trap '[ "$BASHPID" = "$TST_MAIN_PID" ] && rm -rf "$TST_TMP"' EXIT
}

tst_exit() {
    if [ "$TST_FAILURES" -eq 0 ]; then exit 0; else exit 1; fi
}
