//! Input embedding and the learned absolute position encoding.

use dfdx::prelude::*;

use crate::ops::Ops;

use super::{AnyTape, Ctx, Float, Hidden};
use crate::arch::Combine;

/// Look up token ids `[batch, seq]` in the embedding `[V, M]`.
pub fn embed<const V: usize, const M: usize, E: Float, D: Ops<E>, T: AnyTape<E, D>>(
    embedding: &Tensor<Rank2<V, M>, E, D>,
    ids: &Tensor<(usize, usize), usize, D>,
) -> Hidden<M, E, D, T> {
    embedding.retaped::<T>().gather(ids.clone())
}

/// `combine(dropout(E[ids]), dropout(table[:seq]))`: the model's input, for
/// the encoder and the decoder alike (they share the table); `dropout(E[ids])`
/// for a table of no rows (`position = none`).
pub fn embed_with_positions<
    const V: usize,
    const M: usize,
    const L: usize,
    E: Float,
    D: Ops<E>,
    T: AnyTape<E, D>,
>(
    embedding: &Tensor<Rank2<V, M>, E, D>,
    table: &Tensor<Rank2<L, M>, E, D>,
    ids: &Tensor<(usize, usize), usize, D>,
    ctx: &Ctx,
) -> Hidden<M, E, D, T> {
    let (b, s) = *ids.shape();
    let x = ctx.drop(embed::<V, M, E, D, T>(embedding, ids));
    if L == 0 {
        // `position = none`: a table of no rows
        return x;
    }
    assert!(s <= L, "sequence of {s} tokens is longer than max_len {L}");
    let positions = ids
        .device()
        .tensor_from_vec((0..s).collect::<Vec<usize>>(), (s,));
    let t = ctx.drop(
        table
            .retaped::<T>()
            .gather(positions)
            .broadcast_like::<_, Axis<0>>(&(b, s, Const::<M>)),
    );
    match ctx.arch.position.combine {
        Combine::Mean => (x + t) * E::from_f64(0.5).unwrap(),
        Combine::Sum => x + t,
    }
}
