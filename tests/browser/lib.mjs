// lib.mjs — what the browser tests share: a static file server on
// 127.0.0.1 (the page, zt.wasm, fixtures converted to GGUF), Debian's
// chromium driven headless through playwright-core, and "ok"/"FAIL" lines
// for tests/run.sh.
//
// Chromium flags: WebGPU needs --enable-unsafe-webgpu on Linux; with
// --disable-gpu (no GPU process compositing, none here anyway) Chromium
// 156 still gives WebGPU an adapter, which is SwiftShader (Vulkan on the
// CPU): features "subgroups" yes, "shader-f16" no. Nothing else is needed
// (checked: --use-webgpu-adapter=swiftshader and --enable-features=Vulkan
// change nothing). JSPI is on by default in current Chromium.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { chromium } from 'playwright-core';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';

export const CHROMIUM_FLAGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
  '--enable-unsafe-webgpu',
];

let passed = 0, failed = 0;

export function ok(name, detail = '') {
  passed++;
  console.log(`ok ${name}${detail ? ` — ${detail}` : ''}`);
}

export function fail(name, detail = '') {
  failed++;
  console.log(`FAIL ${name}${detail ? ` — ${detail}` : ''}`);
}

export function check(cond, name, detail = '') {
  (cond ? ok : fail)(name, detail);
  return cond;
}

export function summary() { return { passed, failed }; }

const TYPES = { '.html': 'text/html', '.js': 'text/javascript', '.mjs': 'text/javascript',
                '.css': 'text/css', '.wasm': 'application/wasm', '.json': 'application/json' };

// Serves each URL prefix from a directory: mounts {'/': dir, '/fx/': dir2}.
// Counts the bytes sent per path (the page's transfer size).
export async function serve(mounts) {
  const sent = new Map();
  const server = http.createServer((req, res) => {
    const url = decodeURIComponent(new URL(req.url, 'http://x').pathname);
    const prefix = Object.keys(mounts).filter((p) => url.startsWith(p))
      .sort((a, b) => b.length - a.length)[0];
    let file = prefix && path.join(mounts[prefix], url.slice(prefix.length));
    if (file && url.endsWith('/')) file = path.join(file, 'index.html');
    if (!file || !file.startsWith(mounts[prefix]) || !fs.existsSync(file) ||
        !fs.statSync(file).isFile()) {
      res.writeHead(404).end('not found');
      return;
    }
    const body = fs.readFileSync(file);
    sent.set(url, (sent.get(url) || 0) + body.length);
    res.writeHead(200, { 'content-type': TYPES[path.extname(file)] || 'application/octet-stream',
                         'content-length': body.length, 'cache-control': 'no-store' });
    res.end(body);
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${server.address().port}`, sent,
           close: () => new Promise((r) => server.close(r)) };
}

// A fresh headless chromium (new --user-data-dir each time); console lines
// of the page go to stderr.
export async function launch() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'zt-chromium-'));
  const context = await chromium.launchPersistentContext(dir, {
    executablePath: CHROMIUM, headless: true, args: CHROMIUM_FLAGS,
    viewport: { width: 1100, height: 800 },
  });
  const page = context.pages()[0] || await context.newPage();
  page.on('console', (m) => process.stderr.write(`  [page] ${m.text()}\n`));
  page.on('pageerror', (e) => process.stderr.write(`  [page error] ${e.message}\n`));
  return { context, page, close: async () => {
    await context.close();
    fs.rmSync(dir, { recursive: true, force: true });
  } };
}

// Builds zt.wasm and the page (make is incremental).
export function buildWasm() {
  execFileSync('make', ['-s', `-j${os.cpus().length}`, 'wasm'], { cwd: ROOT, stdio: ['ignore', 'inherit', 'inherit'] });
  return path.join(ROOT, process.env.WASM_BUILD || 'build-wasm');
}
