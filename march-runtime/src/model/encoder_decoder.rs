use dfdx::prelude::*;

use crate::layers::module;

use crate::ops::Ops;
use crate::params::{Build, Params};

use super::{DecoderStack, EncoderStack, Masks};
use crate::arch::{AttentionKind, PositionInit};
use crate::layers::{
    causal_bias, embed_with_positions, masked_cross_entropy, padding_bias, uniform_probs, AnyTape,
    Block, Ctx, Float, InitParams, Mixing, OutputHead, ParamInit, PositionBias, RmsNorm,
};

/// One batch of span-corrupted examples.
#[derive(Debug, Clone)]
pub struct Seq2SeqBatch<E: Dtype, D: Storage<E> + Storage<usize>> {
    /// Encoder token ids, `[batch, seq_enc]`.
    pub enc_ids: Tensor<(usize, usize), usize, D>,
    /// 1 for real encoder tokens, 0 for padding, `[batch, seq_enc]`.
    pub enc_mask: Tensor<(usize, usize), E, D>,
    /// Decoder input ids (`</s>` then the labels shifted right), `[batch, seq_dec]`.
    pub dec_ids: Tensor<(usize, usize), usize, D>,
}

/// `[batch, seq_dec, vocab]`.
pub type Logits<V, E, D, T> = Tensor<(usize, usize, V), E, D, T>;

/// What the runtime needs of any variant's model.
pub trait Seq2Seq<E: Float, D: Ops<E>>:
    TensorCollection<E, D> + Params<E, D> + Build<E, D> + Sized
{
    /// `Const<vocab>`.
    type Vocab: Dim;

    /// Initialise every parameter as the paper says, from `seed`.
    fn init(&mut self, ctx: &Ctx, seed: u64);

    /// Logits of the decoder positions. `tape` starts the pass's tape
    /// (`NoneTape` for inference, an `OwnedTape` to train).
    fn forward<T: AnyTape<E, D>>(
        &self,
        batch: &Seq2SeqBatch<E, D>,
        ctx: &Ctx,
        tape: T,
    ) -> Logits<Self::Vocab, E, D, T>;

    /// Mean cross-entropy over the labels (`[batch·seq_dec]`, negative = ignored).
    fn loss<T: AnyTape<E, D>>(
        &self,
        batch: &Seq2SeqBatch<E, D>,
        labels: &[i64],
        ctx: &Ctx,
        tape: T,
    ) -> Tensor<Rank0, E, D, T>;
}

/// T5-style encoder-decoder with an embedding `[V, M]`, a learned position
/// table `[L, M]` shared by both stacks (no rows without one), a relative
/// position bias `R` ([`NoRelativeBias`](crate::layers::NoRelativeBias)
/// without one), norm gains of `G` elements, and the output head `Hd` (tied
/// to the embedding, or its own).
#[derive(Debug, Clone)]
pub struct EncoderDecoder<
    const V: usize,
    const M: usize,
    const G: usize,
    const L: usize,
    R,
    Enc,
    Dec,
    Hd,
    E: Dtype,
    D: Storage<E>,
> {
    pub embedding: Tensor<Rank2<V, M>, E, D>,
    pub position: Tensor<Rank2<L, M>, E, D>,
    pub encoder: Enc,
    pub encoder_norm: RmsNorm<M, G, E, D>,
    pub decoder: Dec,
    pub decoder_norm: RmsNorm<M, G, E, D>,
    pub lm_head: Hd,
    pub relative_bias: R,
}

// the embedding and the position table are initialised by `Seq2Seq::init`
module! {
    impl[const V: usize, const M: usize, const G: usize, const L: usize, R, Enc, Dec, Hd]
    EncoderDecoder<V, M, G, L, R, Enc, Dec, Hd>
    where [
        R: Block<E, D>,
        Enc: Block<E, D>,
        Dec: Block<E, D>,
        Hd: Block<E, D>,
    ]
    to <V, M, G, L, R::To<E2, D2>, Enc::To<E2, D2>, Dec::To<E2, D2>, Hd::To<E2, D2>>
    {
        embedding: tensor,
        position: tensor,
        encoder: module,
        encoder_norm: module,
        decoder: module,
        decoder_norm: module,
        lm_head: module,
        relative_bias: module,
    }
}

impl<
        const V: usize,
        const M: usize,
        const G: usize,
        const L: usize,
        R,
        Enc,
        Dec,
        Hd,
        E: Float,
        D: Ops<E>,
    > Seq2Seq<E, D> for EncoderDecoder<V, M, G, L, R, Enc, Dec, Hd, E, D>
