//! Multi-head attention as in T5: bias-free projections and, unless the
//! variant declares `attention_scale = inv_sqrt_dim`, **no** 1/√d scaling of
//! the logits. Encoder self-attention masks padding, decoder
//! self-attention is causal; cross-attention either reuses the keys and values
//! of the encoder layer with the same index (the original march) or projects
//! the encoder output with its own `w_k`, `w_v` (T5).

use dfdx::prelude::*;

use crate::layers::Block;

use super::module;

use crate::arch::PositionKind;
use crate::ops::{Linear, Ops};

use super::{AnyTape, Ctx, Float, Hidden};

/// `[batch, heads, seq, dim_qkv]`.
pub type Heads<const H: usize, const DQK: usize, E, D, T = NoneTape> =
    Tensor<(usize, Const<H>, usize, Const<DQK>), E, D, T>;

/// An additive logit bias or a probability matrix, `[batch, seq_q, seq_k]`,
/// shared by all heads.
pub type QkMatrix<E, D> = Tensor<(usize, usize, usize), E, D>;

/// Logit bias that hides padded keys: 0 where `mask` (`[batch, seq_k]`, 1 = real
/// token, 0 = padding) is 1, -1e9 where it is 0, repeated for `seq_q` queries.
pub fn padding_bias<E: Float, D: Device<E>>(
    mask: &Tensor<(usize, usize), E, D>,
    seq_q: usize,
) -> QkMatrix<E, D> {
    let (b, sk) = *mask.shape();
    ((mask.clone() - E::one()) * E::from_f64(1e9).unwrap())
        .broadcast_like::<_, Axis<1>>(&(b, seq_q, sk))
}

/// Logit bias that hides future positions: `-1e9` above the diagonal.
pub fn causal_bias<E: Float, D: Device<E>>(dev: &D, batch: usize, seq: usize) -> QkMatrix<E, D> {
    let mut v = vec![E::zero(); seq * seq];
    for q in 0..seq {
        for k in q + 1..seq {
            v[q * seq + k] = E::from_f64(-1e9).unwrap();
        }
    }
    dev.tensor_from_vec(v, (seq, seq))
        .broadcast_like::<_, Axis<0>>(&(batch, seq, seq))
}

/// Uniform attention probabilities over the real (unpadded) keys of `mask`
/// (`[batch, seq_k]`), for each of `seq_q` queries.
pub fn uniform_probs<E: Float, D: Device<E>>(
    mask: &Tensor<(usize, usize), E, D>,
    seq_q: usize,
) -> QkMatrix<E, D> {
    let (b, sk) = *mask.shape();
    let count = mask
        .clone()
        .sum::<_, Axis<1>>()
        .maximum(mask.device().ones_like(&(b,)));
    (mask.clone() / count.broadcast_like::<_, Axis<1>>(&(b, sk)))
        .broadcast_like::<_, Axis<1>>(&(b, seq_q, sk))
}

/// How the attention probabilities of one attention are formed.
#[derive(Debug)]
pub enum Mixing<'a, E: Dtype, D: Storage<E>> {
    /// `softmax(q kᵀ + bias + head_bias)`: `bias` `[batch, seq_q, seq_k]`
    /// (masks), `head_bias` `[heads, seq_q, seq_k]` (a relative position
    /// bias, tape-free; see [`Ops::attention`]).
    Softmax(&'a QkMatrix<E, D>, Option<&'a QkMatrix<E, D>>),
    /// Fixed probabilities (uniform attention): queries and keys are not used.
    Fixed(&'a QkMatrix<E, D>),
}

impl<E: Dtype, D: Storage<E>> Clone for Mixing<'_, E, D> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<E: Dtype, D: Storage<E>> Copy for Mixing<'_, E, D> {}

/// Attention with fixed probabilities `probs` (`[batch, seq_q, seq_k]`):
/// `dropout(probs) v`. The tape travels on `v`.
pub fn fixed_attention<const H: usize, const DQK: usize, E: Float, D: Ops<E>, T: AnyTape<E, D>>(
    probs: &QkMatrix<E, D>,
    v: Heads<H, DQK, E, D, T>,
    ctx: &Ctx,
) -> Heads<H, DQK, E, D, T> {
    let (b, _, sk, _) = *v.shape();
    let sq = probs.shape().1;
    let (v, tape) = v.split_tape();
    let probs = probs
        .clone()
        .put_tape(tape)
        .broadcast_like::<_, Axis<1>>(&(b, Const::<H>, sq, sk));
    ctx.drop(probs).matmul(v)
}

