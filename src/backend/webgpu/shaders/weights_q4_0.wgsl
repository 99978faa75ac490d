// weights_q4_0.wgsl — Q4_0 rows, repacked at upload (a file block is
// 2-byte scale + 16 bytes, 18 bytes, not 4-byte aligned):
//   words [0, n_out * n_blk * 4)   the 16 bytes of nibbles of each block
//   words [p.w_scales, + n_out * n_blk)  each block's scale d as f32
// Element i < 16 is the low nibble of byte i, element 16 + i its high
// nibble; x = (nibble - 8) * d.
@group(0) @binding(2) var<storage, read> w: array<u32>;

const W_BLOCK: u32 = 32u;
const W_VECS: u32 = 8u;

fn w_nib4(u: u32, shift: u32) -> vec4<f32> {
    let n = (vec4<u32>(u) >> vec4<u32>(shift, shift + 8u, shift + 16u, shift + 24u)) & vec4<u32>(15u);
    return vec4<f32>(n) - vec4<f32>(8.0);
}

fn w_block(row: u32, blk: u32, n_blk: u32) -> array<vec4<f32>, W_VECS> {
    let b = row * n_blk + blk;
    let d = bitcast<f32>(w[p.w_scales + b]);
    var out: array<vec4<f32>, W_VECS>;
    for (var j = 0u; j < 4u; j++) {
        let u = w[b * 4u + j];
        out[j] = w_nib4(u, 0u) * d;
        out[j + 4u] = w_nib4(u, 4u) * d;
    }
    return out;
}
