#!/usr/bin/env python3
"""Trains zt's demo model: a small phi3-architecture model with the Phi-3
tokenizer (vocabulary 32064) on public-domain / freely licensed English text
that Debian ships (see models/README.md). Runs on the GPU machine in
minutes.

    python3 tools/train_demo.py TOKENS_DIR OUT_DIR

TOKENS_DIR holds train.bin / valid.bin (uint16 token ids, documents joined
with <s> ... <|endoftext|>, made by tools/prepare_demo_corpus.sh). OUT_DIR
receives the HF model directory (config.json + model.safetensors, F16),
loss.csv, loss.png, samples.txt, reference logits for a fixed prompt
(ref_tokens.json, ref_logits.bin: float64 CPU forward, stored f32) and
train.json (hyperparameters, losses, timings).
"""
import json
import math
import os
import sys
import time

import numpy as np
import torch
from transformers import Phi3Config, Phi3ForCausalLM

SEED = 1126
HP = dict(
    hidden_size=192, intermediate_size=512, num_hidden_layers=6, num_attention_heads=6,
    num_key_value_heads=6, max_position_embeddings=4096, seq_len=256, batch=64,
    steps=1500, lr=2e-3, min_lr=1e-4, warmup=150, weight_decay=0.1, grad_clip=1.0,
)


