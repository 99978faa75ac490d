#!/usr/bin/env bash
# Runs each named fuzz target for FUZZ_SECONDS over its committed seeds
# (fuzz/corpus/T, read only) and a scratch corpus ($FUZZ_BUILD/corpus/T,
# where new inputs go). Prints one "ok fuzz_T: N execs in S s" or
# "FAIL fuzz_T ..." line per target and exits non-zero on any finding; a
# crashing input is saved as $FUZZ_BUILD/crash-T-<sha1> (keep it under
# fuzz/regressions/T/ once fixed). Used by `make fuzz-ci`.
set -u
cd "$(dirname "$0")/.."
B=${FUZZ_BUILD:-build-fuzz}
SECS=${FUZZ_SECONDS:-20}
OPTS=${FUZZ_OPTS:--timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=256 -max_len=65536}
failed=0
start=$(date +%s)
for t in "$@"; do
    mkdir -p "$B/corpus/$t"
    log="$B/fuzz_$t.log"
    dict=""
    [ -f "fuzz/dict/$t.dict" ] && dict="-dict=fuzz/dict/$t.dict"
    # shellcheck disable=SC2086
    "$B/fuzz_$t" $OPTS -print_final_stats=1 -max_total_time="$SECS" $dict \
        -artifact_prefix="$B/crash-$t-" "$B/corpus/$t" "fuzz/corpus/$t" >"$log" 2>&1
    rc=$?
    execs=$(grep -oE 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -oE '[0-9]+$')
    if [ $rc -eq 0 ]; then
        echo "ok fuzz_$t: ${execs:-?} execs in $SECS s"
    else
        failed=1
        echo "FAIL fuzz_$t (exit $rc): $(grep -m1 -E 'ERROR|SUMMARY|==[0-9]+==' "$log")"
        grep -E '^artifact_prefix|Test unit written' "$log"
    fi
done
echo "fuzz: $# targets in $(( $(date +%s) - start )) s"
exit $failed
