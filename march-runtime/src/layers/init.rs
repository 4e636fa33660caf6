//! Deterministic parameter initialisation, independent of the device's RNG.

use dfdx::prelude::*;

use crate::ops::Ops;
use rand::{rngs::StdRng, SeedableRng};
use rand_distr::{Distribution, StandardNormal};

use super::Float;

/// Draws every parameter from one seeded stream, in the module's field order,
/// so that the same seed gives the same weights on every device.
#[derive(Debug)]
pub struct ParamInit {
    rng: StdRng,
}

impl ParamInit {
    pub fn new(seed: u64) -> Self {
        ParamInit {
            rng: StdRng::seed_from_u64(seed),
        }
    }

    /// Fill `t` from N(0, std²).
    pub fn normal<S: Shape, E: Float, D: Ops<E>>(&mut self, t: &mut Tensor<S, E, D>, std: f64) {
        let n = t.shape().num_elements();
        let values: Vec<E> = (0..n)
            .map(|_| {
                let z: f64 = StandardNormal.sample(&mut self.rng);
                E::from_f64(z * std).unwrap()
            })
            .collect();
        t.copy_from(&values);
    }

    /// Fill `t` with ones.
    pub fn ones<S: Shape, E: Float, D: Ops<E>>(&mut self, t: &mut Tensor<S, E, D>) {
        t.fill_with_ones();
    }
}

/// A module whose parameters follow the paper's initialisation.
pub trait InitParams<E: Float, D: Ops<E>> {
    fn init_params(&mut self, init: &mut ParamInit);
}
