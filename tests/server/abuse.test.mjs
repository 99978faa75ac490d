// Abuse does not hurt the server: malformed HTTP, a 10 MB body, 1,000 idle
// connections, a slow-loris client, invalid JSON, wrong field types, bad
// max_tokens, a prompt longer than the context, a client that leaves
// mid-stream, a full queue. Each gets the right status or is dropped, and
// after each one the server still answers a real request. Loopback only;
// every loop is bounded in count and time.
import net from 'node:net';
import {
  assert, assertEq, metrics, postJson, rawExchange, runTests, sleep, startServer, waitFor,
} from './lib.mjs';

const READ_TIMEOUT_S = 2;
const srv = await startServer(['--parallel', '2', '--ctx', '256', '--queue', '2',
  '--read-timeout', String(READ_TIMEOUT_S), '--max-body', '1048576']);
const LONG = { prompt: 'And the LORD spake unto Moses, saying', temperature: 0, max_tokens: 200 };

// The server is alive and answers a real completion.
async function stillServes() {
  assert(srv.alive(), 'the server process died');
  const r = await postJson(`${srv.url}/v1/completions`, { prompt: 'In the beginning', temperature: 0, max_tokens: 4 });
  assertEq(r.status, 200, `a completion after the abuse (${r.text})`);
  assertEq(r.json.usage.completion_tokens, 4, 'tokens of that completion');
}

function statusOf(text) {
  const m = text.match(/^HTTP\/1\.[01] (\d{3})/);
  return m ? Number(m[1]) : null;
}

async function expectError(body, status, param, what) {
  const r = await postJson(`${srv.url}/v1/chat/completions`, body);
  assertEq(r.status, status, `${what}: status (${r.text})`);
  assert(r.json && r.json.error && typeof r.json.error.message === 'string', `${what}: an OpenAI error object`);
  if (param !== undefined) assertEq(r.json.error.param, param, `${what}: param`);
  return r.json.error;
}

