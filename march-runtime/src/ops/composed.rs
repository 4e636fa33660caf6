//! dfdx's compositions of each op of [`Ops`](super::Ops): what devices
//! without march's kernels run, and what the kernels are tested against
//! (`march-runtime/tests/kernels.rs`).

use dfdx::prelude::*;

use super::{AdamWStep, Flat, Rows};
use crate::arch::{Activation, Combine};
use crate::kernels::DropMask;
use crate::tensor::{AnyTape, Float, Hidden};

/// `x · w`.
pub fn linear<const K: usize, const N: usize, E: Float, D: Device<E>, T: Tape<E, D>>(
    x: Rows<K, E, D, T>,
    w: &Tensor<Rank2<K, N>, E, D>,
) -> Rows<N, E, D, T> {
    x.matmul(w.retaped::<T>())
}

/// `x · wᵀ`.
pub fn linear_transposed<const K: usize, const N: usize, E: Float, D: Device<E>, T: Tape<E, D>>(
    x: Rows<K, E, D, T>,
    w: &Tensor<Rank2<N, K>, E, D>,
) -> Rows<N, E, D, T> {
    x.matmul(w.retaped::<T>().permute())
}

/// `t ⊙ mask` as a mask tensor built on the host.
pub fn dropout<S: Shape, E: Float, D: Device<E>, T: Tape<E, D>>(
    t: Tensor<S, E, D, T>,
    mask: DropMask,
) -> Tensor<S, E, D, T> {
    let scale = E::from_f64(mask.scale).unwrap();
    let n = t.shape().num_elements();
    let mask: Vec<E> = (0..n as u64)
        .map(|i| if mask.keep(i) { scale } else { E::default() })
        .collect();
    let shape = *t.shape();
    let mask = t.device().tensor_from_vec(mask, shape);
    t * mask
}

/// `t`, or `dropout(t, mask)` with a mask.
fn maybe_dropout<S: Shape, E: Float, D: Device<E>, T: Tape<E, D>>(
    t: Tensor<S, E, D, T>,
    mask: Option<DropMask>,
) -> Tensor<S, E, D, T> {
    match mask {
        Some(mask) => dropout(t, mask),
        None => t,
    }
}

/// `combine(dropout(E[ids]), dropout(table[:seq]))`: dfdx's `gather` of the
/// embedding rows and of the table's first rows, the table broadcast over
/// the batch, [`dropout`] each, then the mean (a sum and a product) or the
/// sum; `dropout(E[ids])` for a table of no rows.
pub fn embed_positions<
    const V: usize,
    const M: usize,
    const L: usize,
    E: Float,
    D: Device<E>,
    T: AnyTape<E, D>,
>(
    embedding: &Tensor<Rank2<V, M>, E, D>,
    table: &Tensor<Rank2<L, M>, E, D>,
    ids: &Tensor<(usize, usize), usize, D>,
    [embedding_mask, table_mask]: [Option<DropMask>; 2],
    combine: Combine,
) -> Hidden<M, E, D, T> {
    let (b, s) = *ids.shape();
    let x = maybe_dropout(embedding.retaped::<T>().gather(ids.clone()), embedding_mask);
    if L == 0 {
        return x;
    }
    assert!(s <= L, "sequence of {s} tokens is longer than max_len {L}");
    let positions = ids
        .device()
        .tensor_from_vec((0..s).collect::<Vec<usize>>(), (s,));
    let t = maybe_dropout(
        table
            .retaped::<T>()
            .gather(positions)
            .broadcast_like::<_, Axis<0>>(&(b, s, Const::<M>)),
        table_mask,
    );
    match combine {
        Combine::Mean => (x + t) * E::from_f64(0.5).unwrap(),
        Combine::Sum => x + t,
    }
}

/// `act(x)` by dfdx's ops. GELU is dfdx 0.13's `accurate_gelu` (the erf
/// GELU's value) with its derivative corrected: dfdx's (CPU and CUDA
/// kernels alike) is `Φ(x) + x·e^{−x²/2}/√π`, where the erf GELU's is
/// `Φ(x) + x·e^{−x²/2}/√(2π)` — its second term is √2 too large (1.1835
/// for 1.0833 at x = 1). The correction is a term whose value is zero and
/// whose derivative is the difference: `κ·(e − e₀)`, `e = e^{−x²/2}` on the
/// tape and `e₀` its value off it, `κ = (1 − 1/√2)/√π`.
pub fn activate<S: Shape, E: Float, D: Device<E>, T: AnyTape<E, D>>(
    x: Tensor<S, E, D, T>,
    act: Activation,
) -> Tensor<S, E, D, T> {
    let (x, tape) = x.split_tape();
    match act {
        Activation::Relu => x.put_tape(tape).relu(),
        Activation::Gelu => {
            let kappa = (1.0 - std::f64::consts::FRAC_1_SQRT_2) / std::f64::consts::PI.sqrt();
            let e = (x.clone().retaped::<T>().square() * E::from_f64(-0.5).unwrap()).exp();
            // a copy of e's value under a new id, off the tape
            let e0 = e.retaped::<NoneTape>() * E::one();
            x.put_tape(tape).accurate_gelu() + (e - e0) * E::from_f64(kappa).unwrap()
        }
        Activation::Silu => x.clone().put_tape(tape).sigmoid() * x,
        Activation::Sigmoid => x.put_tape(tape).sigmoid(),
    }
}

