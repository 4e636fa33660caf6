//! What runs where: every op whose implementation depends on the device, in
//! one trait.
//!
//! The model is written against [`Ops`]; each device says once how it runs
//! each op. [`Cpu`] runs march's kernels
//! ([`crate::kernels`], on concrete CPU tensors); any other device (CUDA)
//! takes the default methods, dfdx's compositions ([`composed`]), which are
//! also what the kernels are tested against.
//!
//! | op | CPU (`f32`, `f64`) | other devices |
//! | --- | --- | --- |
//! | [`Ops::linear`], [`Ops::linear_transposed`] | gemm 0.19 (AVX-512 or AVX2+FMA kernels chosen at run time), bf16 on AMX or AVX-512 BF16 with [`Matmul::Bf16`] | dfdx `matmul` |
//! | [`Ops::attention`] | fused, parallel over (batch, head); a per-head bias added to the logits before the softmax, its gradient summed over the batch in order | reshape, `matmul`, broadcast adds, `softmax`, mask multiply |
//! | [`Ops::rope`] | one pass over the rows, tables of the angles per call | two broadcast products and a product with the half-swap matrix |
//! | [`Ops::rms_norm`] | fused | `square`, `mean`, `sqrt`, `recip`, products |
//! | [`Ops::embed_positions`] | one parallel pass (the rows gathered, both dropouts, the mean), the draws recorded; backward: the embedding's rows in order, parallel over columns | `gather`, broadcast, [`Ops::dropout`] twice, `+`, `*` |
//! | [`Ops::glu_dropout`] | one parallel pass; GELU's exact derivative; the draws recorded | the activation (GELU's derivative corrected, see [`composed::activate`]), product, [`Ops::dropout`] |
//! | [`Ops::dropout`] | one parallel pass, the draws recorded (a byte per element) for the backward | mask tensor, product |
//! | [`Ops::dropout_add`], [`Ops::relu_dropout`] | the same pass with the residual add or the ReLU in it | [`Ops::dropout`] then `+` or `relu` |
//! | [`Ops::cross_entropy`] | fused, parallel over rows | `log_softmax`, `select`, weighted sum |
//! | [`Ops::adamw`] | one parallel pass over parameter and moments | `axpy` compositions |
//! | [`Ops::with_grad`] | the gradient buffer, borrowed | a host copy |

pub mod composed;
mod cpu;
#[cfg(feature = "cuda")]
mod cuda;

use dfdx::prelude::*;

use crate::arch::{Activation, Combine};
pub use crate::kernels::adamw::AdamWStep;
use crate::kernels::DropMask;
pub use crate::kernels::Matmul;
use crate::tensor::{AnyTape, Float, Hidden};

/// `[batch, seq, K]`.
pub type Rows<const K: usize, E, D, T> = Tensor<(usize, usize, Const<K>), E, D, T>;

/// `[batch, seq, heads·dim_qkv]` (or an attention bias `[batch, seq_q, seq_k]`).
pub type Flat<E, D, T = NoneTape> = Tensor<(usize, usize, usize), E, D, T>;

/// The ops whose implementation depends on the device (see the module's
/// table). Defaults: dfdx's compositions.
pub trait Ops<E: Float>: Device<E> {
    /// `x · w`: `[batch, seq, K] × [K, N] → [batch, seq, N]` in precision
    /// `precision` (forward and backward). The tape travels on `x`.
    fn linear<const K: usize, const N: usize, T: Tape<E, Self>>(
        x: Rows<K, E, Self, T>,
        w: &Tensor<Rank2<K, N>, E, Self>,
        precision: Matmul,
    ) -> Rows<N, E, Self, T> {
        let _ = precision;
        composed::linear(x, w)
    }

    /// `x · wᵀ` (the tied LM head: hidden states times the embedding).
    fn linear_transposed<const K: usize, const N: usize, T: Tape<E, Self>>(
        x: Rows<K, E, Self, T>,
        w: &Tensor<Rank2<N, K>, E, Self>,
        precision: Matmul,
    ) -> Rows<N, E, Self, T> {
        let _ = precision;
        composed::linear_transposed(x, w)
    }

    /// `dropout(softmax(q kᵀ + bias + head_bias)) v` per head, heads merged:
    /// `q` `[batch, seq_q, H·DQK]` carries the tape; `k`, `v` `[batch,
    /// seq_k, H·DQK]` are tape-free (their gradients accumulate under their
    /// ids); `bias` `[batch, seq_q, seq_k]` is a constant shared by the
    /// heads; `head_bias` `[H, seq_q, seq_k]` (a relative position bias) is
    /// shared by the batch, contiguous and tape-free (its gradient, summed
    /// over the batch, accumulates under its id).
    fn attention<const H: usize, const DQK: usize, T: AnyTape<E, Self>>(
        q: Flat<E, Self, T>,
        k: &Flat<E, Self>,
        v: &Flat<E, Self>,
        bias: &Flat<E, Self>,
        head_bias: Option<&Flat<E, Self>>,
        dropout: Option<DropMask>,
    ) -> Flat<E, Self, T> {
        composed::attention::<H, DQK, E, Self, T>(q, k, v, bias, head_bias, dropout)
    }

    /// Rotary embedding of `x` `[batch, seq, H·DQK]`: in each head, the
    /// feature pair `(j, j + DQK/2)` at position `p` rotated by
    /// `p · theta^(−2j/DQK)`.
    fn rope<const H: usize, const DQK: usize, T: AnyTape<E, Self>>(
        x: Flat<E, Self, T>,
        theta: f64,
    ) -> Flat<E, Self, T> {
        composed::rope::<H, DQK, E, Self, T>(x, theta)
    }

