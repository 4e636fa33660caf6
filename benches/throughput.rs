//! Throughput of every variant, in corpus tokens per second
//! (`Throughput::Elements`): the full training step (forward with dropout,
//! backward, gradient norm, AdamW) and the forward pass alone (evaluation).
//!
//! - every variant of the small family at batch 16, encoder 230 / decoder 52
//!   (span corruption of 256-token chunks);
//! - the seed-scale baseline and three seed-scale variants at the reference
//!   workload, batch 8, in f32 and (train step, on a CPU with AMX or
//!   AVX-512 BF16) with bf16 matrix products.
//!
//! `cargo bench --bench throughput` runs them all (6 minutes on 2 cores
//! with `-- --warm-up-time 1 --measurement-time 3`);
//! `cargo bench --bench throughput -- SmallBaseline` the ones whose id
//! contains `SmallBaseline`.
//! The steps come from the registry (`Entry::bench`), so this crate
//! instantiates no model code itself.

use criterion::{criterion_group, Criterion, SamplingMode, Throughput};
use march_runtime::bench::{Mode, Step};
use march_runtime::ops::Matmul;
use march_runtime::registry::{find, variants, Entry};
use march_runtime::session::DeviceKind;
use march_runtime::workload::Workload;

/// The seed-scale variants measured besides the baseline.
const SEED_SCALE: [&str; 4] = [
    "Baseline",
    "SiLUGatedLinearUnit",
    "ScalingHeads",
    "MoreHeadsLessLayers",
];

fn bench_entry(
    c: &mut Criterion,
    group: &str,
    entry: &Entry,
    w: Workload,
    mode: Mode,
    matmul: Matmul,
) {
    let mut g = c.benchmark_group(group);
    g.throughput(Throughput::Elements(w.tokens() as u64));
    // steps of 50 ms to seconds: a fixed number of iterations per sample
    g.sampling_mode(SamplingMode::Flat);
    g.sample_size(10);
    // built on first use: criterion calls this only when the benchmark's id
    // passes the command line's filter
    let mut step: Option<Step> = None;
    g.bench_function(entry.arch.name, |b| {
        let step = step.get_or_insert_with(|| {
            entry
                .bench(DeviceKind::Cpu, w, mode, matmul)
                .expect("a CPU benchmark step")
        });
        b.iter(step)
    });
    g.finish();
}

fn small_family() -> Vec<&'static Entry> {
    march_models::link();
    variants()
        .into_iter()
        .filter(|e| e.arch.name.starts_with("Small"))
        .collect()
}

const SMALL: Workload = Workload {
    batch: 16,
    ..Workload::REFERENCE
};

fn small_train(c: &mut Criterion) {
    for e in small_family() {
        bench_entry(
            c,
            "train_step/small_b16",
            e,
            SMALL,
            Mode::Train,
            Matmul::F32,
        );
    }
}

fn small_forward(c: &mut Criterion) {
    for e in small_family() {
        bench_entry(c, "forward/small_b16", e, SMALL, Mode::Forward, Matmul::F32);
    }
}

fn seed_scale(c: &mut Criterion) {
    for name in SEED_SCALE {
        let e = find(name).expect("a seed-scale variant");
        bench_entry(
            c,
            "train_step/seed_b8",
            e,
            Workload::REFERENCE,
            Mode::Train,
            Matmul::F32,
        );
        bench_entry(
            c,
            "forward/seed_b8",
            e,
            Workload::REFERENCE,
            Mode::Forward,
            Matmul::F32,
        );
    }
    // mixed precision: the projections' products in bf16 on AMX or AVX-512 BF16
    if march_runtime::kernels::bf16_unit().is_some() {
        for name in SEED_SCALE {
            let e = find(name).expect("a seed-scale variant");
            let w = Workload::REFERENCE;
            bench_entry(
                c,
                "train_step_bf16/seed_b8",
                e,
                w,
                Mode::Train,
                Matmul::Bf16,
            );
        }
    }
}

/// Criterion is built without its plotters backend (see Cargo.toml): march
/// builds plotters without system fonts, which criterion's plots need. The
/// numbers are printed and kept in `target/criterion/`.
fn config() -> Criterion {
    Criterion::default()
}

/// The `march` binary's allocator: gradient buffers that march's kernels
/// write whole come unzeroed (`alloc::unzeroed`), as in a real run.
#[global_allocator]
static ALLOC: march_runtime::alloc::ParallelZeroing = march_runtime::alloc::ParallelZeroing;

criterion_group! {
    name = benches;
    config = config();
    targets = small_train, small_forward, seed_scale
}
fn main() {
    // as the `march` binary does: freed memory stays in the process
    march_runtime::alloc::keep_freed_memory();
    benches();
    Criterion::default().configure_from_args().final_summary();
}
