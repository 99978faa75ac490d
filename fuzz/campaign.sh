#!/usr/bin/env bash
# One long fuzzing campaign of target T: `fuzz/campaign.sh T SECONDS [WORKERS]`.
# Low priority (nice 19); WORKERS parallel libFuzzer processes (-jobs =
# -workers) share the growing corpus $FUZZ_BUILD/corpus/T; the committed
# seeds in fuzz/corpus/T are read only. Logs: $FUZZ_BUILD/campaign/T*.log
# (one fuzz-N.log per worker when WORKERS > 1); the total executions are
# the sum of the workers' stat::number_of_executed_units.
set -u
cd "$(dirname "$0")/.."
t=$1 secs=$2 workers=${3:-1}
B=${FUZZ_BUILD:-build-fuzz}
mkdir -p "$B/corpus/$t" "$B/campaign/$t"
opts=(-timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=256 -max_len=65536 -print_final_stats=1
      -max_total_time="$secs" -dict="fuzz/dict/$t.dict" -artifact_prefix="$B/campaign/crash-$t-")
if [ "$workers" -gt 1 ]; then
    cd "$B/campaign/$t" && nice -n 19 "../../fuzz_$t" "${opts[@]/-dict=fuzz/-dict=../../../fuzz}" \
        -artifact_prefix="../crash-$t-" -jobs="$workers" -workers="$workers" \
        "../../corpus/$t" "../../../fuzz/corpus/$t"
else
    nice -n 19 "$B/fuzz_$t" "${opts[@]}" "$B/corpus/$t" "fuzz/corpus/$t" >"$B/campaign/$t.log" 2>&1
fi
