// embed.wgsl — role "embed": dequantizes row tokens[r] of the token table
// into the residual stream x[r]. One workgroup per batch row; the threads
// stride over the row's blocks. Moves one table row (dim elements) per row.
struct P {
    dim: u32,
    w_scales: u32, // Q8_0/Q4_0: word offset of the scales in w
    _pad0: u32,
    _pad1: u32,
}
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(3) var<storage, read_write> x: array<vec4<f32>>; // [max_batch][dim / 4]

@compute @workgroup_size(WG)
fn main(lane: Lane, @builtin(workgroup_id) wg: vec3<u32>) {
    let r = wg.x;
    let token = batch_token(r);
    let n_blk = p.dim / W_BLOCK;
    for (var b = lane.i; b < n_blk; b += WG) {
        let blk = w_block(token, b, n_blk);
        for (var v = 0u; v < W_VECS; v++) { x[(r * p.dim + b * W_BLOCK) / 4u + v] = blk[v]; }
    }
}