/// `dropout(act(gate) ⊙ up, mask)`, the gated linear unit's inner
/// activation.
pub fn glu_dropout<S: Shape, E: Float, D: Device<E>, T: AnyTape<E, D>>(
    gate: Tensor<S, E, D, T>,
    up: Tensor<S, E, D, T>,
    act: Activation,
    mask: Option<DropMask>,
) -> Tensor<S, E, D, T> {
    maybe_dropout(activate(gate, act) * up, mask)
}

/// `dropout(t, mask) + x`.
pub fn dropout_add<S: Shape, E: Float, D: Device<E>, T: Tape<E, D>>(
    t: Tensor<S, E, D, T>,
    x: Tensor<S, E, D>,
    mask: DropMask,
) -> Tensor<S, E, D, T> {
    dropout(t, mask) + x
}

/// `dropout(relu(t), mask)`.
pub fn relu_dropout<S: Shape, E: Float, D: Device<E>, T: Tape<E, D>>(
    t: Tensor<S, E, D, T>,
    mask: DropMask,
) -> Tensor<S, E, D, T> {
    dropout(t.relu(), mask)
}

/// `dropout(softmax(q kᵀ + bias + head_bias)) v` per head: the heads split
/// by reshape and permute, a batched `matmul`, the bias broadcast over heads
/// and the head bias over the batch, [`dropout`] over `[batch, heads, seq_q,
/// seq_k]`, heads merged.
pub fn attention<const H: usize, const DQK: usize, E: Float, D: Device<E>, T: AnyTape<E, D>>(
    q: Flat<E, D, T>,
    k: &Flat<E, D>,
    v: &Flat<E, D>,
    bias: &Flat<E, D>,
    head_bias: Option<&Flat<E, D>>,
    mask: Option<DropMask>,
) -> Flat<E, D, T> {
    let (b, sq, i) = *q.shape();
    let sk = k.shape().1;
    assert_eq!(i, H * DQK, "queries must have heads·dim_qkv features");
    let heads = |x: Tensor<(usize, usize, usize), E, D, T>, s: usize| {
        x.reshape_like(&(b, s, Const::<H>, Const::<DQK>))
            .permute::<_, Axes4<0, 2, 1, 3>>()
    };
    let q = heads(q, sq);
    let k = heads(k.clone().retaped::<T>(), sk);
    let v = heads(v.clone().retaped::<T>(), sk);
    // [batch, heads, seq_q, seq_k]
    let logits = q.matmul(k.permute::<_, Axes4<0, 1, 3, 2>>());
    let logits = logits
        + bias
            .clone()
            .broadcast_like::<_, Axis<1>>(&(b, Const::<H>, sq, sk));
    let logits = match head_bias {
        Some(hb) => {
            logits
                + hb.clone()
                    .retaped::<T>()
                    .reshape_like(&(Const::<H>, sq, sk))
                    .broadcast_like::<_, Axis<0>>(&(b, Const::<H>, sq, sk))
        }
        None => logits,
    };
    let probs = logits.softmax::<Axis<3>>();
    let probs = match mask {
        Some(m) => dropout(probs, m),
        None => probs,
    };
    probs
        .matmul(v)
        .permute::<_, Axes4<0, 2, 1, 3>>()
        .reshape_like(&(b, sq, i))
}

/// Rotary embedding: `x ⊙ cos + swap(x) ⊙ sin` per head, where `swap` maps
/// the halves `(a, c)` of a head to `(−c, a)` (a product with a constant
/// `[DQK, DQK]` matrix) and `cos`, `sin` (`[seq, DQK]`, each half's angles
/// twice) are broadcast over the batch and the heads.
pub fn rope<const H: usize, const DQK: usize, E: Float, D: Device<E>, T: AnyTape<E, D>>(
    x: Flat<E, D, T>,
    theta: f64,
) -> Flat<E, D, T> {
    let (b, s, i) = *x.shape();
    assert_eq!(i, H * DQK, "rope needs [batch, seq, heads·dim_qkv]");
    let half = DQK / 2;
    let dev = x.device().clone();
    let (cos, sin) = crate::kernels::rope::angles(s, DQK, theta);
    // [seq, DQK]: the half's angles for both halves
    let table = |v: Vec<f64>| {
        let mut out = Vec::with_capacity(s * DQK);
        for row in v.chunks(half) {
            for _ in 0..2 {
                out.extend(row.iter().map(|&a| E::from_f64(a).unwrap()));
            }
        }
        dev.tensor_from_vec(out, (s, Const::<DQK>))
            .broadcast_like::<_, Axes2<0, 2>>(&(b, s, Const::<H>, Const::<DQK>))
    };
    let (cos, sin) = (table(cos), table(sin));
    let mut swap = vec![E::zero(); DQK * DQK];
    for j in 0..half {
        // out[j] = −x[j + half], out[j + half] = x[j]
        swap[(j + half) * DQK + j] = -E::one();
        swap[j * DQK + j + half] = E::one();
    }
    let swap = dev.tensor_from_vec(swap, (Const::<DQK>, Const::<DQK>));
    let x = x.reshape_like(&(b, s, Const::<H>, Const::<DQK>));
    let (x, tape) = x.split_tape();
    let swapped = x
        .clone()
        .retaped::<T>()
        .reshape_like(&(b * s * H, Const::<DQK>))
        .matmul(swap)
        .reshape_like(&(b, s, Const::<H>, Const::<DQK>));
    (x.put_tape(tape) * cos + swapped * sin).reshape_like(&(b, s, i))
}

