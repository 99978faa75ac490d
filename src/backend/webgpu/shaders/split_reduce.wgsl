// split_reduce.wgsl — the sum of v over the SPLIT consecutive invocations
// that share one output feature (matmul, ffn), returned to all of them.
// SPLIT (an override, a power of two dividing WG) is WG on GPUs (the full
// reduction of the flavour in use) or a segment of the workgroup (a tree
// in workgroup memory). With SPLIT = 1 (CPU adapters, where a barrier costs
// more than a thread's whole dot product) split_none.wgsl replaces this
// file, so that no barrier is left in the shader at all.
fn reduce_split4(v: vec4<f32>, lane: Lane) -> vec4<f32> {
    if (SPLIT == WG) { return reduce_sum4(v, lane); }
    red_v[lane.i] = v;
    workgroupBarrier();
    let s = lane.i % SPLIT;
    for (var st = SPLIT / 2u; st > 0u; st = st / 2u) {
        if (s < st) { red_v[lane.i] = red_v[lane.i] + red_v[lane.i + st]; }
        workgroupBarrier();
    }
    let r = red_v[lane.i - s];
    workgroupBarrier();
    return r;
}
