#!/usr/bin/env bash
# On the GPU machine: regenerates the golden fixtures and trains the demo
# model. Everything worth keeping goes to $OUT (the F16 safetensors in
# 15 MB parts, as files come back at most 16 MiB each); `zt convert` makes
# the GGUF on the way back.
#   carry: .demo-data (train.bin, valid.bin, sources.json from
#   tools/prepare_demo_corpus.py)
set -euo pipefail
export PYTHONUNBUFFERED=1
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT" /tmp/fx /tmp/demo
python3 tools/make_fixtures.py /tmp/fx 2>&1 | grep -v -e Warning -e 'Writing model' || true
tar czf "$OUT/fixtures.tgz" -C /tmp/fx .
python3 tools/train_demo.py .demo-data /tmp/demo 2>&1 | tee "$OUT/train.log" | grep -v Warning
split -b 15M -d /tmp/demo/model.safetensors "$OUT/model.safetensors.part"
tar czf "$OUT/demo-extra.tgz" -C /tmp/demo config.json loss.csv loss.png ref_logits.bin ref_tokens.json train.json
