// zt serve through the official `openai` npm client: chat and completions,
// streamed and not, usage, finish reasons, stop strings, seeds, errors;
// plus /health, /metrics and /v1/models. Greedy replies are checked against
// `zt run` of the same prompt (the solo reference).
import OpenAI from 'openai';
import {
  MODEL_ID, assert, assertEq, metrics, runTests, startServer, streamText, ztRun,
} from './lib.mjs';

const srv = await startServer(['--parallel', '4', '--ctx', '512']);
const client = new OpenAI({ baseURL: `${srv.url}/v1`, apiKey: 'unused', maxRetries: 0, timeout: 60000 });
const PROMPT = 'Tell me a fortune.';

async function chatStream(params) {
  const stream = await client.chat.completions.create({ ...params, stream: true, stream_options: { include_usage: true } });
  let text = '';
  let finish = null;
  let usage = null;
  let first = true;
  for await (const chunk of stream) {
    if (chunk.usage) usage = chunk.usage;
    const c = chunk.choices[0];
    if (!c) continue;
    if (first) { assertEq(c.delta.role, 'assistant', 'the first delta\'s role'); first = false; }
    text += c.delta.content || '';
    if (c.finish_reason) finish = c.finish_reason;
  }
  return { text, finish, usage };
}

const failed = await runTests([
  ['models_list_shows_the_served_model', async () => {
    const list = await client.models.list();
    assertEq(list.data.length, 1, 'models');
    assertEq(list.data[0].id, MODEL_ID, 'model id');
    const one = await client.models.retrieve(MODEL_ID);
    assertEq(one.id, MODEL_ID, 'retrieved id');
  }],

  ['chat_non_streaming_equals_zt_run_greedy', async () => {
    const ref = await ztRun(PROMPT, 40);
    const r = await client.chat.completions.create({
      model: MODEL_ID, messages: [{ role: 'user', content: PROMPT }], temperature: 0, max_tokens: 40,
    });
    assertEq(r.object, 'chat.completion', 'object');
    assertEq(r.choices[0].message.role, 'assistant', 'role');
    assertEq(r.choices[0].message.content, ref, 'reply');
    assert(r.usage.prompt_tokens > 5 && r.usage.completion_tokens > 0, `usage ${JSON.stringify(r.usage)}`);
    assertEq(r.usage.total_tokens, r.usage.prompt_tokens + r.usage.completion_tokens, 'total_tokens');
    assertEq(r.choices[0].finish_reason, r.usage.completion_tokens < 40 ? 'stop' : 'length', 'finish_reason');
  }],

  ['chat_streaming_gives_the_same_text_and_usage', async () => {
    const params = { model: MODEL_ID, messages: [{ role: 'user', content: PROMPT }], temperature: 0, max_tokens: 40 };
    const whole = await client.chat.completions.create(params);
    const s = await chatStream(params);
    assertEq(s.text, whole.choices[0].message.content, 'streamed text');
    assertEq(s.finish, whole.choices[0].finish_reason, 'finish_reason');
    assert(s.usage, 'no usage chunk');
    assertEq(s.usage.completion_tokens, whole.usage.completion_tokens, 'completion_tokens');
  }],

  ['chat_with_system_prompt_and_history_equals_zt_run', async () => {
    const system = 'You quote scripture.';
    const ref = await ztRun('Quote Genesis 1:3.', 30, { extra: ['--system', system] });
    const r = await client.chat.completions.create({
      model: MODEL_ID, temperature: 0, max_tokens: 30,
      messages: [{ role: 'system', content: system }, { role: 'user', content: 'Quote Genesis 1:3.' }],
    });
    assertEq(r.choices[0].message.content, ref, 'reply');
  }],

  ['completions_streamed_and_not_agree_and_keep_the_leading_space', async () => {
    const prompt = 'In the beginning';
    const ref = await ztRun(prompt, 24, { chat: false });
    const r = await client.completions.create({ model: MODEL_ID, prompt, temperature: 0, max_tokens: 24 });
    assertEq(r.object, 'text_completion', 'object');
    const text = r.choices[0].text;
    // zt run prints from the start of a fresh output and drops the first
    // token's space; a completion continues the prompt and keeps it
    assertEq(text.trimStart(), ref.trimStart(), 'completion');
    assert(/^\s/.test(text), `the completion should start with a space: ${JSON.stringify(text)}`);
    assertEq(r.choices[0].finish_reason, 'length', 'finish_reason');
    assertEq(r.usage.completion_tokens, 24, 'completion_tokens');
    const stream = await client.completions.create({ model: MODEL_ID, prompt, temperature: 0, max_tokens: 24, stream: true });
    let streamed = '';
    let finish = null;
    for await (const chunk of stream) {
      streamed += chunk.choices[0] ? chunk.choices[0].text : '';
      if (chunk.choices[0] && chunk.choices[0].finish_reason) finish = chunk.choices[0].finish_reason;
    }
    assertEq(streamed, text, 'streamed completion');
    assertEq(finish, 'length', 'streamed finish_reason');
  }],

  ['stop_strings_cut_the_reply_streamed_and_not', async () => {
    const prompt = 'And the LORD spake unto Moses, saying';
    const base = (await client.completions.create({ model: MODEL_ID, prompt, temperature: 0, max_tokens: 40 })).choices[0].text;
    // a stop string that spans tokens, from the middle of the greedy text
    const words = base.split(' ');
    const stop = words.slice(5, 7).join(' ');
    assert(stop.length > 3, `a usable stop string from ${JSON.stringify(base)}`);
    const expected = base.slice(0, base.indexOf(stop));
    const r = await client.completions.create({ model: MODEL_ID, prompt, temperature: 0, max_tokens: 40, stop: [stop, 'zzzz'] });
    assertEq(r.choices[0].text, expected, 'text before the stop string');
    assertEq(r.choices[0].finish_reason, 'stop', 'finish_reason');
    const s = await streamText(srv.url, '/v1/completions', { prompt, temperature: 0, max_tokens: 40, stop });
    assertEq(s.text, expected, 'streamed text before the stop string');
    assertEq(s.finish, 'stop', 'streamed finish_reason');
  }],

  ['max_tokens_ends_with_finish_reason_length', async () => {
    const r = await client.chat.completions.create({
      model: MODEL_ID, messages: [{ role: 'user', content: 'Quote Numbers 7:1.' }], temperature: 0, max_tokens: 3,
    });
    assertEq(r.usage.completion_tokens, 3, 'completion_tokens');
    assertEq(r.choices[0].finish_reason, 'length', 'finish_reason');
  }],

  ['seeded_sampling_repeats_and_all_sampling_fields_are_taken', async () => {
    const params = {
      model: MODEL_ID, messages: [{ role: 'user', content: PROMPT }], max_tokens: 24,
      temperature: 1.2, top_p: 0.9, seed: 1234, presence_penalty: 0.5, frequency_penalty: 0.3,
      top_k: 50, min_p: 0.02, repetition_penalty: 1.1,
    };
    const a = await client.chat.completions.create(params);
    const b = await client.chat.completions.create(params);
    assert(a.choices[0].message.content.length > 0, 'empty sampled reply');
    assertEq(b.choices[0].message.content, a.choices[0].message.content, 'same seed, same reply');
  }],

  ['bad_requests_raise_the_clients_bad_request_error', async () => {
    for (const [params, param] of [
      [{ temperature: 5 }, 'temperature'],
      [{ n: 2 }, 'n'],
      [{ max_tokens: 0 }, 'max_tokens'],
      [{ messages: [] }, 'messages'],
    ]) {
      let err = null;
      try {
        await client.chat.completions.create({ model: MODEL_ID, messages: [{ role: 'user', content: 'hi' }], ...params });
      } catch (e) { err = e; }
      assert(err instanceof OpenAI.BadRequestError, `${JSON.stringify(params)}: expected a BadRequestError, got ${err}`);
      assertEq(err.status, 400, 'status');
      assertEq(err.param, param, 'param');
      assert(err.message.length > 10, 'a message');
    }
  }],

  ['health_metrics_and_props_report_the_server', async () => {
    const h = await (await fetch(`${srv.url}/health`)).json();
    assertEq(h.status, 'ok', 'health');
    assertEq(h.slots_idle + h.slots_processing, 4, 'slots');
    const m = await metrics(srv.url);
    for (const k of ['zt_requests_total', 'zt_generated_tokens_total', 'zt_prompt_tokens_total',
      'zt_tokens_per_second', 'zt_queue_depth', 'zt_kv_pages_used', 'zt_kv_pages_total',
      'zt_time_to_first_token_seconds_count']) {
      assert(Number.isFinite(m[k]), `metric ${k} missing`);
    }
    assert(m.zt_requests_total >= 10, `requests counted: ${m.zt_requests_total}`);
    assert(m.zt_generated_tokens_total > 100, `tokens counted: ${m.zt_generated_tokens_total}`);
    assertEq(m.zt_kv_pages_used, 0, 'KV pages in use when idle');
    assertEq(m.zt_kv_pages_total, 4 * 512 / 16, 'KV pages in the pool');
    const p = await (await fetch(`${srv.url}/props`)).json();
    assertEq(p.architecture, 'phi3', 'architecture');
    assertEq(p.n_ctx, 512, 'n_ctx');
    assertEq(p.parallel, 4, 'parallel');
  }],
]);

await srv.stop();
process.exitCode = failed ? 1 : 0;
