//! The CUDA path against the CPU, wherever a GPU is found (built only with
//! `--features cuda`: `cargo test --release --features cuda --test cuda`).
//!
//! Tiny models of every feed-forward, attention, cross-attention, position
//! and norm kind are built on both devices from the same seed (the
//! initialisation is drawn on the host, so the weights are identical) and
//! must agree:
//! - logits and loss within [`FORWARD_TOL`] of the largest CPU logit;
//! - every gradient tensor within [`GRAD_TOL`] of its largest CPU entry,
//!   with dropout (its masks are drawn on the host too) and without;
//! - the same tensors without gradient (the dead weights);
//! - a short AdamW run: the CUDA curve repeats itself within
//!   [`REPEAT_TOL`] (each test prints whether bitwise) and follows the
//!   CPU's within [`CURVE_TOL`];
//! - a checkpoint written on either device resumes on the other.
//!
//! Without a device every test prints `skipped: no CUDA device: …` and
//! passes; `.ci/run` counts those lines.

use std::path::PathBuf;

use march_runtime::checkpoint::TrainState;
use march_runtime::data::DataPosition;
use march_runtime::march_model;
use march_runtime::ops::Matmul;
use march_runtime::optim::AdamWConfig;
use march_runtime::registry::{self, probe_host_batch, Entry};
use march_runtime::session::{DeviceKind, HostBatch, Session, SessionOptions};

/// Logits: |cuda − cpu| ≤ FORWARD_TOL · max(1, max |cpu|).
const FORWARD_TOL: f32 = 1e-4;
/// Gradients: per tensor, |cuda − cpu| ≤ GRAD_TOL · max |cpu| (+ 1e-7).
const GRAD_TOL: f32 = 1e-3;
/// Two CUDA runs of the same steps: relative difference of each loss.
const REPEAT_TOL: f64 = 1e-5;
/// A CUDA run against the CPU's: relative difference of each loss.
const CURVE_TOL: f64 = 1e-3;

/// 2+2 layers, dim 8, 2 heads of 4: the original's structure in miniature
/// (dense ReLU, learned positions, softmax attention, the decoder reusing
/// the encoder's keys and values).
#[march_model(
    dim_model = 8,
    layers = 2,
    heads = 2,
    dim_qkv = 4,
    dim_ff = 12,
    vocab = 11,
    max_len = 16,
    dropout = 0.1,
    budget = 2360
)]
struct CudaTiny;

#[march_model(base = CudaTiny, ffn = dense(gelu), budget_exempt = "test")]
struct CudaGelu;

#[march_model(base = CudaTiny, ffn = glu(sigmoid), budget_exempt = "test")]
struct CudaGluSigmoid;

#[march_model(base = CudaTiny, ffn = glu(silu), dim_ff *= 2/3, self_attn_residual = false, budget_exempt = "test")]
struct CudaGluSilu;

#[march_model(base = CudaTiny, ffn = glu(relu), budget_exempt = "test")]
struct CudaGluRelu;

#[march_model(base = CudaTiny, ffn = mixed(sum, branch_dropout = 0.5), position_combine = sum, position_init = unit, budget_exempt = "test")]
struct CudaMixedSum;

#[march_model(base = CudaTiny, ffn = mixed(mean), budget_exempt = "test")]
struct CudaMixedMean;

#[march_model(base = CudaTiny, ffn = none, budget_exempt = "test")]
struct CudaNoFfn;

#[march_model(base = CudaTiny, attention = uniform_encoder, budget_exempt = "test")]
struct CudaUniform;

#[march_model(base = CudaTiny, cross_attention = own_kv, heads = [3, 1], attention_scale = inv_sqrt_dim, budget_exempt = "test")]
struct CudaOwnKvScaled;

#[march_model(base = CudaTiny, cross_attention = project_encoder_kv, budget_exempt = "test")]
struct CudaProjectKv;

#[march_model(base = CudaTiny, position = none, tie_embeddings = false, budget_exempt = "test")]
struct CudaNoPositionUntied;

#[march_model(base = CudaTiny, position = t5_relative(num_buckets = 8, max_distance = 16), budget_exempt = "test")]
struct CudaT5Relative;

#[march_model(base = CudaTiny, position = rope, budget_exempt = "test")]
struct CudaRope;

