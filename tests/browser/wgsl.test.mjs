// wgsl.test.mjs — every WGSL pipeline the webgpu backend can build, in
// every variant, compiled by Dawn (npm `webgpu`, Dawn for Node) on its
// null backend, which exposes shader-f16 and subgroups: the f16 path's
// shaders are checked here even though SwiftShader (webgpu.test.mjs) has
// no shader-f16. Dawn's WGSL front end (Tint) parses, resolves types,
// runs the uniformity analysis and substitutes the override constants;
// the null backend runs nothing, so this proves compilation, not numbers.
//
// The texts come from zt.wasm itself (zt_wasm_shaders: the same
// composition the backend uses), with stub imports that report a device
// with both features.
import fs from 'node:fs';
import path from 'node:path';

import { create, globals } from 'webgpu';

import { buildWasm, check, fail, summary } from './lib.mjs';

Object.assign(globalThis, globals);

async function main() {
  let build;
  try {
    build = buildWasm();
  } catch (err) {
    return fail('wasm build', err.message);
  }
  const gpu = create(['backend=null']); // keep: the Dawn instance dies with this object
  const adapter = await gpu.requestAdapter();
  const want = ['shader-f16', 'subgroups'];
  if (!adapter || !want.every((f) => adapter.features.has(f)))
    return fail('wgsl: Dawn null adapter with shader-f16 and subgroups');
  const device = await adapter.requestDevice({ requiredFeatures: want });

  // zt.wasm with imports that only answer "a device with every feature"
  let e = null;
  const zeros = (...ptrs) => {
    for (const p of ptrs) new DataView(e.memory.buffer).setUint32(p, 0, true);
    return 0;
  };
  const wasi = { environ_sizes_get: zeros, args_sizes_get: zeros };
  const host = { features: () => 1 | 2 | 4 }; // a device, shader-f16, subgroups
  const { instance } = await WebAssembly.instantiate(fs.readFileSync(path.join(build, 'zt.wasm')), {
    wasi_snapshot_preview1: new Proxy(wasi, { get: (o, k) => o[k] ?? (() => 8) }), // EBADF: no files
    zt_gpu: new Proxy(host, { get: (o, k) => o[k] ?? (() => 0) }),
  });
  e = instance.exports;
  e._initialize();
  const text = (ptr) => {
    const m = new Uint8Array(e.memory.buffer);
    let end = ptr;
    while (m[end]) end++;
    return new TextDecoder().decode(m.subarray(ptr, end));
  };

  for (const f16 of [true, false])
    for (const subgroups of [true, false])
      for (const split of [1, 8, 64])
        for (const kvF16 of [true, false]) {
          const list = JSON.parse(text(e.zt_wasm_shaders(f16 ? 1 : 0, subgroups ? 1 : 0, split, kvF16 ? 1 : 0)));
          const errors = [];
          for (const p of list) {
            device.pushErrorScope('validation');
            const module = device.createShaderModule({ code: p.code, label: p.label });
            for (const m of (await module.getCompilationInfo()).messages)
              if (m.type === 'error') errors.push(`${p.label}:${m.lineNum}: ${m.message}`);
            device.createComputePipeline({ layout: 'auto', label: p.label,
                                           compute: { module, entryPoint: 'main', constants: p.constants } });
            const err = await device.popErrorScope();
            if (err) errors.push(`${p.label}: ${err.message.split('\n')[0]}`);
          }
          check(errors.length === 0 && list.length === 16, // embed, matmul, ffn x 4 formats + 4
                `wgsl compiles (Dawn): ${f16 ? 'f16' : 'f32'} path, ${subgroups ? 'subgroup' : 'workgroup'} reductions, split ${split}, kv ${kvF16 ? 'f16' : 'f32'}`,
                errors[0] || `${list.length} pipelines`);
        }
  device.destroy();
  return gpu;
}

await main();
process.exitCode = summary().failed ? 1 : 0;
// Dawn keeps the event loop alive
setTimeout(() => process.exit(process.exitCode), 100);
