// add_rmsnorm.wgsl — role "add_rmsnorm": the residual add of the previous
// matmul's output and the RMSNorm that feeds the next one, in one pass:
//   add:    x[r] += d[r]            (written back unless gathering)
//   gather: the source row is out_rows[i] (the final norm before lm_head
//           runs only on rows whose logits are wanted)
//   xn[i] = x * 1/sqrt(mean(x^2) + eps) * gamma
// One workgroup per output row; threads stride over dim; one reduction.
// Moves 2-3 rows of dim floats per row.
struct P {
    dim: u32,
    eps: f32,
    add: u32,
    gather: u32,
}
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(2) var<storage, read_write> x: array<f32>; // [max_batch][dim] residual
@group(0) @binding(3) var<storage, read> d: array<f32>;       // [max_batch][dim] to add
@group(0) @binding(4) var<storage, read> gamma: array<f32>;   // [dim]
@group(0) @binding(5) var<storage, read_write> xn: array<f32>; // [max_batch][dim]

fn source_value(src: u32, k: u32) -> f32 {
    var v = x[src * p.dim + k];
    if (p.add != 0u) { v += d[src * p.dim + k]; }
    return v;
}

@compute @workgroup_size(WG)
fn main(lane: Lane, @builtin(workgroup_id) wg: vec3<u32>) {
    let i = wg.x;
    var src = i;
    if (p.gather != 0u) { src = batch_out_row(i); }
    var ss = 0.0;
    for (var k = lane.i; k < p.dim; k += WG) {
        let v = source_value(src, k);
        if (p.add != 0u && p.gather == 0u) { x[src * p.dim + k] = v; }
        ss += v * v;
    }
    let scale = 1.0 / sqrt(reduce_sum(ss, lane) / f32(p.dim) + p.eps);
    for (var k = lane.i; k < p.dim; k += WG) {
        var v = x[src * p.dim + k];
        if (p.gather != 0u && p.add != 0u) { v += d[src * p.dim + k]; }
        xn[i * p.dim + k] = v * scale * gamma[k];
    }
}
