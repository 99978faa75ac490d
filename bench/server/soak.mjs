// zt serve soak: 32 concurrent streams for 10 minutes; RSS must stay flat
// (within 5%) and no request may fail. Not part of the test suite (it takes
// the whole duration); run it by hand and record the output in
// bench/results/.
//
// usage: ZT=build/zt node bench/server/soak.mjs [--seconds 600] [--streams 32]
//
// Each of the 32 clients loops over a mix of requests: chat and
// completions, streamed and not, sampled (temperature 0.7-1.0, a seed) or
// greedy, max_tokens 16-160; every 10th request is dropped by the client
// after a few chunks (a deliberate disconnect, which the server must turn
// into a freed slot, not a leak). A failure is any other request that does
// not end in 200 with a finish_reason and usage. RSS (VmRSS of the server)
// and the server's gauges are sampled every 10 s; the baseline is the first
// sample after the 60 s warm-up; "flat" means every later sample and the
// final one are within 5% of it. The script exits non-zero when it fails.
import os from 'node:os';
import { metrics, sleep, startServer, waitFor } from '../../tests/server/lib.mjs';

const argv = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = argv.indexOf(name);
  return i >= 0 ? Number(argv[i + 1]) : dflt;
};
const SECONDS = opt('--seconds', 600);
const STREAMS = opt('--streams', 32);
const WARMUP_S = Math.min(60, SECONDS / 5);
const PROMPTS = [
  'Tell me a fortune.', 'What is hack?', 'Quote Genesis 1:3.', 'What is a kludge?', 'Quote Psalms 119:1.',
  'List the kings of Israel.', 'Quote Numbers 7:1.', 'Write a long story about a hacker.',
  'And the LORD spake unto Moses, saying', 'In the beginning', 'Hear, O Israel:',
];

let seed = 12345;
const rand = () => { seed = (seed * 1103515245 + 12345) % 2 ** 31; return seed / 2 ** 31; };

const counts = { ok: 0, failed: 0, dropped: 0, tokens: 0 };
const failures = [];

async function oneRequest(url, n) {
  const chat = n % 2 === 0;
  const stream = n % 3 !== 0;
  const drop = n % 10 === 9 && stream;
  const prompt = PROMPTS[Math.floor(rand() * PROMPTS.length)];
  const body = {
    max_tokens: 16 + Math.floor(rand() * 145),
    temperature: rand() < 0.3 ? 0 : 0.7 + 0.3 * rand(),
    seed: Math.floor(rand() * 1e9),
    stream,
    ...(stream ? { stream_options: { include_usage: true } } : {}),
    ...(chat ? { messages: [{ role: 'user', content: prompt }] } : { prompt }),
  };
  const controller = new AbortController();
  const res = await fetch(`${url}/v1/${chat ? 'chat/completions' : 'completions'}`, {
    method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body), signal: controller.signal,
  });
  if (res.status !== 200) throw new Error(`HTTP ${res.status}: ${(await res.text()).slice(0, 200)}`);
  if (!stream) {
    const j = await res.json();
    if (!j.choices[0].finish_reason || !j.usage) throw new Error(`incomplete response ${JSON.stringify(j).slice(0, 200)}`);
    counts.tokens += j.usage.completion_tokens;
    return 'ok';
  }
  const reader = res.body.getReader();
  const dec = new TextDecoder();
  let buf = '';
  let events = 0;
  let finish = null;
  let usage = null;
  let done = false;
  while (!done) {
    const { value, done: end } = await reader.read();
    if (end) break;
    buf += dec.decode(value, { stream: true });
    let at;
    while ((at = buf.indexOf('\n\n')) >= 0) {
      const data = buf.slice(6, at);
      buf = buf.slice(at + 2);
      if (data === '[DONE]') { done = true; break; }
      const msg = JSON.parse(data);
      if (msg.error) throw new Error(`stream error: ${msg.error.message}`);
      if (msg.usage) usage = msg.usage;
      if (msg.choices[0] && msg.choices[0].finish_reason) finish = msg.choices[0].finish_reason;
      if (drop && ++events === 4) {
        controller.abort();
        return 'dropped';
      }
    }
  }
  if (!finish || !usage) throw new Error(`stream ended without finish_reason/usage (${finish}, ${JSON.stringify(usage)})`);
  counts.tokens += usage.completion_tokens;
  return 'ok';
}

console.log(`# zt serve soak, ${new Date().toISOString()}`);
console.log(`machine: ${os.cpus().length} x ${os.cpus()[0].model}, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB; load average ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}`);
console.log(`${STREAMS} concurrent clients for ${SECONDS} s; RSS baseline after ${WARMUP_S} s\n`);
const srv = await startServer(['--parallel', String(STREAMS), '--ctx', '512', '--queue', '64']);
const t0 = Date.now();
const samples = [];
const sampler = (async () => {
  while (Date.now() - t0 < SECONDS * 1000) {
    await sleep(10000);
    const m = await metrics(srv.url);
    const s = {
      t: Math.round((Date.now() - t0) / 1000), rss_kb: srv.rssKb(), ok: counts.ok, failed: counts.failed,
      dropped: counts.dropped, active: m.zt_slots_active, kv_pages: m.zt_kv_pages_used,
      conns: m.zt_http_connections, tok_s: m.zt_tokens_per_second,
    };
    samples.push(s);
    console.log(JSON.stringify(s));
  }
})();
await Promise.all(Array.from({ length: STREAMS }, async (_, k) => {
  for (let n = k; Date.now() - t0 < SECONDS * 1000; n += STREAMS) {
    try {
      const r = await oneRequest(srv.url, n);
      counts[r]++;
    } catch (e) {
      counts.failed++;
      if (failures.length < 20) failures.push(String(e.message || e));
    }
  }
}));
await sampler;
const idle = await waitFor(async () => {
  const m = await metrics(srv.url);
  return m.zt_slots_active === 0 && m.zt_kv_pages_used === 0 ? m : null;
}, 10000);
const finalRss = srv.rssKb();
const elapsed = (Date.now() - t0) / 1000;
await srv.stop();

const base = samples.find((s) => s.t >= WARMUP_S) || samples[0];
const later = samples.filter((s) => s.t >= base.t);
const maxRss = Math.max(...later.map((s) => s.rss_kb), finalRss);
const minRss = Math.min(...later.map((s) => s.rss_kb), finalRss);
const drift = (maxRss - base.rss_kb) / base.rss_kb;
const flat = maxRss <= base.rss_kb * 1.05 && minRss >= base.rss_kb * 0.95;
console.log(`\nrequests: ${counts.ok} ok, ${counts.failed} failed, ${counts.dropped} dropped by the client on purpose`);
console.log(`generated tokens (completed requests): ${counts.tokens}, ${(counts.tokens / elapsed).toFixed(1)} tok/s over ${elapsed.toFixed(0)} s`);
console.log(`RSS: baseline ${base.rss_kb} kB at ${base.t} s, min ${minRss} kB, max ${maxRss} kB, final ${finalRss} kB (max drift ${(100 * drift).toFixed(2)}%)`);
console.log(`idle at the end: ${idle ? `yes (slots 0, KV pages 0)` : 'NO'}`);
if (failures.length) console.log(`first failures:\n  ${failures.join('\n  ')}`);
const pass = counts.failed === 0 && flat && !!idle && counts.ok > 0;
console.log(pass ? 'PASS' : 'FAIL');
process.exitCode = pass ? 0 : 1;
