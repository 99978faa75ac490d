// ffn.wgsl — role "ffn": h[r][o] = silu(G[o] . x[r]) * (U[o] . x[r]) with
// gate and up in one matrix (rows [0, ffn) gate, [ffn, 2 ffn) up; the host
// concatenates separate gate/up tensors at upload). Same mapping as
// matmul.wgsl: SPLIT threads per feature o and four batch rows, one
// reduction of each four partial sums. Saves writing and re-reading the
// [rows][2 ffn] gate|up activations.
struct P {
    n_in: u32,
    n_ff: u32,
    w_scales: u32,
    _pad0: u32,
}
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(3) var<storage, read> x: array<vec4<f32>>;   // [rows][n_in / 4]
@group(0) @binding(4) var<storage, read_write> h: array<f32>;   // [rows][n_ff]

fn silu(g: f32) -> f32 { return g / (1.0 + exp(-g)); }

@compute @workgroup_size(WG)
fn main(lane: Lane, @builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let o = (wg.x + wg.y * nwg.x) * (WG / SPLIT) + lane.i / SPLIT;
    let s = lane.i % SPLIT;
    let n_rows = batch[0];
    let r0 = wg.z * 4u;
    let n_blk = p.n_in / W_BLOCK;
    let xs = p.n_in / 4u;
    let last = n_rows - 1u; // rows past the batch alias its last row (see matmul.wgsl)
    let x0 = r0 * xs;
    let x1 = min(r0 + 1u, last) * xs;
    let x2 = min(r0 + 2u, last) * xs;
    let x3 = min(r0 + 3u, last) * xs;
    var acc_g = vec4<f32>(0.0);
    var acc_u = vec4<f32>(0.0);
    if (o < p.n_ff) {
        for (var b = s; b < n_blk; b += SPLIT) {
            let bg = w_block(o, b, n_blk);
            let bu = w_block(p.n_ff + o, b, n_blk);
            for (var v = 0u; v < W_VECS; v++) {
                let k = b * W_VECS + v;
                let xv = array<vec4<f32>, 4>(x[x0 + k], x[x1 + k], x[x2 + k], x[x3 + k]);
                acc_g += vec4<f32>(dot(bg[v], xv[0]), dot(bg[v], xv[1]), dot(bg[v], xv[2]),
                                   dot(bg[v], xv[3]));
                acc_u += vec4<f32>(dot(bu[v], xv[0]), dot(bu[v], xv[1]), dot(bu[v], xv[2]),
                                   dot(bu[v], xv[3]));
            }
        }
    }
    let g = reduce_split4(acc_g, lane);
    let u = reduce_split4(acc_u, lane);
    if (s == 0u && o < p.n_ff) {
        for (var rr = 0u; rr < 4u; rr++) {
            if (r0 + rr < n_rows) { h[(r0 + rr) * p.n_ff + o] = silu(g[rr]) * u[rr]; }
        }
    }
}
