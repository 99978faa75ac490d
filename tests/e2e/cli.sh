#!/usr/bin/env bash
# The user-facing commands on the demo model: pinned greedy output of
# `zt run` (plain and --chat), `zt tokenize`, bad input, and `zt chat`
# driven in a real terminal (tmux): two turns, Ctrl-C mid-reply, /reset,
# Ctrl-D.
source "$(dirname "$0")/lib.sh"
M=models/zt-demo-15m-f16.gguf
D="$T/cli" && rm -rf "$D" && mkdir -p "$D"

# expect_stdout NAME EXPECTED CMD...: CMD exits 0 and prints exactly EXPECTED
expect_stdout() {
    local name=$1 want=$2 got
    shift 2
    got=$("$@" 2>"$D/$name.err")
    local rc=$?
    if [ $rc -ne 0 ]; then fail "$name" "exit $rc: $(head -c 300 "$D/$name.err")"
    elif [ "$got" != "$want" ]; then fail "$name" "got: $got"
    else ok "$name"; fi
}

expect_stdout run_greedy_continuation_is_pinned "$(cat tests/e2e/pinned/run_greedy.txt)" \
    "$ZT" run "$M" "And God said" -n 32 --temp 0
expect_stdout run_chat_greedy_reply_is_pinned "$(cat tests/e2e/pinned/run_chat_greedy.txt)" \
    "$ZT" run "$M" "Tell me a fortune." --chat -n 64 --temp 0
expect_stdout tokenize_prints_json_ids '[1,15043,3186,29991]' "$ZT" tokenize "$M" "Hello world!"
expect_stdout tokenize_without_bos '[15043,3186,29991]' "$ZT" tokenize "$M" "Hello world!" --no-bos
expect_stdout tokenize_decode 'Hello world!' "$ZT" tokenize "$M" --decode 15043,3186,29991

# the summary line goes to stderr with the four numbers
"$ZT" run "$M" "In the beginning" -n 8 --temp 0 >/dev/null 2>"$D/summary.err"
if grep -qE 'prompt [0-9]+ tokens.*generated 8 tokens, prefill [0-9.]+ tok/s, decode [0-9.]+ tok/s' "$D/summary.err"
then ok run_prints_summary_to_stderr; else fail run_prints_summary_to_stderr "$(cat "$D/summary.err")"; fi

# bad input
expect_error run_empty_prompt 'prompt is empty' "$ZT" run "$M" ""
expect_error run_prompt_longer_than_context 'prompt is [0-9]+ tokens but the context holds 8' \
    "$ZT" run "$M" "In the beginning God created the heaven and the earth, and the earth was void" --ctx 8
expect_error run_unknown_chat_template "unknown chat template 'nonsense'" \
    "$ZT" run "$M" "hi" --chat --chat-template nonsense
expect_error run_bad_option 'unknown option --frobnicate' "$ZT" run "$M" "hi" --frobnicate
expect_error run_bad_temperature "option --temp: 'hot' is not a number" "$ZT" run "$M" "hi" --temp hot
# invalid UTF-8 is tokenized (byte fallback), not a crash
out=$("$ZT" run "$M" $'caf\xe9 \xff\xfe' -n 4 --temp 0 2>&1); rc=$?
if [ $rc -eq 0 ]; then ok run_invalid_utf8_prompt; else fail run_invalid_utf8_prompt "exit $rc: $out"; fi

# ---- zt chat in a real terminal ------------------------------------------
if ! command -v tmux >/dev/null; then
    fail chat_in_tmux "tmux is not installed"
    exit 0
fi
S=zt-e2e-$$
tmux kill-session -t $S 2>/dev/null
# a long reply is needed to interrupt it: --ignore-eos keeps generating
tmux new-session -d -s $S -x 200 -y 50 \
    "$ZT chat $M --temp 0 --ignore-eos -n 3000 --ctx 4096; echo EXIT=\$?; sleep 30"
pane() { tmux capture-pane -p -t $S -S -200; }
wait_for() { # wait_for REGEX SECONDS
    for _ in $(seq 1 $(($2 * 10))); do pane | grep -qE "$1" && return 0; sleep 0.1; done
    return 1
}
if wait_for '^>' 30; then ok chat_shows_prompt; else fail chat_shows_prompt "$(pane | tail -5)"; fi
tmux send-keys -t $S 'Tell me a fortune.' Enter
sleep 1.5
tmux send-keys -t $S C-c
if wait_for 'tokens, [0-9.]+ tok/s, stopped\]' 20; then ok chat_ctrl_c_stops_the_reply
else fail chat_ctrl_c_stops_the_reply "$(pane | tail -5)"; fi
tmux send-keys -t $S 'What is a hacker?' Enter
sleep 1.5
tmux send-keys -t $S C-c
two_replies() {
    for _ in $(seq 1 100); do
        [ "$(pane | grep -cE 'tokens, [0-9.]+ tok/s, stopped')" -ge 2 ] && return 0
        sleep 0.1
    done
    return 1
}
if two_replies; then ok chat_second_turn_after_interrupt
else fail chat_second_turn_after_interrupt "$(pane | tail -8)"; fi
tmux send-keys -t $S '/reset' Enter
if wait_for '\[conversation reset\]' 10; then ok chat_reset; else fail chat_reset "$(pane | tail -5)"; fi
tmux send-keys -t $S C-d
if wait_for 'EXIT=0' 10; then ok chat_ctrl_d_exits_cleanly; else fail chat_ctrl_d_exits_cleanly "$(pane | tail -5)"; fi
tmux kill-session -t $S 2>/dev/null
exit 0
