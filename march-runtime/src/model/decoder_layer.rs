use dfdx::prelude::*;

use crate::layers::Block;

use crate::layers::{module, Norm};

use crate::ops::Ops;

use super::{sublayer, Masks};
use crate::arch::DecoderNorms;
use crate::layers::{
    AnyTape, AsRmsNorm, CrossAttentionSublayer, Ctx, FeedForwardSublayer, Float, Hidden, KeyValue,
    RmsNorm, SelfAttention,
};

/// One pre-norm decoder layer (norm gains of `G` elements): causal self-attention (`H` heads of `DQK`,
/// `I = H·DQK`), cross-attention `X`, then the feed-forward `F` after its
/// norm `Nf`.
#[derive(Debug, Clone)]
pub struct DecoderLayer<
    const M: usize,
    const G: usize,
    const H: usize,
    const DQK: usize,
    const I: usize,
    X,
    F,
    Nf,
    E: Dtype,
    D: Storage<E>,
> {
    pub self_attn_norm: RmsNorm<M, G, E, D>,
    pub self_attn: SelfAttention<M, H, DQK, I, E, D>,
    pub cross_attn_norm: RmsNorm<M, G, E, D>,
    pub cross_attn: X,
    pub ffn_norm: Nf,
    pub ffn: F,
}

module! {
    init impl[const M: usize, const G: usize, const H: usize, const DQK: usize, const I: usize, X, F, Nf]
    DecoderLayer<M, G, H, DQK, I, X, F, Nf>
    where [
        X: Block<E, D>,
        F: Block<E, D>,
        Nf: Block<E, D>,
    ]
    to <M, G, H, DQK, I, X::To<E2, D2>, F::To<E2, D2>, Nf::To<E2, D2>>
    {
        self_attn_norm: module,
        self_attn: module,
        cross_attn_norm: module,
        cross_attn: module,
        ffn_norm: module,
        ffn: module,
    }
}

impl<
        const M: usize,
        const G: usize,
        const H: usize,
        const DQK: usize,
        const I: usize,
        X,
        F,
        Nf,
        E: Float,
        D: Ops<E>,
    > DecoderLayer<M, G, H, DQK, I, X, F, Nf, E, D>
where
    X: CrossAttentionSublayer<M, E, D>,
    F: FeedForwardSublayer<M, E, D>,
    Nf: Norm<M, E, D> + AsRmsNorm<M, G, E, D>,
{
    /// `kv`: the paired encoder layer's keys and values; `memory`: the final
    /// encoder output (tape-free; its history is on `x`'s tape); `previous`:
    /// the previous layer's feed-forward norm, which this layer's
    /// self-attention reads with `decoder_norms = shared`. Returns this
    /// layer's feed-forward norm for the next.
    pub fn forward<'a, T: AnyTape<E, D>>(
        &'a self,
        x: Hidden<M, E, D, T>,
        masks: &Masks<E, D>,
        ctx: &Ctx,
        kv: Option<&KeyValue<E, D>>,
        memory: Option<&Hidden<M, E, D>>,
        previous: Option<&'a RmsNorm<M, G, E, D>>,
    ) -> super::DecoderOutput<'a, M, G, E, D, T> {
        let residual = ctx.arch.residual;
        let self_attn_norm = match (ctx.arch.decoder_norms, previous) {
            (DecoderNorms::Shared, Some(norm)) => norm,
            _ => &self.self_attn_norm,
        };
        let (x, _) = sublayer(x, residual.self_attn, ctx, |x| {
            self.self_attn
                .forward(self_attn_norm.forward(x), masks.decoder_self, ctx)
        });
        let (x, ()) = sublayer(x, residual.cross_attn, ctx, |x| {
            let h = self.cross_attn_norm.forward(x);
            (self.cross_attn.forward(h, kv, memory, masks.cross, ctx), ())
        });
        if !F::PRESENT {
            return (x, None);
        }
        let (x, ()) = sublayer(x, residual.ffn, ctx, |x| {
            (self.ffn.forward(self.ffn_norm.norm(x), ctx), ())
        });
        (x, self.ffn_norm.as_rms_norm())
    }
}
