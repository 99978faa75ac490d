// attention.wgsl — role "attention": paged causal attention with an
// optional sliding window (key t visible from query position q iff
// t <= q and q - t < window). One workgroup per (head, row); grouped-query
// heads share the kv head h / (n_heads / n_kv_heads).
// The keys are walked in chunks of WG positions with an online softmax:
// thread j scores position t0 + j (a head_dim dot product against the
// cached key), the chunk's max and sum come from two reductions, and the
// running output acc (workgroup memory, head_dim floats, thread d owns
// dims d, d + WG, ...) is rescaled and accumulates the chunk's weighted
// values. Memory: q once, every visible key and value once.
struct P {
    n_heads: u32,
    n_kv_heads: u32,
    head_dim: u32,
    q_dim: u32,
    kv_dim: u32,
    window: u32, // 0 = full attention
    scale: f32,  // 1 / sqrt(head_dim)
    _pad0: u32,
}
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(2) var<storage, read> q: array<f32>;        // [rows][q_dim], rotated
@group(0) @binding(3) var<storage, read> k_cache: array<kv_t>; // [slots][kv_dim]
@group(0) @binding(4) var<storage, read> v_cache: array<kv_t>; // [slots][kv_dim]
@group(0) @binding(5) var<storage, read_write> out: array<f32>; // [rows][q_dim]

override HEAD_DIM: u32;
var<workgroup> q_s: array<f32, HEAD_DIM>;
var<workgroup> acc: array<f32, HEAD_DIM>;
var<workgroup> p_s: array<f32, WG>;   // the chunk's softmax numerators
var<workgroup> slot_s: array<u32, WG>; // the chunk's cache slots
var<workgroup> pos_s: u32;

@compute @workgroup_size(WG)
fn main(lane: Lane, @builtin(workgroup_id) wg: vec3<u32>) {
    let h = wg.x;
    let r = wg.y;
    let kvh = h / (p.n_heads / p.n_kv_heads);
    if (lane.i == 0u) { pos_s = batch_pos(r); }
    let pos = workgroupUniformLoad(&pos_s);
    for (var d = lane.i; d < HEAD_DIM; d += WG) {
        q_s[d] = q[r * p.q_dim + h * HEAD_DIM + d];
        acc[d] = 0.0;
    }
    workgroupBarrier();
    var lo = 0u;
    if (p.window > 0u && pos + 1u > p.window) { lo = pos + 1u - p.window; }
    var m = NEG_BIG;
    var l = 0.0;
    for (var t0 = lo; t0 <= pos; t0 += WG) {
        let t = t0 + lane.i;
        let visible = t <= pos;
        var s = NEG_BIG;
        var slot = 0u;
        if (visible) {
            slot = kv_slot(r, t, p.kv_dim) + kvh * HEAD_DIM;
            var dot_qk = 0.0;
            for (var d = 0u; d < HEAD_DIM; d++) { dot_qk += q_s[d] * f32(k_cache[slot + d]); }
            s = dot_qk * p.scale;
        }
        let m_new = max(m, reduce_max(s, lane));
        let alpha = exp(m - m_new);
        let e = select(0.0, exp(s - m_new), visible);
        l = l * alpha + reduce_sum(e, lane);
        p_s[lane.i] = e;
        slot_s[lane.i] = slot;
        workgroupBarrier();
        let n = min(WG, pos + 1u - t0);
        for (var d = lane.i; d < HEAD_DIM; d += WG) {
            var a = acc[d] * alpha;
            for (var j = 0u; j < n; j++) { a += p_s[j] * f32(v_cache[slot_s[j] + d]); }
            acc[d] = a;
        }
        workgroupBarrier();
        m = m_new;
    }
    for (var d = lane.i; d < HEAD_DIM; d += WG) {
        out[r * p.q_dim + h * HEAD_DIM + d] = acc[d] / l;
    }
}
