# tests/lib/check.sh - the tally of a bash test: one line per check, a summary,
# exit status 1 when any check failed.
#
#   . tests/lib/check.sh
#   check "NAME" CMD...        # ok when CMD succeeds
#   ok "NAME"; not_ok "NAME"   # record a result directly
#   fatal "NAME"               # record a failure, print the summary, exit 1
#   require_tools TOOL...      # fatal when a tool is not installed
#   expect_fail NAME PATTERN CMD...   # ok when CMD exits 1 with PATTERN (grep -E) on stderr
#                              # (its output in ./out and ./err)
#   finish                     # print the summary; return 1 if anything failed
#
# CHECK_SHOW (a file name, optional): printed under a failed check (e.g. the
# captured stderr). CHECK_LOG (optional): its last lines are printed by fatal
# (e.g. a server log).

passed=0
failed=0
ok() { passed=$((passed + 1)); echo "ok   - $1"; }
not_ok() {
    failed=$((failed + 1))
    echo "FAIL - $1"
    if [ -n "${CHECK_SHOW:-}" ] && [ -f "$CHECK_SHOW" ]; then
        sed 's/^/       stderr: /' "$CHECK_SHOW" | head -n 8
    fi
    return 0
}
check() {
    local name=$1
    shift
    if "$@"; then ok "$name"; else not_ok "$name"; fi
}
finish() {
    echo "$passed passed, $failed failed"
    [ "$failed" -eq 0 ]
}
# require_tools TOOL...: fatal (the summary, exit 1) when one is not installed.
require_tools() {
    local t
    for t in "$@"; do
        command -v "$t" >/dev/null || fatal "$t not found (run scripts/deps.sh)"
    done
}
fatal() {
    not_ok "$1"
    if [ -n "${CHECK_LOG:-}" ] && [ -f "$CHECK_LOG" ]; then
        sed 's/^/       log: /' "$CHECK_LOG" | tail -n 20
    fi
    finish
    exit 1
}

expect_fail() {
    local name=$1 pat=$2 rc
    shift 2
    "$@" >out 2>err
    rc=$?
    if [ "$rc" -ne 1 ]; then
        not_ok "$name (exit $rc, expected 1)"
    elif ! grep -Eq -- "$pat" err; then
        not_ok "$name (stderr does not match '$pat')"
    else
        ok "$name"
    fi
}
