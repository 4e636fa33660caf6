//! Throughput of a forward pass (evaluation) and of forward+backward
//! (training, without the optimizer) on the reference workload, in corpus
//! tokens per second. `cargo bench --bench forward`.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use dfdx::prelude::*;
use march_models::{Baseline, SmallBaseline, SmallScalingHeads, SmallSiLUGatedLinearUnit};
use march_runtime::layers::Ctx;
use march_runtime::model::Seq2Seq;
use march_runtime::registry::tape_into;
use march_runtime::workload::Workload;
use march_runtime::Variant;

fn bench_variant<V: Variant>(c: &mut Criterion, workload: Workload) {
    let dev = Cpu::seed_from_u64(0);
    let model = V::build::<f32, Cpu>(&dev, 0);
    let (batch, labels) = workload.batch::<f32, Cpu>(&dev, V::ARCH.vocab, 0);
    let mut group = c.benchmark_group(V::ARCH.name);
    group.throughput(Throughput::Elements(workload.tokens() as u64));
    group.sample_size(10);
    group.bench_function("forward", |b| {
        b.iter(|| {
            black_box(
                model
                    .loss(&batch, &labels, &Ctx::eval(&V::ARCH), NoneTape)
                    .array(),
            )
        })
    });
    let mut grads = Some(model.alloc_grads());
    group.bench_function("forward_backward", |b| {
        b.iter(|| {
            let mut g = grads.take().expect("gradients");
            model.zero_grads(&mut g);
            let loss = model.loss(&batch, &labels, &Ctx::train(&V::ARCH), tape_into(&dev, g));
            grads = Some(loss.backward());
        })
    });
    group.finish();
}

fn small(c: &mut Criterion) {
    let w = Workload {
        batch: 16,
        ..Workload::REFERENCE
    };
    bench_variant::<SmallBaseline>(c, w);
    bench_variant::<SmallScalingHeads>(c, w);
    bench_variant::<SmallSiLUGatedLinearUnit>(c, w);
}

fn original(c: &mut Criterion) {
    bench_variant::<Baseline>(c, Workload::REFERENCE);
}

criterion_group!(benches, small, original);
criterion_main!(benches);
