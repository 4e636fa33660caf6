//! Micro-benchmarks of the kernels that dominate a step, at the seed-scale
//! reference shapes (batch 8, encoder 230, decoder 52, dim 512, vocabulary
//! 30,000), each forward + backward. Where march has a fast kernel, it is
//! measured next to the dfdx composition it replaces.
//! `cargo bench --bench kernels`.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use dfdx::prelude::*;
use march_runtime::kernels::cross_entropy::fused_masked_cross_entropy;
use march_runtime::layers::{masked_cross_entropy_composed, Ctx, RmsNorm};
use march_runtime::train::optim::{AdamW, AdamWConfig};

const VOCAB: usize = 30_000;
const B: usize = 8;
const SE: usize = 230;
const SD: usize = 52;

fn labels() -> Vec<i64> {
    (0..B * SD)
        .map(|i| {
            if i % 9 == 8 {
                -100
            } else {
                ((i * 7919) % VOCAB) as i64
            }
        })
        .collect()
}

fn cross_entropy(c: &mut Criterion) {
    let dev = Cpu::seed_from_u64(0);
    let logits: Tensor<(usize, usize, Const<VOCAB>), f32, Cpu> =
        dev.sample_normal_like(&(B, SD, Const));
    let labels = labels();
    let mut g = c.benchmark_group("masked_cross_entropy_8x52x30000");
    g.throughput(Throughput::Elements((B * SD * VOCAB) as u64));
    g.sample_size(20);
    g.bench_function("fused", |b| {
        b.iter(|| fused_masked_cross_entropy(logits.leaky_trace(), &labels).backward())
    });
    g.bench_function("dfdx_composition", |b| {
        b.iter(|| masked_cross_entropy_composed(logits.leaky_trace(), &labels).backward())
    });
    g.finish();
}

fn attention_softmax(c: &mut Criterion) {
    let dev = Cpu::seed_from_u64(0);
    let scores: Tensor<(usize, Const<8>, usize, usize), f32, Cpu> =
        dev.sample_normal_like(&(B, Const, SE, SE));
    let mut g = c.benchmark_group("attention_softmax_8x8x230x230");
    g.throughput(Throughput::Elements((B * 8 * SE * SE) as u64));
    g.sample_size(20);
    g.bench_function("dfdx_composition", |b| {
        b.iter(|| {
            scores
                .leaky_trace()
                .softmax::<Axis<3>>()
                .sum::<Rank0, _>()
                .backward()
        })
    });
    g.finish();
}

fn rms_norm(c: &mut Criterion) {
    let dev = Cpu::seed_from_u64(0);
    let norm = <RmsNorm<512, f32, Cpu> as BuildModule<Cpu, f32>>::build(&dev);
    let x: Tensor<(usize, usize, Const<512>), f32, Cpu> = dev.sample_normal_like(&(B, SE, Const));
    let mut g = c.benchmark_group("rms_norm_8x230x512");
    g.throughput(Throughput::Elements((B * SE * 512) as u64));
    g.sample_size(20);
    g.bench_function("dfdx_composition", |b| {
        b.iter(|| norm.forward(x.leaky_trace()).sum::<Rank0, _>().backward())
    });
    g.finish();
}

fn dropout(c: &mut Criterion) {
    march_models::link();
    let dev = Cpu::seed_from_u64(0);
    let arch = march_runtime::registry::find("Baseline")
        .expect("the baseline")
        .arch;
    let x: Tensor<(usize, usize, Const<2048>), f32, Cpu> = dev.sample_normal_like(&(B, SE, Const));
    let mut g = c.benchmark_group("dropout_8x230x2048");
    g.throughput(Throughput::Elements((B * SE * 2048) as u64));
    g.sample_size(20);
    g.bench_function("counter_based", |b| {
        b.iter(|| {
            let ctx = Ctx::train_seeded(arch, 1);
            ctx.dropout(x.leaky_trace(), 0.1)
                .sum::<Rank0, _>()
                .backward()
        })
    });
    g.bench_function("dfdx_chacha", |b| {
        b.iter(|| x.leaky_trace().dropout(0.1).sum::<Rank0, _>().backward())
    });
    g.finish();
}

/// Two 4096 × 4096 linear layers: 33.6M parameters, about the baseline's.
type Params = (Linear<4096, 4096>, Linear<4096, 4096>);

fn adamw(c: &mut Criterion) {
    let dev = Cpu::seed_from_u64(0);
    let mut model = dev.build_module::<Params, f32>();
    let x: Tensor<Rank2<2, 4096>, f32, Cpu> = dev.sample_normal();
    let grads = model.forward(x.leaky_trace()).sum().backward();
    let mut opt =
        AdamW::new::<f32, Cpu>(AdamWConfig::default(), || dev.build_module::<Params, f32>());
    let mut g = c.benchmark_group("adamw_33.6M_params");
    g.throughput(Throughput::Elements(model.num_trainable_params() as u64));
    g.sample_size(10);
    g.bench_function("in_place", |b| {
        b.iter(|| opt.step(&mut model, &grads, 1e-4, 1.0))
    });
    g.finish();
}

criterion_group!(
    benches,
    cross_entropy,
    attention_softmax,
    rms_norm,
    dropout,
    adamw
);
criterion_main!(benches);