def main(tok_dir, out_dir):
    torch.manual_seed(SEED)
    np.random.seed(SEED)
    os.makedirs(out_dir, exist_ok=True)
    train = np.fromfile(os.path.join(tok_dir, "train.bin"), dtype=np.uint16).astype(np.int64)
    valid = np.fromfile(os.path.join(tok_dir, "valid.bin"), dtype=np.uint16).astype(np.int64)
    print(f"train tokens {len(train):,}  valid tokens {len(valid):,}", flush=True)

    cfg = Phi3Config(
        vocab_size=32064, hidden_size=HP["hidden_size"], intermediate_size=HP["intermediate_size"],
        num_hidden_layers=HP["num_hidden_layers"], num_attention_heads=HP["num_attention_heads"],
        num_key_value_heads=HP["num_key_value_heads"],
        max_position_embeddings=HP["max_position_embeddings"],
        original_max_position_embeddings=HP["max_position_embeddings"], rms_norm_eps=1e-5,
        rope_theta=10000.0, sliding_window=2047, tie_word_embeddings=False,
        bos_token_id=1, eos_token_id=32000, pad_token_id=32000)
    model = Phi3ForCausalLM(cfg).cuda()
    n_params = sum(p.numel() for p in model.parameters())
    print(f"parameters {n_params:,}", flush=True)

    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": HP["weight_decay"]},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=HP["lr"], betas=(0.9, 0.95), fused=True)
    T, B = HP["seq_len"], HP["batch"]
    gen = np.random.default_rng(SEED)

    def batch(data):
        idx = gen.integers(0, len(data) - T - 1, B)
        x = np.stack([data[i:i + T] for i in idx])
        y = np.stack([data[i + 1:i + T + 1] for i in idx])
        return torch.from_numpy(x).cuda(), torch.from_numpy(y).cuda()

    def lr_at(step):
        if step < HP["warmup"]:
            return HP["lr"] * (step + 1) / HP["warmup"]
        t = (step - HP["warmup"]) / max(1, HP["steps"] - HP["warmup"])
        return HP["min_lr"] + 0.5 * (HP["lr"] - HP["min_lr"]) * (1 + math.cos(math.pi * t))

    @torch.no_grad()
    def valid_loss():
        model.eval()
        losses = []
        for i in range(0, min(len(valid) - T - 1, 64 * T * 16), T * 16):
            xs = [valid[j:j + T] for j in range(i, i + 16 * T, T) if j + T + 1 <= len(valid)]
            ys = [valid[j + 1:j + T + 1] for j in range(i, i + 16 * T, T) if j + T + 1 <= len(valid)]
            x = torch.from_numpy(np.stack(xs)).cuda()
            y = torch.from_numpy(np.stack(ys)).cuda()
            with torch.autocast("cuda", dtype=torch.bfloat16):
                logits = model(x).logits
            losses.append(torch.nn.functional.cross_entropy(
                logits.float().view(-1, logits.size(-1)), y.view(-1)).item())
        model.train()
        return float(np.mean(losses))

    log = []
    t0 = time.time()
    model.train()
    for step in range(HP["steps"]):
        for g in opt.param_groups:
            g["lr"] = lr_at(step)
        x, y = batch(train)
        with torch.autocast("cuda", dtype=torch.bfloat16):
            logits = model(x).logits
        loss = torch.nn.functional.cross_entropy(logits.float().view(-1, logits.size(-1)),
                                                 y.view(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), HP["grad_clip"])
        opt.step()
        if step % 100 == 0 or step == HP["steps"] - 1:
            vl = valid_loss() if step % 500 == 0 or step == HP["steps"] - 1 else None
            log.append((step, loss.item(), vl))
            print(f"step {step:5d}  loss {loss.item():.4f}" +
                  (f"  valid {vl:.4f}" if vl is not None else "") +
                  f"  {time.time() - t0:.0f}s", flush=True)
    train_s = time.time() - t0

    # unigram baseline: add-one smoothed token frequencies of train, on valid
    counts = np.bincount(train, minlength=32064).astype(np.float64) + 1.0
    logp = np.log(counts / counts.sum())
    unigram = float(-logp[valid].mean())
    final_valid = valid_loss()
    print(f"final valid loss {final_valid:.4f}  unigram {unigram:.4f}  train {train_s:.0f}s",
          flush=True)

    # shipped as F16 (about 30 MB); the reference below uses exactly those weights
    model = model.half().cpu().eval()
    model.save_pretrained(out_dir, safe_serialization=True)
    with open(os.path.join(out_dir, "loss.csv"), "w") as f:
        f.write("step,train_loss,valid_loss\n")
        for s, l, v in log:
            f.write(f"{s},{l:.5f},{'' if v is None else f'{v:.5f}'}\n")
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
        ax.plot([s for s, _, _ in log], [l for _, l, _ in log], label="train (batch)")
        vs = [(s, v) for s, _, v in log if v is not None]
        ax.plot([s for s, _ in vs], [v for _, v in vs], "o-", label="held-out")
        ax.axhline(unigram, color="gray", ls="--", label=f"unigram model ({unigram:.2f})")
        ax.set_xlabel("step")
        ax.set_ylabel("cross-entropy (nats/token)")
        ax.set_title("zt demo model (phi3, %.1fM params)" % (n_params / 1e6))
        ax.legend()
        fig.tight_layout()
        fig.savefig(os.path.join(out_dir, "loss.png"))
    except Exception as e:  # the plot is a nicety; the CSV has the numbers
        print("plot failed:", e)

    # reference logits for zt: float64 CPU forward of a fixed token sequence
    ref_tokens = [int(t) for t in valid[:32]]
    ref_tokens[0] = 1
    with torch.no_grad():
        ref = model.double()(torch.tensor([ref_tokens]), use_cache=False).logits[0].float()
    ref.numpy().astype("<f4").tofile(os.path.join(out_dir, "ref_logits.bin"))
    with open(os.path.join(out_dir, "ref_tokens.json"), "w") as f:
        json.dump({"sequences": [ref_tokens], "vocab": 32064, "dtype": "float32"}, f)
    with open(os.path.join(out_dir, "train.json"), "w") as f:
        json.dump({"hyperparameters": HP, "seed": SEED, "parameters": n_params,
                   "train_tokens": int(len(train)), "valid_tokens": int(len(valid)),
                   "final_valid_loss": final_valid, "unigram_valid_loss": unigram,
                   "train_seconds": train_s, "device": torch.cuda.get_device_name(0),
                   "torch": torch.__version__, "log": log}, f, indent=1)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
