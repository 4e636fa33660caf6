//! The output head: decoder states `[batch, seq, M]` to logits `[batch, seq,
//! V]` — the input embedding, tied (T5), or a matrix of its own (T5 v1.1).

use dfdx::prelude::*;

use crate::layers::Block;

use super::{module, no_params, tied_logits, AnyTape, Ctx, Float, Hidden};
use crate::ops::Ops;

/// Either head: the model hands it the embedding, which the tied head uses.
pub trait OutputHead<const V: usize, const M: usize, E: Float, D: Ops<E>>: Block<E, D> {
    fn logits<T: AnyTape<E, D>>(
        &self,
        x: Hidden<M, E, D, T>,
        embedding: &Tensor<Rank2<V, M>, E, D>,
        ctx: &Ctx,
    ) -> Tensor<(usize, usize, Const<V>), E, D, T>;
}

/// The tied head: `(x · M^-0.5) Eᵀ` with the input embedding `E`; no
/// parameters of its own.
#[derive(Debug, Clone, Copy, Default)]
pub struct TiedHead;

no_params!(TiedHead);

impl<const V: usize, const M: usize, E: Float, D: Ops<E>> OutputHead<V, M, E, D> for TiedHead {
    fn logits<T: AnyTape<E, D>>(
        &self,
        x: Hidden<M, E, D, T>,
        embedding: &Tensor<Rank2<V, M>, E, D>,
        ctx: &Ctx,
    ) -> Tensor<(usize, usize, Const<V>), E, D, T> {
        tied_logits(x, embedding, ctx.matmul)
    }
}

/// An untied head `weight` `[V, M]`, N(0, 1) as T5 v1.1: `x · weightᵀ`,
/// without the tied head's `M^-0.5`.
#[derive(Debug, Clone)]
pub struct LmHead<const V: usize, const M: usize, E: Dtype, D: Storage<E>> {
    pub weight: Tensor<Rank2<V, M>, E, D>,
}

module! {
    init impl[const V: usize, const M: usize] LmHead<V, M> {
        weight: normal(1.0),
    }
}

impl<const V: usize, const M: usize, E: Float, D: Ops<E>> OutputHead<V, M, E, D>
    for LmHead<V, M, E, D>
{
    fn logits<T: AnyTape<E, D>>(
        &self,
        x: Hidden<M, E, D, T>,
        _embedding: &Tensor<Rank2<V, M>, E, D>,
        ctx: &Ctx,
    ) -> Tensor<(usize, usize, Const<V>), E, D, T> {
        D::linear_transposed(x, &self.weight, ctx.matmul)
    }
}
