//! The building blocks of a T5-style encoder-decoder, one file each.
//!
//! Blocks are dfdx modules whose parameter shapes are const generics; batch and
//! sequence length are runtime `usize` dimensions. What does not change a shape
//! (activations, residual flags, dropout) comes from the [`Ctx`] at run time.

mod attention;
mod ctx;
mod feed_forward;
mod init;
mod loss;
mod position;
mod rms_norm;

pub use attention::{
    attention, causal_bias, fixed_attention, padding_bias, uniform_probs, CrossAttentionOwnKv,
    CrossAttentionReuseKv, CrossAttentionSublayer, Heads, KeyValue, Mixing, QkMatrix,
    SelfAttention,
};
pub use ctx::{Ctx, DropMask};
pub use feed_forward::{DenseFfn, FeedForwardSublayer, GluFfn, MixedActFfn};
pub use init::{InitParams, ParamInit};
pub use loss::{masked_cross_entropy, masked_cross_entropy_composed, tied_logits, IGNORE_INDEX};
pub use position::{embed, embed_with_positions};
pub use rms_norm::{RmsNorm, RMS_NORM_EPS};

use dfdx::prelude::*;

/// A batch of sequences of `M`-dimensional vectors: `[batch, seq, M]`.
pub type Hidden<const M: usize, E, D, T = NoneTape> = Tensor<(usize, usize, Const<M>), E, D, T>;

/// The tapes a forward pass can run with: `NoneTape` (inference) or
/// `OwnedTape` (training). Both merge with themselves and with `NoneTape`.
pub trait AnyTape<E: Dtype, D: Device<E>>:
    Tape<E, D> + Merge<NoneTape> + Merge<Self> + Default
{
}
impl<E: Dtype, D: Device<E>, T: Tape<E, D> + Merge<NoneTape> + Merge<T> + Default> AnyTape<E, D>
    for T
{
}

/// The element types the blocks are written for (f32 for training, f64 for the
/// reference tests).
pub trait Float: Dtype + num_traits::Float {}
impl<E: Dtype + num_traits::Float> Float for E {}
