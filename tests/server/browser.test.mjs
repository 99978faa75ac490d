// The chat page in a real browser: Playwright (playwright-core) drives
// Debian's chromium, headless, with a fresh profile and nothing that reaches
// the network. It loads the page, sends a message, sees the reply stream in
// with tok/s and time to first token, stops a long reply mid-way (and the
// server frees that sequence), starts a new conversation, and shows Markdown
// with a code block. Screenshots go to tests/server/screenshots/.
import { mkdtempSync, mkdirSync, rmSync, existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { HERE, assert, assertEq, metrics, runTests, startServer, waitFor } from './lib.mjs';

const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
if (!existsSync(CHROMIUM)) {
  console.log(`FAIL browser_available: ${CHROMIUM} is missing (apt-get install chromium)`);
  process.exit(1);
}
const SHOTS = path.join(HERE, 'screenshots');
mkdirSync(SHOTS, { recursive: true });

const srv = await startServer(['--parallel', '2', '--ctx', '1024']);
const profile = mkdtempSync(path.join(os.tmpdir(), 'zt-chromium-'));
const context = await chromium.launchPersistentContext(profile, {
  executablePath: CHROMIUM,
  headless: true,
  viewport: { width: 1200, height: 760 },
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
const page = context.pages()[0] || await context.newPage();
const pageErrors = [];
page.on('pageerror', (e) => pageErrors.push(String(e)));
page.on('console', (m) => { if (m.type() === 'error') pageErrors.push(m.text()); });
// the page may talk to our server only
await page.route('**/*', (route) => (route.request().url().startsWith(srv.url) || route.request().url().startsWith('data:')
  ? route.continue() : route.abort()));

async function setField(id, value) {
  await page.fill(`#${id}`, String(value));
  await page.dispatchEvent(`#${id}`, 'change');
}

const lastReply = () => page.locator('.msg.assistant').last();

const failed = await runTests([
  ['page_loads_and_shows_the_model', async () => {
    await page.goto(srv.url + '/');
    await page.waitForFunction(() => /phi3/.test(document.getElementById('model-info').textContent), null, { timeout: 10000 });
    const info = await page.textContent('#model-info');
    assert(/zt-demo|demo/i.test(info) && /context 1024/.test(info) && /2 slots/.test(info), `model info: ${info}`);
    assertEq(await page.inputValue('#temperature'), '0.8', 'the server\'s default temperature');
    await page.screenshot({ path: path.join(SHOTS, 'page-loaded.png') });
  }],

  ['a_message_streams_back_with_tok_s_and_first_token_time', async () => {
    await setField('temperature', 0);
    await setField('max-tokens', 60);
    await page.fill('#input', 'Tell me a fortune.');
    await page.click('#send');
    await page.waitForSelector('#stop:not([hidden])', { timeout: 5000 });
    await page.waitForFunction(() => {
      const m = [...document.querySelectorAll('.msg.assistant')].pop();
      return m && m.dataset.finish;
    }, null, { timeout: 30000 });
    const reply = await lastReply().locator('.content').textContent();
    assert(reply.trim().length > 10, `reply: ${JSON.stringify(reply)}`);
    const tps = parseFloat(await page.textContent('#stat-tps'));
    const ttft = await page.textContent('#stat-ttft');
    assert(tps > 0, `tok/s shown: ${tps}`);
    assert(/^\d+ ms$/.test(ttft), `first token time shown: ${ttft}`);
    const meta = await lastReply().locator('.meta').textContent();
    assert(/tokens/.test(meta) && /tok\/s/.test(meta), `reply stats: ${meta}`);
    assert(await page.isHidden('#stop'), 'stop hidden after the reply');
    await page.screenshot({ path: path.join(SHOTS, 'reply-streamed.png') });
  }],

  ['stop_ends_a_long_reply_mid_way_and_frees_the_sequence', async () => {
    await setField('max-tokens', 400);
    const before = await metrics(srv.url);
    await page.fill('#input', 'Quote Numbers 7:1.'); // a greedy reply of some 330 tokens
    await page.click('#send');
    // wait until a few words are on screen, then stop
    await page.waitForFunction(() => {
      const m = [...document.querySelectorAll('.msg.assistant')].pop();
      return m && m.querySelector('.content').textContent.split(' ').length > 8;
    }, null, { timeout: 20000 });
    await page.screenshot({ path: path.join(SHOTS, 'reply-streaming.png') });
    await page.click('#stop');
    await page.waitForFunction(() => [...document.querySelectorAll('.msg.assistant')].pop().dataset.finish, null, { timeout: 5000 });
    assertEq(await lastReply().getAttribute('data-finish'), 'stopped', 'finish');
    assert(/stopped/.test(await lastReply().locator('.meta').textContent()), 'shown as stopped');
    const freed = await waitFor(async () => {
      const m = await metrics(srv.url);
      return m.zt_slots_active === 0 && m.zt_kv_pages_used === 0 ? m : null;
    }, 3000);
    assert(freed, 'the server did not free the sequence');
    assertEq(freed.zt_requests_cancelled_total, before.zt_requests_cancelled_total + 1, 'cancelled requests');
    assert(freed.zt_generated_tokens_total - before.zt_generated_tokens_total < 300, 'stopped before the end');
    await page.screenshot({ path: path.join(SHOTS, 'reply-stopped.png') });
  }, 40000],

  ['the_conversation_goes_on_and_new_conversation_clears_it', async () => {
    assertEq(await page.locator('.msg').count(), 4, 'two turns on screen');
    await page.click('#new-chat');
    assertEq(await page.locator('.msg').count(), 0, 'messages after a new conversation');
    assert(await page.isVisible('#empty'), 'the empty state is back');
    await page.fill('#system-prompt', 'You quote scripture.');
    await page.dispatchEvent('#system-prompt', 'input');
    await setField('max-tokens', 20);
    await page.fill('#input', 'Quote Genesis 1:3.');
    await page.press('#input', 'Enter');
    await page.waitForFunction(() => {
      const m = [...document.querySelectorAll('.msg.assistant')].pop();
      return m && m.dataset.finish;
    }, null, { timeout: 30000 });
    assert((await lastReply().locator('.content').textContent()).length > 0, 'a reply');
    assertEq(pageErrors.length, 0, `page errors: ${pageErrors.join('; ')}`);
  }],

  ['markdown_replies_render_with_code_blocks_in_the_page', async () => {
    // the demo model writes no Markdown: render a sample with the page's own
    // renderer and styles, as a reply would be
    await page.click('#new-chat');
    const counts = await page.evaluate(async () => {
      const { renderMarkdown } = await import('/markdown.js');
      const md = '## Plan\nSome **bold**, *italic* and `inline code`.\n\n- one\n- two\n  - nested\n\n' +
        '```c\nint main(void) {\n    return 0;\n}\n```\n\n> a quote\n\n| a | b |\n|---|--:|\n| 1 | 2 |';
      document.getElementById('empty').hidden = true;
      const el = document.createElement('div');
      el.className = 'msg assistant';
      el.innerHTML = '<div class="role">assistant</div><div class="content">' + renderMarkdown(md) + '</div>';
      document.getElementById('messages').appendChild(el);
      const q = (sel) => el.querySelectorAll(sel).length;
      return { h2: q('h2'), pre: q('pre code.language-c'), li: q('li'), table: q('table'), copy: q('.copy-code') };
    });
    assertEq(JSON.stringify(counts), JSON.stringify({ h2: 1, pre: 1, li: 3, table: 1, copy: 1 }), 'rendered elements');
    await page.screenshot({ path: path.join(SHOTS, 'markdown.png') });
  }],
]);

await context.close();
rmSync(profile, { recursive: true, force: true });
await srv.stop();
process.exitCode = failed ? 1 : 0;
