// weights_f16_packed.wgsl — F16 weight rows on the f32 path (no
// shader-f16): two halves per u32 word, unpacked with unpack2x16float,
// which is exact. Same bytes as the file.
@group(0) @binding(2) var<storage, read> w: array<vec2<u32>>; // [n_out][n_in / 4] (4 halves)

const W_BLOCK: u32 = 4u;
const W_VECS: u32 = 1u;

fn w_block(row: u32, blk: u32, n_blk: u32) -> array<vec4<f32>, W_VECS> {
    let h = w[row * n_blk + blk];
    return array<vec4<f32>, W_VECS>(vec4<f32>(unpack2x16float(h.x), unpack2x16float(h.y)));
}
