// Continuous batching is invisible in the output: 16 clients at once, each
// with its own prompt and greedy sampling, each get exactly the text that a
// solo `zt run PROMPT --chat --temp 0 -n N` prints, whether they start
// together or join while others are generating, and while a long prompt is
// prefilled in chunks beside them.
import {
  assert, assertEq, metrics, postJson, runTests, startServer, streamText, ztRun,
} from './lib.mjs';

const N = 24;
const PROMPTS = [
  'Tell me a fortune.', 'What is hack?', 'Quote Genesis 1:3.', 'What is a kludge?',
  'Quote Psalms 119:1.', 'List the kings of Israel.', 'Quote Exodus 20.', 'What is the Jargon File?',
  'Write a long story.', 'Quote Numbers 7:1.', 'Repeat after me: la la la', 'Quote Ezra 2:1.',
  'What is a hacker?', 'Tell me a joke about computers.', 'Quote John 3:16.',
  // a long prompt (about 300 tokens): prefilled in 64-row chunks while the others decode
  'Summarize this: ' + 'In the beginning God created the heaven and the earth. And the earth was ' +
    'without form, and void; and darkness was upon the face of the deep. '.repeat(8),
];

// The solo references, two at a time (two cores), one thread each.
const refs = new Array(PROMPTS.length);
for (let i = 0; i < PROMPTS.length; i += 2) {
  await Promise.all([i, i + 1].filter((k) => k < PROMPTS.length).map(async (k) => {
    refs[k] = await ztRun(PROMPTS[k], N, { extra: ['--threads', '1'] });
  }));
}

const srv = await startServer(['--parallel', '16', '--ctx', '512', '--prefill-chunk', '64']);

// Half of the clients stream, half do not.
async function ask(i) {
  const body = { messages: [{ role: 'user', content: PROMPTS[i] }], temperature: 0, max_tokens: N };
  if (i % 2) return (await streamText(srv.url, '/v1/chat/completions', body)).text;
  const r = await postJson(`${srv.url}/v1/chat/completions`, body);
  if (r.status !== 200) throw new Error(`client ${i}: HTTP ${r.status} ${r.text}`);
  return r.json.choices[0].message.content;
}

function compare(got) {
  const bad = [];
  for (let i = 0; i < PROMPTS.length; i++) {
    if (got[i] !== refs[i]) bad.push(`client ${i} (${PROMPTS[i].slice(0, 30)}): ${JSON.stringify(got[i])} != solo ${JSON.stringify(refs[i])}`);
  }
  assert(!bad.length, `${bad.length} of ${PROMPTS.length} differ:\n${bad.join('\n')}`);
}

const failed = await runTests([
  ['solo_references_are_not_trivial', async () => {
    assertEq(new Set(refs).size, PROMPTS.length, 'distinct reference replies');
    assert(refs.every((r) => r.length > 0), 'every reference has text');
  }],

  ['sixteen_clients_at_once_get_their_solo_greedy_text', async () => {
    const before = await metrics(srv.url);
    const got = await Promise.all(PROMPTS.map((_, i) => ask(i)));
    compare(got);
    const after = await metrics(srv.url);
    const steps = after.zt_engine_steps_total - before.zt_engine_steps_total;
    const rows = after.zt_engine_rows_total - before.zt_engine_rows_total;
    // one forward per step over every active sequence: far fewer steps than
    // the 16 x 24 decode rows a one-at-a-time server would run
    assert(steps > 0 && steps < 16 * N / 4, `${steps} steps for ${rows} rows: not batched`);
  }, 90000],

  ['clients_joining_mid_stream_get_their_solo_greedy_text', async () => {
    // start one client every 60 ms: each joins a batch already running
    const got = await Promise.all(PROMPTS.map(async (_, i) => {
      await new Promise((r) => setTimeout(r, 60 * i));
      return ask((i * 7) % PROMPTS.length);
    }));
    compare(PROMPTS.map((_, k) => got[PROMPTS.findIndex((__, i) => (i * 7) % PROMPTS.length === k)]));
    const m = await metrics(srv.url);
    assertEq(m.zt_slots_active, 0, 'slots active after the run');
    assertEq(m.zt_kv_pages_used, 0, 'KV pages in use after the run');
  }, 90000],
]);

await srv.stop();
process.exitCode = failed ? 1 : 0;
