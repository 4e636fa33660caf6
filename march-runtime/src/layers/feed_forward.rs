//! The position-wise feed-forward sub-layer, in three kinds: dense (T5),
//! gated linear unit (Shazeer, 2020) and the original march's mixed activation.

use dfdx::prelude::*;

use crate::layers::Block;

use super::{module, no_params};

use crate::ops::{composed, Linear, Ops};

use super::{AnyTape, Ctx, Float, Hidden};
use crate::arch::{Activation, Combine, FeedForward};

/// Any feed-forward kind: `[batch, seq, M]` → `[batch, seq, M]`.
pub trait FeedForwardSublayer<const M: usize, E: Float, D: Ops<E>>: Block<E, D> {
    /// Whether the layer has this sub-layer at all ([`NoFfn`]: no).
    const PRESENT: bool = true;

    fn forward<T: AnyTape<E, D>>(&self, x: Hidden<M, E, D, T>, ctx: &Ctx) -> Hidden<M, E, D, T>;
}

fn inv_sqrt(n: usize) -> f64 {
    (n as f64).powf(-0.5)
}

/// `down(dropout(act(up(x))))`: `up` `[M, F]`, `down` `[F, M]`.
#[derive(Debug, Clone)]
pub struct DenseFfn<const M: usize, const F: usize, E: Dtype, D: Storage<E>> {
    pub up: Tensor<Rank2<M, F>, E, D>,
    pub down: Tensor<Rank2<F, M>, E, D>,
}

module! {
    init impl[const M: usize, const F: usize] DenseFfn<M, F> {
        up: linear(inv_sqrt(M)),
        down: linear(inv_sqrt(F)),
    }
}

impl<const M: usize, const F: usize, E: Float, D: Ops<E>> FeedForwardSublayer<M, E, D>
    for DenseFfn<M, F, E, D>
{
    fn forward<T: AnyTape<E, D>>(&self, x: Hidden<M, E, D, T>, ctx: &Ctx) -> Hidden<M, E, D, T> {
        let FeedForward::Dense { activation } = ctx.arch.ffn else {
            panic!("DenseFfn built for a {} feed-forward", ctx.arch.ffn);
        };
        let h = x.linear(&self.up, ctx.matmul);
        let h = match activation {
            Activation::Relu => ctx.relu_drop(h),
            other => ctx.drop(composed::activate(h, other)),
        };
        h.linear(&self.down, ctx.matmul)
    }
}

/// `down(dropout(act(gate(x)) * up(x)))`: `gate`, `up` `[M, F]`, `down` `[F, M]`.
#[derive(Debug, Clone)]
pub struct GluFfn<const M: usize, const F: usize, E: Dtype, D: Storage<E>> {
    pub gate: Tensor<Rank2<M, F>, E, D>,
    pub up: Tensor<Rank2<M, F>, E, D>,
    pub down: Tensor<Rank2<F, M>, E, D>,
}

module! {
    init impl[const M: usize, const F: usize] GluFfn<M, F> {
        gate: linear(inv_sqrt(M)),
        up: linear(inv_sqrt(M)),
        down: linear(inv_sqrt(F)),
    }
}

impl<const M: usize, const F: usize, E: Float, D: Ops<E>> FeedForwardSublayer<M, E, D>
    for GluFfn<M, F, E, D>
{
    fn forward<T: AnyTape<E, D>>(&self, x: Hidden<M, E, D, T>, ctx: &Ctx) -> Hidden<M, E, D, T> {
        let FeedForward::Glu { gate } = ctx.arch.ffn else {
            panic!("GluFfn built for a {} feed-forward", ctx.arch.ffn);
        };
        let (x, tape) = x.split_tape();
        let g = x.clone().put_tape(tape).linear(&self.gate, ctx.matmul);
        let u = x.retaped::<T>().linear(&self.up, ctx.matmul);
        ctx.glu_drop(g, u, gate).linear(&self.down, ctx.matmul)
    }
}

/// The original march's mixed activation:
/// `down(dropout(combine(dropout_b(sigmoid(up_slow(x))), relu(up_fast(x)))))`,
/// `up_slow`, `up_fast` `[M, F]`, `down` `[F, M]`.
#[derive(Debug, Clone)]
pub struct MixedActFfn<const M: usize, const F: usize, E: Dtype, D: Storage<E>> {
    pub up_slow: Tensor<Rank2<M, F>, E, D>,
    pub up_fast: Tensor<Rank2<M, F>, E, D>,
    pub down: Tensor<Rank2<F, M>, E, D>,
}

module! {
    init impl[const M: usize, const F: usize] MixedActFfn<M, F> {
        up_slow: linear(inv_sqrt(M)),
        up_fast: linear(inv_sqrt(M)),
        down: linear(inv_sqrt(F)),
    }
}

impl<const M: usize, const F: usize, E: Float, D: Ops<E>> FeedForwardSublayer<M, E, D>
    for MixedActFfn<M, F, E, D>
{
    fn forward<T: AnyTape<E, D>>(&self, x: Hidden<M, E, D, T>, ctx: &Ctx) -> Hidden<M, E, D, T> {
        let FeedForward::MixedAct {
            combine,
            branch_dropout,
        } = ctx.arch.ffn
        else {
            panic!("MixedActFfn built for a {} feed-forward", ctx.arch.ffn);
        };
        let (x, tape) = x.split_tape();
        let slow = ctx.dropout(
            x.clone()
                .put_tape(tape)
                .linear(&self.up_slow, ctx.matmul)
                .sigmoid(),
            branch_dropout,
        );
        let fast = x.retaped::<T>().linear(&self.up_fast, ctx.matmul).relu();
        let h = match combine {
            Combine::Mean => (slow + fast) * E::from_f64(0.5).unwrap(),
            Combine::Sum => slow + fast,
        };
        ctx.drop(h).linear(&self.down, ctx.matmul)
    }
}

/// No feed-forward (`ffn = none`): no parameters; the layer skips the
/// sub-layer, its norm ([`NoNorm`](super::NoNorm)) and its residual.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoFfn;

no_params!(NoFfn);

impl<const M: usize, E: Float, D: Ops<E>> FeedForwardSublayer<M, E, D> for NoFfn {
    const PRESENT: bool = false;

    fn forward<T: AnyTape<E, D>>(&self, x: Hidden<M, E, D, T>, _: &Ctx) -> Hidden<M, E, D, T> {
        x
    }
}
