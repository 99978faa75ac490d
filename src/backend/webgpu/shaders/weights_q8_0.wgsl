// weights_q8_0.wgsl — Q8_0 rows, repacked at upload because a file block
// (2-byte scale + 32 int8, 34 bytes) is not 4-byte aligned:
//   words [0, n_out * n_blk * 8)   the 32 int8 of each block, file order
//   words [p.w_scales, + n_out * n_blk)  each block's scale d as f32
// x[i] = q[i] * d.
@group(0) @binding(2) var<storage, read> w: array<u32>;

const W_BLOCK: u32 = 32u;
const W_VECS: u32 = 8u;

fn w_i8x4(u: u32) -> vec4<f32> {
    return vec4<f32>(vec4<i32>(bitcast<i32>(u << 24u), bitcast<i32>(u << 16u),
                               bitcast<i32>(u << 8u), bitcast<i32>(u)) >> vec4<u32>(24u));
}

fn w_block(row: u32, blk: u32, n_blk: u32) -> array<vec4<f32>, W_VECS> {
    let b = row * n_blk + blk;
    let d = bitcast<f32>(w[p.w_scales + b]);
    var out: array<vec4<f32>, W_VECS>;
    for (var j = 0u; j < 8u; j++) { out[j] = w_i8x4(w[b * 8u + j]) * d; }
    return out;
}
