// app.js — the chat page: loads a GGUF (the demo model next to the page by
// default, a file from disk, or a URL), keeps it in the Origin Private File
// System so a reload skips the download, and streams replies from zt.wasm
// with live tok/s and dispatches per token.
//
// URL parameters: model=URL (default zt-demo-15m-f16.gguf), backend=webgpu|cpu,
// ctx=N (context, default 2048), load=none (start without a model).
// body[data-state] is starting | loading | ready | generating | error, for
// scripts that drive the page (tests/browser).
import { Zt } from './zt-host.js';

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const backend = params.get('backend') || 'webgpu';
const nCtx = Number(params.get('ctx')) || 2048;

let zt = null;
let messages = []; // [{role, content}] of the conversation so far

function setState(state, text) {
  document.body.dataset.state = state;
  if (text !== undefined) $('status').textContent = text;
  const ready = state === 'ready';
  $('prompt').disabled = !ready;
  $('send').disabled = !ready;
  $('stop').disabled = state !== 'generating';
}

function fill(dl, facts) {
  dl.replaceChildren(...Object.entries(facts).flatMap(([k, v]) => {
    const dt = document.createElement('dt');
    const dd = document.createElement('dd');
    dt.textContent = k;
    dd.textContent = v;
    return [dt, dd];
  }));
}

const mib = (n) => `${(n / 1048576).toFixed(1)} MiB`;

// ---- weights: OPFS cache ----------------------------------------------------

async function cacheDir() {
  try {
    return await (await navigator.storage.getDirectory()).getDirectoryHandle('zt-models',
                                                                            { create: true });
  } catch {
    return null; // no OPFS (private mode, old browser): no cache
  }
}

// Bytes of `url`, from the cache when present; else downloaded (with
// progress) and cached. Returns {bytes, cached}.
async function fetchModel(url) {
  const dir = await cacheDir();
  const name = encodeURIComponent(new URL(url, location.href).href);
  if (dir) {
    try {
      const file = await (await dir.getFileHandle(name)).getFile();
      if (file.size > 0) return { bytes: new Uint8Array(await file.arrayBuffer()), cached: true };
    } catch { /* not cached yet */ }
  }
  const res = await fetch(url);
  if (!res.ok) throw new Error(`${url}: HTTP ${res.status}`);
  const total = Number(res.headers.get('content-length')) || 0;
  const reader = res.body.getReader();
  const chunks = [];
  let got = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    got += value.length;
    setState('loading', `downloading ${mib(got)}${total ? ` of ${mib(total)}` : ''}…`);
  }
  const bytes = new Uint8Array(got);
  let at = 0;
  for (const c of chunks) bytes.set(c, at), at += c.length;
  if (dir) await saveToCache(dir, name, bytes);
  return { bytes, cached: false };
}

async function saveToCache(dir, name, bytes) {
  try {
    const w = await (await dir.getFileHandle(name, { create: true })).createWritable();
    await w.write(bytes);
    await w.close();
  } catch (err) {
    console.warn(`zt: not cached: ${err.message}`);
  }
}

// ---- loading ----------------------------------------------------------------

async function loadModel(label, getBytes) {
  setState('loading', `loading ${label}…`);
  const t0 = performance.now();
  try {
    const { bytes, cached } = await getBytes();
    const t1 = performance.now();
    setState('loading', `uploading ${label} to the ${backend} backend…`);
    zt.addFile('/models/model.gguf', bytes);
    const info = await zt.load('/models/model.gguf', { backend, nCtx });
    zt.removeFile('/models/model.gguf'); // the module holds its own copy now
    const t2 = performance.now();
    fill($('model'), {
      file: label, name: info.name || '—', arch: info.arch, size: mib(bytes.length),
      shape: `${info.n_layers} layers, dim ${info.dim}, ${info.n_heads} heads (${info.n_kv_heads} kv), ffn ${info.ffn_dim}`,
      vocab: info.n_vocab, context: info.n_ctx, template: info.template,
      source: cached ? `cache (OPFS), read in ${(t1 - t0).toFixed(0)} ms` : `downloaded in ${(t1 - t0).toFixed(0)} ms, cached`,
      upload: `${(t2 - t1).toFixed(0)} ms`,
    });
    showDevice(info);
    messages = [];
    $('messages').replaceChildren();
    setState('ready', `ready: ${label} (${cached ? 'from cache' : 'downloaded'})`);
  } catch (err) {
    setState('error', `cannot load ${label}: ${err.message}`);
  }
}

