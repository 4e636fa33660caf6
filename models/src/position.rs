//! The learned absolute position encoding.

use march_runtime::march_model;

use crate::baseline::{Baseline, SmallBaseline};

experiment! {
    /// Position combine `x + t` instead of `(x + t) / 2`.
    APESumOverAverage, SmallAPESumOverAverage from Baseline, SmallBaseline:
    position_combine = sum,
}

experiment! {
    /// Position table initialised N(0, 1) instead of N(0, dim^-0.5).
    APEUnitVariance, SmallAPEUnitVariance from Baseline, SmallBaseline:
    position_init = unit,
}

experiment! {
    /// No position encoding at all (no table): the encoder sees a bag of
    /// tokens; only the decoder's causal mask tells its positions apart.
    NoPositionEncoding, SmallNoPositionEncoding from Baseline, SmallBaseline:
    position = none,
    budget_exempt = "the position table's parameters are removed, not moved",
}

/// Rotary embeddings (theta 10,000) instead of the table, whose parameters
/// move into the feed-forward (2133): the baseline's budget.
#[march_model(base = Baseline, position = rope, dim_ff = 2133)]
pub struct RotaryPosition;

/// `RotaryPosition` at the CPU scale (feed-forward 555).
///
/// CPU scale.
#[march_model(base = SmallBaseline, position = rope, dim_ff = 555)]
pub struct SmallRotaryPosition;

/// T5's relative position bias (32 buckets up to distance 128) instead of
/// the table, whose parameters move into the feed-forward (2133); the
/// baseline's cross-attention is kept (compare `T5Baseline`).
#[march_model(base = Baseline, position = t5_relative, dim_ff = 2133)]
pub struct RelativePositionBias;

/// `RelativePositionBias` at the CPU scale (feed-forward 555).
///
/// CPU scale.
#[march_model(base = SmallBaseline, position = t5_relative, dim_ff = 555)]
pub struct SmallRelativePositionBias;
