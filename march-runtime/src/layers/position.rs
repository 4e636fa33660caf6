//! Input embedding and the learned absolute position encoding.

use dfdx::prelude::*;

use crate::ops::Ops;

use super::{AnyTape, Ctx, Float, Hidden};

/// `combine(dropout(E[ids]), dropout(table[:seq]))`: the model's input, for
/// the encoder and the decoder alike (they share the table); `dropout(E[ids])`
/// for a table of no rows (`position = none`). One op, [`Ops::embed_positions`];
/// the embedding's dropout draws its mask first.
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
    let embedding_mask = ctx.dropout_mask(ctx.arch.dropout);
    let table_mask = if L == 0 {
        None
    } else {
        ctx.dropout_mask(ctx.arch.dropout)
    };
    D::embed_positions::<V, M, L, T>(
        embedding,
        table,
        ids,
        [embedding_mask, table_mask],
        ctx.arch.position.combine,
    )
}
