use dfdx::prelude::*;

use crate::arch::Arch;

/// What a forward pass needs besides its inputs: the variant's architecture
/// (for everything that is not a shape) and whether dropout is active.
#[derive(Debug, Clone, Copy)]
pub struct Ctx<'a> {
    pub arch: &'a Arch,
    pub train: bool,
}

impl<'a> Ctx<'a> {
    /// A training pass: dropout active.
    pub fn train(arch: &'a Arch) -> Self {
        Ctx { arch, train: true }
    }

    /// An evaluation pass: dropout off.
    pub fn eval(arch: &'a Arch) -> Self {
        Ctx { arch, train: false }
    }

    /// Dropout with probability `p` when training, the identity otherwise.
    pub fn dropout<S: Shape, E: Dtype, D: Device<E>, T: Tape<E, D>>(
        &self,
        t: Tensor<S, E, D, T>,
        p: f64,
    ) -> Tensor<S, E, D, T> {
        if self.train && p > 0.0 {
            t.dropout(p)
        } else {
            t
        }
    }

    /// Dropout with the variant's probability.
    pub fn drop<S: Shape, E: Dtype, D: Device<E>, T: Tape<E, D>>(
        &self,
        t: Tensor<S, E, D, T>,
    ) -> Tensor<S, E, D, T> {
        self.dropout(t, self.arch.dropout)
    }
}
