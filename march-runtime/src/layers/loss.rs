//! The tied LM head and the masked cross-entropy.

use dfdx::prelude::*;

use super::{AnyTape, Float, Hidden};
use crate::kernels::cpu_kernels;
use crate::kernels::cross_entropy::fused_masked_cross_entropy;
use crate::kernels::linear::linear_transposed;

/// Labels below zero (by convention -100) are ignored by the loss.
pub const IGNORE_INDEX: i64 = -100;

/// `logits = (x * M^-0.5) @ Eᵀ`, with `E` the input embedding `[V, M]`:
/// `[batch, seq, M]` → `[batch, seq, V]`.
pub fn tied_logits<const V: usize, const M: usize, E: Float, D: Device<E>, T: AnyTape<E, D>>(
    x: Hidden<M, E, D, T>,
    embedding: &Tensor<Rank2<V, M>, E, D>,
) -> Tensor<(usize, usize, Const<V>), E, D, T> {
    let scale = E::from_f64((M as f64).powf(-0.5)).unwrap();
    linear_transposed(x * scale, embedding)
}

/// Mean cross-entropy of `logits` `[batch, seq, V]` over the positions whose
/// label (`[batch·seq]`, row-major) is not negative. Ignored positions get
/// exactly zero gradient. Panics if a label is ≥ V; returns NaN-free 0 when
/// every label is ignored.
///
/// The fused kernel ([`crate::kernels::cross_entropy`]) on the CPU, dfdx's
/// composition ([`masked_cross_entropy_composed`]) on other devices.
pub fn masked_cross_entropy<const V: usize, E: Float, D: Device<E>, T: AnyTape<E, D>>(
    logits: Tensor<(usize, usize, Const<V>), E, D, T>,
    labels: &[i64],
) -> Tensor<Rank0, E, D, T> {
    if cpu_kernels::<E, D>() {
        return fused_masked_cross_entropy(logits, labels);
    }
    masked_cross_entropy_composed(logits, labels)
}

/// [`masked_cross_entropy`] as a composition of dfdx ops:
/// `log_softmax` → `select` → weighted sum.
pub fn masked_cross_entropy_composed<const V: usize, E: Float, D: Device<E>, T: AnyTape<E, D>>(
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
