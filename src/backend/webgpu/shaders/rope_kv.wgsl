// rope_kv.wgsl — the second half of role "qkv": RoPE on q and k, then the
// paged KV write. Reads the qkv matmul's output [rows][q | k | v] and
// writes the rotated q to its own buffer, k and v to the row's page slot
// (rounded through kv_store: f16 unless the KV cache is f32).
// Each element is computed on its own from the unrotated input (its value
// and its pair partner's), so threads may take any elements: one
// workgroup per row, threads stride over q_dim + 2 kv_dim elements.
// Pairs are (2i, 2i+1) when interleaved, else (i, i + rope_dim/2) per
// head; dims at or past rope_dim pass through. cos/sin come from the host
// (batch rope table), computed with the CPU's own cosf/sinf.
struct P {
    head_dim: u32,
    rope_dim: u32,
    interleaved: u32,
    q_dim: u32,
    kv_dim: u32,
    qkv_dim: u32,
    _pad0: u32,
    _pad1: u32,
}
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(2) var<storage, read> qkv: array<f32>;           // [rows][qkv_dim]
@group(0) @binding(3) var<storage, read_write> q: array<f32>;       // [rows][q_dim]
@group(0) @binding(4) var<storage, read_write> k_cache: array<kv_t>; // [slots][kv_dim]
@group(0) @binding(5) var<storage, read_write> v_cache: array<kv_t>; // [slots][kv_dim]

fn roped(r: u32, e: u32) -> f32 {
    let base = r * p.qkv_dim;
    let d = e % p.head_dim;
    let v = qkv[base + e];
    if (d >= p.rope_dim) { return v; }
    let half = p.rope_dim / 2u;
    var i: u32;
    var partner: u32;
    var first: bool;
    if (p.interleaved != 0u) {
        i = d / 2u;
        first = d % 2u == 0u;
        partner = select(e - 1u, e + 1u, first);
    } else {
        first = d < half;
        i = select(d - half, d, first);
        partner = select(e - half, e + half, first);
    }
    let cs = rope_cos_sin(r, i, half);
    let other = qkv[base + partner];
    if (first) { return v * cs.x - other * cs.y; }
    return other * cs.y + v * cs.x;
}

@compute @workgroup_size(WG)
fn main(lane: Lane, @builtin(workgroup_id) wg: vec3<u32>) {
    let r = wg.x;
    let slot = kv_slot(r, batch_pos(r), p.kv_dim);
    let n = p.q_dim + 2u * p.kv_dim;
    for (var e = lane.i; e < n; e += WG) {
        if (e < p.q_dim) {
            q[r * p.q_dim + e] = roped(r, e);
        } else if (e < p.q_dim + p.kv_dim) {
            k_cache[slot + e - p.q_dim] = kv_store(roped(r, e));
        } else {
            v_cache[slot + e - p.q_dim - p.kv_dim] = kv_store(qkv[r * p.qkv_dim + e]);
        }
    }
}
