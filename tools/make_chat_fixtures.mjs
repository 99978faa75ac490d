#!/usr/bin/env node
/*
 * make_chat_fixtures.mjs — renders a fixed set of conversations through the
 * chat templates in tests/chat/*.jinja with @huggingface/jinja (the Jinja
 * implementation transformers.js uses; version pinned in tests/node/package.json)
 * and writes what they produce:
 *
 *   tests/chat/expected.json  the record: templates, conversations, outputs
 *   tests/chat/expected.txt   the same, in a length-prefixed form the C test
 *                             (tests/unit/test_chat.c) reads without a JSON parser:
 *                             records "TAG LEN\n" + LEN bytes + "\n"
 *
 * Before rendering it refreshes the template copies that come from shared/:
 * Phi-3-mini's own template out of ../shared/data/vocab/ggml-vocab-phi-3.gguf
 * (key tokenizer.chat_template) and ../shared/data/chat-templates/*.jinja.
 * Those copies are committed, so the tests do not need shared/.
 *
 * Context given to every template: messages, add_generation_prompt, bos_token and
 * eos_token as the model's vocabulary has them, and date_string = "26 Jul 2024"
 * (Llama 3.2's template otherwise prints today's date through strftime_now; 26 Jul
 * 2024 is Llama 3.1's built-in default, and what zt always renders).
 *
 * Usage: node tools/make_chat_fixtures.mjs   (from anywhere; paths are repo-relative)
 * @huggingface/jinja is looked up in tests/node/node_modules, then in
 * $ZT_NODE_MODULES, then by the normal Node resolution.
 */
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const CHAT = path.join(ROOT, "tests/chat");
const SHARED = path.resolve(ROOT, "../shared/data");

/* Finds @huggingface/jinja: the test suite's install first, then an override. */
export async function loadJinja(root = ROOT) {
    const dirs = [path.join(root, "tests/node/node_modules")];
    if (process.env.ZT_NODE_MODULES) dirs.push(process.env.ZT_NODE_MODULES);
    for (const d of dirs) {
        const p = path.join(d, "@huggingface/jinja/dist/index.js");
        if (fs.existsSync(p)) return import(pathToFileURL(p).href);
    }
    return import("@huggingface/jinja");
}

/* Every template zt renders: the file, the zt style it must be detected as, and
 * the BOS/EOS token text of the model it belongs to. style "" marks a template
 * zt does not claim to render (detection must say "not recognized"). */
export const TEMPLATES = [
    { file: "microsoft-Phi-3-mini-4k-instruct.jinja", style: "phi3", bos: "<s>", eos: "<|endoftext|>" },
    { file: "microsoft-Phi-3.5-mini-instruct.jinja", style: "phi3.5", bos: "<s>", eos: "<|endoftext|>" },
    { file: "meta-llama-Llama-2-7b-chat-hf.jinja", style: "llama2", bos: "<s>", eos: "</s>" },
    { file: "meta-llama-Meta-Llama-3-8B-Instruct.jinja", style: "llama3", bos: "<|begin_of_text|>", eos: "<|eot_id|>" },
    { file: "meta-llama-Llama-3.1-8B-Instruct.jinja", style: "llama3.1", bos: "<|begin_of_text|>", eos: "<|eot_id|>" },
    { file: "meta-llama-Llama-3.2-3B-Instruct.jinja", style: "llama3.1", bos: "<|begin_of_text|>", eos: "<|eot_id|>" },
    { file: "teknium-OpenHermes-2.5-Mistral-7B.jinja", style: "chatml", bos: "<s>", eos: "<|im_end|>" },
    { file: "Qwen-Qwen2-7B-Instruct.jinja", style: "qwen2", bos: "", eos: "<|im_end|>" },
    { file: "Qwen-Qwen2.5-7B-Instruct.jinja", style: "qwen2.5", bos: "", eos: "<|im_end|>" },
    { file: "zt-chatml-custom-default.jinja", style: "chatml", bos: "", eos: "<|im_end|>" },
    { file: "mistralai-Mistral-7B-Instruct-v0.1.jinja", style: "mistral-v0.1", bos: "<s>", eos: "</s>" },
    { file: "mistralai-Mixtral-8x7B-Instruct-v0.1.jinja", style: "mixtral", bos: "<s>", eos: "</s>" },
    { file: "mistralai-Mistral-7B-Instruct-v0.2.jinja", style: "mistral-v0.2", bos: "<s>", eos: "</s>" },
    { file: "mistralai-Mistral-7B-Instruct-v0.3.jinja", style: "mistral-v0.3", bos: "<s>", eos: "</s>" },
    { file: "mistralai-Mistral-Nemo-Instruct-2407.jinja", style: "mistral-nemo", bos: "<s>", eos: "</s>" },
    { file: "HuggingFaceH4-zephyr-7b-beta.jinja", style: "zephyr", bos: "<s>", eos: "</s>" },
    { file: "google-gemma-2-2b-it.jinja", style: "gemma", bos: "<bos>", eos: "<eos>" },
    { file: "HuggingFaceTB-SmolLM3-3B.jinja", style: "", bos: "", eos: "<|im_end|>" },
];

