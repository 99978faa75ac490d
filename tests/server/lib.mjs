// Shared helpers of the zt serve tests: start a server on a free loopback
// port, run named tests with a time limit each, print "ok NAME" /
// "FAIL NAME: why" (the lines tests/run.sh counts), raw sockets, and
// reference runs of `zt run`.
import { spawn, execFile } from 'node:child_process';
import { appendFileSync, readFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const HERE = path.dirname(fileURLToPath(import.meta.url));
export const ROOT = path.resolve(HERE, '..', '..');
export const ZT = process.env.ZT || path.join(ROOT, 'build', 'zt');
export const MODEL = path.join(ROOT, 'models', 'zt-demo-15m-f16.gguf');
export const MODEL_ID = 'zt-demo-15m-f16';

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// A script that dies outside runTests (the server does not start, a
// reference run fails) still prints a FAIL line for tests/run.sh to count.
const SCRIPT = path.basename(process.argv[1] || 'test', '.mjs').replace(/\.test$/, '');
for (const event of ['uncaughtException', 'unhandledRejection']) {
  process.on(event, (e) => {
    console.log(`FAIL ${SCRIPT}_setup: ${(e && e.message) || e}`.split('\n').slice(0, 4).join('\n  '));
    process.exit(1);
  });
}

// Starts `zt serve MODEL --port 0 ...args` (the demo model unless `model`
// says) and waits for its "listening on" line. Returns {url, port, proc,
// stderr(), rssKb(), stop()}.
export async function startServer(args = [], { timeoutMs = 20000, model = MODEL } = {}) {
  const proc = spawn(ZT, ['serve', model, '--host', '127.0.0.1', '--port', '0', ...args], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let log = '';
  const port = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`zt serve did not start in ${timeoutMs} ms: ${log}`)), timeoutMs);
    proc.stderr.on('data', (d) => {
      log += d;
      const m = log.match(/listening on http:\/\/127\.0\.0\.1:(\d+)\//);
      if (m) { clearTimeout(timer); resolve(Number(m[1])); }
    });
    proc.on('exit', (code) => { clearTimeout(timer); reject(new Error(`zt serve exited (${code}): ${log}`)); });
  });
  proc.removeAllListeners('exit');
  const url = `http://127.0.0.1:${port}`;
  return {
    url, port, proc,
    stderr: () => log,
    alive: () => proc.exitCode === null && proc.signalCode === null,
    rssKb: () => {
      const m = readFileSync(`/proc/${proc.pid}/status`, 'utf8').match(/VmRSS:\s+(\d+)/);
      return m ? Number(m[1]) : 0;
    },
    // SIGTERM, then SIGKILL after 5 s; ZT_SERVER_LOG=FILE collects the
    // server's stderr (sanitizer reports, for one)
    stop: () => new Promise((resolve) => {
      const done = () => {
        if (process.env.ZT_SERVER_LOG) appendFileSync(process.env.ZT_SERVER_LOG, `== zt serve ${args.join(' ')}\n${log}`);
        resolve();
      };
      if (proc.exitCode !== null || proc.signalCode !== null) return done();
      const kill = setTimeout(() => proc.kill('SIGKILL'), 5000);
      proc.on('exit', () => { clearTimeout(kill); setTimeout(done, 50); });
      proc.kill('SIGTERM');
    }),
  };
}

