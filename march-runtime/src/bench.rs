//! Throughput measurement shared by `march bench` and the criterion benches:
//! a prepared step of any variant on a synthetic batch of a stated shape,
//! the FLOPs it executes, the machine's measured matmul ceiling and the
//! process's peak memory.

use std::time::Instant;

use dfdx::prelude::*;

use crate::layers::Ctx;
use crate::model::Seq2Seq;
use crate::registry::{tape_into, SeedableDevice, Variant};
use crate::train::optim::{grad_norm, AdamW, AdamWConfig};
use crate::workload::Workload;

/// What one benchmark step does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Forward (with dropout), backward, gradient norm, AdamW: a training step.
    Train,
    /// Forward only, without dropout: evaluation.
    Forward,
}

impl Mode {
    pub fn name(self) -> &'static str {
        match self {
            Mode::Train => "train step",
            Mode::Forward => "forward",
        }
    }
}

/// Seconds one step spent in each of its phases.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Phases {
    /// The forward pass and the loss.
    pub forward: f64,
    /// The backward pass (zero in [`Mode::Forward`]).
    pub backward: f64,
    /// The gradient norm and the AdamW update (zero in [`Mode::Forward`]).
    pub optimizer: f64,
}

/// One step of a variant on a fixed batch, ready to run again and again;
/// it returns the time of each phase.
pub type Step = Box<dyn FnMut() -> Phases>;

/// Build `V` (seed 0) and a batch of `workload`, and return its `mode` step.
pub fn step<V: Variant>(workload: Workload, mode: Mode) -> Step {
    step_on::<V, Cpu>(workload, mode)
}

fn step_on<V: Variant, D: Device<f32> + SeedableDevice + 'static>(
    workload: Workload,
    mode: Mode,
) -> Step {
    let dev = D::seeded(0);
    let mut model = V::build::<f32, D>(&dev, 0);
    let (batch, labels) = workload.batch::<f32, D>(&dev, V::ARCH.vocab, 0);
    match mode {
        Mode::Forward => Box::new(move || {
            let t0 = Instant::now();
            let loss = model.loss(&batch, &labels, &Ctx::eval(&V::ARCH), NoneTape);
            std::hint::black_box(loss.as_vec());
            Phases {
                forward: t0.elapsed().as_secs_f64(),
                ..Phases::default()
            }
        }),
        Mode::Train => {
            let mut opt =
                AdamW::new::<f32, D>(AdamWConfig::default(), || V::Model::<f32, D>::build(&dev));
            let mut grads = Some(model.alloc_grads());
            let mut n = 0u64;
            Box::new(move || {
                n += 1;
                let t0 = Instant::now();
                let mut g = grads.take().expect("gradients");
                model.zero_grads(&mut g);
                let ctx = Ctx::train_seeded(&V::ARCH, n);
                let loss = model.loss(&batch, &labels, &ctx, tape_into(&dev, g));
                std::hint::black_box(loss.as_vec());
                let t1 = Instant::now();
                let mut g = loss.backward();
                let t2 = Instant::now();
                let norm = grad_norm(&model, &mut g);
                opt.step(&mut model, &mut g, 1e-4, 1.0 / norm.max(1.0));
                grads = Some(g);
                let t3 = Instant::now();
                Phases {
                    forward: (t1 - t0).as_secs_f64(),
                    backward: (t2 - t1).as_secs_f64(),
                    optimizer: (t3 - t2).as_secs_f64(),
                }
            })
        }
    }
}

/// Matrix-product FLOPs of one step of `mode` (forward is a third of
/// forward + backward).
pub fn flops_per_step(arch: &crate::Arch, w: Workload, mode: Mode) -> f64 {
    let fb = arch.flops_per_example(w.enc_len, w.dec_len) as f64 * w.batch as f64;
    match mode {
        Mode::Train => fb,
        Mode::Forward => fb / 3.0,
    }
}

/// The f32 matrix-multiply throughput this process reaches (GFLOP/s): the
/// best of a few 2048³ products through march's own matmul (the
/// [`linear`](crate::kernels::linear) kernel, gemm 0.19), on the threads it
/// uses.
pub fn matmul_ceiling_gflops() -> f64 {
    const N: usize = 2048;
    let dev = Cpu::seed_from_u64(0);
    let a: Tensor<(usize, usize, Const<N>), f32, _> = dev.sample_normal_like(&(1, N, Const));
    let b: Tensor<Rank2<N, N>, f32, _> = dev.sample_normal();
    let mut best = f64::INFINITY;
    for _ in 0..5 {
        let t0 = Instant::now();
        let c = crate::kernels::linear::linear(a.clone(), &b);
        std::hint::black_box(&c);
        best = best.min(t0.elapsed().as_secs_f64());
    }
    2.0 * (N as f64).powi(3) / best / 1e9
}

/// Memory of this process from `/proc/self/status`: (current, peak) resident
/// bytes; `None` where there is no procfs.
pub fn resident_memory() -> Option<(u64, u64)> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let field = |name: &str| -> Option<u64> {
        let line = status.lines().find(|l| l.starts_with(name))?;
        let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kb * 1024)
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

/// Timings of a benchmark.
#[derive(Debug, Clone)]
pub struct Measured {
    /// Seconds of each measured step.
    pub step_s: Vec<f64>,
    /// The phases of each measured step.
    pub phases: Vec<Phases>,
    /// Resident memory after the warm-up steps and after the last step.
    pub rss_after_warmup: Option<u64>,
    pub rss_at_end: Option<u64>,
    pub peak_rss: Option<u64>,
}

fn median(mut s: Vec<f64>) -> f64 {
    s.sort_by(f64::total_cmp);
    let n = s.len();
    if n == 0 {
        f64::NAN
    } else if n % 2 == 1 {
        s[n / 2]
    } else {
        0.5 * (s[n / 2 - 1] + s[n / 2])
    }
}

impl Measured {
    pub fn median_s(&self) -> f64 {
        median(self.step_s.clone())
    }

    /// The median of each phase over the measured steps.
    pub fn median_phases(&self) -> Phases {
        let of = |f: fn(&Phases) -> f64| median(self.phases.iter().map(f).collect());
        Phases {
            forward: of(|p| p.forward),
            backward: of(|p| p.backward),
            optimizer: of(|p| p.optimizer),
        }
    }
}

/// Run `warmup` steps, then time `steps` steps.
pub fn measure(
    step: &mut Step,
    warmup: usize,
    steps: usize,
    mut tick: impl FnMut(usize),
) -> Measured {
    for _ in 0..warmup {
        step();
    }
    let rss_after_warmup = resident_memory().map(|m| m.0);
    let mut step_s = Vec::with_capacity(steps);
    let mut phases = Vec::with_capacity(steps);
    for i in 0..steps {
        let t0 = Instant::now();
        phases.push(step());
        step_s.push(t0.elapsed().as_secs_f64());
        tick(i + 1);
    }
    let mem = resident_memory();
    Measured {
        step_s,
        phases,
        rss_after_warmup,
        rss_at_end: mem.map(|m| m.0),
        peak_rss: mem.map(|m| m.1),
    }
}
