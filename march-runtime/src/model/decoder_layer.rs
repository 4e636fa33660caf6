use dfdx::prelude::*;

use crate::ops::Ops;

use super::{sublayer, Masks};
use crate::layers::{
    AnyTape, CrossAttentionSublayer, Ctx, FeedForwardSublayer, Float, Hidden, InitParams, KeyValue,
    ParamInit, RmsNorm, SelfAttention,
};

/// One pre-norm decoder layer: causal self-attention (`H` heads of `DQK`,
/// `I = H·DQK`), cross-attention `X`, then the feed-forward `F`.
#[derive(Debug, Clone)]
pub struct DecoderLayer<
    const M: usize,
    const H: usize,
    const DQK: usize,
    const I: usize,
    X,
    F,
    E: Dtype,
    D: Storage<E>,
> {
    pub self_attn_norm: RmsNorm<M, E, D>,
    pub self_attn: SelfAttention<M, H, DQK, I, E, D>,
    pub cross_attn_norm: RmsNorm<M, E, D>,
    pub cross_attn: X,
    pub ffn_norm: RmsNorm<M, E, D>,
    pub ffn: F,
}

impl<
        const M: usize,
        const H: usize,
        const DQK: usize,
        const I: usize,
        X,
        F,
        E: Float,
        D: Ops<E>,
    > TensorCollection<E, D> for DecoderLayer<M, H, DQK, I, X, F, E, D>
where
    X: TensorCollection<E, D>,
    F: TensorCollection<E, D>,
{
    type To<E2: Dtype, D2: Device<E2>> =
        DecoderLayer<M, H, DQK, I, X::To<E2, D2>, F::To<E2, D2>, E2, D2>;

    fn iter_tensors<V: ModuleVisitor<Self, E, D>>(
        visitor: &mut V,
    ) -> Result<Option<Self::To<V::E2, V::D2>>, V::Err> {
        visitor.visit_fields(
            (
                Self::module(
                    "self_attn_norm",
                    |s| &s.self_attn_norm,
                    |s| &mut s.self_attn_norm,
                ),
                Self::module("self_attn", |s| &s.self_attn, |s| &mut s.self_attn),
                Self::module(
                    "cross_attn_norm",
                    |s| &s.cross_attn_norm,
                    |s| &mut s.cross_attn_norm,
                ),
                Self::module("cross_attn", |s| &s.cross_attn, |s| &mut s.cross_attn),
                Self::module("ffn_norm", |s| &s.ffn_norm, |s| &mut s.ffn_norm),
                Self::module("ffn", |s| &s.ffn, |s| &mut s.ffn),
            ),
            |(self_attn_norm, self_attn, cross_attn_norm, cross_attn, ffn_norm, ffn)| {
                DecoderLayer {
                    self_attn_norm,
                    self_attn,
                    cross_attn_norm,
                    cross_attn,
                    ffn_norm,
                    ffn,
                }
            },
        )
    }
}

impl<
        const M: usize,
        const H: usize,
        const DQK: usize,
        const I: usize,
        X,
        F,
        E: Float,
        D: Ops<E>,
    > InitParams<E, D> for DecoderLayer<M, H, DQK, I, X, F, E, D>
where
    X: InitParams<E, D>,
    F: InitParams<E, D>,
{
    fn init_params(&mut self, init: &mut ParamInit) {
        self.self_attn_norm.init_params(init);
        self.self_attn.init_params(init);
        self.cross_attn_norm.init_params(init);
        self.cross_attn.init_params(init);
        self.ffn_norm.init_params(init);
        self.ffn.init_params(init);
    }
}

impl<
        const M: usize,
        const H: usize,
        const DQK: usize,
        const I: usize,
        X,
        F,
        E: Float,
        D: Ops<E>,
    > DecoderLayer<M, H, DQK, I, X, F, E, D>
where
    X: CrossAttentionSublayer<M, E, D>,
    F: FeedForwardSublayer<M, E, D>,
{
    /// `kv`: the paired encoder layer's keys and values; `memory`: the final
    /// encoder output (tape-free; its history is on `x`'s tape).
    pub fn forward<T: AnyTape<E, D>>(
        &self,
        x: Hidden<M, E, D, T>,
        masks: &Masks<E, D>,
        ctx: &Ctx,
        kv: Option<&KeyValue<E, D>>,
        memory: Option<&Hidden<M, E, D>>,
    ) -> Hidden<M, E, D, T> {
        let residual = ctx.arch.residual;
        let (x, _) = sublayer(x, residual.self_attn, ctx, |x| {
            self.self_attn
                .forward(self.self_attn_norm.forward(x), masks.decoder_self, ctx)
        });
        let (x, ()) = sublayer(x, residual.cross_attn, ctx, |x| {
            let h = self.cross_attn_norm.forward(x);
            (self.cross_attn.forward(h, kv, memory, masks.cross, ctx), ())
        });
        let (x, ()) = sublayer(x, residual.ffn, ctx, |x| {
            (self.ffn.forward(self.ffn_norm.forward(x), ctx), ())
        });
        x
    }
}
