// weights_f16.wgsl — F16 weight rows on the f16 path (shader-f16): loaded
// as native vec4<f16> and widened to f32 for the arithmetic, so the result
// is the packed path's bit for bit. Same bytes as the file.
@group(0) @binding(2) var<storage, read> w: array<vec4<f16>>; // [n_out][n_in / 4]

const W_BLOCK: u32 = 4u;
const W_VECS: u32 = 1u;

fn w_block(row: u32, blk: u32, n_blk: u32) -> array<vec4<f32>, W_VECS> {
    return array<vec4<f32>, W_VECS>(vec4<f32>(w[row * n_blk + blk]));
}