const sys = (content) => ({ role: "system", content });
const user = (content) => ({ role: "user", content });
const asst = (content) => ({ role: "assistant", content });

/* The conversations: each is rendered with and without add_generation_prompt. */
export const CONVERSATIONS = [
    { name: "system_user", messages: [sys("You are a helpful assistant."), user("Hello!")] },
    { name: "user_only", messages: [user("What is 2+2?")] },
    {
        name: "three_turns_system",
        messages: [
            sys("  Answer briefly.  "),
            user("Hello"),
            asst("Hi there"),
            user("Who are you"),
            asst("   I am an assistant   "),
            user("Another question"),
        ],
    },
    {
        name: "three_turns_closed",
        messages: [user("One?"), asst("1"), user("Two?"), asst("2\n"), user("\nThree?"), asst("3")],
    },
    { name: "empty_content", messages: [sys(""), user("")] },
    { name: "empty_assistant", messages: [user("Hi"), asst(""), user("Again")] },
    {
        name: "unicode",
        messages: [
            sys("Tu es un assistant. 🤖"),
            user("\u3000 Ｈｅｌｌｏ 世界 — naïve café 👋🏽\n\tline2 \u00a0\n"),
            asst("Привет! 😀 \u2003"),
            user("שלום? e\u0301 ∑"),
        ],
    },
    {
        name: "template_syntax_in_content",
        messages: [user("{{ bos_token }} {% if x %} <|im_end|> [INST] <</SYS>> \\n")],
    },
    { name: "system_only", messages: [sys("Be brief.")] },
    { name: "two_users", messages: [user("first"), user("second")] },
    { name: "system_in_middle", messages: [user("Hi"), asst("Hello"), sys("Now be rude."), user("Ok?")] },
];

export const DATE_STRING = "26 Jul 2024";

/* Renders one conversation; returns { out } or { error }. */
export function renderCase(Template, source, tmpl, conv, gen) {
    try {
        const t = new Template(source);
        const out = t.render({
            messages: conv.messages,
            add_generation_prompt: gen,
            bos_token: tmpl.bos,
            eos_token: tmpl.eos,
            date_string: DATE_STRING,
        });
        return { out };
    } catch (e) {
        return { error: String(e && e.message ? e.message : e) };
    }
}

/* Builds the whole record from the template files in `dir`. */
export function buildRecord(Template, dir = CHAT) {
    const templates = [];
    for (const tmpl of TEMPLATES) {
        const source = fs.readFileSync(path.join(dir, tmpl.file), "utf8");
        const cases = [];
        if (tmpl.style) {
            for (const conv of CONVERSATIONS)
                for (const gen of [false, true])
                    cases.push({ conversation: conv.name, add_generation_prompt: gen, ...renderCase(Template, source, tmpl, conv, gen) });
        }
        templates.push({ ...tmpl, cases });
    }
    return { generator: "tools/make_chat_fixtures.mjs", date_string: DATE_STRING, conversations: CONVERSATIONS, templates };
}

