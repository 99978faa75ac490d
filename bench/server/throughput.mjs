// zt serve throughput: aggregate generated tokens per second and time to
// first token with 1, 8 and 32 concurrent streams.
//
// usage: ZT=build/zt node bench/server/throughput.mjs [MODEL] [--seconds S] [--levels 1,8,32]
//
// Method: one server (--parallel 32, --ctx 512). For each level C, C
// clients each send streamed /v1/completions requests back to back (one of
// 8 Bible-style prompts, greedy, max_tokens 128) for S seconds, then finish
// the request in flight. Aggregate tok/s = completion tokens of all
// requests (the server's usage counts) / wall time from the first request
// to the last response. TTFT = request sent -> first text chunk, measured
// by the client over loopback. Per-stream tok/s = (tokens - 1) / (last
// chunk - first chunk). Each level starts with one warm-up request.
import os from 'node:os';
import { execSync } from 'node:child_process';
import { MODEL, ZT, metrics, startServer } from '../../tests/server/lib.mjs';

const argv = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1] : dflt;
};
const SECONDS = Number(opt('--seconds', 30));
const LEVELS = opt('--levels', '1,8,32').split(',').map(Number);
const MAX_TOKENS = 128;
const PROMPTS = [
  'And the LORD spake unto Moses, saying', 'And it came to pass after these things, that',
  'Now these are the generations of', 'And God said unto Noah,', 'In the beginning',
  'And the children of Israel journeyed from', 'Hear, O Israel:', 'And Moses went up from the plains of Moab',
];

async function oneRequest(url, prompt) {
  const t0 = performance.now();
  const res = await fetch(`${url}/v1/completions`, {
    method: 'POST', headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ prompt, temperature: 0, max_tokens: MAX_TOKENS, stream: true, stream_options: { include_usage: true } }),
  });
  if (res.status !== 200) throw new Error(`HTTP ${res.status}: ${await res.text()}`);
  const reader = res.body.getReader();
  const dec = new TextDecoder();
  let buf = '';
  let tFirst = null;
  let tLast = null;
  let tokens = 0;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buf += dec.decode(value, { stream: true });
    let at;
    while ((at = buf.indexOf('\n\n')) >= 0) {
      const data = buf.slice(6, at);
      buf = buf.slice(at + 2);
      if (data === '[DONE]') continue;
      const msg = JSON.parse(data);
      if (msg.usage) tokens = msg.usage.completion_tokens;
      const c = msg.choices && msg.choices[0];
      if (c && c.text) {
        tLast = performance.now();
        if (tFirst === null) tFirst = tLast;
      }
    }
  }
  return { ttft: tFirst - t0, tokens, streamRate: tokens > 1 ? (tokens - 1) / ((tLast - tFirst) / 1000) : 0, end: performance.now() };
}

const pct = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(p * s.length))];
};

console.log(`# zt serve throughput, ${new Date().toISOString()}`);
console.log(`machine: ${os.cpus().length} x ${os.cpus()[0].model}, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB`);
console.log(`load average before: ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}`);
const model = argv[0] && !argv[0].startsWith('--') ? argv[0] : MODEL;
console.log(`zt: ${ZT}\nmodel: ${model}`);
console.log(`method: ${SECONDS} s per level, streamed /v1/completions, greedy, max_tokens ${MAX_TOKENS}\n`);

const srv = await startServer(['--parallel', '32', '--ctx', '512', '--queue', '64'], { model });
const rows = [];
for (const C of LEVELS) {
  await oneRequest(srv.url, PROMPTS[0]); // warm-up
  const m0 = await metrics(srv.url);
  const t0 = performance.now();
  const results = [];
  await Promise.all(Array.from({ length: C }, async (_, k) => {
    for (let i = 0; performance.now() - t0 < SECONDS * 1000; i++) {
      results.push(await oneRequest(srv.url, PROMPTS[(k + i) % PROMPTS.length]));
    }
  }));
  const wall = (Math.max(...results.map((r) => r.end)) - t0) / 1000;
  const m1 = await metrics(srv.url);
  const tokens = results.reduce((s, r) => s + r.tokens, 0);
  const row = {
    streams: C, requests: results.length, tokens, wall_s: wall.toFixed(1),
    agg_tok_s: (tokens / wall).toFixed(1),
    ttft_ms_p50: pct(results.map((r) => r.ttft), 0.5).toFixed(0),
    ttft_ms_p90: pct(results.map((r) => r.ttft), 0.9).toFixed(0),
    stream_tok_s_p50: pct(results.map((r) => r.streamRate), 0.5).toFixed(1),
    rows_per_step: ((m1.zt_engine_rows_total - m0.zt_engine_rows_total) / (m1.zt_engine_steps_total - m0.zt_engine_steps_total)).toFixed(1),
  };
  rows.push(row);
  console.log(JSON.stringify(row));
}
await srv.stop();

console.log('\n| streams | requests | tokens | wall s | aggregate tok/s | TTFT p50 ms | TTFT p90 ms | per-stream tok/s p50 | rows/step |');
console.log('|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
for (const r of rows) {
  console.log(`| ${r.streams} | ${r.requests} | ${r.tokens} | ${r.wall_s} | ${r.agg_tok_s} | ${r.ttft_ms_p50} | ${r.ttft_ms_p90} | ${r.stream_tok_s_p50} | ${r.rows_per_step} |`);
}
console.log(`\nload average after: ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}`);
try {
  console.log('busiest processes at the end:\n' + execSync('ps -eo pcpu,comm --sort=-pcpu | head -6').toString());
} catch (e) { /* ps missing */ }
