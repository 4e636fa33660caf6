//! Residual connections.

use crate::baseline::{Baseline, SmallBaseline};

experiment! {
    /// Self-attention sub-layers (encoder and decoder) without their residual:
    /// `x = dropout(attn(norm(x)))`; unit-variance position table.
    NoSelfAttentionResidual, SmallNoSelfAttentionResidual from Baseline, SmallBaseline:
    self_attn_residual = false,
    position_init = unit,
}
