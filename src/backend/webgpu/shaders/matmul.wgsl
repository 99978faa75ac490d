// matmul.wgsl — roles "matmul" and "lm_head": y[r][o] = W[o] . x[r] (+ bias[o])
// for any weight format (the weights snippet before this file decodes
// blocks). SPLIT threads share one output feature o (WG / SPLIT features per
// workgroup) and a tile of four batch rows (vec4 accumulators, one lane per
// row): each weight block is read once and feeds four rows, so prefill
// reads the weights n_rows / 4 times and decode once. The SPLIT threads of
// a feature stride over its blocks and reduce their four partial sums
// once. Grid: x * y cover ceil(n_out / (WG / SPLIT)) (x <= 65535), z the
// row tiles. The rows count is batch word p.rows_word (n_rows, or n_out
// for lm_head, whose input holds only the gathered rows).
// Bytes: the weight matrix once per row tile, x once per output feature.
struct P {
    n_in: u32,
    n_out: u32,
    ld_y: u32,       // row stride of y
    rows_word: u32,  // batch word holding the row count
    has_bias: u32,
    w_scales: u32,   // Q8_0/Q4_0: word offset of the scales in w
    _pad0: u32,
    _pad1: u32,
}
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(3) var<storage, read> x: array<vec4<f32>>;   // [rows][n_in / 4]
@group(0) @binding(4) var<storage, read_write> y: array<f32>;   // [rows][ld_y]
@group(0) @binding(5) var<storage, read> bias: array<f32>;      // [n_out] (unused when !has_bias)

@compute @workgroup_size(WG)
fn main(lane: Lane, @builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let o = (wg.x + wg.y * nwg.x) * (WG / SPLIT) + lane.i / SPLIT;
    let s = lane.i % SPLIT;
    let n_rows = batch[p.rows_word];
    let r0 = wg.z * 4u;
    let n_blk = p.n_in / W_BLOCK;
    let xs = p.n_in / 4u; // x row stride in vec4
    // rows past the batch alias its last row (branch-free: SwiftShader runs
    // this 5x faster than a guarded dynamic index); their sums are dropped
    let last = n_rows - 1u;
    let x0 = r0 * xs;
    let x1 = min(r0 + 1u, last) * xs;
    let x2 = min(r0 + 2u, last) * xs;
    let x3 = min(r0 + 3u, last) * xs;
    var acc = vec4<f32>(0.0);
    if (o < p.n_out) {
        for (var b = s; b < n_blk; b += SPLIT) {
            let blk = w_block(o, b, n_blk);
            for (var v = 0u; v < W_VECS; v++) {
                let k = b * W_VECS + v;
                acc += vec4<f32>(dot(blk[v], x[x0 + k]), dot(blk[v], x[x1 + k]),
                                 dot(blk[v], x[x2 + k]), dot(blk[v], x[x3 + k]));
            }
        }
    }
    let tot = reduce_split4(acc, lane);
    if (s == 0u && o < p.n_out) {
        var b = 0.0;
        if (p.has_bias != 0u) { b = bias[o]; }
        for (var rr = 0u; rr < 4u; rr++) {
            if (r0 + rr < n_rows) { y[(r0 + rr) * p.ld_y + o] = tot[rr] + b; }
        }
    }
}
