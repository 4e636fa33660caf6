//! The tied LM head and the masked cross-entropy.

use dfdx::prelude::*;

use crate::ops::{Matmul, Ops};

use super::{AnyTape, Float, Hidden};

/// Labels below zero (by convention -100) are ignored by the loss.
pub const IGNORE_INDEX: i64 = -100;

/// `logits = (x * M^-0.5) @ Eᵀ`, with `E` the input embedding `[V, M]`:
/// `[batch, seq, M]` → `[batch, seq, V]`.
pub fn tied_logits<const V: usize, const M: usize, E: Float, D: Ops<E>, T: AnyTape<E, D>>(
    x: Hidden<M, E, D, T>,
    embedding: &Tensor<Rank2<V, M>, E, D>,
    precision: Matmul,
) -> Tensor<(usize, usize, Const<V>), E, D, T> {
    let scale = E::from_f64((M as f64).powf(-0.5)).unwrap();
    D::linear_transposed(x * scale, embedding, precision)
}

/// Mean cross-entropy of `logits` `[batch, seq, V]` over the positions whose
/// label (`[batch·seq]`, row-major) is not negative. Ignored positions get
/// exactly zero gradient. Panics if a label is ≥ V; returns NaN-free 0 when
/// every label is ignored.
///
/// The device's [`Ops::cross_entropy`]: the fused kernel on the CPU, dfdx's
/// composition ([`masked_cross_entropy_composed`]) on other devices.
pub fn masked_cross_entropy<const V: usize, E: Float, D: Ops<E>, T: AnyTape<E, D>>(
    logits: Tensor<(usize, usize, Const<V>), E, D, T>,
    labels: &[i64],
) -> Tensor<Rank0, E, D, T> {
    D::cross_entropy(logits, labels)
}

/// [`masked_cross_entropy`] as a composition of dfdx ops (what devices
/// without march's kernels run): [`crate::ops::composed::cross_entropy`].
pub fn masked_cross_entropy_composed<const V: usize, E: Float, D: Device<E>, T: AnyTape<E, D>>(
    logits: Tensor<(usize, usize, Const<V>), E, D, T>,
    labels: &[i64],
) -> Tensor<Rank0, E, D, T> {
    crate::ops::composed::cross_entropy(logits, labels)
}