#[march_model(base = CudaTiny, norm_gain = scalar, ffn_residual = false, budget_exempt = "test")]
struct CudaScalarGain;

const ALL: &[&str] = &[
    "CudaTiny",
    "CudaGelu",
    "CudaGluSigmoid",
    "CudaGluSilu",
    "CudaGluRelu",
    "CudaMixedSum",
    "CudaMixedMean",
    "CudaNoFfn",
    "CudaUniform",
    "CudaOwnKvScaled",
    "CudaProjectKv",
    "CudaNoPositionUntied",
    "CudaT5Relative",
    "CudaRope",
    "CudaScalarGain",
];

/// Whether a CUDA device opens; if not, says so (the line `.ci/run` counts).
fn have_cuda(test: &str) -> bool {
    match march_runtime::session::cuda_devices() {
        Ok(_) => true,
        Err(e) => {
            // `e` reads "no CUDA device: …"
            println!("skipped: {e} [{test}]");
            false
        }
    }
}

fn entry(name: &str) -> &'static Entry {
    registry::find(name).unwrap_or_else(|| panic!("{name} is not registered"))
}

fn probe(name: &str, device: DeviceKind) -> Box<dyn Session> {
    entry(name)
        .session(&SessionOptions::probe(device, 3))
        .unwrap_or_else(|e| panic!("{name} on {device}: {e:#}"))
}

fn training(name: &str, device: DeviceKind) -> Box<dyn Session> {
    let opts = SessionOptions {
        device,
        seed: 5,
        adamw: Some(AdamWConfig::default()),
        matmul: Matmul::F32,
    };
    entry(name)
        .session(&opts)
        .unwrap_or_else(|e| panic!("{name} on {device}: {e:#}"))
}

fn max_abs(v: &[f32]) -> f32 {
    v.iter().fold(0.0f32, |m, x| m.max(x.abs()))
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .fold(0.0f32, |m, (x, y)| m.max((x - y).abs()))
}

fn compare_gradients(name: &str, what: &str, cpu: &mut dyn Session, cuda: &mut dyn Session) {
    let (gc, gg) = (cpu.gradients(), cuda.gradients());
    assert_eq!(gc.len(), gg.len(), "{name}: tensor lists differ");
    for ((nc, c), (ng, g)) in gc.iter().zip(&gg) {
        assert_eq!(nc, ng, "{name}: tensor order differs");
        let (d, scale) = (max_diff(c, g), max_abs(c));
        assert!(
            d <= GRAD_TOL * scale + 1e-7,
            "{name} ({what}): gradient of {nc} differs by {d:e} (largest CPU entry {scale:e})"
        );
    }
}

#[test]
fn every_kind_gives_the_cpus_logits_and_gradients() {
    if !have_cuda("every_kind_gives_the_cpus_logits_and_gradients") {
        return;
    }
    let batch = probe_host_batch(11);
    for &name in ALL {
        let (mut cpu, mut cuda) = (probe(name, DeviceKind::Cpu), probe(name, DeviceKind::Cuda));
        let (lc, lg) = (cpu.decoder_logits(&batch), cuda.decoder_logits(&batch));
        let (d, scale) = (max_diff(&lc, &lg), max_abs(&lc).max(1.0));
        assert!(
            d <= FORWARD_TOL * scale,
            "{name}: logits differ by {d:e} (largest {scale:e})"
        );
        for (what, dropout) in [("no dropout", None), ("dropout", Some(17))] {
            cpu.zero_grads();
            cuda.zero_grads();
            let (pc, pg) = (
                cpu.accumulate(&batch, dropout),
                cuda.accumulate(&batch, dropout),
            );
            assert!(
                (pc.loss - pg.loss).abs() <= FORWARD_TOL as f64 * pc.loss.abs().max(1.0),
                "{name} ({what}): loss {} on the CPU, {} on CUDA",
                pc.loss,
                pg.loss
            );
            compare_gradients(name, what, &mut *cpu, &mut *cuda);
        }
        println!("{name}: CUDA = CPU (logits within {d:.1e})");
    }
}

