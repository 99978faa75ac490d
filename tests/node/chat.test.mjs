/*
 * chat.test.mjs — keeps the chat-template fixtures honest: re-renders every
 * case of tests/chat/expected.json with @huggingface/jinja from the template
 * files and the inputs the record holds, and checks that expected.txt (the
 * form the C test reads) says exactly what expected.json says.
 * Prints "ok NAME" / "FAIL NAME" per template, as tests/run.sh counts them.
 *
 * Run from the repo root: node tests/node/chat.test.mjs
 * (@huggingface/jinja comes from tests/node/node_modules, or $ZT_NODE_MODULES.)
 */
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

import { loadJinja, recordToText } from "../../tools/make_chat_fixtures.mjs";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const CHAT = path.join(ROOT, "tests/chat");

let failed = 0;
const report = (ok, name, why) => {
    console.log(`${ok ? "ok" : "FAIL"} ${name}${ok || !why ? "" : ` — ${why}`}`);
    if (!ok) failed++;
};

let Template;
try {
    ({ Template } = await loadJinja(ROOT));
} catch (e) {
    report(false, "chat-fixtures", `@huggingface/jinja is not installed (npm ci in tests/node): ${e.message}`);
    process.exit(1);
}

const rec = JSON.parse(fs.readFileSync(path.join(CHAT, "expected.json"), "utf8"));
const convs = new Map(rec.conversations.map((c) => [c.name, c]));

for (const t of rec.templates) {
    const name = `chat-fixture ${t.file}`;
    let why = "";
    try {
        const source = fs.readFileSync(path.join(CHAT, t.file), "utf8");
        const tmpl = new Template(source);
        for (const c of t.cases) {
            const conv = convs.get(c.conversation);
            if (!conv) throw new Error(`unknown conversation ${c.conversation}`);
            let got;
            try {
                got = {
                    out: tmpl.render({
                        messages: conv.messages,
                        add_generation_prompt: c.add_generation_prompt,
                        bos_token: t.bos,
                        eos_token: t.eos,
                        date_string: rec.date_string,
                    }),
                };
            } catch (e) {
                got = { error: String(e.message) };
            }
            const want = "error" in c ? { error: c.error } : { out: c.out };
            if (JSON.stringify(got) !== JSON.stringify(want)) {
                why = `${c.conversation} gen=${c.add_generation_prompt}: got ${JSON.stringify(got)}, recorded ${JSON.stringify(want)}`;
                break;
            }
        }
        if (!why && t.style && t.cases.length === 0) why = "no cases recorded";
    } catch (e) {
        why = e.message;
    }
    report(!why, name, why);
}

const txt = fs.readFileSync(path.join(CHAT, "expected.txt"));
report(Buffer.compare(txt, recordToText(rec)) === 0, "chat-fixture expected.txt", "differs from expected.json: rerun tools/make_chat_fixtures.mjs");

process.exit(failed ? 1 : 0);