/// `x / √(mean(x²) + eps) · w`; `w` has `M` elements, or one.
pub fn rms_norm<const M: usize, const G: usize, E: Float, D: Device<E>, T: AnyTape<E, D>>(
    x: Hidden<M, E, D, T>,
    w: &Tensor<Rank1<G>, E, D>,
    eps: f64,
) -> Hidden<M, E, D, T> {
    let shape = *x.shape();
    let (x, tape) = x.split_tape();
    // [batch, seq]
    let mean_square = x.clone().put_tape(tape).square().mean::<_, Axis<2>>();
    let inv_rms = (mean_square + E::from_f64(eps).unwrap())
        .sqrt()
        .recip()
        .broadcast_like::<_, Axis<2>>(&shape);
    assert!(G == M || G == 1, "a gain of M elements or one");
    let weight = if G == M {
        w.retaped::<T>()
            .reshape_like(&(Const::<M>,))
            .broadcast_like::<_, Axes2<0, 1>>(&shape)
    } else {
        w.retaped::<T>()
            .reshape_like(&())
            .broadcast_like::<_, Axes3<0, 1, 2>>(&shape)
    };
    inv_rms * x * weight
}

/// Mean cross-entropy over the labels that are not negative:
/// `log_softmax` → `select` → weighted sum. Panics if a label is ≥ V.
pub fn cross_entropy<const V: usize, E: Float, D: Device<E>, T: AnyTape<E, D>>(
    logits: Tensor<(usize, usize, Const<V>), E, D, T>,
    labels: &[i64],
) -> Tensor<Rank0, E, D, T> {
    let (b, s, _) = *logits.shape();
    assert_eq!(labels.len(), b * s, "one label per position");
    let dev = logits.device().clone();
    let index: Vec<usize> = labels
        .iter()
        .map(|&l| {
            assert!(l < V as i64, "label {l} is outside the vocabulary of {V}");
            l.max(0) as usize
        })
        .collect();
    let count = labels.iter().filter(|&&l| l >= 0).count();
    let weight = E::from_f64(1.0 / count.max(1) as f64).unwrap();
    let weights: Vec<E> = labels
        .iter()
        .map(|&l| if l >= 0 { weight } else { E::zero() })
        .collect();
    let index = dev.tensor_from_vec(index, (b, s));
    let weights = dev.tensor_from_vec(weights, (b, s));
    // [batch, seq]
    let log_p = logits.log_softmax::<Axis<2>>().select(index);
    (log_p * weights).sum::<Rank0, _>().negate()
}

/// One AdamW update in place (`axpy`: the parameters keep their ids, so the
/// gradient buffers stay theirs), the gradient zeroed after it.
pub fn adamw<S: Shape, E: Float, D: Device<E>>(
    p: &mut Tensor<S, E, D>,
    m: &mut Tensor<S, E, D>,
    v: &mut Tensor<S, E, D>,
    grads: &mut Gradients<E, D>,
    s: AdamWStep,
) -> Result<bool, D::Err> {
    grads.try_alloc_for(p)?;
    let g = grads.get(p);
    // a parameter that got no gradient is left alone (moments included)
    if g.clone().abs().max::<Rank0, _>().as_vec()[0] == E::zero() {
        return Ok(false);
    }
    let c = |x: f64| E::from_f64(x).unwrap();
    let (bc1, bc2) = s.bias_correction;
    let g = g * c(s.grad_scale);
    m.axpy(s.beta1, &g, 1.0 - s.beta1);
    v.axpy(s.beta2, &g.square(), 1.0 - s.beta2);
    let denom = (v.clone() * c(1.0 / bc2)).sqrt() + c(s.eps);
    let update = m.clone() / denom;
    p.axpy(1.0 - s.decay, &update, -s.lr / bc1);
    let dev = p.device().clone();
    dev.try_fill_with_zeros(grads.get_or_alloc_mut(p)?)?;
    Ok(true)
}
