// zt chat: the page's behaviour. It keeps the conversation in memory, sends
// it to /v1/chat/completions as a stream (server-sent events), renders the
// reply as Markdown while it arrives, and shows time to first token and
// tokens per second live. Stop aborts the request: the server sees the
// connection close and frees the sequence at once.
import { renderMarkdown, escapeHtml } from './markdown.js';

const $ = (id) => document.getElementById(id);
const SETTINGS_KEY = 'zt-chat-settings';
// input id -> request field, and how to read it
const SAMPLING = [
  ['temperature', 'temperature', parseFloat],
  ['top-p', 'top_p', parseFloat],
  ['top-k', 'top_k', (v) => parseInt(v, 10)],
  ['min-p', 'min_p', parseFloat],
  ['repetition-penalty', 'repetition_penalty', parseFloat],
  ['presence-penalty', 'presence_penalty', parseFloat],
  ['frequency-penalty', 'frequency_penalty', parseFloat],
  ['max-tokens', 'max_tokens', (v) => parseInt(v, 10)],
  ['seed', 'seed', (v) => parseInt(v, 10)],
];

const state = {
  history: [],        // [{role, content}] of the conversation so far
  controller: null,   // AbortController of the reply in flight
  defaults: {},       // input id -> the server's default value
  model: null,
};

// ---- server facts ---------------------------------------------------------

function formatCount(n) {
  if (n >= 1e9) return (n / 1e9).toFixed(1) + 'B';
  if (n >= 1e6) return (n / 1e6).toFixed(1) + 'M';
  if (n >= 1e3) return (n / 1e3).toFixed(1) + 'k';
  return String(n);
}

async function loadModelInfo() {
  try {
    const [props, models] = await Promise.all([
      fetch('/props').then((r) => r.json()),
      fetch('/v1/models').then((r) => r.json()),
    ]);
    state.model = models.data && models.data[0] ? models.data[0].id : props.model;
    const info = $('model-info');
    info.innerHTML = `<b>${escapeHtml(props.model_name || props.model)}</b> &middot; ` +
      `${escapeHtml(props.architecture)} &middot; ${formatCount(props.n_params)} params &middot; ` +
      `context ${props.n_ctx} &middot; ${props.parallel} slots &middot; ${escapeHtml(props.backend)}`;
    info.title = `model id: ${state.model}`;
    $('server-info').textContent =
      `model id: ${state.model}\nchat template: ${props.chat_template}\n` +
      `vocabulary: ${props.n_vocab}, layers: ${props.n_layers}, dim: ${props.dim}\n` +
      `trained context: ${props.n_ctx_train}`;
    const d = props.default_generation_settings || {};
    state.defaults = {
      'temperature': d.temperature, 'top-p': d.top_p, 'top-k': d.top_k, 'min-p': d.min_p,
      'repetition-penalty': d.repetition_penalty, 'presence-penalty': d.presence_penalty,
      'frequency-penalty': d.frequency_penalty, 'max-tokens': '', 'seed': '',
    };
    if (!localStorage.getItem(SETTINGS_KEY)) applyDefaults();
  } catch (e) {
    $('model-info').textContent = 'cannot reach the server';
  }
}

// ---- settings ---------------------------------------------------------------

function applyDefaults() {
  for (const [id] of SAMPLING) {
    if (state.defaults[id] !== undefined) $(id).value = state.defaults[id];
  }
}

function saveSettings() {
  const s = { system: $('system-prompt').value };
  for (const [id] of SAMPLING) s[id] = $(id).value;
  localStorage.setItem(SETTINGS_KEY, JSON.stringify(s));
}

function loadSettings() {
  try {
    const s = JSON.parse(localStorage.getItem(SETTINGS_KEY) || 'null');
    if (!s) return;
    $('system-prompt').value = s.system || '';
    for (const [id] of SAMPLING) if (s[id] !== undefined) $(id).value = s[id];
  } catch (e) { /* a broken entry: keep the defaults */ }
}

function samplingParams() {
  const p = {};
  for (const [id, field, parse] of SAMPLING) {
    const raw = $(id).value.trim();
    if (raw === '') continue;
    const v = parse(raw);
    if (Number.isFinite(v)) p[field] = v;
  }
  return p;
}

// ---- the conversation ----------------------------------------------------------

function scrollToEnd() {
  const m = $('messages');
  m.scrollTop = m.scrollHeight;
}

function addMessage(role, text) {
  $('empty').hidden = true;
  const el = document.createElement('div');
  el.className = `msg ${role}`;
  el.innerHTML = `<div class="role">${role === 'user' ? 'you' : 'assistant'}</div>` +
    '<div class="content"></div><div class="meta"></div>';
  const content = el.querySelector('.content');
  if (role === 'user') content.textContent = text;
  else content.innerHTML = renderMarkdown(text);
  $('messages').appendChild(el);
  scrollToEnd();
  return el;
}

function setStats(tps, ttftMs, tokens) {
  $('stat-tps').textContent = tps === null ? '–' : tps.toFixed(1);
  $('stat-ttft').textContent = ttftMs === null ? '–' : `${Math.round(ttftMs)} ms`;
  $('stat-tokens').textContent = tokens === null ? '–' : String(tokens);
}

function showError(msg) {
  const e = $('error');
  e.textContent = msg;
  e.hidden = !msg;
}

function setBusy(busy) {
  $('send').hidden = busy;
  $('stop').hidden = !busy;
  $('input').disabled = false;
}

