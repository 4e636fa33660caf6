//! T5's layer norm: root-mean-square normalisation with a learned scale, no
//! mean subtraction, no bias (Zhang & Sennrich, 2019).

use dfdx::prelude::*;

use crate::ops::Ops;

use super::{AnyTape, Float, Hidden, InitParams, ParamInit};

/// The epsilon added to the mean square, as T5.
pub const RMS_NORM_EPS: f64 = 1e-6;

/// `y = weight * x / sqrt(mean(x²) + eps)` over the last axis.
#[derive(Debug, Clone)]
pub struct RmsNorm<const M: usize, E: Dtype, D: Storage<E>> {
    /// `[M]`, initialised to 1.
    pub weight: Tensor<Rank1<M>, E, D>,
}

impl<const M: usize, E: Float, D: Ops<E>> TensorCollection<E, D> for RmsNorm<M, E, D> {
    type To<E2: Dtype, D2: Device<E2>> = RmsNorm<M, E2, D2>;

    fn iter_tensors<V: ModuleVisitor<Self, E, D>>(
        visitor: &mut V,
    ) -> Result<Option<Self::To<V::E2, V::D2>>, V::Err> {
        visitor.visit_fields(
            Self::tensor(
                "weight",
                |s| &s.weight,
                |s| &mut s.weight,
                TensorOptions::reset_to_ones(),
            ),
            |weight| RmsNorm { weight },
        )
    }
}

impl<const M: usize, E: Float, D: Ops<E>> InitParams<E, D> for RmsNorm<M, E, D> {
    fn init_params(&mut self, init: &mut ParamInit) {
        init.ones(&mut self.weight);
    }
}

impl<const M: usize, E: Float, D: Ops<E>> RmsNorm<M, E, D> {
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
