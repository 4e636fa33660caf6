//! Feed-forward kinds: gated linear units and the mixed activation, at the
//! baseline's parameters (dim_ff × 2/3 for three matrices instead of two).

use march_runtime::march_model;

use crate::baseline::{Baseline, SmallBaseline};

experiment! {
    /// ReLU-gated linear unit, dim_ff 1365, unit-variance position table.
    ReLUGatedLinearUnit, SmallReLUGatedLinearUnit from Baseline, SmallBaseline:
    ffn = glu(relu),
    dim_ff *= 2/3,
    position_init = unit,
}

experiment! {
    /// GELU-gated linear unit (GEGLU), dim_ff 1365, unit-variance position table.
    GELUGatedLinearUnit, SmallGELUGatedLinearUnit from Baseline, SmallBaseline:
    ffn = glu(gelu),
    dim_ff *= 2/3,
    position_init = unit,
}

experiment! {
    /// SiLU-gated linear unit (SwiGLU), dim_ff 1365, unit-variance position table.
    SiLUGatedLinearUnit, SmallSiLUGatedLinearUnit from Baseline, SmallBaseline:
    ffn = glu(silu),
    dim_ff *= 2/3,
    position_init = unit,
}

experiment! {
    /// `down((sigmoid(up_slow(x)) + relu(up_fast(x))) / 2)`, dim_ff 1365,
    /// unit-variance position table.
    MixedAct, SmallMixedAct from Baseline, SmallBaseline:
    ffn = mixed(mean),
    dim_ff *= 2/3,
    position_init = unit,
}

experiment! {
    /// As `MixedAct`, with the branches summed instead of averaged.
    MixedActSumOverMean, SmallMixedActSumOverMean from MixedAct, SmallMixedAct:
    ffn = mixed(sum),
}

experiment! {
    /// As `MixedActSumOverMean`, with dropout 0.5 on the sigmoid branch.
    MixedActSOMDropout, SmallMixedActSOMDropout from MixedActSumOverMean, SmallMixedActSumOverMean:
    ffn = mixed(sum, branch_dropout = 0.5),
}

experiment! {
    /// No feed-forward sub-layers (nor their norms): attention only, at
    /// fewer parameters (the original's NoFF, its commit 73bc80d).
    NoFeedForward, SmallNoFeedForward from Baseline, SmallBaseline:
    ffn = none,
    budget_exempt = "attention only: the feed-forward's parameters are removed, not moved (the original's NoFF)",
}

/// No feed-forward, the parameters moved into a wider residual stream
/// (dim 784): the baseline's budget (the original's NoFFParamMatch widened
/// its model the same way).
#[march_model(base = Baseline, ffn = none, dim_model = 784)]
pub struct NoFeedForwardParamMatch;

/// No feed-forward, the parameters moved into a wider residual stream (dim
/// 190): the CPU-scale baseline's budget.
///
/// CPU scale.
#[march_model(base = SmallBaseline, ffn = none, dim_model = 190)]
pub struct SmallNoFeedForwardParamMatch;
