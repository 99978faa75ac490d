#!/usr/bin/env python3
"""Golden fixtures: small random models of each architecture zt runs, saved
as Hugging Face directories, with reference logits from HF transformers.

Runs on the GPU machine (PyTorch + transformers there; nothing downloaded:
every model is built from a config with a fixed seed). The reference is
computed in float64 on the CPU from the saved weights, so it is exact to
float32 rounding, then stored as float32.

    python3 tools/make_fixtures.py OUT_DIR

Writes OUT_DIR/<name>/{config.json, model.safetensors, tokens.json,
logits.bin} where logits.bin is little-endian f32 [sum of sequence
lengths][vocab] (the sequences of tokens.json one after the other, each run
from position 0), and OUT_DIR/manifest.json with versions and shapes.
"""
import json
import os
import sys

import torch
import transformers
from transformers import (LlamaConfig, LlamaForCausalLM, MistralConfig, MistralForCausalLM,
                          Phi3Config, Phi3ForCausalLM, Qwen2Config, Qwen2ForCausalLM)

SEED = 20261126

# name -> (model class, config class, config kwargs, storage dtype, notes)
FIXTURES = {
    # fused QKV and gate+up, rotate-half RoPE, a sliding window shorter than
    # the long sequence
    "phi3": (Phi3ForCausalLM, Phi3Config, dict(
        vocab_size=384, hidden_size=96, intermediate_size=192, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=256,
        rms_norm_eps=1e-5, rope_theta=10000.0, sliding_window=11, tie_word_embeddings=False,
        pad_token_id=0, bos_token_id=1, eos_token_id=2), torch.float32),
    # grouped-query attention with Llama 3 rope scaling, K-quant friendly
    # widths (rows of 256), untied output
    "llama3": (LlamaForCausalLM, LlamaConfig, dict(
        vocab_size=512, hidden_size=256, intermediate_size=512, num_hidden_layers=2,
        num_attention_heads=8, num_key_value_heads=2, max_position_embeddings=512,
        rms_norm_eps=1e-5, rope_theta=500000.0, tie_word_embeddings=False,
        rope_scaling=dict(rope_type="llama3", factor=8.0, low_freq_factor=1.0,
                          high_freq_factor=4.0, original_max_position_embeddings=64),
        bos_token_id=1, eos_token_id=2), torch.float32),
    # head_dim 24 (not a power of two), 5 heads (not a multiple of 4), tied
    "llama_odd": (LlamaForCausalLM, LlamaConfig, dict(
        vocab_size=320, hidden_size=120, intermediate_size=200, num_hidden_layers=3,
        num_attention_heads=5, num_key_value_heads=5, max_position_embeddings=256,
        rms_norm_eps=1e-6, rope_theta=10000.0, tie_word_embeddings=True,
        bos_token_id=1, eos_token_id=2), torch.float32),
    # sliding window (5) much shorter than the test sequence
    "mistral": (MistralForCausalLM, MistralConfig, dict(
        vocab_size=320, hidden_size=64, intermediate_size=160, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
        rms_norm_eps=1e-5, rope_theta=10000.0, sliding_window=5, tie_word_embeddings=False,
        bos_token_id=1, eos_token_id=2), torch.float32),
    # QKV biases, tied embeddings; stored as bfloat16 to exercise that path
    "qwen2": (Qwen2ForCausalLM, Qwen2Config, dict(
        vocab_size=352, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
        rms_norm_eps=1e-6, rope_theta=1000000.0, tie_word_embeddings=True,
        use_sliding_window=False, bos_token_id=1, eos_token_id=2), torch.bfloat16),
}

SEQ_LENS = [24, 7]


def randomize(model, gen):
    """Weights that give O(1) activations and logits: N(0, 1/fan_in) for
    matrices, N(0, 1) embeddings, 1 + N(0, 0.1) norm gains, N(0, 0.1) biases."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name:
                p.copy_(1 + 0.1 * torch.randn(p.shape, generator=gen))
            elif name.endswith("bias"):
                p.copy_(0.1 * torch.randn(p.shape, generator=gen))
            elif "embed_tokens" in name:
                p.copy_(torch.randn(p.shape, generator=gen))
            else:
                p.copy_(torch.randn(p.shape, generator=gen) / p.shape[1] ** 0.5)


def main(out_dir):
    torch.manual_seed(SEED)
    manifest = {"transformers": transformers.__version__, "torch": torch.__version__,
                "seed": SEED, "models": {}}
    for i, (name, (model_cls, cfg_cls, kwargs, dtype)) in enumerate(FIXTURES.items()):
        gen = torch.Generator().manual_seed(SEED + i)
        cfg = cfg_cls(**kwargs)
        cfg._attn_implementation = "eager"
        model = model_cls(cfg).eval()
        randomize(model, gen)
        if model.config.tie_word_embeddings:
            model.tie_weights()
        path = os.path.join(out_dir, name)
        model.to(dtype).save_pretrained(path, safe_serialization=True)
        # reference: float64 on the CPU, from exactly the stored weights. A
        # fresh float64 model takes them, so that buffers such as the rotary
        # inv_freq are not the storage dtype's rounding (model.to(bf16)
        # would round them too, which no real checkpoint does).
        ref = model_cls(cfg).to(torch.float64).eval()
        stored = model.to(dtype).state_dict()
        ref.load_state_dict({k: v.to(torch.float64) for k, v in stored.items()}, strict=False)
        if ref.config.tie_word_embeddings:
            ref.tie_weights()
        seqs = [torch.randint(0, cfg.vocab_size, (n,), generator=gen).tolist() for n in SEQ_LENS]
        logits = []
        with torch.no_grad():
            for s in seqs:
                out = ref(torch.tensor([s]), use_cache=False).logits[0]
                logits.append(out.to(torch.float32))
        torch.cat(logits).numpy().astype("<f4").tofile(os.path.join(path, "logits.bin"))
        with open(os.path.join(path, "tokens.json"), "w") as f:
            json.dump({"sequences": seqs, "vocab": cfg.vocab_size,
                       "dtype": str(dtype).replace("torch.", "")}, f)
        manifest["models"][name] = {"class": model_cls.__name__, "dtype": str(dtype),
                                    "params": sum(p.numel() for p in model.parameters()),
                                    "sequences": SEQ_LENS}
        print(f"{name}: {manifest['models'][name]}", flush=True)
    with open(os.path.join(out_dir, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)


if __name__ == "__main__":
    main(sys.argv[1])
