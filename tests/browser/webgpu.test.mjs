// webgpu.test.mjs — zt in a real browser: Debian's chromium, headless,
// WebGPU on SwiftShader (the f32 path: SwiftShader has no shader-f16).
//
//   1. every WGSL kernel alone against a scalar reference on random inputs
//      (src/backend/webgpu/selftest.c), with subgroup and workgroup-memory
//      reductions and 1, 8 and 64 threads per matmul row
//   2. the golden fixtures (tests/fixtures/*, converted to GGUF with the
//      native `zt convert`) through the webgpu forward pass against the
//      float64 reference logits: rel L2 <= 1e-4 (F32 weights, f32 KV) and
//      <= 2e-3 (F16 weights, f16 KV), as the CPU backend's own test; the
//      demo model (F16, and Q8_0 / Q4_0 by `zt convert`) against PyTorch's
//      logits with the CPU test's bounds
//   3. the chat page (web/wasm): loads the demo model, caches it in OPFS,
//      and gives the pinned greedy reply of the native `zt run --chat`;
//      a reload reads the weights from the cache; the page on the wasm
//      CPU backend gives the same reply. Screenshots are saved in
//      tests/browser/screenshots/.
//
// Needs: chromium, clang-14, lld-14, wasi-libc, libclang-rt-14-dev-wasm32
// (Debian), `npm ci` here, and ZT = the native zt binary (tests/run.sh).
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';

import { buildWasm, check, CHROMIUM, fail, launch, ok, ROOT, serve, summary } from './lib.mjs';

const ZT = process.env.ZT || path.join(ROOT, 'build/zt');
const DEMO = 'models/zt-demo-15m-f16.gguf';
const FIXTURES = ['phi3', 'llama3', 'llama_odd', 'mistral', 'qwen2'];
// `zt run models/zt-demo-15m-f16.gguf "Tell me a fortune." --chat --temp 0`
// (the reply ends with <|end|> after 25 tokens)
const PROMPT = 'Tell me a fortune.';
const PINNED = 'The best way to get out of the world is to be always to be a fool.\n\t\t-- Oscar Wilde';
const SHOTS = path.join(ROOT, 'tests/browser/screenshots');

// Loads `model` on the webgpu backend in the page and runs the sequences of
// DIR/tokens.json; returns the largest relative L2 over positions, and the
// mean KL(ref || got) and top-1 agreement against DIR/<ref>.
function compareLogits(page, model, dir, ref, kv) {
  return page.evaluate(async ({ model, dir, ref, kv }) => {
    const zt = window.testZt;
    const tokens = await (await fetch(`${dir}/tokens.json`)).json();
    const want = new Float32Array(await (await fetch(`${dir}/${ref}`)).arrayBuffer());
    zt.addFile('/model.gguf', new Uint8Array(await (await fetch(model)).arrayBuffer()));
    await zt.load('/model.gguf', { backend: 'webgpu', nCtx: 64, kv });
    zt.removeFile('/model.gguf');
    const V = tokens.vocab;
    const softmax = (x) => {
      let mx = -Infinity, sum = 0;
      for (const v of x) mx = Math.max(mx, v);
      const p = Array.from(x, (v) => Math.exp(v - mx));
      for (const v of p) sum += v;
      return p.map((v) => v / sum);
    };
    const argmax = (x) => x.reduce((b, v, i) => (v > x[b] ? i : b), 0);
    let at = 0, relL2 = 0, kl = 0, top1 = 0;
    for (const seq of tokens.sequences) {
      const got = await zt.logits(seq);
      for (let i = 0; i < seq.length; i++, at++) {
        const g = got.subarray(i * V, (i + 1) * V), r = want.subarray(at * V, (at + 1) * V);
        let d = 0, n = 0;
        for (let v = 0; v < V; v++) d += (g[v] - r[v]) ** 2, n += r[v] ** 2;
        const e = Math.sqrt(d / n);
        if (!(e <= relL2)) relL2 = e;
        const p = softmax(r), q = softmax(g);
        for (let v = 0; v < V; v++) if (p[v] > 0) kl += p[v] * Math.log(p[v] / q[v]);
        top1 += argmax(g) === argmax(r);
      }
    }
    zt.unload();
    return { relL2, kl: kl / at, top1: top1 / at };
  }, { model, dir, ref, kv });
}

