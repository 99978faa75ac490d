// reduce_workgroup.wgsl — workgroup-wide reductions through workgroup
// memory: a tree of log2(WG) steps, one barrier each. Used when the device
// has no "subgroups" feature (and by tests, to keep this path checked).
// WG must be a power of two. Call from uniform control flow.
struct Lane {
    @builtin(local_invocation_index) i: u32,
}

var<workgroup> red_v: array<vec4<f32>, WG>;
var<workgroup> red_u: array<u32, WG>;

fn reduce_sum4(v: vec4<f32>, lane: Lane) -> vec4<f32> {
    red_v[lane.i] = v;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s = s / 2u) {
        if (lane.i < s) { red_v[lane.i] = red_v[lane.i] + red_v[lane.i + s]; }
        workgroupBarrier();
    }
    let r = red_v[0];
    workgroupBarrier();
    return r;
}

fn reduce_sum(v: f32, lane: Lane) -> f32 { return reduce_sum4(vec4<f32>(v, 0.0, 0.0, 0.0), lane).x; }

fn reduce_max(v: f32, lane: Lane) -> f32 {
    red_v[lane.i].x = v;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s = s / 2u) {
        if (lane.i < s) { red_v[lane.i].x = max(red_v[lane.i].x, red_v[lane.i + s].x); }
        workgroupBarrier();
    }
    let r = red_v[0].x;
    workgroupBarrier();
    return r;
}

fn reduce_min_u32(v: u32, lane: Lane) -> u32 {
    red_u[lane.i] = v;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s = s / 2u) {
        if (lane.i < s) { red_u[lane.i] = min(red_u[lane.i], red_u[lane.i + s]); }
        workgroupBarrier();
    }
    let r = red_u[0];
    workgroupBarrier();
    return r;
}
