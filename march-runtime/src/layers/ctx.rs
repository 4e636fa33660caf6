use std::cell::Cell;

use dfdx::prelude::*;

use crate::ops::Ops;

use super::{AnyTape, Float};
use crate::arch::{Activation, Arch};
use crate::kernels::{mix64, DropMask};
use crate::ops::Matmul;

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
    /// The precision of the projections' matrix products (forward and
    /// backward): f32 unless a run asks for bf16 ([`Ctx::with_matmul`]).
    pub matmul: Matmul,
    seed: u64,
    calls: Cell<u64>,
}

impl<'a> Ctx<'a> {
    /// A training pass: dropout active, masks drawn from `seed`.
    pub fn train_seeded(arch: &'a Arch, seed: u64) -> Self {
        Ctx {
            arch,
            train: true,
            matmul: Matmul::F32,
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
            matmul: Matmul::F32,
            seed: 0,
            calls: Cell::new(0),
        }
    }

    /// The same pass with the projections in precision `matmul` (checked
    /// available by [`Matmul::check`] where the run is configured).
    pub fn with_matmul(self, matmul: Matmul) -> Self {
        Ctx { matmul, ..self }
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
    pub fn dropout<S: Shape, E: Float, D: Ops<E>, T: Tape<E, D>>(
        &self,
        t: Tensor<S, E, D, T>,
        p: f64,
    ) -> Tensor<S, E, D, T> {
        let Some(mask) = self.dropout_mask(p) else {
            return t;
        };
        D::dropout(t, mask)
    }

    /// `dropout(t) + x` with the variant's probability (one op,
    /// [`Ops::dropout_add`], when training): a sub-layer's output joining
    /// the residual stream `x`.
    pub fn drop_add<S: Shape, E: Float, D: Ops<E>, T: Tape<E, D>>(
        &self,
        t: Tensor<S, E, D, T>,
        x: Tensor<S, E, D>,
    ) -> Tensor<S, E, D, T> {
        match self.dropout_mask(self.arch.dropout) {
            Some(mask) => D::dropout_add(t, x, mask),
            None => t + x,
        }
    }

    /// `dropout(relu(t))` with the variant's probability (one op,
    /// [`Ops::relu_dropout`], when training).
    pub fn relu_drop<S: Shape, E: Float, D: Ops<E>, T: Tape<E, D>>(
        &self,
        t: Tensor<S, E, D, T>,
    ) -> Tensor<S, E, D, T> {
        match self.dropout_mask(self.arch.dropout) {
            Some(mask) => D::relu_dropout(t, mask),
            None => t.relu(),
        }
    }

    /// `dropout(act(gate) ⊙ up)` with the variant's probability (one op,
    /// [`Ops::glu_dropout`]).
    pub fn glu_drop<S: Shape, E: Float, D: Ops<E>, T: AnyTape<E, D>>(
        &self,
        gate: Tensor<S, E, D, T>,
        up: Tensor<S, E, D, T>,
        act: Activation,
    ) -> Tensor<S, E, D, T> {
        D::glu_dropout(gate, up, act, self.dropout_mask(self.arch.dropout))
    }

    /// Dropout with the variant's probability.
    pub fn drop<S: Shape, E: Float, D: Ops<E>, T: Tape<E, D>>(
        &self,
        t: Tensor<S, E, D, T>,
    ) -> Tensor<S, E, D, T> {
        self.dropout(t, self.arch.dropout)
    }
}
