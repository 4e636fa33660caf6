//! Throughput measurement shared by `march bench` and the criterion benches:
//! a prepared step of any variant on a synthetic batch of a stated shape,
//! the FLOPs it executes, the machine's measured matmul ceiling and the
//! process's peak memory.

use std::time::Instant;

#[cfg(feature = "cuda")]
pub mod cuda;

use crate::arch::Arch;
use crate::ops::Matmul;
use crate::optim::AdamWConfig;
use crate::session::{DeviceKind, Opener, Session, SessionOptions};
use crate::train::step::train_step;
pub use crate::train::step::Phases;
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

/// One step of a variant on a fixed batch, ready to run again and again;
/// it returns the time of each phase.
pub type Step = Box<dyn FnMut() -> Phases>;

/// Open `arch`'s model (seed 0) on `device` with a batch of `workload`, and
/// return its `mode` step: the trainer's own step ([`train_step`]) or its
/// evaluation.
pub fn step(
    arch: &'static Arch,
    open: Opener,
    device: DeviceKind,
    workload: Workload,
    mode: Mode,
    matmul: Matmul,
) -> anyhow::Result<Step> {
    let adamw = (mode == Mode::Train).then(AdamWConfig::default);
    let mut session: Box<dyn Session> = open(
        arch,
        &SessionOptions {
            device,
            seed: 0,
            adamw,
            matmul,
        },
    )?;
    let batch = workload.batch(arch.vocab, 0);
    Ok(match mode {
        Mode::Forward => Box::new(move || {
            let t0 = Instant::now();
            std::hint::black_box(session.eval_loss(&batch));
            Phases {
                forward: t0.elapsed().as_secs_f64(),
                ..Phases::default()
            }
        }),
        Mode::Train => {
            let mut micro = vec![(batch, 0u64)];
            Box::new(move || {
                micro[0].1 += 1;
                match train_step(session.as_mut(), &micro, 1e-4, 1.0) {
                    Ok(outcome) => outcome.phases,
                    Err(e) => panic!("benchmark step diverged: {e:?}"),
                }
            })
        }
    })
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

/// The projection products one training step of `arch` on `w` multiplies,
/// as `(m, k, n)` of the forward `x · W` (the backward multiplies the same
/// sizes transposed): the attention projections, the feed-forward and the
/// LM head, encoder and decoder side, without repeats.
pub fn step_products(arch: &Arch, w: Workload) -> Vec<(usize, usize, usize)> {
    let rows = [w.batch * w.enc_len, w.batch * w.dec_len];
    let m = arch.dim_model;
    let mut out = Vec::new();
    for &r in &rows {
        let layers = (0..arch.encoder_layers)
            .map(|i| arch.encoder(i))
            .chain((0..arch.decoder_layers).map(|i| arch.decoder(i)));
        for l in layers {
            out.push((r, m, l.inner()));
            out.push((r, l.inner(), m));
            if arch.ffn.present() {
                out.push((r, m, l.dim_ff));
                out.push((r, l.dim_ff, m));
            }
        }
    }
    out.push((rows[1], m, arch.vocab));
    out.sort_unstable();
    out.dedup();
    out
}

/// The matrix-product throughput this process reaches (GFLOP/s) in
/// precision `matmul`: the best over `shapes` (each timed `reps` times)
/// through march's own product, on the threads it uses; with the shape
/// that reached it. Errors where [`Matmul::check`] does.
pub fn matmul_ceiling(
    shapes: &[(usize, usize, usize)],
    reps: usize,
    matmul: Matmul,
) -> Result<(f64, (usize, usize, usize)), String> {
    let mut best = (0.0, (0, 0, 0));
    for &(m, k, n) in shapes {
        let mut s = f64::INFINITY;
        for _ in 0..reps.max(1) {
            s = s.min(crate::kernels::time_product((m, k, n), matmul)?);
        }
        let rate = 2.0 * (m * k * n) as f64 / s / 1e9;
        if rate > best.0 {
            best = (rate, (m, k, n));
        }
    }
    Ok(best)
}

/// [`matmul_ceiling`] at 2048³ alone in f32: the figure of earlier reports.
pub fn matmul_ceiling_gflops() -> f64 {
    matmul_ceiling(&[(2048, 2048, 2048)], 5, Matmul::F32)
        .expect("f32 runs everywhere")
        .0
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
