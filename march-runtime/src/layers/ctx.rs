use std::cell::Cell;

use dfdx::prelude::*;

use super::Float;
use crate::arch::Arch;
use crate::kernels::{self, cpu_kernels, mix64, DropMask};

/// What a forward pass needs besides its inputs: the variant's architecture
/// (for everything that is not a shape) and, when training, the dropout
/// stream.
///
/// Dropout masks come from a counter-based generator: element `i` of the
/// `n`-th dropout of a pass is kept or dropped by a hash of
/// `(seed, n, i)`. A pass is therefore a pure function of its seed, which
/// is what makes runs reproducible and resumable without saving RNG state.
#[derive(Debug)]
pub struct Ctx<'a> {
    pub arch: &'a Arch,
    pub train: bool,
    seed: u64,
    calls: Cell<u64>,
}

impl<'a> Ctx<'a> {
    /// A training pass: dropout active, masks drawn from `seed`.
    pub fn train_seeded(arch: &'a Arch, seed: u64) -> Self {
        Ctx {
            arch,
            train: true,
            seed,
            calls: Cell::new(0),
        }
    }

    /// A training pass with dropout seed 0.
    pub fn train(arch: &'a Arch) -> Self {
        Self::train_seeded(arch, 0)
    }

    /// An evaluation pass: dropout off.
    pub fn eval(arch: &'a Arch) -> Self {
        Ctx {
            arch,
            train: false,
            seed: 0,
            calls: Cell::new(0),
        }
    }

    /// The mask of the next dropout with probability `p`, or `None` when
    /// not training or `p` is 0. Each call draws a new stream.
    pub fn dropout_mask(&self, p: f64) -> Option<DropMask> {
        if !self.train || p <= 0.0 {
            return None;
        }
        let call = self.calls.get();
        self.calls.set(call + 1);
        Some(DropMask::new(
            mix64(self.seed ^ mix64(call.wrapping_add(0x9e37_79b9_7f4a_7c15))),
            p,
        ))
    }

    /// Dropout with probability `p` when training, the identity otherwise.
    pub fn dropout<S: Shape, E: Float, D: Device<E>, T: Tape<E, D>>(
        &self,
        t: Tensor<S, E, D, T>,
        p: f64,
    ) -> Tensor<S, E, D, T> {
        let Some(mask) = self.dropout_mask(p) else {
            return t;
        };
        if cpu_kernels::<E, D>() {
            return kernels::dropout::dropout(t, mask);
        }
        let scale = E::from_f64(mask.scale).unwrap();
        let n = t.shape().num_elements();
        let mask: Vec<E> = (0..n as u64)
            .map(|i| if mask.keep(i) { scale } else { E::default() })
            .collect();
        let shape = *t.shape();
        let mask = t.device().tensor_from_vec(mask, shape);
        t * mask
    }

    /// Dropout with the variant's probability.
    pub fn drop<S: Shape, E: Float, D: Device<E>, T: Tape<E, D>>(
        &self,
        t: Tensor<S, E, D, T>,
    ) -> Tensor<S, E, D, T> {
        self.dropout(t, self.arch.dropout)
    }
}