// Runs tests in order, each under its own time limit; prints one line per
// test and a summary; resolves to the number of failures.
export async function runTests(tests, { defaultTimeoutMs = 30000 } = {}) {
  let failed = 0;
  for (const [name, fn, timeoutMs = defaultTimeoutMs] of tests) {
    const t0 = Date.now();
    let timer;
    try {
      await Promise.race([
        fn(),
        new Promise((_, reject) => { timer = setTimeout(() => reject(new Error(`timed out after ${timeoutMs} ms`)), timeoutMs); }),
      ]);
      console.log(`ok ${name} (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
    } catch (e) {
      failed++;
      console.log(`FAIL ${name}: ${(e && e.stack) || e}`.split('\n').slice(0, 6).join('\n  '));
    } finally {
      clearTimeout(timer);
    }
  }
  return failed;
}

export function assert(cond, msg) {
  if (!cond) throw new Error(msg || 'assertion failed');
}

export function assertEq(actual, expected, what = 'value') {
  if (actual !== expected) {
    throw new Error(`${what}: expected ${JSON.stringify(expected)}, got ${JSON.stringify(actual)}`);
  }
}

// `zt run MODEL PROMPT --temp 0 -n N [--chat]`: the solo reference text.
export function ztRun(prompt, n, { chat = true, extra = [] } = {}) {
  const args = ['run', MODEL, prompt, '--temp', '0', '-n', String(n), ...(chat ? ['--chat'] : []), ...extra];
  return new Promise((resolve, reject) => {
    execFile(ZT, args, { maxBuffer: 1 << 24, timeout: 60000 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`zt run failed: ${stderr || err.message}`));
      else resolve(stdout);
    });
  });
}

// POSTs JSON with fetch; returns {status, headers, json}.
export async function postJson(url, body, init = {}) {
  const res = await fetch(url, {
    method: 'POST', headers: { 'Content-Type': 'application/json' },
    body: typeof body === 'string' ? body : JSON.stringify(body), ...init,
  });
  const text = await res.text();
  let json = null;
  try { json = JSON.parse(text); } catch (e) { /* not JSON */ }
  return { status: res.status, headers: res.headers, json, text };
}

// Prometheus text -> {name{labels}: number}.
export async function metrics(url) {
  const text = await (await fetch(`${url}/metrics`)).text();
  const out = {};
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const [k, v] = line.split(/\s+/);
    out[k] = Number(v);
  }
  return out;
}

// Polls fn until it returns truthy or the time is up; returns the last value.
export async function waitFor(fn, timeoutMs, stepMs = 50) {
  const end = Date.now() + timeoutMs;
  let v;
  while (!(v = await fn()) && Date.now() < end) await sleep(stepMs);
  return v;
}

// A raw TCP exchange: sends `data` (string or Buffer), collects what the
// server answers until it closes or timeoutMs passes. Returns
// {text, closed, ms}.
export function rawExchange(port, data, { timeoutMs = 5000 } = {}) {
  return new Promise((resolve) => {
    const t0 = Date.now();
    const s = net.connect(port, '127.0.0.1');
    let text = '';
    let settled = false;
    const finish = (closed) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      s.destroy();
      resolve({ text, closed, ms: Date.now() - t0 });
    };
    const timer = setTimeout(() => finish(false), timeoutMs);
    s.on('connect', () => s.write(data));
    s.on('data', (d) => { text += d.toString('latin1'); });
    s.on('error', () => finish(true));
    s.on('close', () => finish(true));
  });
}

// Reads a streamed chat or completion with fetch; returns the text, the
// finish reason and the usage chunk.
export async function streamText(url, endpoint, body, init = {}) {
  const res = await fetch(`${url}${endpoint}`, {
    method: 'POST', headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ ...body, stream: true, stream_options: { include_usage: true } }), ...init,
  });
  if (res.status !== 200) throw new Error(`HTTP ${res.status}: ${await res.text()}`);
  const reader = res.body.getReader();
  const dec = new TextDecoder();
  let buf = '';
  let text = '';
  let finish = null;
  let usage = null;
  let done = false;
  let chunks = 0;
  while (!done) {
    const { value, done: end } = await reader.read();
    if (end) break;
    buf += dec.decode(value, { stream: true });
    let at;
    while ((at = buf.indexOf('\n\n')) >= 0) {
      const ev = buf.slice(0, at);
      buf = buf.slice(at + 2);
      const data = ev.replace(/^data: /, '');
      if (data === '[DONE]') { done = true; break; }
      const msg = JSON.parse(data);
      if (msg.error) throw new Error(`stream error: ${msg.error.message}`);
      if (msg.usage) usage = msg.usage;
      const c = msg.choices && msg.choices[0];
      if (!c) continue;
      const piece = c.delta ? c.delta.content : c.text;
      if (piece) { text += piece; chunks++; }
      if (c.finish_reason) finish = c.finish_reason;
    }
  }
  return { text, finish, usage, chunks };
}
