//! What `#[march_model]` implements for each variant: its resolved
//! architecture and its statically shaped model type.

use dfdx::prelude::*;

use crate::arch::Arch;
use crate::layers::{Ctx, Float};
use crate::model::{Seq2Seq, Seq2SeqBatch};
use crate::ops::Ops;
use crate::session::HostBatch;

/// A model variant: its resolved architecture and its statically shaped model.
pub trait Variant: 'static {
    const ARCH: Arch;
    /// The dfdx module, for any element type and device.
    type Model<E: Float, D: Ops<E>>: Seq2Seq<E, D>;

    /// Build the model on `dev` and initialise it from `seed`.
    fn build<E: Float, D: Ops<E>>(dev: &D, seed: u64) -> Self::Model<E, D> {
        let mut model = <Self::Model<E, D> as crate::params::Build<E, D>>::build(dev);
        model.init(&Ctx::eval(&Self::ARCH), seed);
        model
    }
}

/// A small deterministic batch: two examples, the second with padded
/// encoder positions and an ignored label.
pub fn probe_host_batch(vocab: usize) -> HostBatch {
    let (b, se, sd) = (2, 12, 5);
    let id = |i: usize| (i * 7919 + 13) % vocab;
    let enc_ids: Vec<usize> = (0..b * se).map(id).collect();
    let enc_mask: Vec<f32> = (0..b * se)
        .map(|i| if i >= se && i % se >= 9 { 0.0 } else { 1.0 })
        .collect();
    let dec_ids: Vec<usize> = (0..b * sd).map(|i| id(i + 1000)).collect();
    let mut labels: Vec<i64> = (0..b * sd).map(|i| id(i + 2000) as i64).collect();
    labels[b * sd - 1] = crate::layers::IGNORE_INDEX;
    HostBatch {
        batch: b,
        enc_len: se,
        dec_len: sd,
        enc_ids,
        enc_mask,
        dec_ids,
        labels,
    }
}

/// [`probe_host_batch`] on `dev`, and its labels.
pub fn probe_batch<E: Float, D: Device<E>>(
    dev: &D,
    vocab: usize,
) -> (Seq2SeqBatch<E, D>, Vec<i64>) {
    probe_host_batch(vocab).to_device(dev)
}
