// Files that zt writes load in another GGUF reader: Hugging Face's
// @huggingface/gguf (pinned) parses zt's synth and convert outputs, and its
// view of every tensor (name, shape, type, offset) and of the metadata
// agrees with the file layout GGUF defines.
import { gguf } from "@huggingface/gguf";
import { execFileSync } from "node:child_process";
import { mkdtempSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const ZT = process.env.ZT;
const dir = mkdtempSync(join(process.env.ZT_TEST_TMP || tmpdir(), "gguf-interop-"));
// ggml type id -> [block elements, block bytes]
const BLOCK = { 0: [1, 4], 1: [1, 2], 2: [32, 18], 8: [32, 34], 12: [256, 144], 14: [256, 210], 30: [1, 2] };

async function check(name, args, expect) {
  const file = join(dir, `${name}.gguf`);
  try {
    execFileSync(ZT, [...args, ...(args[0] === "synth" ? ["-o", file] : [file])], { stdio: "pipe" });
    const { metadata, tensorInfos, tensorDataOffset } = await gguf(file, { allowLocalFile: true });
    const size = statSync(file).size;
    const align = Number(metadata["general.alignment"] ?? 32);
    let end = 0;
    for (const t of tensorInfos) {
      const [be, bb] = BLOCK[t.dtype] ?? [];
      if (!be) throw new Error(`${t.name}: unexpected type ${t.dtype}`);
      const n = t.shape.map(Number);
      const bytes = (n.reduce((a, b) => a * b, 1) / be) * bb;
      const start = Number(tensorDataOffset) + Number(t.offset);
      if (Number(t.offset) % align) throw new Error(`${t.name}: offset ${t.offset} not aligned`);
      if (start + bytes > size) throw new Error(`${t.name}: data past the end of the file`);
      end = Math.max(end, start + bytes);
    }
    if (end > size) throw new Error("tensor data past the end");
    expect({ metadata, tensorInfos });
    console.log(`ok gguf_interop_${name}`);
  } catch (e) {
    console.log(`FAIL gguf_interop_${name}: ${e.message}`);
  }
}

const eq = (a, b, what) => {
  if (a !== b) throw new Error(`${what}: ${a} !== ${b}`);
};

await check("synth_tiny_q4_0", ["synth", "--preset", "tiny", "--type", "q4_0"], ({ metadata, tensorInfos }) => {
  eq(metadata["general.architecture"], "phi3", "architecture");
  eq(Number(metadata["phi3.block_count"]), 2, "block_count");
  eq(tensorInfos.length, 1 + 2 * 6 + 2, "tensor count");
  const out = tensorInfos.find((t) => t.name === "output.weight");
  eq(out.dtype, 14, "output.weight type (Q6_K)");
  eq(metadata["tokenizer.ggml.tokens"].length, 32064, "vocabulary");
});
await check("synth_tiny_bf16", ["synth", "--preset", "tiny", "--type", "bf16"], ({ tensorInfos }) => {
  eq(tensorInfos.find((t) => t.name === "blk.0.attn_qkv.weight").dtype, 30, "attn_qkv type (BF16)");
  eq(tensorInfos.find((t) => t.name === "blk.0.attn_norm.weight").dtype, 0, "attn_norm type (F32)");
});
await check("convert_llama3_q4_k_m", ["convert", "tests/fixtures/llama3", "--type", "q4_k_m"], ({ metadata, tensorInfos }) => {
  eq(metadata["general.architecture"], "llama", "architecture");
  const q = tensorInfos.find((t) => t.name === "blk.0.attn_q.weight");
  eq(q.dtype, 12, "attn_q type (Q4_K)");
  eq(q.shape.map(Number).join("x"), "256x256", "attn_q shape");
  if (!tensorInfos.find((t) => t.name === "rope_freqs.weight")) throw new Error("no rope_freqs for Llama 3 scaling");
});
await check("convert_qwen2_f16", ["convert", "tests/fixtures/qwen2", "--type", "f16"], ({ metadata, tensorInfos }) => {
  eq(metadata["general.architecture"], "qwen2", "architecture");
  eq(tensorInfos.find((t) => t.name === "blk.1.attn_k.bias").dtype, 0, "bias type (F32)");
});
