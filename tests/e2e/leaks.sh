#!/usr/bin/env bash
# Memory leaks: `zt run` on the demo model and `zt logits` on an HF fixture
# must free everything they allocate. LeakSanitizer checks at exit: built in
# when $ZT is an ASan build (`make asan`), else preloaded as the standalone
# runtime (gcc's liblsan.so), which needs no rebuild. (valgrind cannot run
# the -march=native binary on AVX-512/AMX machines.) Prints "ok NAME: 0
# bytes lost" or "FAIL NAME: ..." with LeakSanitizer's summary.
source "$(dirname "$0")/lib.sh"
D="$T/leaks"
rm -rf "$D" && mkdir -p "$D"

preload=""
if grep -q __asan_init "$ZT" 2>/dev/null; then
    : # ASan build: LeakSanitizer is part of it
else
    for lib in "$(gcc -print-file-name=liblsan.so 2>/dev/null)" \
               /usr/lib/x86_64-linux-gnu/liblsan.so.0 /usr/lib/aarch64-linux-gnu/liblsan.so.0; do
        [ -f "$lib" ] && { preload=$(readlink -f "$lib"); break; }
    done
    if [ -z "$preload" ]; then
        fail leaks_runtime "no LeakSanitizer runtime (install gcc's liblsan0)"
        exit 0
    fi
fi

# check_leaks NAME CMD...: CMD must exit 0 and LeakSanitizer report nothing.
check_leaks() {
    local name=$1
    shift
    local log="$D/$name.log" rc
    LD_PRELOAD="$preload" \
        ASAN_OPTIONS="detect_leaks=1:${ASAN_OPTIONS:-}" \
        LSAN_OPTIONS="exitcode=23:fast_unwind_on_malloc=0:${LSAN_OPTIONS:-}" \
        "$@" >"$D/$name.out" 2>"$log"
    rc=$?
    if grep -q "LeakSanitizer: detected memory leaks" "$log"; then
        fail "$name" "$(grep -m1 '^SUMMARY' "$log") (see $log)"
    elif grep -qE "ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:" "$log"; then
        fail "$name" "$(grep -m1 -E 'ERROR|runtime error' "$log") (see $log)"
    elif [ $rc -ne 0 ]; then
        fail "$name" "exit $rc: $(tail -n 1 "$log")"
    else
        ok "$name: 0 bytes lost"
    fi
}

check_leaks leaks_run "$ZT" run models/zt-demo-15m-f16.gguf "Hello" -n 16
check_leaks leaks_logits "$ZT" logits tests/fixtures/llama3 --tokens 1,2,3 -o "$D/logits.bin"
