//! The T5-style encoder-decoder, assembled from [`crate::layers`].
//!
//! A variant's model type is an [`EncoderDecoder`] whose encoder and decoder
//! are stacks (tuples, nested beyond six) of [`EncoderLayer`]s and
//! [`DecoderLayer`]s; each layer's head count is part of its type.

mod decoder_layer;
mod encoder_decoder;
mod encoder_layer;
mod stack;

pub use decoder_layer::DecoderLayer;
pub use encoder_decoder::{EncoderDecoder, Logits, Seq2Seq, Seq2SeqBatch};
pub use encoder_layer::EncoderLayer;
pub use stack::{DecoderOutput, DecoderStack, EncoderStack};

use dfdx::prelude::*;

use crate::ops::Ops;

use crate::layers::{AnyTape, Ctx, Hidden, Mixing};

/// How each kind of attention forms its probabilities in one forward pass.
#[derive(Debug)]
pub struct Masks<'a, E: Dtype, D: Storage<E>> {
    pub encoder_self: Mixing<'a, E, D>,
    pub decoder_self: Mixing<'a, E, D>,
    pub cross: Mixing<'a, E, D>,
}

/// A pre-norm sub-layer: `x + dropout(f(x))`, or `dropout(f(x))` without the
/// residual. `f` includes the sub-layer's norm and may return a by-product.
fn sublayer<const M: usize, E: crate::layers::Float, D: Ops<E>, T: AnyTape<E, D>, R>(
    x: Hidden<M, E, D, T>,
    residual: bool,
    ctx: &Ctx,
    f: impl FnOnce(Hidden<M, E, D, T>) -> (Hidden<M, E, D, T>, R),
) -> (Hidden<M, E, D, T>, R) {
    let (x, tape) = x.split_tape();
    let (y, extra) = f(x.clone().put_tape(tape));
    (
        if residual {
            ctx.drop_add(y, x)
        } else {
            ctx.drop(y)
        },
        extra,
    )
}
