//! Micro-benchmarks of the kernels that dominate a step, at the seed-scale
//! reference shapes (batch 8, encoder 230, decoder 52, dim 512, vocabulary
//! 30,000), each forward + backward, each next to the dfdx composition it
//! replaces. `cargo bench --bench kernels`.

use criterion::{criterion_group, Criterion, Throughput};
use dfdx::prelude::*;
use march_runtime::kernels::attention::fused_attention;
use march_runtime::kernels::cross_entropy::fused_masked_cross_entropy;
use march_runtime::kernels::dropout::{dropout as fused_dropout, dropout_add, relu_dropout};
use march_runtime::kernels::linear::{linear, linear_transposed};
use march_runtime::kernels::rope::rope;
use march_runtime::layers::{masked_cross_entropy_composed, padding_bias, Ctx, RmsNorm};
use march_runtime::ops::composed;
use march_runtime::optim::{AdamW, AdamWConfig};
use march_runtime::params::num_params;

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

/// The library's `Baseline` (its dropout streams drive the benches' masks).
fn baseline() -> &'static march_runtime::arch::Arch {
    march_models::link();
    march_runtime::registry::find("Baseline")
        .expect("the baseline")
        .arch
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
    // bf16 factors, on AMX or AVX-512 BF16 (whichever this CPU has)
    if march_runtime::kernels::bf16_unit().is_some() {
        g.bench_function("bf16", |b| {
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

/// The tied LM head, `[8·52, 512] × [30,000, 512]ᵀ`: the step's largest
/// products (its forward reads the embedding across its rows).
fn lm_head(c: &mut Criterion) {
    let dev = Cpu::seed_from_u64(0);
    let x: Tensor<(usize, usize, Const<512>), f32, Cpu> = dev.sample_normal_like(&(B, SD, Const));
    let e: Tensor<Rank2<VOCAB, 512>, f32, Cpu> = dev.sample_normal();
    let mut g = c.benchmark_group("lm_head_8x52x512x30000");
    g.throughput(Throughput::Elements((2 * B * SD * 512 * VOCAB) as u64));
    g.sample_size(20);
    use march_runtime::ops::Matmul;
    g.bench_function("forward", |b| {
        b.iter(|| linear_transposed(x.clone(), &e, Matmul::F32))
    });
    // the forward and both gradients: three products
    g.throughput(Throughput::Elements((3 * 2 * B * SD * 512 * VOCAB) as u64));
    g.bench_function("forward_backward", |b| {
        b.iter(|| {
            linear_transposed(x.leaky_trace(), &e, Matmul::F32)
                .sum::<Rank0, _>()
                .backward()
        })
    });
    g.finish();
}

/// Encoder self-attention, 8 heads of 64, with padding and dropout 0.1,
/// forward and backward: the fused kernel and dfdx's composition, each
/// plain, with T5's per-head relative bias (`position = t5_relative`) and
/// with rotary queries and keys (`position = rope`).
fn multi_head_attention(c: &mut Criterion) {
    let arch = baseline();
    let dev = Cpu::seed_from_u64(0);
    type Flat = Tensor<(usize, usize, usize), f32, Cpu>;
    let q: Flat = dev.sample_normal_like(&(B, SE, 512));
    let k: Flat = dev.sample_normal_like(&(B, SE, 512));
    let v: Flat = dev.sample_normal_like(&(B, SE, 512));
    let bias = padding_bias(&dev.ones_like(&(B, SE)), SE);
    let head_bias: Flat = dev.sample_normal_like(&(8, SE, SE));
    // one pass and its backward; `rope`: rotate q and k first
    let pass = |fused: bool, head_bias: Option<&Flat>, rope_q_k: bool| {
        let ctx = Ctx::train_seeded(arch, 1);
        let mask = ctx.dropout_mask(0.1);
        let (q, k) = if rope_q_k {
            let turn = |x: Flat| -> Tensor<(usize, usize, usize), f32, Cpu, OwnedTape<f32, Cpu>> {
                if fused {
                    rope::<8, 64, f32, _>(x.leaky_trace(), 10_000.0)
                } else {
                    composed::rope::<8, 64, f32, Cpu, _>(x.leaky_trace(), 10_000.0)
                }
            };
            let (k, k_tape) = turn(k.clone()).split_tape();
            let (q, q_tape) = turn(q.clone()).split_tape();
            (q.put_tape(q_tape.merge(k_tape)), k)
        } else {
            (q.leaky_trace(), k.clone())
        };
        let out = if fused {
            fused_attention::<8, 64, f32, _>(q, &k, &v, &bias, head_bias, mask)
        } else {
            composed::attention::<8, 64, f32, Cpu, _>(q, &k, &v, &bias, head_bias, mask)
        };
        out.sum::<Rank0, _>().backward()
    };
    let mut g = c.benchmark_group("attention_8x8x230x230");
    g.throughput(Throughput::Elements((B * 8 * SE * SE) as u64));
    g.sample_size(20);
    for (name, fused) in [("fused", true), ("dfdx_composition", false)] {
        g.bench_function(name, |b| b.iter(|| pass(fused, None, false)));
        let t5 = format!("{name}_t5_relative");
        g.bench_function(t5, |b| b.iter(|| pass(fused, Some(&head_bias), false)));
        let rope = format!("{name}_rope");
        g.bench_function(rope, |b| b.iter(|| pass(fused, None, true)));
    }
    g.finish();
}

/// The small model's encoder self-attention (`SmallBaseline`: batch 16,
/// 4 heads of 32), forward and backward with padding and dropout 0.1: its
/// products are a quarter as deep as the baseline's, so the softmax, the
/// dropout and each product's fixed costs weigh more.
fn small_attention(c: &mut Criterion) {
    const BS: usize = 16;
    let arch = baseline();
    let dev = Cpu::seed_from_u64(0);
    type Flat = Tensor<(usize, usize, usize), f32, Cpu>;
    let q: Flat = dev.sample_normal_like(&(BS, SE, 128));
    let k: Flat = dev.sample_normal_like(&(BS, SE, 128));
    let v: Flat = dev.sample_normal_like(&(BS, SE, 128));
    let bias = padding_bias(&dev.ones_like(&(BS, SE)), SE);
    let mut g = c.benchmark_group("attention_16x4x230x230_dim32");
    g.throughput(Throughput::Elements((BS * 4 * SE * SE) as u64));
    g.sample_size(20);
    g.bench_function("fused", |b| {
        b.iter(|| {
            let ctx = Ctx::train_seeded(arch, 1);
            let mask = ctx.dropout_mask(0.1);
            let out = fused_attention::<4, 32, f32, _>(q.leaky_trace(), &k, &v, &bias, None, mask);
            out.sum::<Rank0, _>().backward()
        })
    });
    g.bench_function("fused_forward", |b| {
        b.iter(|| {
            let ctx = Ctx::train_seeded(arch, 1);
            let mask = ctx.dropout_mask(0.1);
            fused_attention::<4, 32, f32, _>(q.leaky_trace(), &k, &v, &bias, None, mask)
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
    let arch = baseline();
    let dev = Cpu::seed_from_u64(0);
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
    // the FFN's relu then dropout: one pass, or the kernel after dfdx's relu
    g.bench_function("relu_dropout_fused", |b| {
        b.iter(|| {
            let mask = Ctx::train_seeded(arch, 1).dropout_mask(0.1).unwrap();
            relu_dropout(x.leaky_trace(), mask)
                .sum::<Rank0, _>()
                .backward()
        })
    });
    g.bench_function("relu_then_fused_dropout", |b| {
        b.iter(|| {
            let mask = Ctx::train_seeded(arch, 1).dropout_mask(0.1).unwrap();
            fused_dropout(x.leaky_trace().relu(), mask)
                .sum::<Rank0, _>()
                .backward()
        })
    });
    // a sub-layer's residual: one pass, or the kernel then dfdx's add
    let residual: Tensor<(usize, usize, Const<2048>), f32, Cpu> =
        dev.sample_normal_like(&(B, SE, Const));
    g.bench_function("dropout_add_fused", |b| {
        b.iter(|| {
            let mask = Ctx::train_seeded(arch, 1).dropout_mask(0.1).unwrap();
            dropout_add(x.leaky_trace(), residual.clone(), mask)
                .sum::<Rank0, _>()
                .backward()
        })
    });
    g.bench_function("fused_dropout_then_dfdx_add", |b| {
        b.iter(|| {
            let mask = Ctx::train_seeded(arch, 1).dropout_mask(0.1).unwrap();
            (fused_dropout(x.leaky_trace(), mask) + residual.clone())
                .sum::<Rank0, _>()
                .backward()
        })
    });
    g.finish();
}

/// The encoder's input, `(dropout(E[ids]) + dropout(table[:230])) · ½`, at
/// the baseline's sizes (its gradient: the dense 30,000 × 512 embedding's).
fn input_embedding(c: &mut Criterion) {
    use march_runtime::arch::Combine;
    use march_runtime::kernels::embedding::embed_positions;
    let arch = baseline();
    let dev = Cpu::seed_from_u64(0);
    let e: Tensor<Rank2<VOCAB, 512>, f32, Cpu> = dev.sample_normal();
    let table: Tensor<Rank2<1024, 512>, f32, Cpu> = dev.sample_normal();
    let ids = dev.tensor_from_vec((0..B * SE).map(|i| (i * 7919) % VOCAB).collect(), (B, SE));
    let masks = || {
        let ctx = Ctx::train_seeded(arch, 1);
        [ctx.dropout_mask(0.1), ctx.dropout_mask(0.1)]
    };
    type Taped = OwnedTape<f32, Cpu>;
    let mut g = c.benchmark_group("input_embedding_8x230x512");
    g.throughput(Throughput::Elements((B * SE * 512) as u64));
    g.sample_size(20);
    let pass = |fused: bool| {
        let (masks, mean) = (masks(), Combine::Mean);
        let y = if fused {
            embed_positions::<VOCAB, 512, 1024, f32, Taped>(&e, &table, &ids, masks, mean)
        } else {
            composed::embed_positions::<VOCAB, 512, 1024, f32, Cpu, Taped>(
                &e, &table, &ids, masks, mean,
            )
        };
        y.sum::<Rank0, _>().backward()
    };
    g.bench_function("fused", |b| b.iter(|| pass(true)));
    g.bench_function("dfdx_composition", |b| b.iter(|| pass(false)));
    g.finish();
}

/// Two 4096 × 4096 weights: 33.6M parameters, about the baseline's.
type Weights = (
    Tensor<Rank2<4096, 4096>, f32, Cpu>,
    Tensor<Rank2<4096, 4096>, f32, Cpu>,
);

fn adamw(c: &mut Criterion) {
    let dev = Cpu::seed_from_u64(0);
    let mut model: Weights = (dev.sample_normal(), dev.sample_normal());
    let x: Tensor<Rank2<2, 4096>, f32, Cpu> = dev.sample_normal();
    let mut grads = x
        .leaky_trace()
        .matmul(model.0.clone())
        .matmul(model.1.clone())
        .sum()
        .backward();
    let mut opt = AdamW::new(AdamWConfig::default(), &model);
    let mut g = c.benchmark_group("adamw_33.6M_params");
    g.throughput(Throughput::Elements(num_params(&model) as u64));
    g.sample_size(10);
    g.bench_function("fused_parallel", |b| {
        b.iter(|| opt.step(&mut model, &mut grads, 1e-4, 1.0))
    });
    g.finish();
}

/// The `march` binary's allocator: gradient buffers that march's kernels
/// write whole come unzeroed (`alloc::unzeroed`), as in a real run.
#[global_allocator]
static ALLOC: march_runtime::alloc::ParallelZeroing = march_runtime::alloc::ParallelZeroing;

criterion_group!(
    benches,
    cross_entropy,
    projection,
    lm_head,
    multi_head_attention,
    small_attention,
    rms_norm,
    dropout,
    input_embedding,
    adamw
);
fn main() {
    // as the `march` binary does: freed memory stays in the process
    march_runtime::alloc::keep_freed_memory();
    benches();
    Criterion::default().configure_from_args().final_summary();
}