function showDevice(info) {
  const g = zt.gpu;
  fill($('device'), {
    adapter: g.adapter,
    features: g.features.filter((f) => f === 'shader-f16' || f === 'subgroups').join(', ') || 'none',
    backend: info ? info.backend : backend,
    'in use': info && info.device ? info.device.split('; ').slice(1).join(', ') : zt.device().split('; ').slice(1).join(', '),
  });
}

// ---- chat -------------------------------------------------------------------

function bubble(role, text) {
  const li = document.createElement('li');
  li.className = role;
  const body = document.createElement('span');
  body.className = 'text';
  body.textContent = text;
  li.append(body);
  $('messages').append(li);
  li.scrollIntoView({ block: 'end' });
  return li;
}

function speed(s) {
  const decodeTps = s.tokens > 0 && s.decodeMs > 0 ? s.tokens / (s.decodeMs / 1000) : 0;
  const prefill = s.n_prompt - s.n_reused;
  return {
    prefill: `${prefill} tokens in ${s.prefillMs.toFixed(0)} ms (${(prefill / (s.prefillMs / 1000)).toFixed(1)} tok/s)${s.n_reused ? `, ${s.n_reused} reused` : ''}`,
    decode: `${s.tokens} tokens, ${decodeTps.toFixed(1)} tok/s`,
    'dispatches/token': s.dispatches >= 0 ? s.dispatches : 'none (CPU)',
    stop: s.stop || '…',
  };
}

async function send(text) {
  messages.push({ role: 'user', content: text });
  bubble('user', text);
  const li = bubble('assistant', '');
  const body = li.querySelector('.text');
  const meta = document.createElement('span');
  meta.className = 'meta';
  li.append(meta);
  setState('generating', 'generating…');
  try {
    zt.sampling({ temperature: Number($('temperature').value) || 0, seed: Date.now() >>> 0 });
    const { text: reply, stats } = await zt.generate({
      messages, maxTokens: Number($('max-tokens').value) || 64,
      onPiece: (piece, s) => {
        body.textContent += piece;
        const sp = speed(s);
        fill($('speed'), sp);
        meta.textContent = `${sp.decode} · ${sp['dispatches/token']} dispatches/token`;
        li.scrollIntoView({ block: 'end' });
      },
    });
    messages.push({ role: 'assistant', content: reply });
    const sp = speed(stats);
    fill($('speed'), sp);
    meta.textContent = `${sp.decode} · ${sp['dispatches/token']} dispatches/token · stop: ${stats.stop}`;
    li.dataset.done = 'true';
    setState('ready', 'ready');
  } catch (err) {
    li.dataset.done = 'error';
    setState('error', `generation failed: ${err.message}`);
  }
}

// ---- wiring -------------------------------------------------------------------

$('composer').addEventListener('submit', (ev) => {
  ev.preventDefault();
  const text = $('prompt').value.trim();
  if (!text || document.body.dataset.state !== 'ready') return;
  $('prompt').value = '';
  send(text);
});
$('prompt').addEventListener('keydown', (ev) => {
  if (ev.key === 'Enter' && !ev.shiftKey) {
    ev.preventDefault();
    $('composer').requestSubmit();
  }
});
$('stop').addEventListener('click', () => zt.stop());
$('reset').addEventListener('click', () => {
  messages = [];
  $('messages').replaceChildren();
});
$('file').addEventListener('change', async () => {
  const file = $('file').files[0];
  if (!file) return;
  await loadModel(file.name, async () => {
    const bytes = new Uint8Array(await file.arrayBuffer());
    const dir = await cacheDir();
    if (dir) await saveToCache(dir, encodeURIComponent(`file:${file.name}:${file.size}`), bytes);
    return { bytes, cached: false };
  });
});
$('fetch').addEventListener('submit', (ev) => {
  ev.preventDefault();
  const url = $('url').value.trim();
  if (url) loadModel(url, () => fetchModel(url));
});

async function main() {
  try {
    zt = await Zt.create({ wasmUrl: 'zt.wasm' });
  } catch (err) {
    setState('error', `cannot start zt.wasm: ${err.message}`);
    return;
  }
  showDevice(null);
  if (!zt.gpu.hasDevice && backend === 'webgpu') {
    setState('error', 'this browser gave no WebGPU adapter (try ?backend=cpu)');
    return;
  }
  if (params.get('load') === 'none') {
    setState('empty', 'no model loaded');
    return;
  }
  const url = params.get('model') || 'zt-demo-15m-f16.gguf';
  await loadModel(url.split('/').pop(), () => fetchModel(url));
}

main();
