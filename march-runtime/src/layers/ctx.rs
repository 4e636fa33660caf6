use std::cell::Cell;

use dfdx::prelude::*;

use super::Float;
use crate::arch::Arch;
use crate::kernels::{self, cpu_kernels};

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

/// SplitMix64's finaliser: a bijective 64-bit mix.
#[inline(always)]
pub fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
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

/// One dropout's mask over a tensor's elements in row-major order: element
/// `i` is kept, and scaled by `1 / (1 − p)`, when the hash of
/// `(stream, i)` is at least `p` of the 64-bit range.
#[derive(Debug, Clone, Copy)]
pub struct DropMask {
    stream: u64,
    threshold: u64,
    /// `1 / (1 − p)`.
    pub scale: f64,
}

impl DropMask {
    /// The mask of stream `stream` dropping with probability `p` (in [0, 1)).
    pub fn new(stream: u64, p: f64) -> Self {
        DropMask {
            stream,
            // keep where the element's uniform draw is at least p
            threshold: (p * (u64::MAX as f64)) as u64,
            scale: 1.0 / (1.0 - p),
        }
    }

    /// Whether element `i` is kept.
    #[inline(always)]
    pub fn keep(&self, i: u64) -> bool {
        mix64(self.stream.wrapping_add(i)) >= self.threshold
    }

    /// `dst[j] = src[j] · mask(offset + j)` (`scale` or 0).
    pub fn apply<E: Float>(&self, src: &[E], dst: &mut [E], offset: u64) {
        if let (Some(src), Some(dst)) = (kernels::f32s(src), kernels::f32s_mut(dst)) {
            return kernels::simd::dropout(self, src, dst, offset);
        }
        let scale = E::from_f64(self.scale).unwrap();
        for (j, (d, &s)) in dst.iter_mut().zip(src).enumerate() {
            *d = if self.keep(offset + j as u64) {
                s * scale
            } else {
                E::zero()
            };
        }
    }

    /// `x[j] ← x[j] · mask(offset + j)`.
    pub fn apply_in_place<E: Float>(&self, x: &mut [E], offset: u64) {
        if let Some(x) = kernels::f32s_mut(x) {
            return kernels::simd::dropout_in_place(self, x, offset);
        }
        let scale = E::from_f64(self.scale).unwrap();
        for (j, v) in x.iter_mut().enumerate() {
            *v = if self.keep(offset + j as u64) {
                *v * scale
            } else {
                E::zero()
            };
        }
    }
}
