//! Heads, head dimension and depth at (roughly) constant parameters.

use crate::baseline::{Baseline, SmallBaseline};

experiment! {
    /// Twice the heads, one layer less per stack (2+2 layers, 16 heads).
    MoreHeadsLessLayers, SmallMoreHeadsLessLayers from Baseline, SmallBaseline:
    layers -= 1,
    heads *= 2,
    budget_exempt = "the original ran it as 'same parameter budget' although it is not; kept as the original ran it",
}

experiment! {
    /// Twice the heads at half the head dimension (16 heads of 32).
    MoreHeadsLessQKVDim, SmallMoreHeadsLessQKVDim from Baseline, SmallBaseline:
    dim_qkv /= 2,
    heads *= 2,
}

experiment! {
    /// Half the heads at twice the head dimension (4 heads of 128).
    LessHeadsMoreQKVDim, SmallLessHeadsMoreQKVDim from Baseline, SmallBaseline:
    dim_qkv *= 2,
    heads /= 2,
}

experiment! {
    /// Heads decreasing with depth: [12, 8, 4] in encoder and decoder alike.
    ScalingHeads, SmallScalingHeads from Baseline, SmallBaseline:
    heads *= [3/2, 1, 1/2],
}

experiment! {
    /// Heads increasing with depth: [4, 8, 12] in encoder and decoder alike.
    InverseScalingHeads, SmallInverseScalingHeads from Baseline, SmallBaseline:
    heads *= [1/2, 1, 3/2],
}

experiment! {
    /// Three times the heads at half the head dimension, one layer less per
    /// stack (2+2 layers, 24 heads of 32), unit-variance position table.
    MoreHeadsLessQKVDimLessLayers, SmallMoreHeadsLessQKVDimLessLayers from Baseline, SmallBaseline:
    dim_qkv /= 2,
    layers -= 1,
    heads *= 3,
    position_init = unit,
    budget_exempt = "the original ran it as 'same parameter budget' although it is not; kept as the original ran it",
}

experiment! {
    /// Heads decreasing with depth at a constant attention width: [16, 8, 4]
    /// heads of [32, 64, 128] (the original's ScalingHeadsConstant, its
    /// commit 8698594: `dim_qkv = dim_model // heads`).
    ScalingHeadsConstant, SmallScalingHeadsConstant from Baseline, SmallBaseline:
    heads *= [2, 1, 1/2],
    dim_qkv *= [1/2, 1, 2],
}

experiment! {
    /// Heads increasing with depth at a constant attention width: [4, 8, 16]
    /// heads of [128, 64, 32] (the original's InverseScalingHeadsConstant).
    InverseScalingHeadsConstant, SmallInverseScalingHeadsConstant from Baseline, SmallBaseline:
    heads *= [1/2, 1, 2],
    dim_qkv *= [2, 1, 1/2],
}
