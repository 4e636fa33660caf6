//! Where cross-attention's keys and values come from.

use crate::baseline::{Baseline, SmallBaseline};

experiment! {
    /// Decoder layer i projects encoder layer i's keys and values with its
    /// own `w_k`, `w_v` `[512, 512]`: the original's cross-attention before
    /// its NoKeyValueWeightsCrossAttention experiment (commit 47b242a), which
    /// removed them — march's baseline is the removed form, so this pair
    /// (`Baseline` against this) is that experiment.
    CrossAttentionKvWeights, SmallCrossAttentionKvWeights from Baseline, SmallBaseline:
    cross_attention = project_encoder_kv,
    budget_exempt = "the NoKeyValueWeightsCrossAttention experiment compares the forms as the original had them: with and without these weights",
}
