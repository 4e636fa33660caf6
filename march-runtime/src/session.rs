//! A variant's model on its device, with its gradients and optimizer, behind
//! one object-safe trait: everything training, evaluation, `march bench` and
//! the gradient probes do with a model.
//!
//! The generic part, [`ModelSession`], is instantiated once per model
//! *type*: variants that differ only in run-time settings of their
//! [`Arch`] (activation, position init, residuals, …) share one. Everything
//! above it — the trainer, the benchmark, the CLI — works with a
//! `Box<dyn Session>` and is compiled once.

use std::path::Path;
use std::time::Instant;

use anyhow::Result;
use dfdx::prelude::*;
use serde::{Deserialize, Serialize};

use crate::arch::Arch;
use crate::checkpoint::{self, TrainState};
use crate::layers::{Ctx, Float};
use crate::model::{Seq2Seq, Seq2SeqBatch};
use crate::ops::{Matmul, Ops};
use crate::optim::{grad_norm, AdamW, AdamWConfig};
use crate::params::{
    alloc_grads, for_each_grad_slice, for_each_param, grad_magnitudes, num_params, retain_grads,
    set_params, zero_grads, Build, ParamInfo, Params,
};

/// Where to train.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum DeviceKind {
    #[default]
    Cpu,
    Cuda,
}

impl std::fmt::Display for DeviceKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            DeviceKind::Cpu => "the CPU",
            DeviceKind::Cuda => "CUDA",
        })
    }
}

impl std::str::FromStr for DeviceKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "cpu" => Ok(DeviceKind::Cpu),
            "cuda" | "gpu" => Ok(DeviceKind::Cuda),
            _ => Err(format!("unknown device `{s}`: use cpu or cuda")),
        }
    }
}

/// How to open a session.
#[derive(Debug, Clone, Copy)]
pub struct SessionOptions {
    pub device: DeviceKind,
    /// Seeds the device and the initialisation.
    pub seed: u64,
    /// `Some`: a training session with this optimizer; `None`: evaluation
    /// and probes only (no optimizer state is allocated).
    pub adamw: Option<AdamWConfig>,
    /// The precision of the projections (checked available when the
    /// session opens).
    pub matmul: Matmul,
}

impl SessionOptions {
    /// A session on `device` from `seed`, for evaluation and probes, in f32.
    pub fn probe(device: DeviceKind, seed: u64) -> Self {
        SessionOptions {
            device,
            seed,
            adamw: None,
            matmul: Matmul::F32,
        }
    }
}

/// A batch on the host, as data preparation makes it; any device takes it.
#[derive(Debug, Clone, PartialEq)]
pub struct HostBatch {
    pub batch: usize,
    pub enc_len: usize,
    pub dec_len: usize,
    /// `[batch, enc_len]`.
    pub enc_ids: Vec<usize>,
    /// 1 for real encoder tokens, 0 for padding, `[batch, enc_len]`.
    pub enc_mask: Vec<f32>,
    /// `[batch, dec_len]`.
    pub dec_ids: Vec<usize>,
    /// `[batch·dec_len]`, negative = ignored.
    pub labels: Vec<i64>,
}

impl HostBatch {
    /// The batch as tensors on `dev`, and its labels.
    pub fn to_device<E: Float, D: Device<E>>(&self, dev: &D) -> (Seq2SeqBatch<E, D>, Vec<i64>) {
        let (b, se, sd) = (self.batch, self.enc_len, self.dec_len);
        let mask = self
            .enc_mask
            .iter()
            .map(|&m| E::from_f32(m).unwrap())
            .collect();
        let batch = Seq2SeqBatch {
            enc_ids: dev.tensor_from_vec(self.enc_ids.clone(), (b, se)),
            enc_mask: dev.tensor_from_vec(mask, (b, se)),
            dec_ids: dev.tensor_from_vec(self.dec_ids.clone(), (b, sd)),
        };
        (batch, self.labels.clone())
    }
}

/// One forward + backward pass: its loss and the seconds of each half.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pass {
    pub loss: f64,
    pub forward_s: f64,
    pub backward_s: f64,
}

