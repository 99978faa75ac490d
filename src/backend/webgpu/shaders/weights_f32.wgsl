// weights_f32.wgsl — F32 weight rows, as the file stores them.
// Every weight kernel reads blocks through w_block(row, blk, n_blk): block
// blk of `row` as W_VECS vec4s of f32 (W_BLOCK elements), where a row holds
// n_blk blocks.
@group(0) @binding(2) var<storage, read> w: array<vec4<f32>>; // [n_out][n_in / 4]

const W_BLOCK: u32 = 4u;
const W_VECS: u32 = 1u;

fn w_block(row: u32, blk: u32, n_blk: u32) -> array<vec4<f32>, W_VECS> {
    return array<vec4<f32>, W_VECS>(w[row * n_blk + blk]);
}
