//! The `march` binary's allocator, [`ParallelZeroing`], hands the gradient
//! buffers march's kernels write whole to them unzeroed
//! ([`march_runtime::alloc::unzeroed`]): a training step's loss and every
//! parameter's gradient are the same bits as with every buffer zeroed, for
//! each kind of block (reused, own and projected keys and values, dense
//! and gated feed-forwards, learned, relative and rotary positions), in
//! `f32` and `f64`.
//! This binary installs the allocator itself; the other tests run on the
//! system's, where no block comes unzeroed.

use dfdx::prelude::*;
use march_runtime::alloc::{serve_unzeroed, unzeroed_served, ParallelZeroing};
use march_runtime::layers::Ctx;
use march_runtime::model::Seq2Seq;
use march_runtime::ops::Ops;
use march_runtime::params::for_each_grad_slice;
use march_runtime::registry::tape_into;
use march_runtime::tensor::Float;
use march_runtime::workload::Workload;
use march_runtime::{march_model, Variant};

#[global_allocator]
static ALLOC: ParallelZeroing = ParallelZeroing;

#[march_model(
    dim_model = 32,
    layers = 2,
    heads = 4,
    dim_qkv = 8,
    dim_ff = 64,
    vocab = 97,
    max_len = 64,
    dropout = 0.1,
    budget = 1,
    budget_exempt = "test"
)]
struct Small;

#[march_model(base = Small, cross_attention = own_kv, ffn = glu(gelu), budget_exempt = "test")]
struct SmallGlu;

#[march_model(
    base = Small,
    position = t5_relative,
    cross_attention = project_encoder_kv,
    budget_exempt = "test"
)]
struct SmallRelative;

#[march_model(base = Small, position = rope, ffn = glu(silu), budget_exempt = "test")]
struct SmallRope;

/// One training step's loss and parameter gradients, as bits; the backward
/// from `scale · loss` (a loss gradient other than 1, as a scaled loss
/// gives, takes the cross-entropy's other path).
fn step<V: Variant, E: Float>(scale: f64) -> Vec<(String, Vec<u64>)>
where
    Cpu: Ops<E>,
{
    let dev = Cpu::seed_from_u64(3);
    let model = V::build::<E, Cpu>(&dev, 5);
    let workload = Workload {
        batch: 3,
        enc_len: 40,
        dec_len: 9,
        chunk_tokens: 48,
    };
    let (batch, labels) = workload.batch(V::ARCH.vocab, 7).to_device::<E, Cpu>(&dev);
    let grads = model.alloc_grads();
    let ctx = Ctx::train_seeded(&V::ARCH, 11);
    let loss = model.loss(&batch, &labels, &ctx, tape_into(&dev, grads));
    let mut out = vec![(
        "loss".to_string(),
        vec![loss.array().to_f64().unwrap().to_bits()],
    )];
    let mut grads = match scale {
        1.0 => loss.backward(),
        s => (loss * E::from_f64(s).unwrap()).backward(),
    };
    for_each_grad_slice(&model, &mut grads, |name, g| {
        let bits = g.iter().map(|v| v.to_f64().unwrap().to_bits()).collect();
        out.push((name.to_string(), bits));
    });
    out
}

/// The step with blocks unzeroed, then with every block zeroed: the same
/// bits, and the first did take unzeroed blocks.
fn same_bits<V: Variant, E: Float>(scale: f64)
where
    Cpu: Ops<E>,
{
    let before = unzeroed_served();
    let unzeroed = step::<V, E>(scale);
    let served = unzeroed_served() - before;
    serve_unzeroed(false);
    let zeroed = step::<V, E>(scale);
    let none = unzeroed_served() - before - served;
    serve_unzeroed(true);
    let name = V::ARCH.name;
    assert!(served > 10, "{name}: only {served} blocks came unzeroed");
    assert_eq!(none, 0, "{name}: blocks came unzeroed while switched off");
    assert_eq!(unzeroed.len(), zeroed.len());
    for ((n, a), (_, b)) in unzeroed.iter().zip(&zeroed) {
        assert!(a == b, "{name}: {n} differs with unzeroed gradient buffers");
    }
    eprintln!(
        "{name}: {served} blocks unzeroed, {} tensors the same",
        zeroed.len()
    );
}

/// One test: the switch is process-wide.
#[test]
fn unzeroed_gradient_buffers_give_the_same_step() {
    same_bits::<Small, f32>(1.0);
    same_bits::<Small, f32>(0.5);
    same_bits::<SmallGlu, f32>(1.0);
    same_bits::<SmallRelative, f32>(1.0);
    same_bits::<SmallRope, f32>(1.0);
    same_bits::<Small, f64>(1.0);
    same_bits::<Small, f64>(0.5);
    same_bits::<SmallRope, f64>(1.0);
    same_bits::<SmallRelative, f64>(1.0);
}
