//! Whole recipes the original project arrived at, at march's two scales:
//! T5's own baseline and the original's BaselineV2.

use march_runtime::march_model;

use crate::baseline::{Baseline, SmallBaseline};

/// T5 as published (Raffel et al.): relative position bias instead of a
/// table, cross-attention with its own `w_k`, `w_v` on the encoder output;
/// the feed-forward narrowed to 1877 to stay at the baseline's budget.
#[march_model(
    base = Baseline,
    position = t5_relative,
    cross_attention = own_kv,
    dim_ff = 1877,
)]
pub struct T5Baseline;

/// `T5Baseline` at the CPU scale (feed-forward 490).
///
/// CPU scale.
#[march_model(
    base = SmallBaseline,
    position = t5_relative,
    cross_attention = own_kv,
    dim_ff = 490,
)]
pub struct SmallT5Baseline;

/// The original's BaselineV2 recipe (its commit 35ebb6e, June 2023): rotary
/// embeddings in every attention, SwiGLU, `q kᵀ / √d`, no dropout,
/// cross-attention with its own `w_k`, `w_v`; the SwiGLU's width rounded to
/// a multiple of 64 as the original's (1280, +0.7% of the budget).
#[march_model(
    base = Baseline,
    position = rope,
    ffn = glu(silu),
    dim_ff = 1280,
    attention_scale = inv_sqrt_dim,
    dropout = 0.0,
    cross_attention = own_kv,
)]
pub struct BaselineV2;

/// `BaselineV2` at the CPU scale (SwiGLU width 320, −0.7%).
///
/// CPU scale.
#[march_model(
    base = SmallBaseline,
    position = rope,
    ffn = glu(silu),
    dim_ff = 320,
    attention_scale = inv_sqrt_dim,
    dropout = 0.0,
    cross_attention = own_kv,
)]
pub struct SmallBaselineV2;