#[test]
fn the_dead_weights_get_no_gradient_on_cuda() {
    if !have_cuda("the_dead_weights_get_no_gradient_on_cuda") {
        return;
    }
    for &name in ALL {
        let e = entry(name);
        let dead = |device| -> Vec<String> {
            e.grad_magnitudes(device)
                .unwrap()
                .into_iter()
                .filter(|(_, m)| *m == 0.0)
                .map(|(i, _)| i.name)
                .collect()
        };
        let (cpu, cuda) = (dead(DeviceKind::Cpu), dead(DeviceKind::Cuda));
        assert_eq!(cuda, cpu, "{name}: tensors without gradient differ");
        let live: u64 = e
            .grad_magnitudes(DeviceKind::Cuda)
            .unwrap()
            .iter()
            .filter(|(_, m)| *m > 0.0)
            .map(|(i, _)| i.numel as u64)
            .sum();
        assert_eq!(live, e.arch.params.live, "{name}: live parameters on CUDA");
    }
}

/// `steps` AdamW steps of the probe batch with dropout (seeded per step).
fn train(s: &mut dyn Session, batch: &HostBatch, steps: u64) -> Vec<f64> {
    (0..steps)
        .map(|_| {
            let step = s.optimizer_steps();
            s.zero_grads();
            let pass = s.accumulate(batch, Some(1000 + step));
            s.update(3e-3, 1.0);
            pass.loss
        })
        .collect()
}

fn worst_relative(a: &[f64], b: &[f64]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs() / x.abs().max(1e-12))
        .fold(0.0, f64::max)
}

#[test]
fn training_on_cuda_repeats_itself_and_follows_the_cpu() {
    if !have_cuda("training_on_cuda_repeats_itself_and_follows_the_cpu") {
        return;
    }
    let batch = probe_host_batch(11);
    for name in ["CudaTiny", "CudaGluSilu", "CudaRope"] {
        let first = train(&mut *training(name, DeviceKind::Cuda), &batch, 30);
        let again = train(&mut *training(name, DeviceKind::Cuda), &batch, 30);
        let cpu = train(&mut *training(name, DeviceKind::Cpu), &batch, 30);
        let repeat = worst_relative(&first, &again);
        println!(
            "{name}: two CUDA runs of 30 steps differ by at most {repeat:.2e} relative ({}); \
             CUDA against the CPU {:.2e}",
            if first == again {
                "bitwise identical"
            } else {
                "not bitwise"
            },
            worst_relative(&cpu, &first)
        );
        assert!(repeat <= REPEAT_TOL, "{name}: repeats differ by {repeat:e}");
        let vs_cpu = worst_relative(&cpu, &first);
        assert!(vs_cpu <= CURVE_TOL, "{name}: CUDA vs CPU {vs_cpu:e}");
        assert!(
            first[29] < first[0],
            "{name}: the loss did not fall: {first:?}"
        );
    }
}

fn scratch(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("march-cuda-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn state(s: &dyn Session) -> TrainState {
    TrainState {
        variant: s.arch().name.to_string(),
        step: s.optimizer_steps(),
        tokens: 0,
        position: DataPosition { epoch: 0, index: 0 },
        seed: 5,
        adam_t: s.optimizer_steps(),
    }
}

#[test]
fn a_checkpoint_written_on_either_device_resumes_on_the_other() {
    if !have_cuda("a_checkpoint_written_on_either_device_resumes_on_the_other") {
        return;
    }
    let batch = probe_host_batch(11);
    let name = "CudaT5Relative";
    for (from, to) in [
        (DeviceKind::Cuda, DeviceKind::Cpu),
        (DeviceKind::Cpu, DeviceKind::Cuda),
    ] {
        let dir = scratch(&format!("{from}-{to}"));
        let mut a = training(name, from);
        train(&mut *a, &batch, 5);
        a.save(&dir, &state(&*a)).unwrap();
        let mut b = training(name, to);
        let st = b.load(&dir.join(march_runtime::checkpoint::FILE)).unwrap();
        assert_eq!(st.step, 5);
        assert_eq!(b.optimizer_steps(), 5);
        let (on_a, on_b) = (train(&mut *a, &batch, 5), train(&mut *b, &batch, 5));
        let d = worst_relative(&on_a, &on_b);
        assert!(
            d <= CURVE_TOL,
            "{name}: resumed {from} → {to}: {on_a:?} against {on_b:?}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
