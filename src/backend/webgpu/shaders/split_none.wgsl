// split_none.wgsl — reduce_split4 when SPLIT = 1: each invocation owns
// its output feature and there is nothing to add up (see split_reduce.wgsl).
fn reduce_split4(v: vec4<f32>, lane: Lane) -> vec4<f32> { return v; }