/// `[batch, heads, seq, dim_qkv]` → `[batch, seq, H·DQK]`.
fn merge_heads<
    const H: usize,
    const DQK: usize,
    const I: usize,
    E: Float,
    D: Device<E>,
    T: AnyTape<E, D>,
>(
    x: Heads<H, DQK, E, D, T>,
) -> Tensor<(usize, usize, Const<I>), E, D, T> {
    let (b, _, s, _) = *x.shape();
    x.permute::<_, Axes4<0, 2, 1, 3>>()
        .reshape_like(&(b, s, Const::<I>))
}

/// The keys and values one attention computed, kept for cross-attention:
/// `[batch, seq, heads·dim_qkv]` each, without a tape (their history is on the
/// tape of the pass that made them). `keys` is `None` where nothing reads them.
#[derive(Debug, Clone)]
pub struct KeyValue<E: Dtype, D: Storage<E>> {
    pub keys: Option<Tensor<(usize, usize, usize), E, D>>,
    pub values: Tensor<(usize, usize, usize), E, D>,
}

/// A stored `[batch, seq, heads·dim_qkv]` tensor as `[batch, heads, seq,
/// dim_qkv]`, recorded on a fresh tape so that its gradient reaches the stored
/// tensor (and through the pass's tape, what made it).
fn stored_heads<const H: usize, const DQK: usize, E: Float, D: Device<E>, T: AnyTape<E, D>>(
    t: &Tensor<(usize, usize, usize), E, D>,
) -> Heads<H, DQK, E, D, T> {
    let (b, s, i) = *t.shape();
    assert_eq!(
        i,
        H * DQK,
        "cross-attention heads must match the encoder layer's"
    );
    t.clone()
        .retaped::<T>()
        .reshape_like(&(b, s, Const::<H>, Const::<DQK>))
        .permute::<_, Axes4<0, 2, 1, 3>>()
}

/// Attention of `q` (`[batch, seq_q, H·DQK]`, `None` for fixed
/// probabilities) over stored keys and values; heads merged:
/// `[batch, seq_q, H·DQK]`. Softmax attention is the device's
/// [`Ops::attention`] (fused on the CPU, dfdx's composition elsewhere).
fn attend_stored<
    const H: usize,
    const DQK: usize,
    const I: usize,
    E: Float,
    D: Ops<E>,
    T: AnyTape<E, D>,
>(
    q: Option<Hidden<I, E, D, T>>,
    kv: &KeyValue<E, D>,
    tape: T,
    mixing: Mixing<E, D>,
    ctx: &Ctx,
) -> Hidden<I, E, D, T> {
    let out = match (mixing, q) {
        (Mixing::Fixed(probs), _) => {
            let v = stored_heads::<H, DQK, E, D, T>(&kv.values);
            let (v, v_tape) = v.split_tape();
            fixed_attention(probs, v.put_tape(tape.merge(v_tape)), ctx)
        }
        (Mixing::Softmax(bias, head_bias), Some(q)) => {
            let keys = kv.keys.as_ref().expect("softmax attention needs keys");
            // softmax((s·q) kᵀ + bias) = softmax(s · q kᵀ + bias)
            let scale = ctx.arch.attention_scale.factor(DQK);
            let q = if scale == 1.0 {
                q
            } else {
                q * E::from_f64(scale).unwrap()
            };
            let (q, q_tape) = q.split_tape();
            let q = q.put_tape(q_tape.merge(tape));
            let (b, s, _) = *q.shape();
            let (q, keys) = match ctx.arch.position.kind {
                // queries and keys rotated by their own positions; the stored
                // keys stay unrotated for the attentions that reuse them
                PositionKind::Rope { theta } => {
                    let (k, k_tape) =
                        D::rope::<H, DQK, T>(keys.clone().retaped::<T>(), theta).split_tape();
                    let (q, q_tape) = D::rope::<H, DQK, T>(flat(q), theta).split_tape();
                    (q.put_tape(q_tape.merge(k_tape)), k)
                }
                _ => (flat(q), keys.clone()),
            };
            let dropout = ctx.dropout_mask(ctx.arch.dropout);
            return D::attention::<H, DQK, T>(q, &keys, &kv.values, bias, head_bias, dropout)
                .reshape_like(&(b, s, Const::<I>));
        }
        (Mixing::Softmax(..), None) => unreachable!("softmax attention needs queries"),
    };
    merge_heads::<H, DQK, I, _, _, _>(out)
}

