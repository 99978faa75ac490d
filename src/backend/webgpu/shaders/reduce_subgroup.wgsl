// reduce_subgroup.wgsl — workgroup-wide reductions with subgroup
// operations: each subgroup reduces in registers, its first lane parks the
// result in workgroup memory (zero / identity elsewhere), and after one
// barrier every subgroup reduces the parked values again. Two barriers
// whatever WG is, against log2(WG) for the tree.
//
// WebGPU promises nothing about which invocations share a subgroup, so the
// second pass reads all WG slots (lane k of a subgroup reads slots k,
// k + sg_n, ...) instead of assuming subgroups are consecutive. A subgroup
// wider than the workgroup is covered too (one pass, slots k < WG).
struct Lane {
    @builtin(local_invocation_index) i: u32,
    @builtin(subgroup_invocation_id) sg_i: u32,
    @builtin(subgroup_size) sg_n: u32,
}

var<workgroup> red_v: array<vec4<f32>, WG>;
var<workgroup> red_u: array<u32, WG>;

fn reduce_sum4(v: vec4<f32>, lane: Lane) -> vec4<f32> {
    let s = subgroupAdd(v);
    red_v[lane.i] = select(vec4<f32>(0.0), s, lane.sg_i == 0u);
    workgroupBarrier();
    var t = vec4<f32>(0.0);
    let passes = max(1u, WG / lane.sg_n);
    for (var j = 0u; j < passes; j++) {
        let k = j * lane.sg_n + lane.sg_i;
        if (k < WG) { t += red_v[k]; }
    }
    let r = subgroupAdd(t);
    workgroupBarrier();
    return r;
}

fn reduce_sum(v: f32, lane: Lane) -> f32 { return reduce_sum4(vec4<f32>(v, 0.0, 0.0, 0.0), lane).x; }

fn reduce_max(v: f32, lane: Lane) -> f32 {
    let s = subgroupMax(v);
    red_v[lane.i].x = select(NEG_BIG, s, lane.sg_i == 0u);
    workgroupBarrier();
    var t = NEG_BIG;
    let passes = max(1u, WG / lane.sg_n);
    for (var j = 0u; j < passes; j++) {
        let k = j * lane.sg_n + lane.sg_i;
        if (k < WG) { t = max(t, red_v[k].x); }
    }
    let r = subgroupMax(t);
    workgroupBarrier();
    return r;
}

fn reduce_min_u32(v: u32, lane: Lane) -> u32 {
    let s = subgroupMin(v);
    red_u[lane.i] = select(0xffffffffu, s, lane.sg_i == 0u);
    workgroupBarrier();
    var t = 0xffffffffu;
    let passes = max(1u, WG / lane.sg_n);
    for (var j = 0u; j < passes; j++) {
        let k = j * lane.sg_n + lane.sg_i;
        if (k < WG) { t = min(t, red_u[k]); }
    }
    let r = subgroupMin(t);
    workgroupBarrier();
    return r;
}
