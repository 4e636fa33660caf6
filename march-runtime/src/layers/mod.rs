//! The building blocks of a T5-style encoder-decoder, one file each.
//!
//! Blocks are dfdx modules whose parameter shapes are const generics; batch and
//! sequence length are runtime `usize` dimensions. What does not change a shape
//! (activations, residual flags, dropout) comes from the [`Ctx`] at run time.

mod attention;
mod boilerplate;
mod ctx;
mod feed_forward;
mod head;
mod init;
mod loss;
mod position;
mod relative_bias;
mod rms_norm;

pub use attention::{
    causal_bias, fixed_attention, padding_bias, uniform_probs, CrossAttentionOwnKv,
    CrossAttentionProjectKv, CrossAttentionReuseKv, CrossAttentionSublayer, Heads, KeyValue,
    Mixing, QkMatrix, SelfAttention,
};
pub(crate) use boilerplate::{module, no_params};
pub use ctx::Ctx;
pub use feed_forward::{DenseFfn, FeedForwardSublayer, GluFfn, MixedActFfn, NoFfn};
pub use head::{LmHead, OutputHead, TiedHead};
pub use init::{Block, InitParams, ParamInit};
pub use loss::{masked_cross_entropy, masked_cross_entropy_composed, tied_logits, IGNORE_INDEX};
pub use position::embed_with_positions;
pub use relative_bias::{bucket, buckets, NoRelativeBias, PositionBias, RelativeBias, StackBiases};
pub use rms_norm::{AsRmsNorm, NoNorm, Norm, RmsNorm, RMS_NORM_EPS};

pub use crate::kernels::{mix64, DropMask};
pub use crate::tensor::{AnyTape, Float, Hidden};
