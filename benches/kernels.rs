//! Micro-benchmarks of the kernels that dominate a step, at the seed-scale
//! reference shapes (batch 8, encoder 230, decoder 52, dim 512, vocabulary
//! 30,000), each forward + backward, each next to the dfdx composition it
//! replaces. `cargo bench --bench kernels`.

use criterion::{criterion_group, Criterion, Throughput};
use dfdx::prelude::*;
use march_runtime::kernels::attention::fused_attention;
use march_runtime::kernels::cross_entropy::fused_masked_cross_entropy;
use march_runtime::kernels::dropout::dropout as fused_dropout;
use march_runtime::kernels::linear::linear;
use march_runtime::kernels::rope::rope;
use march_runtime::layers::{masked_cross_entropy_composed, padding_bias, Ctx, RmsNorm};
use march_runtime::ops::composed;
use march_runtime::optim::{AdamW, AdamWConfig};

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

/// The feed-forward up-projection of the encoder, `[8·230, 512] × [512, 2048]`.
fn projection(c: &mut Criterion) {
    let dev = Cpu::seed_from_u64(0);
    let x: Tensor<(usize, usize, Const<512>), f32, Cpu> = dev.sample_normal_like(&(B, SE, Const));
    let w: Tensor<Rank2<512, 2048>, f32, Cpu> = dev.sample_normal();
    let mut g = c.benchmark_group("projection_8x230x512x2048");
    g.throughput(Throughput::Elements((2 * 3 * B * SE * 512 * 2048) as u64));
    g.sample_size(20);
    use march_runtime::ops::Matmul;
    g.bench_function("gemm_0.19", |b| {
        b.iter(|| {
            linear(x.leaky_trace(), &w, Matmul::F32)
                .sum::<Rank0, _>()
                .backward()
        })
    });
    if march_runtime::kernels::amx::available() {
        g.bench_function("amx_bf16", |b| {
            b.iter(|| {
                linear(x.leaky_trace(), &w, Matmul::Bf16)
                    .sum::<Rank0, _>()
                    .backward()
            })
        });
    }
    g.bench_function("dfdx_matmul", |b| {
        b.iter(|| {
            x.leaky_trace()
                .matmul(w.retaped::<OwnedTape<f32, Cpu>>())
                .sum::<Rank0, _>()
                .backward()
        })
    });
    g.finish();
}

/// Encoder self-attention, 8 heads of 64, with padding and dropout 0.1.
fn multi_head_attention(c: &mut Criterion) {
    march_models::link();
    let arch = march_runtime::registry::find("Baseline")
        .expect("the baseline")
        .arch;
    let dev = Cpu::seed_from_u64(0);
    type Flat = Tensor<(usize, usize, usize), f32, Cpu>;
    let q: Flat = dev.sample_normal_like(&(B, SE, 512));
    let k: Flat = dev.sample_normal_like(&(B, SE, 512));
    let v: Flat = dev.sample_normal_like(&(B, SE, 512));
    let bias = padding_bias(&dev.ones_like(&(B, SE)), SE);
    let mut g = c.benchmark_group("attention_8x8x230x230");
    g.throughput(Throughput::Elements((B * 8 * SE * SE) as u64));
    g.sample_size(20);
    g.bench_function("fused", |b| {
        b.iter(|| {
            let ctx = Ctx::train_seeded(arch, 1);
            let mask = ctx.dropout_mask(0.1);
            fused_attention::<8, 64, f32, _>(q.leaky_trace(), &k, &v, &bias, None, mask)
                .sum::<Rank0, _>()
                .backward()
        })
    });
    g.bench_function("dfdx_composition", |b| {
        b.iter(|| {
            let ctx = Ctx::train_seeded(arch, 1);
            let mask = ctx.dropout_mask(0.1);
            composed::attention::<8, 64, f32, Cpu, _>(q.leaky_trace(), &k, &v, &bias, None, mask)
                .sum::<Rank0, _>()
                .backward()
        })
    });
    // position = t5_relative: a per-head bias [8, 230, 230] and its gradient
    let head_bias: Flat = dev.sample_normal_like(&(8, SE, SE));
    g.bench_function("fused_t5_relative", |b| {
        b.iter(|| {
            let ctx = Ctx::train_seeded(arch, 1);
            let mask = ctx.dropout_mask(0.1);
            let (q, tape) = q.leaky_trace().split_tape();
            fused_attention::<8, 64, f32, _>(
                q.put_tape(tape),
                &k,
                &v,
                &bias,
                Some(&head_bias),
                mask,
            )
            .sum::<Rank0, _>()
            .backward()
        })
    });
    g.bench_function("dfdx_composition_t5_relative", |b| {
        b.iter(|| {
            let ctx = Ctx::train_seeded(arch, 1);
            let mask = ctx.dropout_mask(0.1);
            composed::attention::<8, 64, f32, Cpu, _>(
                q.leaky_trace(),
                &k,
                &v,
                &bias,
                Some(&head_bias),
                mask,
            )
            .sum::<Rank0, _>()
            .backward()
        })
    });
    // position = rope: queries and keys rotated, then attention
    g.bench_function("fused_rope", |b| {
        b.iter(|| {
            let ctx = Ctx::train_seeded(arch, 1);
            let mask = ctx.dropout_mask(0.1);
            let q = rope::<8, 64, f32, _>(q.leaky_trace(), 10_000.0);
            let (k, k_tape) = rope::<8, 64, f32, _>(k.leaky_trace(), 10_000.0).split_tape();
            let (q, q_tape) = q.split_tape();
            fused_attention::<8, 64, f32, _>(
                q.put_tape(q_tape.merge(k_tape)),
                &k,
                &v,
                &bias,
                None,
                mask,
            )
            .sum::<Rank0, _>()
            .backward()
        })
    });
    g.bench_function("dfdx_composition_rope", |b| {
        b.iter(|| {
            let ctx = Ctx::train_seeded(arch, 1);
            let mask = ctx.dropout_mask(0.1);
            let q = composed::rope::<8, 64, f32, Cpu, _>(q.leaky_trace(), 10_000.0);
            let (k, k_tape) =
                composed::rope::<8, 64, f32, Cpu, _>(k.leaky_trace(), 10_000.0).split_tape();
            let (q, q_tape) = q.split_tape();
            composed::attention::<8, 64, f32, Cpu, _>(
                q.put_tape(q_tape.merge(k_tape)),
                &k,
                &v,
                &bias,
                None,
                mask,
            )
            .sum::<Rank0, _>()
            .backward()
        })
    });
    g.finish();
}