/// What the runtime does with a model, whatever its type and device.
pub trait Session {
    fn arch(&self) -> &'static Arch;
    /// dfdx's count of the model's trainable parameters.
    fn num_trainable_params(&self) -> usize;
    /// Mean loss of `batch`, no dropout, no gradients.
    fn eval_loss(&self, batch: &HostBatch) -> f64;
    /// Zero the accumulated gradients (the start of an optimizer step).
    /// After an [`update`](Session::update), which leaves them zeroed, this
    /// only drops the intermediates.
    fn zero_grads(&mut self);
    /// Forward and backward pass of `batch`, adding to the accumulated
    /// gradients; `dropout_seed` draws the dropout masks, `None`: no dropout.
    fn accumulate(&mut self, batch: &HostBatch, dropout_seed: Option<u64>) -> Pass;
    /// Global L2 norm of the accumulated gradients.
    fn grad_norm(&mut self) -> f64;
    /// One AdamW update at `lr` with the gradients scaled by `grad_scale`;
    /// returns how many tensors were updated. It consumes the gradients:
    /// they read zero after it ([`Ops::adamw`]). Needs a training session.
    fn update(&mut self, lr: f64, grad_scale: f64) -> usize;
    /// Optimizer steps taken.
    fn optimizer_steps(&self) -> u64;
    /// Every parameter tensor with the sum of absolute values of its
    /// accumulated gradient.
    fn grad_magnitudes(&mut self) -> Vec<(ParamInfo, f64)>;
    /// Every trainable tensor's gradient, copied to the host, in the
    /// module's order (tests compare devices with it).
    fn gradients(&mut self) -> Vec<(String, Vec<f32>)>;
    /// Write the checkpoint (model, optimizer, `state`) into `dir`, atomically.
    fn save(&self, dir: &Path, state: &TrainState) -> Result<()>;
    /// Load a checkpoint (model and optimizer); returns its state.
    fn load(&mut self, path: &Path) -> Result<TrainState>;
    /// Load only a checkpoint's model weights (inference); returns its state.
    fn load_weights(&mut self, path: &Path) -> Result<TrainState>;
    /// The decoder's logits for `batch` (no dropout): `[batch, dec_len,
    /// vocab]`, row-major.
    fn decoder_logits(&self, batch: &HostBatch) -> Vec<f32>;
    /// Set every element of the parameter `name` to `value` (tests: NaN
    /// injection); returns whether the parameter exists.
    fn fill_param(&mut self, name: &str, value: f32) -> bool;
    /// The first parameter with a NaN or infinite value, if any.
    fn non_finite_param(&self) -> Option<String>;
}

/// The one [`Session`] implementation, generic over the model type `M`
/// and the device `D`.
pub struct ModelSession<M, D: Ops<f32>> {
    arch: &'static Arch,
    matmul: Matmul,
    dev: D,
    model: M,
    opt: Option<AdamW<f32, D>>,
    grads: Option<Gradients<f32, D>>,
    /// Whether every trainable tensor's gradient is zero: after the
    /// allocation, [`Session::zero_grads`] and [`Session::update`]; not
    /// after [`Session::accumulate`].
    grads_zero: bool,
}

impl<M, D> ModelSession<M, D>
where
    M: Seq2Seq<f32, D> + Build<f32, D> + 'static,
    D: Ops<f32> + SeedableDevice,
{
    /// The model's parameters, type-erased: the optimizer, checkpoints and
    /// probes are compiled once, not per model type.
    fn params(&self) -> &dyn Params<f32, D> {
        &self.model
    }

    /// Build `M` on a device seeded with `opts.seed` and initialise it from
    /// the same seed as `arch` says.
    pub fn new(arch: &'static Arch, opts: &SessionOptions) -> Result<Self> {
        let dev = D::seeded(opts.seed)?;
        let mut model = <M as Build<f32, D>>::build(&dev);
        model.init(&Ctx::eval(arch), opts.seed);
        let params: &dyn Params<f32, D> = &model;
        let opt = opts.adamw.map(|cfg| AdamW::new(cfg, params));
        let grads = Some(alloc_grads(params));
        Ok(ModelSession {
            arch,
            matmul: opts.matmul,
            dev,
            model,
            opt,
            grads,
            grads_zero: true,
        })
    }
}

