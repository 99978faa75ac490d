// common.wgsl — what every kernel shares: the batch buffer (binding 1) and
// the paged-KV address of a position. Prepended to each kernel after the
// prelude that C writes (enables, override WG, kv_t).
//
// batch, u32 words, written by the host once per forward:
//   [0] n_rows  [1] n_out  [2] @tokens  [3] @pos  [4] @seq  [5] @out_rows
//   [6] @page_table ([n_seq][pages_per_seq])  [7] @rope ([max_batch][rope_dim/2]
//   (cos, sin) f32 bits, computed on the host with the CPU's own cosf/sinf)
//   [8] pages_per_seq  [9] page_size (positions per KV page)
@group(0) @binding(1) var<storage, read> batch: array<u32>;

fn batch_token(r: u32) -> u32 { return batch[batch[2] + r]; }
fn batch_pos(r: u32) -> u32 { return batch[batch[3] + r]; }
fn batch_out_row(i: u32) -> u32 { return batch[batch[5] + i]; }

// First element of position t of row r's sequence in a [slots][kv_dim] cache.
fn kv_slot(r: u32, t: u32, kv_dim: u32) -> u32 {
    let ps = batch[9];
    let page = batch[batch[6] + batch[batch[4] + r] * batch[8] + t / ps];
    return (page * ps + t % ps) * kv_dim;
}

// Rotation of pair i at row r's position.
fn rope_cos_sin(r: u32, i: u32, half: u32) -> vec2<f32> {
    let at = batch[7] + (r * half + i) * 2u;
    return vec2<f32>(bitcast<f32>(batch[at]), bitcast<f32>(batch[at + 1u]));
}

const NEG_BIG: f32 = -3.0e38; // below every finite score, safe to subtract