const failed = await runTests([
  ['malformed_http_gets_400_or_505_and_the_connection_closes', async () => {
    const cases = [
      ['GARBAGE\r\n\r\n', 400],
      ['GET /health HTTP/1.1\r\nHost: x\r\nBad Header Line\r\n\r\n', 400],
      ['GET /health HTTP/1.1\r\n\r\n', 400], // HTTP/1.1 without Host
      ['GET /health HTTP/2.0\r\nHost: x\r\n\r\n', 505],
      ['GET  /health HTTP/1.1\r\nHost: x\r\n\r\n', 400],
      ['GET /health HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n', 400],
      ['GET /health HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n', 400],
      ['POST /v1/completions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n', 501],
      [Buffer.from([0x47, 0x45, 0x54, 0x20, 0x2f, 0x00, 0xff, 0x20, 0x48, 0x0d, 0x0a, 0x0d, 0x0a]), 400],
      ['GET /' + 'a'.repeat(20000) + ' HTTP/1.1\r\nHost: x\r\n\r\n', 431],
    ];
    for (const [req, want] of cases) {
      const r = await rawExchange(srv.port, req);
      assertEq(statusOf(r.text), want, `status for ${JSON.stringify(String(req).slice(0, 40))}`);
      assert(r.closed, `the connection should close after ${JSON.stringify(String(req).slice(0, 40))}`);
      assert(/"error":\{"message":/.test(r.text), 'an error body');
    }
    await stillServes();
  }],

  ['ten_megabyte_body_gets_413', async () => {
    const body = Buffer.alloc(10 * 1024 * 1024, 0x61);
    const head = `POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n`;
    const r = await rawExchange(srv.port, Buffer.concat([Buffer.from(head), body]), { timeoutMs: 10000 });
    assertEq(statusOf(r.text), 413, `status (${r.text.slice(0, 200)})`);
    assert(/10485760 bytes/.test(r.text), 'the message names the size');
    // and through fetch, as a client library sends it
    const f = await postJson(`${srv.url}/v1/completions`, 'x'.repeat(10 * 1024 * 1024)).catch((e) => ({ status: `error ${e.cause || e}` }));
    assertEq(f.status, 413, 'status through fetch');
    await stillServes();
  }],

  ['a_thousand_idle_connections_do_not_block_service', async () => {
    const socks = [];
    try {
      for (let i = 0; i < 1000; i++) {
        socks.push(await new Promise((resolve, reject) => {
          const s = net.connect(srv.port, '127.0.0.1', () => resolve(s));
          s.on('error', reject);
        }));
      }
      const m = await metrics(srv.url);
      assert(m.zt_http_connections >= 1000, `open connections: ${m.zt_http_connections}`);
      const t0 = Date.now();
      await stillServes();
      assert(Date.now() - t0 < 10000, 'served in time');
    } finally {
      for (const s of socks) s.destroy();
    }
    await waitFor(async () => (await metrics(srv.url)).zt_http_connections < 10, 5000);
  }, 60000],

  ['slow_loris_is_cut_off_after_the_read_timeout', async () => {
    const s = net.connect(srv.port, '127.0.0.1');
    const t0 = Date.now();
    let text = '';
    let closedAt = null;
    s.on('data', (d) => { text += d; });
    s.on('close', () => { closedAt = Date.now() - t0; });
    s.on('error', () => {});
    // a head that never ends: one more byte of a header every 200 ms, for at most 8 s
    s.write('POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nX-Slow: ');
    const drip = (async () => {
      for (let i = 0; i < 40 && closedAt === null; i++) {
        if (!s.destroyed) s.write('a');
        await sleep(200);
      }
    })();
    await sleep(300);
    await stillServes(); // others are served meanwhile
    await waitFor(() => closedAt !== null, 8000);
    await drip;
    s.destroy();
    assert(closedAt !== null, 'the slow client was never cut off');
    assert(closedAt >= READ_TIMEOUT_S * 1000 - 300 && closedAt < READ_TIMEOUT_S * 1000 + 4500,
      `cut off after ${closedAt} ms (read timeout ${READ_TIMEOUT_S} s)`);
    assertEq(statusOf(text), 408, 'status');
    await stillServes();
  }, 20000],

  ['invalid_json_gets_400', async () => {
    for (const body of ['{not json', '', '[1, 2', '{"messages": [}', '\u0000']) {
      const e = await expectError(body, 400, null, `body ${JSON.stringify(body)}`);
      assert(/JSON/.test(e.message), `message: ${e.message}`);
    }
    await expectError('[]', 400, null, 'a JSON array');
    await stillServes();
  }],

  ['wrong_field_types_get_400_naming_the_field', async () => {
    const msgs = [{ role: 'user', content: 'hi' }];
    for (const [body, param] of [
      [{ messages: 'hi' }, 'messages'],
      [{ messages: [{ role: 5, content: 'hi' }] }, 'messages'],
      [{ messages: [{ role: 'wizard', content: 'hi' }] }, 'messages'],
      [{ messages: [{ role: 'user', content: 42 }] }, 'messages'],
      [{ messages: msgs, temperature: 'hot' }, 'temperature'],
      [{ messages: msgs, top_p: [1] }, 'top_p'],
      [{ messages: msgs, stream: 'yes' }, 'stream'],
      [{ messages: msgs, stop: 5 }, 'stop'],
      [{ messages: msgs, stop: ['a', 'b', 'c', 'd', 'e'] }, 'stop'],
      [{ messages: msgs, seed: 'x' }, 'seed'],
      [{ messages: msgs, max_tokens: 1.5 }, 'max_tokens'],
      [{ messages: msgs, model: 7 }, 'model'],
      [{ messages: msgs, logprobs: true }, 'logprobs'],
    ]) {
      const e = await expectError(body, 400, param, JSON.stringify(body));
      assert(e.message.includes(param), `the message names ${param}: ${e.message}`);
    }
    const r = await postJson(`${srv.url}/v1/completions`, { prompt: { text: 'hi' } });
    assertEq(r.status, 400, 'completion prompt of the wrong type');
    assertEq(r.json.error.param, 'prompt', 'param');
    await stillServes();
  }],

  ['negative_or_huge_max_tokens_get_400', async () => {
    const msgs = [{ role: 'user', content: 'hi' }];
    for (const max of [-5, 0, 1e12, 2 ** 31]) {
      await expectError({ messages: msgs, max_tokens: max }, 400, 'max_tokens', `max_tokens ${max}`);
    }
    const e = await expectError({ messages: msgs, max_tokens: 1000000 }, 400, 'max_tokens', 'max_tokens 1e6');
    assert(/256/.test(e.message) && /1000000/.test(e.message), `the message gives the numbers: ${e.message}`);
    await stillServes();
  }],

  ['prompt_longer_than_the_context_gets_400_with_the_numbers', async () => {
    const e = await expectError({ messages: [{ role: 'user', content: 'word '.repeat(400) }] }, 400, 'messages', 'long prompt');
    const m = e.message.match(/(\d+) tokens.*?(\d+) tokens/);
    assert(m && Number(m[1]) === 256 && Number(m[2]) > 256, `the message gives the context and the prompt size: ${e.message}`);
    const r = await postJson(`${srv.url}/v1/chat/completions`, { messages: [{ role: 'user', content: 'word '.repeat(400) }] });
    assertEq(r.json.error.code, 'context_length_exceeded', 'code');
    await stillServes();
  }],

  ['a_client_leaving_mid_stream_frees_its_slot_and_pages', async () => {
    const before = await metrics(srv.url);
    const controller = new AbortController();
    const res = await fetch(`${srv.url}/v1/completions`, {
      method: 'POST', headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ ...LONG, stream: true }), signal: controller.signal,
    });
    assertEq(res.status, 200, 'status');
    const reader = res.body.getReader();
    let got = '';
    while ((got.match(/"text"/g) || []).length < 5) got += new TextDecoder().decode((await reader.read()).value);
    const mid = await metrics(srv.url);
    assertEq(mid.zt_slots_active, 1, 'one slot generating');
    assert(mid.zt_kv_pages_used > 0, 'its KV pages in use');
    controller.abort();
    const freed = await waitFor(async () => {
      const m = await metrics(srv.url);
      return m.zt_slots_active === 0 && m.zt_kv_pages_used === 0 ? m : null;
    }, 3000, 20);
    assert(freed, 'the slot and its pages were not freed within 3 s');
    assertEq(freed.zt_requests_cancelled_total, before.zt_requests_cancelled_total + 1, 'cancelled requests');
    assert(freed.zt_generated_tokens_total - before.zt_generated_tokens_total < LONG.max_tokens,
      'generation stopped before max_tokens');
    await stillServes();
  }],

  ['a_full_queue_gets_503_with_retry_after', async () => {
    // 2 slots + 2 waiting: of 7 long requests at once, at least 3 are refused
    const controllers = [];
    const results = await Promise.all(Array.from({ length: 7 }, async () => {
      const c = new AbortController();
      controllers.push(c);
      const res = await fetch(`${srv.url}/v1/completions`, {
        method: 'POST', headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ ...LONG, stream: true }), signal: c.signal,
      });
      const out = { status: res.status, retry: res.headers.get('retry-after') };
      if (res.status !== 200) out.body = await res.json();
      return out;
    }));
    for (const c of controllers) c.abort();
    const refused = results.filter((r) => r.status === 503);
    const accepted = results.filter((r) => r.status === 200);
    assert(refused.length >= 3, `refused ${refused.length} of 7: ${JSON.stringify(results)}`);
    assertEq(accepted.length + refused.length, 7, 'every request got 200 or 503');
    for (const r of refused) {
      assertEq(r.retry, '1', 'Retry-After');
      assertEq(r.body.error.type, 'server_error', 'error type');
    }
    await waitFor(async () => (await metrics(srv.url)).zt_slots_active === 0, 3000);
    await stillServes();
  }],

  ['pipelined_and_http_1_0_requests_are_answered', async () => {
    // three requests in one write on one keep-alive connection, the last one closing
    const body = '{"prompt": "In the beginning", "max_tokens": 3, "seed": 1}';
    const r = await rawExchange(srv.port,
      'GET /health HTTP/1.1\r\nHost: x\r\n\r\n' +
      `POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: ${body.length}\r\n\r\n${body}` +
      'GET /v1/models HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    const statuses = [...r.text.matchAll(/HTTP\/1\.1 (\d{3}) /g)].map((m) => Number(m[1]));
    assertEq(statuses.join(','), '200,200,200', 'statuses in order');
    assert(r.text.indexOf('"status":"ok"') < r.text.indexOf('text_completion') &&
      r.text.indexOf('text_completion') < r.text.indexOf('"object":"list"'), 'bodies in order');
    assert(r.closed, 'closed after Connection: close');
    const old = await rawExchange(srv.port, 'GET /health HTTP/1.0\r\n\r\n');
    assert(/^HTTP\/1\.0 200/.test(old.text) && /Connection: close/.test(old.text) && old.closed, `HTTP/1.0: ${old.text.slice(0, 80)}`);
  }],

  ['unknown_paths_and_methods_get_404_and_405', async () => {
    assertEq((await fetch(`${srv.url}/nope`)).status, 404, 'unknown path');
    const r = await fetch(`${srv.url}/v1/chat/completions`);
    assertEq(r.status, 405, 'GET on a POST endpoint');
    assertEq(r.headers.get('allow'), 'POST, OPTIONS', 'Allow');
    assertEq((await fetch(`${srv.url}/health`, { method: 'DELETE' })).status, 405, 'DELETE /health');
    await stillServes();
  }],
]);

await srv.stop();
process.exitCode = failed ? 1 : 0;