/// `w_o(attention(x · w_q over kv))`, the half every attention shares: `x`
/// (`[batch, seq_q, M]`, normed, tape-free) with the pass's `tape`; queries
/// only where the probabilities are softmax.
#[allow(clippy::too_many_arguments)]
fn query_attend<
    const M: usize,
    const H: usize,
    const DQK: usize,
    const I: usize,
    E: Float,
    D: Ops<E>,
    T: AnyTape<E, D>,
>(
    x: Hidden<M, E, D>,
    tape: T,
    w_q: &Tensor<Rank2<M, I>, E, D>,
    w_o: &Tensor<Rank2<I, M>, E, D>,
    kv: &KeyValue<E, D>,
    mixing: Mixing<E, D>,
    ctx: &Ctx,
) -> Hidden<M, E, D, T> {
    let (q, tape) = match mixing {
        Mixing::Softmax(..) => (Some(x.put_tape(tape).linear(w_q, ctx.matmul)), T::default()),
        Mixing::Fixed(_) => (None, tape),
    };
    attend_stored::<H, DQK, I, _, _, _>(q, kv, tape, mixing, ctx).linear(w_o, ctx.matmul)
}

fn flat<const I: usize, E: Float, D: Device<E>, T: AnyTape<E, D>>(
    x: Tensor<(usize, usize, Const<I>), E, D, T>,
) -> Tensor<(usize, usize, usize), E, D, T> {
    let (b, s, _) = *x.shape();
    x.reshape_like(&(b, s, I))
}

/// Scale of `N(0, std)` initialisation: `n^-0.5`.
fn inv_sqrt(n: usize) -> f64 {
    (n as f64).powf(-0.5)
}

/// Self-attention: `w_q`, `w_k`, `w_v`: `[M, H·DQK]`, `w_o`: `[H·DQK, M]`.
#[derive(Debug, Clone)]
pub struct SelfAttention<
    const M: usize,
    const H: usize,
    const DQK: usize,
    const I: usize,
    E: Dtype,
    D: Storage<E>,
> {
    pub w_q: Tensor<Rank2<M, I>, E, D>,
    pub w_k: Tensor<Rank2<M, I>, E, D>,
    pub w_v: Tensor<Rank2<M, I>, E, D>,
    pub w_o: Tensor<Rank2<I, M>, E, D>,
}

// T5: w_q absorbs the missing 1/√d_qkv.
module! {
    init impl[const M: usize, const H: usize, const DQK: usize, const I: usize]
    SelfAttention<M, H, DQK, I> {
        w_q: linear(inv_sqrt(M * DQK)),
        w_k: linear(inv_sqrt(M)),
        w_v: linear(inv_sqrt(M)),
        w_o: linear(inv_sqrt(I)),
    }
}

