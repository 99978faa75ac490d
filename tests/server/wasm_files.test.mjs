// zt serve also serves the in-browser zt page (make wasm) under /wasm/:
// files of one flat directory with their content types, whole even when
// larger than the streaming backlog bound (the 30 MB demo model), and
// nothing outside that directory.
import { mkdtempSync, writeFileSync, copyFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { MODEL, assert, assertEq, rawExchange, runTests, startServer } from './lib.mjs';

const dir = mkdtempSync(path.join(process.env.ZT_TEST_TMP || tmpdir(), 'wasm-dir-'));
writeFileSync(path.join(dir, 'index.html'), '<!doctype html><title>zt</title>');
writeFileSync(path.join(dir, 'app.js'), 'console.log(1);');
writeFileSync(path.join(dir, 'zt.wasm'), Buffer.from([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0]));
copyFileSync(MODEL, path.join(dir, 'model.gguf'));
const srv = await startServer(['--wasm-dir', dir]);

const failed = await runTests([
  ['wasm_page_files_are_served_with_their_types', async () => {
    for (const [p, type] of [['/wasm/', 'text/html'], ['/wasm/app.js', 'text/javascript'],
      ['/wasm/zt.wasm', 'application/wasm']]) {
      const r = await fetch(srv.url + p);
      assertEq(r.status, 200, p);
      assert(r.headers.get('content-type').startsWith(type), `${p}: ${r.headers.get('content-type')}`);
    }
  }],
  ['wasm_page_serves_the_whole_model_file', async () => {
    const r = await fetch(srv.url + '/wasm/model.gguf');
    const got = Buffer.from(await r.arrayBuffer());
    assertEq(r.status, 200, 'status');
    assert(got.equals(readFileSync(MODEL)), `got ${got.length} bytes`);
  }],
  ['wasm_page_names_nothing_outside_its_directory', async () => {
    for (const p of ['/wasm/../README.md', '/wasm/.hidden', '/wasm/a/b.js', '/wasm/%2e%2e/x.js', '/wasm/none.js']) {
      const { text: raw } = await rawExchange(srv.port, `GET ${p} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
      assert(/^HTTP\/1\.1 (400|404)/.test(raw), `${p}: ${raw.slice(0, 60)}`);
    }
  }],
]);
await srv.stop();
process.exitCode = failed ? 1 : 0;
