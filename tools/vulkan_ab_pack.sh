#!/usr/bin/env bash
# Builds the binaries of a Vulkan A/B call and packs them for the GPU
# machine: build-ab/ab.tar.xz, which tools/device_vulkan.sh unpacks into
# build-gpu (carry [".gl", "build-ab"] with the `run` call; the tree is
# ~50 MB, so the binaries travel stripped and compressed).
#
#   bash tools/vulkan_ab_pack.sh NAME=REV ...
#   e.g. bash tools/vulkan_ab_pack.sh base=main zt=vk-ffn-fold q4k=vk-q4k-bytes
#
# NAME zt becomes build-gpu/zt and build-gpu/zt-vulkan-tests (the binaries
# the device script's modes run), base build-gpu/zt-base (the `ab` mode's
# baseline), any other build-gpu/zt-NAME (VK_SHAPES "@NAME SETTINGS").
# REV is any git revision; each builds in its own worktree under
# build-ab/wt/NAME (kept, so the next pack rebuilds incrementally), with
# the flags the GPU machine's CPU takes (x86-64-v3).
set -eu
cd "$(dirname "$0")/.."
[ $# -gt 0 ] || { sed -n 2,16p "$0"; exit 2; }
root=$PWD
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
for pair in "$@"; do
    name=${pair%%=*} rev=${pair#*=}
    if [ "$name" = "$pair" ] || [ -z "$name" ] || [ -z "$rev" ]; then
        echo "not NAME=REV: $pair" >&2
        exit 2
    fi
    wt=$root/build-ab/wt/$name
    if [ -d "$wt" ]; then
        git -C "$wt" checkout -q --detach "$rev"
    else
        mkdir -p "$root/build-ab/wt"
        git worktree add -q --detach "$wt" "$rev"
    fi
    targets=(build-gpu/zt)
    [ "$name" = zt ] && targets+=(build-gpu/zt-vulkan-tests)
    echo "== $name: $(git -C "$wt" log --oneline -1)"
    make -C "$wt" -s -j"$(nproc)" BUILD=build-gpu VULKAN=1 ARCHFLAGS=-march=x86-64-v3 "${targets[@]}"
    case $name in
    zt) strip -o "$stage/zt" "$wt/build-gpu/zt"
        strip -o "$stage/zt-vulkan-tests" "$wt/build-gpu/zt-vulkan-tests" ;;
    *) strip -o "$stage/zt-$name" "$wt/build-gpu/zt" ;;
    esac
done
tar cJf build-ab/ab.tar.xz -C "$stage" .
ls -l build-ab/ab.tar.xz
tar tJf build-ab/ab.tar.xz | sort
