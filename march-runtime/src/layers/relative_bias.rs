//! T5's relative position bias (Raffel et al., 2020, §2.1): a learned scalar
//! per head and bucket of the distance `key − query`, added to the logits
//! of every self-attention of a stack. One table per stack, computed once
//! per pass and shared by the stack's layers; cross-attention has none.

use dfdx::prelude::*;

use crate::layers::Block;

use super::{module, no_params};
use super::{AnyTape, Float};
use crate::arch::{Arch, PositionKind};
use crate::ops::{Flat, Ops};

/// The bucket of a relative position `key − query`, as Hugging Face's T5
/// (`_relative_position_bucket`, its logarithm in f32): half the buckets
/// (per direction when `bidirectional`) are exact distances, the rest
/// logarithmically wider up to `max_distance`, beyond which all share the
/// last bucket. A causal bucket counts only keys before the query.
pub fn bucket(
    relative: i64,
    bidirectional: bool,
    num_buckets: usize,
    max_distance: usize,
) -> usize {
    let mut buckets = num_buckets;
    let mut out = 0;
    let distance = if bidirectional {
        buckets /= 2;
        if relative > 0 {
            out += buckets;
        }
        relative.unsigned_abs() as usize
    } else {
        (-relative.min(0)) as usize
    };
    let max_exact = buckets / 2;
    if distance < max_exact {
        return out + distance;
    }
    let log = ((distance as f32 / max_exact as f32).ln()
        / (max_distance as f32 / max_exact as f32).ln()
        * (buckets - max_exact) as f32) as usize;
    out + (max_exact + log).min(buckets - 1)
}

/// The buckets of a `[seq_q, seq_k]` self-attention, row-major.
pub fn buckets(
    seq: usize,
    bidirectional: bool,
    num_buckets: usize,
    max_distance: usize,
) -> Vec<usize> {
    let mut out = Vec::with_capacity(seq * seq);
    for q in 0..seq as i64 {
        for k in 0..seq as i64 {
            out.push(bucket(k - q, bidirectional, num_buckets, max_distance));
        }
    }
    out
}

/// The per-head logit biases of one pass: `[H, seq, seq]` for the encoder's
/// and the decoder's self-attention, each contiguous and tape-free (its
/// history is on the tape returned beside it).
pub type StackBiases<E, D> = (Option<Flat<E, D>>, Option<Flat<E, D>>);

/// A model's relative position bias: [`RelativeBias`] or [`NoRelativeBias`].
pub trait PositionBias<E: Float, D: Ops<E>>: Block<E, D> {
    /// The biases for `enc_len` encoder and `dec_len` decoder positions; the
    /// pass's `tape` comes back with their history.
    fn biases<T: AnyTape<E, D>>(
        &self,
        arch: &Arch,
        enc_len: usize,
        dec_len: usize,
        tape: T,
    ) -> (StackBiases<E, D>, T);
}

/// The tables of `position = t5_relative`: `[NB, H]` per stack,
/// N(0, M^-0.5) (Hugging Face's T5 initialisation).
#[derive(Debug, Clone)]
pub struct RelativeBias<const M: usize, const NB: usize, const H: usize, E: Dtype, D: Storage<E>> {
    pub encoder: Tensor<Rank2<NB, H>, E, D>,
    pub decoder: Tensor<Rank2<NB, H>, E, D>,
}

module! {
    init impl[const M: usize, const NB: usize, const H: usize] RelativeBias<M, NB, H> {
        encoder: normal((M as f64).powf(-0.5)),
        decoder: normal((M as f64).powf(-0.5)),
    }
}

/// `table[bucket(k − q)]` for every head: `[H, seq, seq]`.
fn head_bias<const NB: usize, const H: usize, E: Float, D: Ops<E>, T: AnyTape<E, D>>(
    table: &Tensor<Rank2<NB, H>, E, D>,
    seq: usize,
    bidirectional: bool,
    max_distance: usize,
) -> Tensor<(usize, usize, usize), E, D, T> {
    let ids = buckets(seq, bidirectional, NB, max_distance);
    let ids = table.device().tensor_from_vec(ids, (seq * seq,));
    table
        .retaped::<T>()
        .gather(ids)
        .reshape_like(&(seq, seq, Const::<H>))
        .permute::<_, Axes3<2, 0, 1>>()
        .contiguous()
        .reshape_like(&(H, seq, seq))
}

impl<const M: usize, const NB: usize, const H: usize, E: Float, D: Ops<E>> PositionBias<E, D>
    for RelativeBias<M, NB, H, E, D>
{
    fn biases<T: AnyTape<E, D>>(
        &self,
        arch: &Arch,
        enc_len: usize,
        dec_len: usize,
        tape: T,
    ) -> (StackBiases<E, D>, T) {
        let PositionKind::T5Relative { max_distance, .. } = arch.position.kind else {
            unreachable!("a relative bias table without `position = t5_relative`")
        };
        let (dec, dec_tape) =
            head_bias::<NB, H, E, D, T>(&self.decoder, dec_len, false, max_distance).split_tape();
        let mut tape = tape.merge(dec_tape);
        // the encoder's table is dead where no encoder layer takes a softmax
        let enc = arch.encoder_bias_live().then(|| {
            let (enc, enc_tape) =
                head_bias::<NB, H, E, D, T>(&self.encoder, enc_len, true, max_distance)
                    .split_tape();
            tape = std::mem::take(&mut tape).merge(enc_tape);
            enc
        });
        ((enc, Some(dec)), tape)
    }
}

/// No relative bias (every other position encoding).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoRelativeBias;

no_params!(NoRelativeBias);

impl<E: Float, D: Ops<E>> PositionBias<E, D> for NoRelativeBias {
    fn biases<T: AnyTape<E, D>>(
        &self,
        _: &Arch,
        _: usize,
        _: usize,
        tape: T,
    ) -> (StackBiases<E, D>, T) {
        ((None, None), tape)
    }
}