/* The C-readable form of the record (see the header comment). */
export function recordToText(rec) {
    const parts = [];
    const put = (tag, s) => {
        const b = Buffer.from(s, "utf8");
        parts.push(Buffer.from(`${tag} ${b.length}\n`, "utf8"), b, Buffer.from("\n"));
    };
    for (const c of rec.conversations) {
        put("conv", c.name);
        for (const m of c.messages) {
            put("role", m.role);
            put("content", m.content);
        }
    }
    for (const t of rec.templates) {
        put("template", t.file);
        put("style", t.style);
        put("bos", t.bos);
        put("eos", t.eos);
        for (const c of t.cases) {
            put("case", c.conversation);
            put("gen", c.add_generation_prompt ? "1" : "0");
            if ("error" in c) put("error", c.error);
            else put("out", c.out);
        }
    }
    return Buffer.concat(parts);
}

/* Minimal GGUF metadata reader: returns the string value of `key` or null. */
function ggufString(file, key) {
    const buf = fs.readFileSync(file);
    let o = 0;
    const u32 = () => { const v = buf.readUInt32LE(o); o += 4; return v; };
    const u64 = () => { const v = Number(buf.readBigUInt64LE(o)); o += 8; return v; };
    const str = () => { const n = u64(); const s = buf.toString("utf8", o, o + n); o += n; return s; };
    const size = { 0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8 };
    const skip = (t) => {
        if (t === 8) str();
        else if (t === 9) { const at = u32(); const n = u64(); for (let i = 0; i < n; i++) skip(at); }
        else if (size[t]) o += size[t];
        else throw new Error(`${file}: bad GGUF value type ${t}`);
    };
    if (buf.toString("latin1", 0, 4) !== "GGUF") throw new Error(`${file}: not a GGUF file`);
    o = 4;
    u32();
    u64();
    const nkv = u64();
    for (let i = 0; i < nkv; i++) {
        const k = str();
        const t = u32();
        if (k === key && t === 8) return str();
        skip(t);
    }
    return null;
}

/* Copies the templates that live in shared/ into tests/chat/ (when shared/ is there). */
function refreshSharedCopies() {
    const gguf = path.join(SHARED, "vocab/ggml-vocab-phi-3.gguf");
    if (fs.existsSync(gguf)) {
        const t = ggufString(gguf, "tokenizer.chat_template");
        if (!t) throw new Error(`${gguf}: no tokenizer.chat_template`);
        fs.writeFileSync(path.join(CHAT, "microsoft-Phi-3-mini-4k-instruct.jinja"), t);
    }
    const dir = path.join(SHARED, "chat-templates");
    if (fs.existsSync(dir))
        for (const f of fs.readdirSync(dir))
            if (f.endsWith(".jinja")) fs.copyFileSync(path.join(dir, f), path.join(CHAT, f));
}

async function main() {
    const { Template } = await loadJinja();
    refreshSharedCopies();
    const rec = buildRecord(Template);
    fs.writeFileSync(path.join(CHAT, "expected.json"), JSON.stringify(rec, null, 1) + "\n");
    fs.writeFileSync(path.join(CHAT, "expected.txt"), recordToText(rec));
    let n = 0, errors = 0;
    for (const t of rec.templates) for (const c of t.cases) { n++; if ("error" in c) errors++; }
    console.log(`wrote tests/chat/expected.json and expected.txt: ${rec.templates.length} templates, ${n} cases (${errors} template errors)`);
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
    main().catch((e) => {
        console.error(`make_chat_fixtures: ${e.message}`);
        process.exit(1);
    });
}