fn rms_norm(c: &mut Criterion) {
    let dev = Cpu::seed_from_u64(0);
    let norm = <RmsNorm<512, 512, f32, Cpu> as BuildModule<Cpu, f32>>::build(&dev);
    let x: Tensor<(usize, usize, Const<512>), f32, Cpu> = dev.sample_normal_like(&(B, SE, Const));
    let mut g = c.benchmark_group("rms_norm_8x230x512");
    g.throughput(Throughput::Elements((B * SE * 512) as u64));
    g.sample_size(20);
    g.bench_function("fused", |b| {
        b.iter(|| norm.forward(x.leaky_trace()).sum::<Rank0, _>().backward())
    });
    g.bench_function("dfdx_composition", |b| {
        b.iter(|| {
            norm.forward_composed(x.leaky_trace())
                .sum::<Rank0, _>()
                .backward()
        })
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
    g.bench_function("fused_counter_based", |b| {
        b.iter(|| {
            let mask = Ctx::train_seeded(arch, 1).dropout_mask(0.1).unwrap();
            fused_dropout(x.leaky_trace(), mask)
                .sum::<Rank0, _>()
                .backward()
        })
    });
    g.bench_function("counter_based_mask_composition", |b| {
        b.iter(|| {
            let mask = Ctx::train_seeded(arch, 1).dropout_mask(0.1).unwrap();
            let m: Vec<f32> = (0..(B * SE * 2048) as u64)
                .map(|i| if mask.keep(i) { mask.scale as f32 } else { 0.0 })
                .collect();
            let m = dev.tensor_from_vec(m, (B, SE, Const::<2048>));
            (x.leaky_trace() * m).sum::<Rank0, _>().backward()
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
    let mut grads = model.forward(x.leaky_trace()).sum().backward();
    let mut opt =
        AdamW::new::<f32, Cpu>(AdamWConfig::default(), || dev.build_module::<Params, f32>());
    let mut g = c.benchmark_group("adamw_33.6M_params");
    g.throughput(Throughput::Elements(model.num_trainable_params() as u64));
    g.sample_size(10);
    g.bench_function("fused_parallel", |b| {
        b.iter(|| opt.step(&mut model, &mut grads, 1e-4, 1.0))
    });
    g.finish();
}

criterion_group!(
    benches,
    cross_entropy,
    projection,
    multi_head_attention,
    rms_norm,
    dropout,
    adamw
);
fn main() {
    // as the `march` binary does: freed memory stays in the process
    march_runtime::alloc::keep_freed_memory();
    benches();
    Criterion::default().configure_from_args().final_summary();
}
