//! Every variant declared with `#[march_model]` registers itself here; the CLI
//! lists and builds them by name, with no hand-kept list.

use dfdx::prelude::*;

use crate::arch::Arch;
use crate::layers::{Ctx, Float};
use crate::model::{Seq2Seq, Seq2SeqBatch};
use crate::params::{grad_magnitudes, ParamInfo};

/// A model variant: its resolved architecture and its statically shaped model.
pub trait Variant: 'static {
    const ARCH: Arch;
    /// The dfdx module, for any element type and device.
    type Model<E: Float, D: Device<E>>: Seq2Seq<E, D> + BuildModule<D, E>;

    /// Build the model on `dev` and initialise it from `seed`.
    fn build<E: Float, D: Device<E>>(dev: &D, seed: u64) -> Self::Model<E, D> {
        let mut model = Self::Model::<E, D>::build(dev);
        model.init(&Ctx::eval(&Self::ARCH), seed);
        model
    }
}

/// A registered variant: what the CLI and the tests need, as plain functions
/// (each instantiated for the variant by `#[march_model]`).
#[derive(Debug)]
pub struct Entry {
    pub arch: &'static Arch,
    /// Builds the model on the CPU (f32) and returns dfdx's count of its
    /// trainable parameters.
    pub built_params: fn() -> usize,
    /// Runs one forward+backward pass of a small fixed batch (no dropout) and
    /// returns each parameter tensor with the magnitude of its gradient.
    pub grad_magnitudes: fn() -> Vec<(ParamInfo, f64)>,
    /// The same pass on the first CUDA device.
    #[cfg(feature = "cuda")]
    pub cuda_grad_magnitudes: fn() -> Vec<(ParamInfo, f64)>,
    /// Train the variant (`march train`).
    pub train: fn(&crate::train::RunOptions) -> anyhow::Result<crate::train::Report>,
    /// A prepared benchmark step on a synthetic batch (`march bench`).
    pub bench: fn(crate::workload::Workload, crate::bench::Mode) -> crate::bench::Step,
}

impl Entry {
    pub const fn of<V: Variant>(arch: &'static Arch) -> Self {
        Entry {
            arch,
            built_params: built_params::<V>,
            grad_magnitudes: probe_gradients::<V, Cpu>,
            #[cfg(feature = "cuda")]
            cuda_grad_magnitudes: probe_gradients::<V, Cuda>,
            train: crate::train::run::<V>,
            bench: crate::bench::step::<V>,
        }
    }
}

/// dfdx's parameter count of `V`'s model (allocates it on the CPU).
pub fn built_params<V: Variant>() -> usize {
    let dev = Cpu::default();
    V::Model::<f32, Cpu>::build(&dev).num_trainable_params()
}

/// A small deterministic batch for `V`: two examples, the second with padded
/// encoder positions and an ignored label.
pub fn probe_batch<E: Float, D: Device<E>>(
    dev: &D,
    vocab: usize,
) -> (Seq2SeqBatch<E, D>, Vec<i64>) {
    let (b, se, sd) = (2, 12, 5);
    let id = |i: usize| (i * 7919 + 13) % vocab;
    let enc_ids: Vec<usize> = (0..b * se).map(id).collect();
    let mask: Vec<E> = (0..b * se)
        .map(|i| {
            if i >= se && i % se >= 9 {
                E::zero()
            } else {
                E::one()
            }
        })
        .collect();
    let dec_ids: Vec<usize> = (0..b * sd).map(|i| id(i + 1000)).collect();
    let mut labels: Vec<i64> = (0..b * sd).map(|i| id(i + 2000) as i64).collect();
    labels[b * sd - 1] = crate::layers::IGNORE_INDEX;
    let batch = Seq2SeqBatch {
        enc_ids: dev.tensor_from_vec(enc_ids, (b, se)),
        enc_mask: dev.tensor_from_vec(mask, (b, se)),
        dec_ids: dev.tensor_from_vec(dec_ids, (b, sd)),
    };
    (batch, labels)
}

/// Gradient magnitude of every parameter of `V` (f32, on a `D` seeded with 0)
/// after one pass of [`probe_batch`].
pub fn probe_gradients<V: Variant, D: Device<f32> + SeedableDevice>() -> Vec<(ParamInfo, f64)> {
    let dev = D::seeded(0);
    let model = V::build::<f32, D>(&dev, 0);
    let (batch, labels) = probe_batch::<f32, D>(&dev, V::ARCH.vocab);
    let grads = model.alloc_grads();
    let tape = tape_into(&dev, grads);
    let loss = model.loss(&batch, &labels, &Ctx::eval(&V::ARCH), tape);
    let mut grads = loss.backward();
    grad_magnitudes(&model, &mut grads)
}

/// A training tape that accumulates into `grads` (from `model.alloc_grads()`).
pub fn tape_into<E: Float, D: Device<E>>(dev: &D, grads: Gradients<E, D>) -> OwnedTape<E, D> {
    let anchor: Tensor<Rank0, E, D> = dev.zeros();
    anchor.traced(grads).split_tape().1
}

/// Devices that can be created from a seed (the CPU, and the first CUDA device).
pub trait SeedableDevice: Sized {
    fn seeded(seed: u64) -> Self;
}

impl SeedableDevice for Cpu {
    fn seeded(seed: u64) -> Self {
        Cpu::seed_from_u64(seed)
    }
}

#[cfg(feature = "cuda")]
impl SeedableDevice for Cuda {
    fn seeded(seed: u64) -> Self {
        Cuda::seed_from_u64(seed)
    }
}

inventory::collect!(Entry);

/// Every registered variant, sorted by name.
pub fn variants() -> Vec<&'static Entry> {
    let mut all: Vec<_> = inventory::iter::<Entry>.into_iter().collect();
    all.sort_by_key(|e| e.arch.name);
    all
}

/// The registered variant called `name` (case-insensitive).
pub fn find(name: &str) -> Option<&'static Entry> {
    inventory::iter::<Entry>
        .into_iter()
        .find(|e| e.arch.name.eq_ignore_ascii_case(name))
}
