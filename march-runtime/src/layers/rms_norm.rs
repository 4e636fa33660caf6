//! T5's layer norm: root-mean-square normalisation with a learned scale, no
//! mean subtraction, no bias (Zhang & Sennrich, 2019).

use dfdx::prelude::*;

use crate::layers::Block;

use super::{module, no_params};

use crate::ops::Ops;

use super::{AnyTape, Float, Hidden};

/// The epsilon added to the mean square, as T5.
pub const RMS_NORM_EPS: f64 = 1e-6;

/// `y = weight * x / sqrt(mean(x²) + eps)` over the last axis; the gain has
/// `G` elements: `M` (T5) or 1 (`norm_gain = scalar`).
#[derive(Debug, Clone)]
pub struct RmsNorm<const M: usize, const G: usize, E: Dtype, D: Storage<E>> {
    /// `[G]`, initialised to 1.
    pub weight: Tensor<Rank1<G>, E, D>,
}

module! {
    init impl[const M: usize, const G: usize] RmsNorm<M, G> {
        weight: ones,
    }
}

impl<const M: usize, const G: usize, E: Float, D: Ops<E>> RmsNorm<M, G, E, D> {
    /// [`Ops::rms_norm`]: the fused kernel on the CPU, the composition
    /// ([`Self::forward_composed`]) on other devices.
    pub fn forward<T: AnyTape<E, D>>(&self, x: Hidden<M, E, D, T>) -> Hidden<M, E, D, T> {
        D::rms_norm(x, &self.weight, RMS_NORM_EPS)
    }

    /// [`Self::forward`] as a composition of dfdx ops.
    pub fn forward_composed<T: AnyTape<E, D>>(&self, x: Hidden<M, E, D, T>) -> Hidden<M, E, D, T> {
        crate::ops::composed::rms_norm(x, &self.weight, RMS_NORM_EPS)
    }
}

/// The norm before a sub-layer: [`RmsNorm`], or [`NoNorm`] where the
/// variant has no such sub-layer (`ffn = none`).
pub trait Norm<const M: usize, E: Float, D: Ops<E>>: Block<E, D> {
    fn norm<T: AnyTape<E, D>>(&self, x: Hidden<M, E, D, T>) -> Hidden<M, E, D, T>;
}

impl<const M: usize, const G: usize, E: Float, D: Ops<E>> Norm<M, E, D> for RmsNorm<M, G, E, D> {
    fn norm<T: AnyTape<E, D>>(&self, x: Hidden<M, E, D, T>) -> Hidden<M, E, D, T> {
        self.forward(x)
    }
}

/// The norm of an absent sub-layer: no parameters, never applied.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoNorm;

no_params!(NoNorm);

impl<const M: usize, E: Float, D: Ops<E>> Norm<M, E, D> for NoNorm {
    fn norm<T: AnyTape<E, D>>(&self, x: Hidden<M, E, D, T>) -> Hidden<M, E, D, T> {
        x
    }
}

/// The [`RmsNorm`] a [`Norm`] is, if it is one: what a decoder layer hands
/// the next with `decoder_norms = shared`.
pub trait AsRmsNorm<const M: usize, const G: usize, E: Dtype, D: Storage<E>> {
    fn as_rms_norm(&self) -> Option<&RmsNorm<M, G, E, D>>;
}

impl<const M: usize, const G: usize, E: Dtype, D: Storage<E>> AsRmsNorm<M, G, E, D>
    for RmsNorm<M, G, E, D>
{
    fn as_rms_norm(&self) -> Option<&RmsNorm<M, G, E, D>> {
        Some(self)
    }
}

impl<const M: usize, const G: usize, E: Dtype, D: Storage<E>> AsRmsNorm<M, G, E, D> for NoNorm {
    fn as_rms_norm(&self) -> Option<&RmsNorm<M, G, E, D>> {
        None
    }
}
