// argmax.wgsl — role "sample" (greedy): the index of the largest logit of
// each wanted row, on the device, so greedy decode copies 4 bytes per row
// back instead of the vocabulary. Ties go to the lowest index (as the CPU
// backend's strict > scan). One workgroup per row, threads stride over
// the vocabulary, then a max reduction and a min-index reduction.
struct P {
    vocab: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(2) var<storage, read> logits: array<f32>;     // [n_out][vocab]
@group(0) @binding(3) var<storage, read_write> best: array<u32>; // [n_out]

@compute @workgroup_size(WG)
fn main(lane: Lane, @builtin(workgroup_id) wg: vec3<u32>) {
    let i = wg.x;
    var v_best = NEG_BIG;
    var i_best = 0xffffffffu;
    for (var v = lane.i; v < p.vocab; v += WG) {
        let x = logits[i * p.vocab + v];
        if (x > v_best) {
            v_best = x;
            i_best = v;
        }
    }
    let m = reduce_max(v_best, lane);
    let idx = reduce_min_u32(select(0xffffffffu, i_best, v_best == m), lane);
    if (lane.i == 0u && i < batch[1]) { best[i] = select(idx, 0u, idx == 0xffffffffu); }
}
