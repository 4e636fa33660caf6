//! Every variant declared with `#[march_model]` registers itself here; the CLI
//! lists and builds them by name, with no hand-kept list.
//!
//! An [`Entry`] holds a variant's architecture and one function that opens
//! its model as a [`Session`]; everything else (training, benchmarks,
//! probes) is written once, above the session.

use anyhow::Result;
use dfdx::prelude::*;

use crate::arch::Arch;
use crate::bench::{Mode, Step};
use crate::ops::Matmul;
use crate::params::ParamInfo;
use crate::session::{DeviceKind, ModelSession, Session, SessionOptions};
use crate::train::{Report, RunOptions};
use crate::workload::Workload;

pub use crate::session::{tape_into, SeedableDevice};
pub use crate::variant::{probe_batch, probe_host_batch, Variant};

/// A registered variant.
#[derive(Debug)]
pub struct Entry {
    pub arch: &'static Arch,
    /// Opens the variant's model (instantiated by `#[march_model]`).
    pub open: crate::session::Opener,
}

impl Entry {
    pub const fn of<V: Variant>(arch: &'static Arch) -> Self {
        Entry {
            arch,
            open: open::<V>,
        }
    }

    /// The variant's model on `opts.device`.
    pub fn session(&self, opts: &SessionOptions) -> Result<Box<dyn Session>> {
        (self.open)(self.arch, opts)
    }

    /// Builds the model on the CPU (f32) and returns dfdx's count of its
    /// trainable parameters.
    pub fn built_params(&self) -> usize {
        self.probe_session(DeviceKind::Cpu)
            .expect("the CPU is always there")
            .num_trainable_params()
    }

    /// Runs one forward+backward pass of [`probe_host_batch`] (no dropout)
    /// on `device` and returns each parameter tensor with the magnitude of
    /// its gradient.
    pub fn grad_magnitudes(&self, device: DeviceKind) -> Result<Vec<(ParamInfo, f64)>> {
        let mut s = self.probe_session(device)?;
        s.accumulate(&probe_host_batch(self.arch.vocab), None);
        Ok(s.grad_magnitudes())
    }

    fn probe_session(&self, device: DeviceKind) -> Result<Box<dyn Session>> {
        self.session(&SessionOptions::probe(device, 0))
    }

    /// Train the variant (`march train`).
    pub fn train(&self, opts: &RunOptions) -> Result<Report> {
        crate::train::trainer::run(self.arch, self.open, opts)
    }

    /// Evaluate a run's checkpoint (`march eval`).
    pub fn evaluate(
        &self,
        dir: &std::path::Path,
        target: &crate::train::evaluate::EvalTarget,
        device: DeviceKind,
        progress: bool,
    ) -> Result<crate::train::evaluate::RunEvaluation> {
        crate::train::evaluate::evaluate_run(self.arch, self.open, dir, target, device, progress)
    }

    /// A prepared benchmark step on a synthetic batch (`march bench`).
    pub fn bench(
        &self,
        device: DeviceKind,
        workload: Workload,
        mode: Mode,
        matmul: Matmul,
    ) -> Result<Step> {
        crate::bench::step(self.arch, self.open, device, workload, mode, matmul)
    }
}

/// `V`'s model as a session: the only code instantiated per variant, and
/// it is a few lines; [`ModelSession`] is instantiated per model type.
fn open<V: Variant>(arch: &'static Arch, opts: &SessionOptions) -> Result<Box<dyn Session>> {
    opts.matmul
        .check()
        .map_err(|e| anyhow::anyhow!("--matmul {}: {e}", opts.matmul))?;
    match opts.device {
        DeviceKind::Cpu => Ok(Box::new(ModelSession::<V::Model<f32, Cpu>, Cpu>::new(
            arch, opts,
        )?)),
        #[cfg(feature = "cuda")]
        DeviceKind::Cuda => Ok(Box::new(ModelSession::<V::Model<f32, Cuda>, Cuda>::new(
            arch, opts,
        )?)),
        #[cfg(not(feature = "cuda"))]
        DeviceKind::Cuda => anyhow::bail!(
            "this march was built without CUDA: rebuild with `cargo build --release --features cuda`"
        ),
    }
}

inventory::collect!(Entry);

/// Every registered variant, sorted by name.
pub fn variants() -> Vec<&'static Entry> {
    let mut all: Vec<_> = inventory::iter::<Entry>.into_iter().collect();
    all.sort_by_key(|e| e.arch.name);
    all
}

/// The registered variant called `name`, or an error that suggests the
/// nearest name.
pub fn find_or_suggest(name: &str) -> Result<&'static Entry> {
    find(name).ok_or_else(|| {
        let hint = crate::names::did_you_mean(
            name,
            inventory::iter::<Entry>.into_iter().map(|e| e.arch.name),
            "",
        );
        anyhow::anyhow!("unknown variant `{name}`{hint} (`march list` shows them all)")
    })
}

/// The registered variant called `name` (case-insensitive).
pub fn find(name: &str) -> Option<&'static Entry> {
    inventory::iter::<Entry>
        .into_iter()
        .find(|e| e.arch.name.eq_ignore_ascii_case(name))
}
