//! The learned absolute position encoding.

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
