# Helpers for end-to-end tests: each check prints "ok NAME" or "FAIL NAME".
# Sourced by tests/e2e/*.sh; $ZT is the binary, $ZT_TEST_TMP a scratch dir.
T=${ZT_TEST_TMP:-/tmp}

ok() { echo "ok $1"; }
fail() { echo "FAIL $1${2:+: $2}"; }

# expect_error NAME PATTERN CMD...: CMD must exit non-zero (not by a signal)
# and print PATTERN (a grep -E regex) on stderr, on one line.
expect_error() {
    local name=$1 pattern=$2
    shift 2
    local out rc
    out=$("$@" 2>&1 >/dev/null)
    rc=$?
    if [ $rc -eq 0 ]; then fail "$name" "exit 0"; return; fi
    if [ $rc -ge 128 ]; then fail "$name" "killed by signal $((rc - 128)): $out"; return; fi
    if ! printf '%s\n' "$out" | grep -qE "$pattern"; then fail "$name" "stderr: $out"; return; fi
    ok "$name"
}