impl<const M: usize, const H: usize, const DQK: usize, const I: usize, E: Float, D: Ops<E>>
    SelfAttention<M, H, DQK, I, E, D>
{
    const SHAPES_AGREE: () = assert!(H * DQK == I, "I must equal H * DQK");

    /// Keys and values of `x` (`[batch, seq, M]`, already normed). `with_keys`:
    /// whether anything will read the keys. The returned tensors are tape-free;
    /// their history is on the returned `x`'s tape.
    pub fn key_value<T: AnyTape<E, D>>(
        &self,
        x: Hidden<M, E, D, T>,
        with_keys: bool,
        ctx: &Ctx,
    ) -> (KeyValue<E, D>, Hidden<M, E, D, T>) {
        let () = Self::SHAPES_AGREE;
        let (x, mut tape) = x.split_tape();
        let project = |w: &Tensor<Rank2<M, I>, E, D>| {
            flat(x.clone().retaped::<T>().linear(w, ctx.matmul)).split_tape()
        };
        let keys = with_keys.then(|| {
            let (k, k_tape) = project(&self.w_k);
            tape = std::mem::take(&mut tape).merge(k_tape);
            k
        });
        let (values, v_tape) = project(&self.w_v);
        (KeyValue { keys, values }, x.put_tape(tape.merge(v_tape)))
    }

    /// Self-attention of `x` (`[batch, seq, M]`, already normed) under `mixing`.
    /// Returns the output `[batch, seq, M]` and the keys and values it used.
    pub fn forward<T: AnyTape<E, D>>(
        &self,
        x: Hidden<M, E, D, T>,
        mixing: Mixing<E, D>,
        ctx: &Ctx,
    ) -> (Hidden<M, E, D, T>, KeyValue<E, D>) {
        let softmax = matches!(mixing, Mixing::Softmax(..));
        let (kv, x) = self.key_value(x, softmax, ctx);
        let (x, tape) = x.split_tape();
        let out =
            query_attend::<M, H, DQK, I, _, _, _>(x, tape, &self.w_q, &self.w_o, &kv, mixing, ctx);
        (out, kv)
    }
}

/// A decoder layer's cross-attention sub-layer, whichever kind it is.
pub trait CrossAttentionSublayer<const M: usize, E: Float, D: Ops<E>>: Block<E, D> {
    /// Attend from `x` (`[batch, seq_dec, M]`, normed) to the encoder: `kv` is
    /// the paired encoder layer's keys and values, `memory` the final encoder
    /// output; each kind reads what it needs.
    fn forward<T: AnyTape<E, D>>(
        &self,
        x: Hidden<M, E, D, T>,
        kv: Option<&KeyValue<E, D>>,
        memory: Option<&Hidden<M, E, D>>,
        mixing: Mixing<E, D>,
        ctx: &Ctx,
    ) -> Hidden<M, E, D, T>;
}

/// Cross-attention that reuses the encoder layer's keys and values: only
/// `w_q` `[M, H·DQK]` and `w_o` `[H·DQK, M]` (the original march).
#[derive(Debug, Clone)]
pub struct CrossAttentionReuseKv<
    const M: usize,
    const H: usize,
    const DQK: usize,
    const I: usize,
    E: Dtype,
    D: Storage<E>,
> {
    pub w_q: Tensor<Rank2<M, I>, E, D>,
    pub w_o: Tensor<Rank2<I, M>, E, D>,
}

module! {
    init impl[const M: usize, const H: usize, const DQK: usize, const I: usize]
    CrossAttentionReuseKv<M, H, DQK, I> {
        w_q: linear(inv_sqrt(M * DQK)),
        w_o: linear(inv_sqrt(I)),
    }
}

impl<const M: usize, const H: usize, const DQK: usize, const I: usize, E: Float, D: Ops<E>>
    CrossAttentionSublayer<M, E, D> for CrossAttentionReuseKv<M, H, DQK, I, E, D>
{
    fn forward<T: AnyTape<E, D>>(
        &self,
        x: Hidden<M, E, D, T>,
        kv: Option<&KeyValue<E, D>>,
        _memory: Option<&Hidden<M, E, D>>,
        mixing: Mixing<E, D>,
        ctx: &Ctx,
    ) -> Hidden<M, E, D, T> {
        let kv =
            kv.expect("reuse_encoder_kv cross-attention needs the encoder layer's keys and values");
        let (x, tape) = x.split_tape();
        query_attend::<M, H, DQK, I, _, _, _>(x, tape, &self.w_q, &self.w_o, kv, mixing, ctx)
    }
}

/// Cross-attention that projects the paired encoder layer's keys and values
/// with its own `w_k`, `w_v` `[H·DQK, H·DQK]`; `w_q` `[M, H·DQK]`, `w_o`
/// `[H·DQK, M]` (the original's cross-attention before its NoKeyValueWeights
/// experiment).
#[derive(Debug, Clone)]
pub struct CrossAttentionProjectKv<
    const M: usize,
    const H: usize,
    const DQK: usize,
    const I: usize,
    E: Dtype,
    D: Storage<E>,