async function main() {
  const t0 = Date.now();
  if (!fs.existsSync(CHROMIUM)) return fail('browser', `${CHROMIUM} is missing (apt-get install chromium)`);
  if (!fs.existsSync(ZT)) return fail('browser', `native zt missing at ${ZT} (set ZT)`);
  let build;
  try {
    build = buildWasm();
  } catch (err) {
    return fail('wasm build', `make wasm failed (clang-14 lld-14 wasi-libc libclang-rt-14-dev-wasm32?): ${err.message}`);
  }
  ok('wasm build', `${fs.statSync(path.join(build, 'zt.wasm')).size} bytes`);

  // the native side: fixtures as GGUF, and the pinned reply
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'zt-browser-'));
  for (const f of FIXTURES)
    for (const type of ['f32', 'f16'])
      execFileSync(ZT, ['convert', path.join(ROOT, 'tests/fixtures', f), path.join(tmp, `${f}-${type}.gguf`),
                        '--type', type], { stdio: 'ignore' });
  for (const type of ['q8_0', 'q4_0'])
    execFileSync(ZT, ['convert', path.join(ROOT, DEMO), path.join(tmp, `demo-${type}.gguf`), '--type', type],
                 { stdio: 'ignore' });
  const native = execFileSync(ZT, ['run', path.join(ROOT, DEMO), PROMPT, '--chat', '-n', '64', '--temp', '0'],
                              { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  check(native === PINNED, 'native zt run gives the pinned greedy reply', JSON.stringify(native));

  const web = path.join(build, 'web');
  const srv = await serve({ '/': web, '/fx/': tmp, '/fixtures/': path.join(ROOT, 'tests/fixtures'),
                           '/demo/': path.join(ROOT, 'tests/demo') });
  const browser = await launch();
  const { page } = browser;
  try {
    await page.goto(`${srv.url}/index.html?load=none`);
    await page.waitForFunction(() => document.body.dataset.state !== 'starting');
    const gpu = await page.evaluate(async () => {
      const { Zt } = await import('/zt-host.js');
      window.testZt = await Zt.create({ wasmUrl: '/zt.wasm' });
      return { ...window.testZt.gpu, device: window.testZt.device() };
    });
    check(gpu.hasDevice, 'WebGPU adapter', `${gpu.adapter}; features: ${gpu.features.join(' ')}`);
    if (!gpu.hasDevice) return;
    const f16 = gpu.features.includes('shader-f16');
    console.error(`  device: ${gpu.device}; shader-f16 ${f16 ? 'present: f16 path tested' : 'absent: f32 path'}`);

    // 1. kernels, under each reduction flavour and row split
    const configs = [{ subgroups: true, split: 0 }, { subgroups: true, split: 64 },
                     { subgroups: false, split: 8 }];
    for (const cfg of configs) {
      const tag = `${cfg.subgroups && gpu.features.includes('subgroups') ? 'subgroups' : 'workgroup'} split=${cfg.split || 'auto'}`;
      const checks = await page.evaluate((c) => window.testZt.selftest({ ...c, seed: 7 }), cfg);
      for (const c of checks)
        check(c.ok, `webgpu kernel ${c.name} [${tag}]`, `err ${c.err} (tol ${c.tol})`);
    }

    // 2. golden fixtures through the whole forward pass
    for (const f of FIXTURES)
      for (const [type, kv, tol] of [['f32', 'f32', 1e-4], ['f16', 'f16', 2e-3]]) {
        const m = await compareLogits(page, `/fx/${f}-${type}.gguf`, `/fixtures/${f}`, 'logits.bin', kv);
        check(m.relL2 <= tol, `webgpu golden ${f} ${type}`, `max rel L2 ${m.relL2.toExponential(2)} (tol ${tol})`);
      }
    // the trained demo model against PyTorch's float64 forward of its F16
    // weights, as shipped and quantized by `zt convert` (the CPU test's bounds)
    const demo = await compareLogits(page, '/zt-demo-15m-f16.gguf', '/demo', 'ref_logits.bin', 'f16');
    check(demo.relL2 <= 2e-3, 'webgpu demo model f16', `max rel L2 ${demo.relL2.toExponential(2)} (tol 2e-3)`);
    for (const [type, klTol, top1Tol] of [['q8_0', 2e-3, 0.9], ['q4_0', 0.1, 0.75]]) {
      const m = await compareLogits(page, `/fx/demo-${type}.gguf`, '/demo', 'ref_logits.bin', 'f16');
      check(m.kl <= klTol && m.top1 >= top1Tol, `webgpu demo model ${type}`,
            `mean KL ${m.kl.toExponential(2)} (tol ${klTol}), top-1 ${(100 * m.top1).toFixed(0)}% (tol ${100 * top1Tol}%)`);
    }

    // 3. the chat page: fresh profile, so the demo model is downloaded
    await page.goto(`${srv.url}/index.html`);
    await page.waitForFunction(() => ['ready', 'error'].includes(document.body.dataset.state),
                               null, { timeout: 60000 });
    const status = await page.textContent('#status');
    check(/downloaded/.test(status), 'chat page loads the demo model', status);
    await page.fill('#prompt', PROMPT);
    await page.click('#send');
    await page.waitForSelector('#messages li.assistant[data-done]', { timeout: 120000 });
    const reply = await page.$eval('#messages li.assistant .text', (e) => e.textContent);
    check(reply === PINNED, 'chat page gives the pinned greedy reply', JSON.stringify(reply));
    const facts = await page.evaluate(() => Object.fromEntries(
      [...document.querySelectorAll('aside dt')].map((dt) => [dt.textContent, dt.nextElementSibling.textContent])));
    check(/tok\/s/.test(facts.decode) && Number(facts['dispatches/token']) > 0 && /swiftshader/i.test(facts.adapter),
          'chat page shows adapter, tok/s and dispatches per token',
          `${facts.adapter}; ${facts['in use']}; ${facts.decode}; ${facts['dispatches/token']} dispatches/token`);
    fs.mkdirSync(SHOTS, { recursive: true });
    await page.screenshot({ path: path.join(SHOTS, 'chat.png') });

    // a reload reads the weights from the Origin Private File System
    const before = srv.sent.get('/zt-demo-15m-f16.gguf') || 0;
    await page.reload();
    await page.waitForFunction(() => ['ready', 'error'].includes(document.body.dataset.state),
                               null, { timeout: 60000 });
    const again = await page.textContent('#status');
    check(/from cache/.test(again) && (srv.sent.get('/zt-demo-15m-f16.gguf') || 0) === before,
          'reload reads the weights from OPFS', again);
    await page.screenshot({ path: path.join(SHOTS, 'reload-cached.png') });

    // the same page on the CPU backend (the reference, single-threaded in wasm)
    await page.goto(`${srv.url}/index.html?backend=cpu`);
    await page.waitForFunction(() => ['ready', 'error'].includes(document.body.dataset.state),
                               null, { timeout: 60000 });
    await page.fill('#prompt', PROMPT);
    await page.click('#send');
    await page.waitForSelector('#messages li.assistant[data-done]', { timeout: 120000 });
    const cpuReply = await page.$eval('#messages li.assistant .text', (e) => e.textContent);
    check(cpuReply === PINNED, 'chat page on the wasm CPU backend gives the pinned reply', JSON.stringify(cpuReply));

    // what the page costs to transfer, weights aside
    const files = ['index.html', 'style.css', 'app.js', 'zt-host.js', 'zt.wasm'];
    let raw = 0, gz = 0;
    for (const f of files) {
      const b = fs.readFileSync(path.join(web, f));
      raw += b.length;
      gz += zlib.gzipSync(b, { level: 9 }).length;
    }
    ok('page transfer size', `${(raw / 1000).toFixed(0)} kB raw, ${(gz / 1000).toFixed(0)} kB gzip ` +
       `(${files.join(' + ')}; weights excluded; the seed 157 kB, WebLLM 5.9 MB)`);
  } catch (err) {
    fail('browser', err.message.split('\n')[0]);
  } finally {
    await browser.close();
    await srv.close();
    fs.rmSync(tmp, { recursive: true, force: true });
    console.error(`  browser tests took ${((Date.now() - t0) / 1000).toFixed(0)} s`);
  }
}

await main();
const { failed } = summary();
process.exitCode = failed ? 1 : 0;