    /// `x / √(mean(x²) + eps) · w` over the last axis; the gain `w` has `M`
    /// elements or one (broadcast).
    fn rms_norm<const M: usize, const G: usize, T: AnyTape<E, Self>>(
        x: Hidden<M, E, Self, T>,
        w: &Tensor<Rank1<G>, E, Self>,
        eps: f64,
    ) -> Hidden<M, E, Self, T> {
        composed::rms_norm(x, w, eps)
    }

    /// The model's input: `combine(dropout(E[ids]), dropout(table[:seq]))`
    /// for token ids `[batch, seq]` (encoder and decoder share the table);
    /// `dropout(E[ids])` for a table of no rows (`position = none`). The
    /// masks are the two dropouts' (`None`: none); the gradients of the
    /// embedding and the table accumulate under their ids.
    fn embed_positions<const V: usize, const M: usize, const L: usize, T: AnyTape<E, Self>>(
        embedding: &Tensor<Rank2<V, M>, E, Self>,
        table: &Tensor<Rank2<L, M>, E, Self>,
        ids: &Tensor<(usize, usize), usize, Self>,
        masks: [Option<DropMask>; 2],
        combine: Combine,
    ) -> Hidden<M, E, Self, T> {
        composed::embed_positions(embedding, table, ids, masks, combine)
    }

    /// `dropout(act(gate) ⊙ up)` (`mask`: the dropout's, `None`: none): the
    /// gated linear unit's inner activation, `gate` and `up` `[batch, seq,
    /// F]` each with its tape.
    fn glu_dropout<S: Shape, T: AnyTape<E, Self>>(
        gate: Tensor<S, E, Self, T>,
        up: Tensor<S, E, Self, T>,
        act: Activation,
        mask: Option<DropMask>,
    ) -> Tensor<S, E, Self, T> {
        composed::glu_dropout(gate, up, act, mask)
    }

    /// `t ⊙ mask` (kept elements scaled by `1 / (1 − p)`).
    fn dropout<S: Shape, T: Tape<E, Self>>(
        t: Tensor<S, E, Self, T>,
        mask: DropMask,
    ) -> Tensor<S, E, Self, T> {
        composed::dropout(t, mask)
    }

    /// `t ⊙ mask + x`: a sub-layer's dropout and the residual add after it;
    /// `x`, the residual stream, is tape-free (its gradient accumulates
    /// under its id).
    fn dropout_add<S: Shape, T: Tape<E, Self>>(
        t: Tensor<S, E, Self, T>,
        x: Tensor<S, E, Self>,
        mask: DropMask,
    ) -> Tensor<S, E, Self, T> {
        composed::dropout_add(t, x, mask)
    }

    /// `relu(t) ⊙ mask`.
    fn relu_dropout<S: Shape, T: Tape<E, Self>>(
        t: Tensor<S, E, Self, T>,
        mask: DropMask,
    ) -> Tensor<S, E, Self, T> {
        composed::relu_dropout(t, mask)
    }

    /// Mean cross-entropy of `logits` `[batch, seq, V]` over the positions
    /// whose label (`[batch·seq]`) is not negative.
    fn cross_entropy<const V: usize, T: AnyTape<E, Self>>(
        logits: Tensor<(usize, usize, Const<V>), E, Self, T>,
        labels: &[i64],
    ) -> Tensor<Rank0, E, Self, T> {
        composed::cross_entropy(logits, labels)
    }

    /// One AdamW update of `p` and its moments `m`, `v` from `p`'s gradient
    /// in `grads`, which it leaves zeroed (the step consumes it; the
    /// session's next [`zero_grads`](crate::session::Session::zero_grads)
    /// then only drops the intermediates). Returns `false` (and changes
    /// nothing) when the gradient is all zeros.
    fn adamw<S: Shape>(
        p: &mut Tensor<S, E, Self>,
        m: &mut Tensor<S, E, Self>,
        v: &mut Tensor<S, E, Self>,
        grads: &mut Gradients<E, Self>,
        step: AdamWStep,
    ) -> Result<bool, Self::Err> {
        composed::adamw(p, m, v, grads, step)
    }

    /// Calls `f` with `t`'s gradient (zeros if it has none yet).
    fn with_grad<S: Shape>(
        grads: &mut Gradients<E, Self>,
        t: &Tensor<S, E, Self>,
        f: &mut dyn FnMut(&[E]),
    ) -> Result<(), Self::Err> {
        grads.try_alloc_for(t)?;
        f(&grads.get(t).as_vec());
        Ok(())
    }
}

/// `x.linear(&w, precision)`, so that a chain of ops reads left to right.
pub trait Linear<const K: usize, E: Float, D: Ops<E>, T: Tape<E, D>> {
    /// `self · w`; see [`Ops::linear`].
    fn linear<const N: usize>(
        self,
        w: &Tensor<Rank2<K, N>, E, D>,
        precision: Matmul,
    ) -> Rows<N, E, D, T>;
}

impl<const K: usize, E: Float, D: Ops<E>, T: Tape<E, D>> Linear<K, E, D, T> for Rows<K, E, D, T> {
    fn linear<const N: usize>(
        self,
        w: &Tensor<Rank2<K, N>, E, D>,
        precision: Matmul,
    ) -> Rows<N, E, D, T> {
        D::linear(self, w, precision)
    }
}
