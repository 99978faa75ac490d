// zt-host.js — runs zt.wasm in the page: the WASI calls it makes (an
// in-memory file system of the files the page hands it, stdout/stderr to
// the console), the WebGPU calls of src/backend/webgpu/host.h (ids for GPU
// objects, one compute pass per forward, async readbacks), and a small
// API over the exports of src/wasm/zt_wasm.c.
//
// Readbacks and error checks are asynchronous in the browser; the C code
// is synchronous. JSPI joins them: those two imports are wrapped in
// WebAssembly.Suspending, and every export that can reach them is called
// through WebAssembly.promising, so the wasm stack parks while the GPU
// works and the page stays responsive.

const WASI_EBADF = 8, WASI_EINVAL = 28, WASI_ENOENT = 44, WASI_ENOSYS = 52, WASI_EROFS = 69;
const FILETYPE_CHAR = 2, FILETYPE_DIR = 3, FILETYPE_FILE = 4;

// bits of zt_gpu_features()
const GPU_DEVICE = 1, GPU_F16 = 2, GPU_SUBGROUPS = 4, GPU_CPU_ADAPTER = 8;

class ZtError extends Error {}

export class Zt {
  // Opens a WebGPU device (when the browser has one) and starts zt.wasm.
  // allowF16 / allowSubgroups: false keeps the fallback paths even when
  // the device has the feature.
  // split: threads per matmul output feature (0: by adapter).
  static async create({ wasmUrl = 'zt.wasm', allowF16 = true, allowSubgroups = true, split = 0,
                        log = (s) => console.log(s) } = {}) {
    if (typeof WebAssembly.Suspending !== 'function')
      throw new ZtError('this browser has no JSPI (WebAssembly.Suspending): use a current Chromium');
    const zt = new Zt(log);
    await zt.#openDevice(allowF16, allowSubgroups);
    const module = await WebAssembly.compileStreaming(fetch(wasmUrl));
    const instance = await WebAssembly.instantiate(module, {
      wasi_snapshot_preview1: zt.#wasiImports(),
      zt_gpu: zt.#gpuImports(),
    });
    zt.#exports = instance.exports;
    zt.#exports._initialize();
    const P = (name) => WebAssembly.promising(instance.exports[name]);
    zt.#async = { load: P('zt_wasm_load'), begin: P('zt_wasm_begin'), step: P('zt_wasm_step'),
                  logits: P('zt_wasm_logits'), selftest: P('zt_wasm_selftest') };
    zt.#exports.zt_wasm_allow(allowF16 ? 1 : 0, allowSubgroups ? 1 : 0, split);
    return zt;
  }

  constructor(log) {
    this.#log = log;
  }

  // ---- what the page and the tests call ----------------------------------

  // The adapter and the optional features the device was opened with.
  get gpu() {
    return { adapter: this.#adapterName, features: [...(this.#device?.features ?? [])],
             hasDevice: !!this.#device };
  }

  // "adapter; f32 path; subgroup reductions": what a webgpu engine uses.
  device() { return this.#str(this.#exports.zt_wasm_device()); }

  // Puts bytes at `path` of the module's file system (replacing a file).
  addFile(path, bytes) { this.#files.set(normalize(path), bytes); }
  removeFile(path) { this.#files.delete(normalize(path)); }

  // Loads a model file given with addFile. Throws with zt's message.
  async load(path, { backend = 'webgpu', nCtx = 2048, kv = 'f16', maxBatch = 64 } = {}) {
    const rc = await this.#withStrings([path, backend, kv], ([p, b, k]) =>
      this.#async.load(p, b, nCtx, k, maxBatch));
    this.#check(rc);
    return this.info();
  }

  unload() { this.#exports.zt_wasm_unload(); }

  info() { return JSON.parse(this.#str(this.#exports.zt_wasm_info())); }

  sampling({ temperature = 0, topK = 0, topP = 1, minP = 0, repeatPenalty = 1, seed = 1 } = {}) {
    this.#check(this.#exports.zt_wasm_sampling(temperature, topK, topP, minP, repeatPenalty,
                                                seed >>> 0));
  }

  // Generates a reply. messages: [{role, content}] rendered with the
  // model's chat template, or prompt: plain text. onPiece(text, stats) is
  // called for every token. Resolves to {text, stats}.
  async generate({ messages = null, prompt = '', maxTokens = 128, onPiece = () => {} }) {
    if (this.#busy) throw new ZtError('a generation is already running');
    this.#busy = true;
    try {
      if (messages) {
        this.#exports.zt_wasm_chat_clear();
        for (const m of messages)
          this.#check(this.#withStrings([m.role, m.content],
            ([r, c]) => this.#exports.zt_wasm_chat_add(r, c)));
      }
      const t0 = performance.now();
      this.#check(await this.#withStrings([prompt], ([p]) =>
        this.#async.begin(p, messages ? 1 : 0, maxTokens)));
      const t1 = performance.now();
      let text = '', n = 0, rc;
      const stats = () => ({ ...JSON.parse(this.#str(this.#exports.zt_wasm_stats())),
                             prefillMs: t1 - t0, decodeMs: performance.now() - t1, tokens: n });
      do {
        rc = await this.#async.step();
        this.#check(rc);
        const piece = this.#str(this.#exports.zt_wasm_piece());
        if (rc > 0) n++;
        text += piece;
        onPiece(piece, stats());
      } while (rc > 0);
      return { text, stats: stats() };
    } finally {
      this.#busy = false;
    }
  }

  stop() { this.#exports.zt_wasm_stop(); }

  // Logits [tokens.length][vocab] of a fresh sequence (tests).
  async logits(tokens) {
    const vocab = this.info().n_vocab;
    const e = this.#exports;
    const tp = e.zt_wasm_alloc(4 * tokens.length), op = e.zt_wasm_alloc(4 * tokens.length * vocab);
    try {
      new Int32Array(e.memory.buffer, tp, tokens.length).set(tokens);
      this.#check(await this.#async.logits(tp, tokens.length, op));
      return new Float32Array(e.memory.buffer, op, tokens.length * vocab).slice();
    } finally {
      e.zt_wasm_free(tp);
      e.zt_wasm_free(op);
    }
  }

  // The WebGPU kernel tests (src/backend/webgpu/selftest.c): [{name, err, tol, ok}].
  async selftest({ f16 = true, subgroups = true, split = 0, seed = 1 } = {}) {
    const out = this.#str(await this.#async.selftest(f16 ? 1 : 0, subgroups ? 1 : 0, split, seed));
    if (!out) throw new ZtError(this.#str(this.#exports.zt_wasm_error()));
    return JSON.parse(out);
  }

  tokenize(text, flags = 3) {
    const e = this.#exports;
    const out = e.zt_wasm_alloc(4);
    try {
      const n = this.#withStrings([text], ([t]) => e.zt_wasm_tokenize(t, flags, out));
      this.#check(n);
      const ids = new DataView(e.memory.buffer).getUint32(out, true);
      const res = Array.from(new Int32Array(e.memory.buffer, ids, n));
      e.zt_wasm_free(ids);
      return res;
    } finally {
      e.zt_wasm_free(out);
    }
  }

  // ---- internals ------------------------------------------------------------

  #log;
  #exports = null;
  #async = null;
  #busy = false;
  #files = new Map();  // path -> Uint8Array
  #fds = new Map();    // fd -> {path, data, pos} | {dir}
  #nextFd = 4;         // 3 is the preopened "/"
  #adapterName = 'none';
  #cpuAdapter = false;
  #device = null;
  #objects = [null];   // id -> GPUBuffer | GPUComputePipeline | GPUBindGroup
  #modules = new Map();// WGSL text -> GPUShaderModule
  #staging = null;     // MAP_READ buffer for readbacks
  #errors = [];        // uncaptured device errors since the last check
  #decoder = new TextDecoder();
  #encoder = new TextEncoder();

  #check(rc) {
    if (rc < 0) throw new ZtError(this.#str(this.#exports.zt_wasm_error()) || `zt error ${rc}`);
    return rc;
  }

  #mem() { return new Uint8Array(this.#exports.memory.buffer); }
  #view() { return new DataView(this.#exports.memory.buffer); }

  #str(ptr, max = Infinity) {
    const m = this.#mem();
    let end = ptr;
    while (m[end] !== 0 && end - ptr < max) end++;
    return this.#decoder.decode(m.subarray(ptr, end));
  }

  #putStr(s, ptr, cap) {
    const b = this.#encoder.encode(s).subarray(0, cap - 1);
    this.#mem().set(b, ptr);
    this.#mem()[ptr + b.length] = 0;
  }

  // Copies strings into wasm memory for the length of fn (which may be async).
  #withStrings(strs, fn) {
    const e = this.#exports;
    const ptrs = strs.map((s) => {
      const b = this.#encoder.encode(s);
      const p = e.zt_wasm_alloc(b.length + 1);
      this.#mem().set(b, p);
      this.#mem()[p + b.length] = 0;
      return p;
    });
    const free = () => ptrs.forEach((p) => e.zt_wasm_free(p));
    let r;
    try {
      r = fn(ptrs);
    } catch (err) {
      free();
      throw err;
    }
    if (r instanceof Promise) return r.finally(free);
    free();
    return r;
  }

  async #openDevice(allowF16, allowSubgroups) {
    if (!navigator.gpu) return;
    const adapter = await navigator.gpu.requestAdapter();
    if (!adapter) return;
    const info = adapter.info ?? {};
    this.#cpuAdapter = !!info.isFallbackAdapter || info.architecture === 'swiftshader';
    this.#adapterName = [info.vendor, info.architecture, info.description]
      .filter((s) => s).join(' ') || 'unknown adapter';
    const want = [];
    if (allowF16 && adapter.features.has('shader-f16')) want.push('shader-f16');
    if (allowSubgroups && adapter.features.has('subgroups')) want.push('subgroups');
    const L = adapter.limits;
    this.#device = await adapter.requestDevice({
      requiredFeatures: want,
      requiredLimits: {
        maxStorageBufferBindingSize: L.maxStorageBufferBindingSize,
        maxBufferSize: L.maxBufferSize,
        maxComputeWorkgroupStorageSize: L.maxComputeWorkgroupStorageSize,
        maxStorageBuffersPerShaderStage: Math.min(8, L.maxStorageBuffersPerShaderStage),
      },
    });
    this.#device.addEventListener('uncapturederror', (ev) => this.#errors.push(ev.error.message));
    this.#device.pushErrorScope('out-of-memory');
    this.#device.pushErrorScope('validation');
  }

  #add(obj) {
    this.#objects.push(obj);
    return this.#objects.length - 1;
  }

  #gpuImports() {
    const GB = globalThis.GPUBufferUsage;
    return {
      features: () => {
        const d = this.#device;
        if (!d) return 0;
        return GPU_DEVICE | (d.features.has('shader-f16') ? GPU_F16 : 0) |
               (d.features.has('subgroups') ? GPU_SUBGROUPS : 0) |
               (this.#cpuAdapter ? GPU_CPU_ADAPTER : 0);
      },
      adapter_name: (out, cap) => this.#putStr(this.#adapterName, out, cap),
      max_binding: () => Math.min(this.#device?.limits.maxStorageBufferBindingSize ?? 0,
                                  0xfffffff0) >>> 0,
      buffer_create: (size, usage, label) => {
        const u = usage === 2 ? GB.UNIFORM | GB.COPY_DST
                              : GB.STORAGE | GB.COPY_DST | GB.COPY_SRC;
        return this.#add(this.#device.createBuffer({ size: size >>> 0, usage: u,
                                                     label: this.#str(label) }));
      },
      buffer_write: (id, offset, src, size) => {
        this.#device.queue.writeBuffer(this.#objects[id], offset >>> 0,
                                       this.#exports.memory.buffer, src >>> 0, size >>> 0);
      },
      buffer_destroy: (id) => {
        this.#objects[id]?.destroy();
        this.#objects[id] = null;
      },
      pipeline_create: (src, len, label, names, values, n) => {
        const code = this.#decoder.decode(this.#mem().subarray(src, src + len));
        let module = this.#modules.get(code);
        if (!module) {
          module = this.#device.createShaderModule({ code, label: this.#str(label) });
          this.#modules.set(code, module);
        }
        const constants = {};
        const v = this.#view();
        for (let i = 0; i < n; i++)
          constants[this.#str(v.getUint32(names + 4 * i, true))] = v.getFloat64(values + 8 * i, true);
        return this.#add(this.#device.createComputePipeline({
          label: this.#str(label), layout: 'auto',
          compute: { module, entryPoint: 'main', constants },
        }));
      },
      bind_group_create: (pipeline, entries, n, label) => {
        const v = this.#view(), list = [];
        for (let i = 0; i < n; i++) {
          const at = entries + 16 * i;
          const size = v.getUint32(at + 12, true);
          list.push({ binding: v.getUint32(at, true),
                      resource: { buffer: this.#objects[v.getUint32(at + 4, true)],
                                  offset: v.getUint32(at + 8, true), size: size || undefined } });
        }
        return this.#add(this.#device.createBindGroup({
          label: this.#str(label), layout: this.#objects[pipeline].getBindGroupLayout(0),
          entries: list,
        }));
      },
      submit: (list, n) => {
        const v = this.#view(), enc = this.#device.createCommandEncoder();
        const pass = enc.beginComputePass();
        for (let i = 0; i < n; i++) {
          const at = list + 20 * i;
          pass.setPipeline(this.#objects[v.getUint32(at, true)]);
          pass.setBindGroup(0, this.#objects[v.getUint32(at + 4, true)]);
          pass.dispatchWorkgroups(v.getUint32(at + 8, true), v.getUint32(at + 12, true),
                                  v.getUint32(at + 16, true));
        }
        pass.end();
        this.#device.queue.submit([enc.finish()]);
      },
      read: new WebAssembly.Suspending(async (id, offset, size, dst) => {
        size >>>= 0;
        if (!this.#staging || this.#staging.size < size) {
          this.#staging?.destroy();
          this.#staging = this.#device.createBuffer({ size: Math.max(size, 1 << 16),
            usage: GB.MAP_READ | GB.COPY_DST, label: 'readback' });
        }
        const enc = this.#device.createCommandEncoder();
        enc.copyBufferToBuffer(this.#objects[id], offset >>> 0, this.#staging, 0, size);
        this.#device.queue.submit([enc.finish()]);
        try {
          await this.#staging.mapAsync(GPUMapMode.READ, 0, size);
        } catch (err) {
          this.#log(`zt: readback failed: ${err.message}`);
          return 1;
        }
        this.#mem().set(new Uint8Array(this.#staging.getMappedRange(0, size)), dst >>> 0);
        this.#staging.unmap();
        return 0;
      }),
      check: new WebAssembly.Suspending(async (out, cap) => {
        const d = this.#device;
        const found = [await d.popErrorScope(), await d.popErrorScope()]
          .filter((e) => e).map((e) => e.message);
        d.pushErrorScope('out-of-memory');
        d.pushErrorScope('validation');
        found.push(...this.#errors.splice(0));
        if (!found.length) return 0;
        this.#log(`zt: WebGPU error: ${found.join('\n')}`);
        this.#putStr(found[0].replace(/\s+/g, ' '), out, cap);
        return 1;
      }),
    };
  }

  // ---- WASI: just what the C core uses -------------------------------------

  #wasiImports() {
    const ok = 0;
    const file = (fd) => this.#fds.get(fd);
    const iovs = (ptr, n) => {
      const v = this.#view(), out = [];
      for (let i = 0; i < n; i++)
        out.push([v.getUint32(ptr + 8 * i, true), v.getUint32(ptr + 8 * i + 4, true)]);
      return out;
    };
    const readInto = (f, list, pos) => {
      let done = 0;
      const m = this.#mem();
      for (const [p, len] of list) {
        const chunk = f.data.subarray(pos + done, Math.min(f.data.length, pos + done + len));
        m.set(chunk, p);
        done += chunk.length;
        if (chunk.length < len) break;
      }
      return done;
    };
    const filestat = (buf, type, size) => {
      const v = this.#view();
      for (let i = 0; i < 64; i += 8) v.setBigUint64(buf + i, 0n, true);
      v.setUint8(buf + 16, type);
      v.setBigUint64(buf + 24, 1n, true);
      v.setBigUint64(buf + 32, BigInt(size), true);
    };
    const lookup = (dirfd, ptr, len) => {
      if (dirfd !== 3 && !file(dirfd)?.dir) return null;
      const base = dirfd === 3 ? '' : file(dirfd).path;
      const rel = this.#decoder.decode(this.#mem().subarray(ptr, ptr + len));
      return normalize(`${base}/${rel}`);
    };
    const isDir = (path) => path === '/' ||
      [...this.#files.keys()].some((k) => k.startsWith(path.endsWith('/') ? path : `${path}/`));
    let line = ['', ''];
    return {
      args_get: () => ok,
      args_sizes_get: (argc, size) => {
        this.#view().setUint32(argc, 0, true);
        this.#view().setUint32(size, 0, true);
        return ok;
      },
      environ_get: () => ok,
      environ_sizes_get: (count, size) => {
        this.#view().setUint32(count, 0, true);
        this.#view().setUint32(size, 0, true);
        return ok;
      },
      clock_time_get: (id, precision, out) => {
        const ns = BigInt(Math.round((id === 0 ? Date.now() : performance.now()) * 1e6));
        this.#view().setBigUint64(out, ns, true);
        return ok;
      },
      random_get: (ptr, len) => {
        crypto.getRandomValues(this.#mem().subarray(ptr, ptr + len));
        return ok;
      },
      proc_exit: (code) => { throw new ZtError(`zt.wasm exited with ${code}`); },
      fd_prestat_get: (fd, buf) => {
        if (fd !== 3) return WASI_EBADF;
        this.#view().setUint8(buf, 0);
        this.#view().setUint32(buf + 4, 1, true);
        return ok;
      },
      fd_prestat_dir_name: (fd, ptr, len) => {
        if (fd !== 3) return WASI_EBADF;
        this.#mem()[ptr] = 47; // '/'
        return ok;
      },
      path_open: (dirfd, dirflags, path, len, oflags, rb, ri, fdflags, out) => {
        const p = lookup(dirfd, path, len);
        if (p === null) return WASI_EBADF;
        if (oflags & 1 || oflags & 8) return WASI_EROFS; // O_CREAT, O_TRUNC
        const data = this.#files.get(p);
        if (!data && !isDir(p)) return WASI_ENOENT;
        const fd = this.#nextFd++;
        this.#fds.set(fd, data ? { path: p, data, pos: 0 } : { path: p, dir: true });
        this.#view().setUint32(out, fd, true);
        return ok;
      },
      fd_close: (fd) => (this.#fds.delete(fd) ? ok : WASI_EBADF),
      fd_read: (fd, ptr, n, out) => {
        const f = file(fd);
        if (!f || f.dir) return WASI_EBADF;
        const done = readInto(f, iovs(ptr, n), f.pos);
        f.pos += done;
        this.#view().setUint32(out, done, true);
        return ok;
      },
      fd_pread: (fd, ptr, n, offset, out) => {
        const f = file(fd);
        if (!f || f.dir) return WASI_EBADF;
        this.#view().setUint32(out, readInto(f, iovs(ptr, n), Number(offset)), true);
        return ok;
      },
      fd_seek: (fd, offset, whence, out) => {
        const f = file(fd);
        if (!f || f.dir) return WASI_EBADF;
        const base = [0, f.pos, f.data.length][whence];
        const pos = base + Number(offset);
        if (base === undefined || pos < 0) return WASI_EINVAL;
        f.pos = pos;
        this.#view().setBigUint64(out, BigInt(pos), true);
        return ok;
      },
      fd_tell: (fd, out) => {
        const f = file(fd);
        if (!f || f.dir) return WASI_EBADF;
        this.#view().setBigUint64(out, BigInt(f.pos), true);
        return ok;
      },
      fd_filestat_get: (fd, buf) => {
        const f = file(fd);
        if (fd <= 2) filestat(buf, FILETYPE_CHAR, 0);
        else if (fd === 3 || f?.dir) filestat(buf, FILETYPE_DIR, 0);
        else if (f) filestat(buf, FILETYPE_FILE, f.data.length);
        else return WASI_EBADF;
        return ok;
      },
      path_filestat_get: (dirfd, flags, path, len, buf) => {
        const p = lookup(dirfd, path, len);
        if (p === null) return WASI_EBADF;
        const data = this.#files.get(p);
        if (data) filestat(buf, FILETYPE_FILE, data.length);
        else if (isDir(p)) filestat(buf, FILETYPE_DIR, 0);
        else return WASI_ENOENT;
        return ok;
      },
      fd_fdstat_get: (fd, buf) => {
        const f = file(fd);
        if (fd > 3 && !f) return WASI_EBADF;
        const v = this.#view();
        v.setUint8(buf, fd <= 2 ? FILETYPE_CHAR : fd === 3 || f.dir ? FILETYPE_DIR : FILETYPE_FILE);
        v.setUint16(buf + 2, 0, true);
        v.setBigUint64(buf + 8, 0xffffffffffffffffn, true);
        v.setBigUint64(buf + 16, 0xffffffffffffffffn, true);
        return ok;
      },
      fd_fdstat_set_flags: () => ok,
      fd_readdir: () => WASI_ENOSYS,
      fd_write: (fd, ptr, n, out) => {
        if (fd !== 1 && fd !== 2) return WASI_EBADF;
        let done = 0;
        for (const [p, len] of iovs(ptr, n)) {
          line[fd - 1] += this.#decoder.decode(this.#mem().subarray(p, p + len));
          done += len;
        }
        const parts = line[fd - 1].split('\n');
        line[fd - 1] = parts.pop();
        for (const s of parts) this.#log(s);
        this.#view().setUint32(out, done, true);
        return ok;
      },
    };
  }
}

function normalize(path) {
  const out = [];
  for (const part of path.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') out.pop();
    else out.push(part);
  }
  return `/${out.join('/')}`;
}

export { ZtError };
