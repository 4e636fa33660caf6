//! Stacks of layers. A layer is a stack of one; a tuple of up to six stacks is
//! a stack (dfdx implements modules for tuples up to six: longer stacks nest).
//! Layers of one stack may differ in type (per-layer head counts).

use crate::layers::Block;

use crate::ops::Ops;

use super::{DecoderLayer, EncoderLayer, Masks};
use crate::layers::{
    AnyTape, AsRmsNorm, CrossAttentionSublayer, Ctx, FeedForwardSublayer, Float, Hidden,
    InitParams, KeyValue, Norm, ParamInit, RmsNorm,
};

/// Encoder layers run in order.
pub trait EncoderStack<const M: usize, E: Float, D: Ops<E>>: Block<E, D> {
    /// Number of layers.
    const LAYERS: usize;

    /// Runs the layers on `x`, pushing each layer's keys and values onto
    /// `kvs`. `last`: this stack ends the encoder.
    fn forward<T: AnyTape<E, D>>(
        &self,
        x: Hidden<M, E, D, T>,
        masks: &Masks<E, D>,
        ctx: &Ctx,
        last: bool,
        kvs: &mut Vec<KeyValue<E, D>>,
    ) -> Hidden<M, E, D, T>;
}

/// What a decoder layer (or stack) returns: its output, and its
/// feed-forward norm for the next layer.
pub type DecoderOutput<'a, const M: usize, const G: usize, E, D, T> =
    (Hidden<M, E, D, T>, Option<&'a RmsNorm<M, G, E, D>>);

/// Decoder layers run in order; layer i reads the i-th encoder keys and
/// values, and hands its feed-forward norm (gains of `G`) to layer i+1
/// (which reads it with `decoder_norms = shared`).
pub trait DecoderStack<const M: usize, const G: usize, E: Float, D: Ops<E>>: Block<E, D> {
    const LAYERS: usize;

    fn forward<'a, T: AnyTape<E, D>>(
        &'a self,
        x: Hidden<M, E, D, T>,
        masks: &Masks<E, D>,
        ctx: &Ctx,
        kvs: &mut std::slice::Iter<KeyValue<E, D>>,
        memory: Option<&Hidden<M, E, D>>,
        previous: Option<&'a RmsNorm<M, G, E, D>>,
    ) -> DecoderOutput<'a, M, G, E, D, T>;
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
    > EncoderStack<M, E, D> for EncoderLayer<M, G, H, DQK, I, F, Nf, E, D>
where
    F: FeedForwardSublayer<M, E, D>,
    Nf: Norm<M, E, D>,
{
    const LAYERS: usize = 1;

    fn forward<T: AnyTape<E, D>>(
        &self,
        x: Hidden<M, E, D, T>,
        masks: &Masks<E, D>,
        ctx: &Ctx,
        last: bool,
        kvs: &mut Vec<KeyValue<E, D>>,
    ) -> Hidden<M, E, D, T> {
        let (x, kv) = EncoderLayer::forward(self, x, masks, ctx, last);
        kvs.push(kv);
        x
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
    > DecoderStack<M, G, E, D> for DecoderLayer<M, G, H, DQK, I, X, F, Nf, E, D>
where
    X: CrossAttentionSublayer<M, E, D>,
    F: FeedForwardSublayer<M, E, D>,
    Nf: Norm<M, E, D> + AsRmsNorm<M, G, E, D>,
{
    const LAYERS: usize = 1;

    fn forward<'a, T: AnyTape<E, D>>(
        &'a self,
        x: Hidden<M, E, D, T>,
        masks: &Masks<E, D>,
        ctx: &Ctx,
        kvs: &mut std::slice::Iter<KeyValue<E, D>>,
        memory: Option<&Hidden<M, E, D>>,
        previous: Option<&'a RmsNorm<M, G, E, D>>,
    ) -> DecoderOutput<'a, M, G, E, D, T> {
        DecoderLayer::forward(self, x, masks, ctx, kvs.next(), memory, previous)
    }
}

macro_rules! tuple_stacks {
    ($([$($name:ident $idx:tt),+] $lastidx:tt;)+) => {$(
        impl<E: Float, D: Ops<E>, $($name: InitParams<E, D>),+> InitParams<E, D> for ($($name,)+) {
            fn init_params(&mut self, init: &mut ParamInit) {
                $(self.$idx.init_params(init);)+
            }
        }

        impl<const M: usize, E: Float, D: Ops<E>, $($name: EncoderStack<M, E, D>),+>
            EncoderStack<M, E, D> for ($($name,)+)
        {
            const LAYERS: usize = 0 $(+ $name::LAYERS)+;

            fn forward<T: AnyTape<E, D>>(
                &self,
                x: Hidden<M, E, D, T>,
                masks: &Masks<E, D>,
                ctx: &Ctx,
                last: bool,
                kvs: &mut Vec<KeyValue<E, D>>,
            ) -> Hidden<M, E, D, T> {
                $(let x = self.$idx.forward(x, masks, ctx, last && $idx == $lastidx, kvs);)+
                x
            }
        }

        impl<const M: usize, const GN: usize, E: Float, D: Ops<E>, $($name: DecoderStack<M, GN, E, D>),+>
            DecoderStack<M, GN, E, D> for ($($name,)+)
        {
            const LAYERS: usize = 0 $(+ $name::LAYERS)+;

            fn forward<'a, T: AnyTape<E, D>>(
                &'a self,
                x: Hidden<M, E, D, T>,
                masks: &Masks<E, D>,
                ctx: &Ctx,
                kvs: &mut std::slice::Iter<KeyValue<E, D>>,
                memory: Option<&Hidden<M, E, D>>,
                previous: Option<&'a RmsNorm<M, GN, E, D>>,
            ) -> DecoderOutput<'a, M, GN, E, D, T> {
                $(let (x, previous) = self.$idx.forward(x, masks, ctx, kvs, memory, previous);)+
                (x, previous)
            }
        }
    )+};
}

tuple_stacks! {
    [A 0] 0;
    [A 0, B 1] 1;
    [A 0, B 1, C 2] 2;
    [A 0, B 1, C 2, G 3] 3;
    [A 0, B 1, C 2, G 3, H 4] 4;
    [A 0, B 1, C 2, G 3, H 4, J 5] 5;
}