> {
    pub w_q: Tensor<Rank2<M, I>, E, D>,
    pub w_k: Tensor<Rank2<I, I>, E, D>,
    pub w_v: Tensor<Rank2<I, I>, E, D>,
    pub w_o: Tensor<Rank2<I, M>, E, D>,
}

// the encoder's keys and values are heads·dim_qkv wide: w_k, w_v as T5's
// with I inputs
module! {
    init impl[const M: usize, const H: usize, const DQK: usize, const I: usize]
    CrossAttentionProjectKv<M, H, DQK, I> {
        w_q: linear(inv_sqrt(M * DQK)),
        w_k: linear(inv_sqrt(I)),
        w_v: linear(inv_sqrt(I)),
        w_o: linear(inv_sqrt(I)),
    }
}

impl<const M: usize, const H: usize, const DQK: usize, const I: usize, E: Float, D: Ops<E>>
    CrossAttentionSublayer<M, E, D> for CrossAttentionProjectKv<M, H, DQK, I, E, D>
{
    fn forward<T: AnyTape<E, D>>(
        &self,
        x: Hidden<M, E, D, T>,
        kv: Option<&KeyValue<E, D>>,
        _memory: Option<&Hidden<M, E, D>>,
        mixing: Mixing<E, D>,
        ctx: &Ctx,
    ) -> Hidden<M, E, D, T> {
        let kv = kv
            .expect("project_encoder_kv cross-attention needs the encoder layer's keys and values");
        let (x, mut tape) = x.split_tape();
        // [batch, seq_enc, I] · [I, I], on tapes merged into the pass's
        let mut project = |t: &Tensor<(usize, usize, usize), E, D>,
                           w: &Tensor<Rank2<I, I>, E, D>| {
            let (b, s, _) = *t.shape();
            let (p, p_tape) = flat(
                t.clone()
                    .retaped::<T>()
                    .reshape_like(&(b, s, Const::<I>))
                    .linear(w, ctx.matmul),
            )
            .split_tape();
            tape = std::mem::take(&mut tape).merge(p_tape);
            p
        };
        let keys = kv.keys.as_ref().map(|k| project(k, &self.w_k));
        let values = project(&kv.values, &self.w_v);
        let projected = KeyValue { keys, values };
        query_attend::<M, H, DQK, I, _, _, _>(
            x, tape, &self.w_q, &self.w_o, &projected, mixing, ctx,
        )
    }
}

/// T5's cross-attention: its own `w_q`, `w_k`, `w_v` `[M, H·DQK]`, `w_o`
/// `[H·DQK, M]`; keys and values are projections of the final encoder output.
#[derive(Debug, Clone)]
pub struct CrossAttentionOwnKv<
    const M: usize,
    const H: usize,
    const DQK: usize,
    const I: usize,
    E: Dtype,
    D: Storage<E>,
> {
    pub attn: SelfAttention<M, H, DQK, I, E, D>,
}

module! {
    init impl[const M: usize, const H: usize, const DQK: usize, const I: usize]
    CrossAttentionOwnKv<M, H, DQK, I> {
        attn: module,
    }
}

impl<const M: usize, const H: usize, const DQK: usize, const I: usize, E: Float, D: Ops<E>>
    CrossAttentionSublayer<M, E, D> for CrossAttentionOwnKv<M, H, DQK, I, E, D>
{
    fn forward<T: AnyTape<E, D>>(
        &self,
        x: Hidden<M, E, D, T>,
        _kv: Option<&KeyValue<E, D>>,
        memory: Option<&Hidden<M, E, D>>,
        mixing: Mixing<E, D>,
        ctx: &Ctx,
    ) -> Hidden<M, E, D, T> {
        let memory = memory.expect("own_kv cross-attention needs the encoder output");
        let a = &self.attn;
        let softmax = matches!(mixing, Mixing::Softmax(..));
        let (x, tape) = x.split_tape();
        let (kv, tape) = {
            let (kv, m) = a.key_value(memory.clone().put_tape(tape), softmax, ctx);
            let (_, tape) = m.split_tape();
            (kv, tape)
        };
        query_attend::<M, H, DQK, I, _, _, _>(x, tape, &a.w_q, &a.w_o, &kv, mixing, ctx)
    }
}