// Splits the text received so far into whole SSE events; returns
// [events, rest]. Each event is the joined data of its "data:" lines.
function takeEvents(buffer) {
  const events = [];
  let at;
  while ((at = buffer.search(/\r?\n\r?\n/)) >= 0) {
    const block = buffer.slice(0, at);
    buffer = buffer.slice(at + buffer.slice(at).match(/^\r?\n\r?\n/)[0].length);
    const data = block.split(/\r?\n/).filter((l) => l.startsWith('data:'))
      .map((l) => l.slice(5).replace(/^ /, '')).join('\n');
    if (data) events.push(data);
  }
  return [events, buffer];
}

async function send(text) {
  if (state.controller) return;
  showError('');
  state.history.push({ role: 'user', content: text });
  addMessage('user', text);
  const el = addMessage('assistant', '');
  el.classList.add('streaming');
  const content = el.querySelector('.content');
  const meta = el.querySelector('.meta');

  const messages = [];
  const system = $('system-prompt').value.trim();
  if (system) messages.push({ role: 'system', content: system });
  messages.push(...state.history);
  const body = {
    model: state.model || undefined, messages, stream: true,
    stream_options: { include_usage: true }, ...samplingParams(),
  };

  const controller = new AbortController();
  state.controller = controller;
  setBusy(true);
  setStats(null, null, 0);
  const t0 = performance.now();
  let tFirst = null;
  let reply = '';
  let chunks = 0;
  let finish = null;
  let usage = null;
  let timings = null;
  let stopped = false;
  let failed = null;
  let frame = 0;
  const render = () => {
    frame = 0;
    content.innerHTML = renderMarkdown(reply);
    scrollToEnd();
  };
  try {
    const res = await fetch('/v1/chat/completions', {
      method: 'POST', headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify(body), signal: controller.signal,
    });
    if (!res.ok) {
      const err = await res.json().catch(() => null);
      throw new Error(err && err.error ? err.error.message : `HTTP ${res.status}`);
    }
    const reader = res.body.getReader();
    const decoder = new TextDecoder();
    let buffer = '';
    let done = false;
    while (!done) {
      const { value, done: end } = await reader.read();
      if (end) break;
      let events;
      [events, buffer] = takeEvents(buffer + decoder.decode(value, { stream: true }));
      for (const data of events) {
        if (data === '[DONE]') { done = true; break; }
        const msg = JSON.parse(data);
        if (msg.error) throw new Error(msg.error.message);
        if (msg.usage) { usage = msg.usage; timings = msg.timings || null; }
        const choice = msg.choices && msg.choices[0];
        if (!choice) continue;
        const piece = choice.delta && choice.delta.content;
        if (piece) {
          const now = performance.now();
          if (tFirst === null) tFirst = now;
          reply += piece;
          chunks++;
          const tps = chunks > 1 ? (chunks - 1) / ((now - tFirst) / 1000) : null;
          setStats(tps, tFirst - t0, chunks);
          if (!frame) frame = requestAnimationFrame(render);
        }
        if (choice.finish_reason) finish = choice.finish_reason;
      }
    }
  } catch (e) {
    if (e.name === 'AbortError') stopped = true;
    else failed = e.message || String(e);
  }
  if (frame) cancelAnimationFrame(frame);
  render();
  el.classList.remove('streaming');
  state.controller = null;
  setBusy(false);

  if (failed && !reply) {
    el.remove();
    state.history.pop();
    showError(failed);
    return;
  }
  if (failed) showError(failed);
  state.history.push({ role: 'assistant', content: reply });
  // final numbers: the server's own count and timing when it sent them
  const tokens = usage ? usage.completion_tokens : chunks;
  let tps = tFirst !== null && chunks > 1 ? (chunks - 1) / ((performance.now() - tFirst) / 1000) : null;
  if (timings && timings.predicted_per_second > 0) tps = timings.predicted_per_second;
  const ttft = tFirst !== null ? tFirst - t0 : null;
  setStats(tps, ttft, tokens);
  const parts = [`${tokens} tokens`];
  if (tps !== null) parts.push(`${tps.toFixed(1)} tok/s`);
  if (ttft !== null) parts.push(`first token ${Math.round(ttft)} ms`);
  if (stopped) parts.push('<span class="stopped">stopped</span>');
  else if (finish) parts.push(finish === 'length' ? 'hit the token limit' : 'done');
  meta.innerHTML = parts.join(' &middot; ');
  el.dataset.finish = stopped ? 'stopped' : finish || 'error';
}

function stop() {
  if (state.controller) state.controller.abort();
}

function newConversation() {
  stop();
  state.history = [];
  for (const el of [...$('messages').querySelectorAll('.msg')]) el.remove();
  $('empty').hidden = false;
  showError('');
  setStats(null, null, null);
  $('input').focus();
}

// ---- wiring -------------------------------------------------------------------------

function init() {
  loadSettings();
  loadModelInfo();
  $('composer').addEventListener('submit', (e) => {
    e.preventDefault();
    const text = $('input').value.trim();
    if (!text || state.controller) return;
    $('input').value = '';
    send(text);
  });
  $('input').addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      $('composer').requestSubmit();
    }
  });
  $('stop').addEventListener('click', stop);
  $('new-chat').addEventListener('click', newConversation);
  $('toggle-settings').addEventListener('click', () => $('settings').classList.toggle('hidden'));
  $('reset-settings').addEventListener('click', () => { applyDefaults(); saveSettings(); });
  $('settings').addEventListener('change', saveSettings);
  $('system-prompt').addEventListener('input', saveSettings);
  $('messages').addEventListener('click', async (e) => {
    const b = e.target.closest('.copy-code');
    if (!b) return;
    const code = b.closest('.code-block').querySelector('code').textContent;
    try {
      await navigator.clipboard.writeText(code);
      b.textContent = 'copied';
    } catch (err) {
      b.textContent = 'cannot copy';
    }
    setTimeout(() => { b.textContent = 'copy'; }, 1500);
  });
  $('input').focus();
}

init();