impl<M, D> Session for ModelSession<M, D>
where
    M: Seq2Seq<f32, D> + Build<f32, D> + 'static,
    D: Ops<f32> + SeedableDevice,
{
    fn arch(&self) -> &'static Arch {
        self.arch
    }

    fn num_trainable_params(&self) -> usize {
        num_params(self.params())
    }

    fn eval_loss(&self, batch: &HostBatch) -> f64 {
        let (b, labels) = batch.to_device::<f32, D>(&self.dev);
        let loss = self.model.loss(
            &b,
            &labels,
            &Ctx::eval(self.arch).with_matmul(self.matmul),
            NoneTape,
        );
        loss.as_vec()[0] as f64
    }

    fn zero_grads(&mut self) {
        let mut g = self.grads.take().expect("gradients");
        if self.grads_zero {
            retain_grads(self.params(), &mut g);
        } else {
            zero_grads(self.params(), &mut g);
        }
        self.grads = Some(g);
        self.grads_zero = true;
    }

    fn accumulate(&mut self, batch: &HostBatch, dropout_seed: Option<u64>) -> Pass {
        let t0 = Instant::now();
        let (b, labels) = batch.to_device::<f32, D>(&self.dev);
        let ctx = match dropout_seed {
            Some(seed) => Ctx::train_seeded(self.arch, seed).with_matmul(self.matmul),
            None => Ctx::eval(self.arch).with_matmul(self.matmul),
        };
        let g = self.grads.take().expect("gradients");
        self.grads_zero = false;
        let loss = self.model.loss(&b, &labels, &ctx, tape_into(&self.dev, g));
        let value = loss.as_vec()[0] as f64;
        let t1 = Instant::now();
        self.grads = Some(loss.backward());
        Pass {
            loss: value,
            forward_s: (t1 - t0).as_secs_f64(),
            backward_s: t1.elapsed().as_secs_f64(),
        }
    }

    fn grad_norm(&mut self) -> f64 {
        let g = self.grads.as_mut().expect("gradients");
        grad_norm(&self.model as &dyn Params<f32, D>, g)
    }

    fn update(&mut self, lr: f64, grad_scale: f64) -> usize {
        let mut g = self.grads.take().expect("gradients");
        let opt = self
            .opt
            .as_mut()
            .expect("an optimizer step in a session opened without AdamW");
        let n = opt.step(
            &mut self.model as &mut dyn Params<f32, D>,
            &mut g,
            lr,
            grad_scale,
        );
        self.grads = Some(g);
        // every tensor's gradient consumed, or all zeros and skipped
        self.grads_zero = true;
        n
    }

    fn optimizer_steps(&self) -> u64 {
        self.opt.as_ref().map_or(0, |o| o.t)
    }

    fn grad_magnitudes(&mut self) -> Vec<(ParamInfo, f64)> {
        let mut g = self.grads.take().expect("gradients");
        let out = grad_magnitudes(self.params(), &mut g);
        self.grads = Some(g);
        out
    }

    fn gradients(&mut self) -> Vec<(String, Vec<f32>)> {
        let mut g = self.grads.take().expect("gradients");
        let mut out = Vec::new();
        for_each_grad_slice(self.params(), &mut g, |name, v| {
            out.push((name.to_string(), v.to_vec()))
        });
        self.grads = Some(g);
        out
    }

    fn save(&self, dir: &Path, state: &TrainState) -> Result<()> {
        let opt = self
            .opt
            .as_ref()
            .expect("a checkpoint of a session opened without AdamW");
        checkpoint::save(dir, self.params(), opt, state)
    }

    fn load(&mut self, path: &Path) -> Result<TrainState> {
        let opt = self
            .opt
            .as_mut()
            .expect("a checkpoint loaded into a session opened without AdamW");
        checkpoint::load(path, &mut self.model as &mut dyn Params<f32, D>, opt)
    }

    fn load_weights(&mut self, path: &Path) -> Result<TrainState> {
        checkpoint::load_model(path, &mut self.model as &mut dyn Params<f32, D>)
    }

    fn decoder_logits(&self, batch: &HostBatch) -> Vec<f32> {
        let (b, _) = batch.to_device::<f32, D>(&self.dev);
        self.model
            .forward(&b, &Ctx::eval(self.arch).with_matmul(self.matmul), NoneTape)
            .as_vec()
    }

    fn fill_param(&mut self, name: &str, value: f32) -> bool {
        let mut found = false;
        set_params(&mut self.model as &mut dyn Params<f32, D>, |n, len| {
            (n == name).then(|| {
                found = true;
                vec![value; len]
            })
        });
        found
    }

    fn non_finite_param(&self) -> Option<String> {
        let mut bad = None;
        for_each_param(self.params(), |name, v| {
            if bad.is_none() && v.iter().any(|x| !x.is_finite()) {
                bad = Some(name.to_string());
            }
        });
        bad
    }
}

/// A training tape that accumulates into `grads` (from `model.alloc_grads()`).
pub fn tape_into<E: Float, D: Device<E>>(dev: &D, grads: Gradients<E, D>) -> OwnedTape<E, D> {
    let anchor: Tensor<Rank0, E, D> = dev.zeros();
    anchor.traced(grads).split_tape().1
}

/// Devices that can be created from a seed (the CPU, and the first CUDA device).
pub trait SeedableDevice: Sized + 'static {
    /// The device, or why there is none (no GPU, no driver).
    fn seeded(seed: u64) -> Result<Self>;
}

impl SeedableDevice for Cpu {
    fn seeded(seed: u64) -> Result<Self> {
        Ok(Cpu::seed_from_u64(seed))
    }
}

#[cfg(feature = "cuda")]
impl SeedableDevice for Cuda {
    fn seeded(seed: u64) -> Result<Self> {
        cuda_devices()?;
        Cuda::try_seed_from_u64(seed).map_err(|e| anyhow::anyhow!("opening CUDA device 0: {e:?}"))
    }
}

/// How many CUDA devices the driver sees, or why there is none in words
/// (cudarc panics where there is no driver or no GPU, so this asks first).
#[cfg(feature = "cuda")]
pub fn cuda_devices() -> Result<usize> {
    use cudarc::driver::result;
    result::init().map_err(|e| anyhow::anyhow!("no CUDA device: the driver says {e}"))?;
    let n = result::device::get_count()
        .map_err(|e| anyhow::anyhow!("no CUDA device: the driver says {e}"))?;
    if n < 1 {
        anyhow::bail!("no CUDA device: the driver sees no GPU");
    }
    Ok(n as usize)
}

/// Opens a variant's model (its architecture and options) as a session:
/// the one function a registered variant provides.
pub type Opener = fn(&'static Arch, &SessionOptions) -> Result<Box<dyn Session>>;