where
    R: PositionBias<E, D>,
    Enc: EncoderStack<M, E, D>,
    Dec: DecoderStack<M, G, E, D>,
    Hd: OutputHead<V, M, E, D>,
{
    type Vocab = Const<V>;

    fn init(&mut self, ctx: &Ctx, seed: u64) {
        let mut init = ParamInit::new(seed, ctx.arch.init);
        init.normal(&mut self.embedding, 1.0);
        let std = match ctx.arch.position.init {
            PositionInit::Scaled => (M as f64).powf(-0.5),
            PositionInit::Unit => 1.0,
        };
        init.normal(&mut self.position, std);
        self.encoder.init_params(&mut init);
        self.encoder_norm.init_params(&mut init);
        self.decoder.init_params(&mut init);
        self.decoder_norm.init_params(&mut init);
        // last: a model's draws are those of a model without these options
        self.lm_head.init_params(&mut init);
        self.relative_bias.init_params(&mut init);
    }

    fn forward<T: AnyTape<E, D>>(
        &self,
        batch: &Seq2SeqBatch<E, D>,
        ctx: &Ctx,
        tape: T,
    ) -> Logits<Const<V>, E, D, T> {
        let arch = ctx.arch;
        debug_assert_eq!(
            (
                arch.vocab,
                arch.dim_model,
                arch.position.table_rows(arch.max_len)
            ),
            (V, M, L)
        );
        let (b, se) = *batch.enc_ids.shape();
        let (b2, sd) = *batch.dec_ids.shape();
        assert_eq!(b, b2, "encoder and decoder batch sizes differ");
        assert_eq!(*batch.enc_mask.shape(), (b, se), "encoder mask shape");
        let dev = self.embedding.device();

        // attention probabilities: biases or fixed (uniform) matrices, [batch, q, k]
        let causal = causal_bias(dev, b, sd);
        let (enc_self, cross) = match arch.attention {
            AttentionKind::Softmax => (
                padding_bias(&batch.enc_mask, se),
                padding_bias(&batch.enc_mask, sd),
            ),
            AttentionKind::UniformEncoder => (
                uniform_probs(&batch.enc_mask, se),
                uniform_probs(&batch.enc_mask, sd),
            ),
        };
        // relative position biases, [heads, q, k] per stack (computed once,
        // shared by the stack's layers)
        let ((enc_rel, dec_rel), tape) = self.relative_bias.biases(arch, se, sd, tape);
        let masks = match arch.attention {
            AttentionKind::Softmax => Masks {
                encoder_self: Mixing::Softmax(&enc_self, enc_rel.as_ref()),
                decoder_self: Mixing::Softmax(&causal, dec_rel.as_ref()),
                cross: Mixing::Softmax(&cross, None),
            },
            AttentionKind::UniformEncoder => Masks {
                encoder_self: Mixing::Fixed(&enc_self),
                decoder_self: Mixing::Softmax(&causal, dec_rel.as_ref()),
                cross: Mixing::Fixed(&cross),
            },
        };

        // encoder
        let x = embed_with_positions::<V, M, L, E, D, T>(
            &self.embedding,
            &self.position,
            &batch.enc_ids,
            ctx,
        );
        let (x, x_tape) = x.split_tape();
        let x = x.put_tape(x_tape.merge(tape));
        let mut kvs = Vec::with_capacity(Enc::LAYERS);
        let h = self.encoder.forward(x, &masks, ctx, true, &mut kvs);
        let (memory, enc_tape) = if arch.reads_encoder_output() {
            let (m, t) = self.encoder_norm.forward(h).split_tape();
            (Some(m), t)
        } else {
            // the encoder's output feeds nothing: decoder layers read the keys
            // and values of their encoder layers
            (None, h.split_tape().1)
        };

        // decoder
        let y = embed_with_positions::<V, M, L, E, D, T>(
            &self.embedding,
            &self.position,
            &batch.dec_ids,
            ctx,
        );
        let (y, y_tape) = y.split_tape();
        let y = y.put_tape(y_tape.merge(enc_tape));
        let (y, _) = self
            .decoder
            .forward(y, &masks, ctx, &mut kvs.iter(), memory.as_ref(), None);
        self.lm_head
            .logits(self.decoder_norm.forward(y), &self.embedding, ctx)
    }

    fn loss<T: AnyTape<E, D>>(
        &self,
        batch: &Seq2SeqBatch<E, D>,
        labels: &[i64],
        ctx: &Ctx,
        tape: T,
    ) -> Tensor<Rank0, E, D, T> {
        masked_cross_entropy(self.forward(batch, ctx, tape), labels)
    }
}
