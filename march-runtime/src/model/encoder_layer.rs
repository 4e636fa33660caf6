use dfdx::prelude::*;

use crate::layers::Block;

use crate::layers::module;

use crate::ops::Ops;

use super::{sublayer, Masks};
use crate::layers::{
    AnyTape, Ctx, FeedForwardSublayer, Float, Hidden, KeyValue, Mixing, Norm, RmsNorm,
    SelfAttention,
};

/// One pre-norm encoder layer (norm gains of `G` elements): self-attention (`H` heads of `DQK`, `I = H·DQK`)
/// then the feed-forward `F` after its norm `Nf` ([`NoFfn`](crate::layers::NoFfn)
/// and [`NoNorm`](crate::layers::NoNorm) where the variant has none).
#[derive(Debug, Clone)]
pub struct EncoderLayer<
    const M: usize,
    const G: usize,
    const H: usize,
    const DQK: usize,
    const I: usize,
    F,
    Nf,
    E: Dtype,
    D: Storage<E>,
> {
    pub self_attn_norm: RmsNorm<M, G, E, D>,
    pub self_attn: SelfAttention<M, H, DQK, I, E, D>,
    pub ffn_norm: Nf,
    pub ffn: F,
}

module! {
    init impl[const M: usize, const G: usize, const H: usize, const DQK: usize, const I: usize, F, Nf]
    EncoderLayer<M, G, H, DQK, I, F, Nf>
    where [
        F: Block<E, D>,
        Nf: Block<E, D>,
    ]
    to <M, G, H, DQK, I, F::To<E2, D2>, Nf::To<E2, D2>>
    {
        self_attn_norm: module,
        self_attn: module,
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
        F,
        Nf,
        E: Float,
        D: Ops<E>,
    > EncoderLayer<M, G, H, DQK, I, F, Nf, E, D>
where
    F: FeedForwardSublayer<M, E, D>,
    Nf: Norm<M, E, D>,
{
    /// Runs the layer and returns its output and its self-attention's keys and
    /// values. When `last` is set and decoder layers reuse encoder keys and
    /// values, nothing reads this layer's output: only its keys and values are
    /// computed, and the input is returned (carrying the tape).
    pub fn forward<T: AnyTape<E, D>>(
        &self,
        x: Hidden<M, E, D, T>,
        masks: &Masks<E, D>,
        ctx: &Ctx,
        last: bool,
    ) -> (Hidden<M, E, D, T>, KeyValue<E, D>) {
        let arch = ctx.arch;
        // the dead-weight rule of `march_spec::count`
        if last && arch.encoder_kv_only(arch.encoder_layers - 1) {
            let (x, tape) = x.split_tape();
            let h = self.self_attn_norm.forward(x.clone().put_tape(tape));
            let softmax_cross = matches!(masks.cross, Mixing::Softmax(..));
            let (kv, h) = self.self_attn.key_value(h, softmax_cross, ctx);
            let (_, tape) = h.split_tape();
            return (x.put_tape(tape), kv);
        }
        let (x, kv) = sublayer(x, arch.residual.self_attn, ctx, |x| {
            self.self_attn
                .forward(self.self_attn_norm.forward(x), masks.encoder_self, ctx)
        });
        if !F::PRESENT {
            return (x, kv);
        }
        let (x, ()) = sublayer(x, arch.residual.ffn, ctx, |x| {
            (self.ffn.forward(self.ffn_norm.norm(x), ctx), ())
        });
        (x, kv)
    }
}
