#!/usr/bin/env bash
# Replays every kept fuzz crash input (fuzz/regressions/TARGET/*) and every
# seed (fuzz/corpus/TARGET/*) through its fuzz target: each must run to the
# end (the targets abort on a broken invariant; sanitizers abort on memory
# errors). Prints "ok fuzz_replay_TARGET: N inputs" / "FAIL ...".
#
# In the suite (tests/run.sh) the targets are built here with fuzz/
# replay_main.c instead of libFuzzer, against the library of the build
# under test ($ZT's directory), so no clang is needed and under `make asan`
# the inputs replay under ASan/UBSan. With FUZZ_BUILD set (make fuzz-ci) the
# libFuzzer binaries there are used instead.
source "$(dirname "$0")/lib.sh"
cd "$(dirname "$0")/../.."
D="$T/fuzz_replay"
rm -rf "$D" && mkdir -p "$D"

targets=""
for f in fuzz/fuzz_*.c; do
    t=${f#fuzz/fuzz_}
    t=${t%.c}
    [ "$t" = tokenizer ] && t="tok_spm tok_bpe"
    targets="$targets $t"
done

build_replay() { # build_replay TARGET -> $D/fuzz_TARGET
    local t=$1 src="fuzz/fuzz_$1.c" def=()
    case $t in
    tok_spm) src=fuzz/fuzz_tokenizer.c def=(-DFUZZ_VOCAB='"tests/vocab/ggml-vocab-phi-3.gguf"') ;;
    tok_bpe) src=fuzz/fuzz_tokenizer.c def=(-DFUZZ_VOCAB='"tests/vocab/ggml-vocab-gpt-2.gguf"') ;;
    esac
    ${CC:-cc} -std=c11 -D_GNU_SOURCE -O1 -g -Iinclude -Isrc -I. $san "${def[@]}" \
        -o "$D/fuzz_$t" "$src" fuzz/replay_main.c "$lib" -lpthread -lm 2>"$D/$t.build.log"
}

san=""
if [ -n "${FUZZ_BUILD:-}" ]; then
    bin=$FUZZ_BUILD
else
    bin=$D
    lib="$(dirname "$ZT")/libzt.a"
    if [ ! -f "$lib" ]; then
        fail fuzz_replay "no $lib to build the targets against"
        exit 0
    fi
    if nm "$lib" 2>/dev/null | grep -q __asan_; then
        san="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer"
    fi
fi

for t in $targets; do
    # a target whose code is not in this library yet (e.g. the server's)
    # is skipped, not failed
    if [ -z "${FUZZ_BUILD:-}" ] && ! build_replay "$t"; then
        if grep -q "undefined reference" "$D/$t.build.log"; then
            echo "skip fuzz_replay_$t: not in this build"
            continue
        fi
        fail "fuzz_replay_$t" "build: $(head -n 1 "$D/$t.build.log")"
        continue
    fi
    inputs=$(find "fuzz/regressions/$t" "fuzz/corpus/$t" -type f 2>/dev/null | sort)
    [ -n "$inputs" ] || continue
    log="$D/$t.log"
    # shellcheck disable=SC2086
    if [ -n "${FUZZ_BUILD:-}" ]; then
        "$bin/fuzz_$t" -malloc_limit_mb=256 -rss_limit_mb=2048 -timeout=10 $inputs >"$log" 2>&1
    else
        # an ASan build also refuses any single allocation over 256 MB, as
        # libFuzzer's -malloc_limit_mb does: the inputs are a few KB
        ASAN_OPTIONS="max_allocation_size_mb=256:${ASAN_OPTIONS:-}" "$bin/fuzz_$t" $inputs >"$log" 2>&1
    fi
    rc=$?
    n=$(echo "$inputs" | wc -l)
    if [ $rc -eq 0 ]; then
        ok "fuzz_replay_$t: $n inputs"
    else
        fail "fuzz_replay_$t" "exit $rc on $(grep -E '^(replay: |Running: )' "$log" | tail -n 1) \
$(grep -m1 -E 'ERROR|runtime error|SUMMARY' "$log")"
    fi
done
