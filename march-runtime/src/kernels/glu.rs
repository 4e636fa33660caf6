//! The gated linear unit's inner activation, `dropout(act(gate) ⊙ up)`, as
//! one parallel op.
//!
//! dfdx's composition runs the activation (two ops for SiLU), the product
//! and the dropout as separate single-threaded passes over `[batch, seq,
//! F]`, each allocating its output, and as many in the backward. Here the
//! forward computes each element once on the rayon pool and records the
//! dropout's draws; the backward recomputes the activation from `gate`
//! (kept by the tape anyway, as the composition keeps it) and writes both
//! gradients in one pass.
//!
//! ReLU, sigmoid and SiLU give the composition's values and gradients
//! exactly: each step is dfdx's floating-point operation, in its order
//! (`tests/kernels.rs`). GELU's value is dfdx's `accurate_gelu`'s; its
//! derivative is the erf GELU's, `Φ(x) + x·φ(x)` — dfdx 0.13's own is not
//! (see [`composed::activate`](crate::ops::composed::activate)), and the
//! corrected composition agrees with this to rounding.

use std::any::Any;

use dfdx::prelude::*;
use rayon::prelude::*;

use super::{alloc_grad_unzeroed, cpu_grad, view, DropMask, SendPtr};
use crate::arch::Activation;
use crate::tensor::{AnyTape, Float};

const CHUNK: usize = 1 << 14;

/// `erf` as dfdx computes it: libm's `erff` in `f32`, `erf` in `f64`.
fn erf<E: Float>(x: E) -> E {
    if let Some(&x) = (&x as &dyn Any).downcast_ref::<f32>() {
        return E::from(libm::erff(x)).unwrap();
    }
    E::from(libm::erf(x.to_f64().unwrap())).unwrap()
}

/// dfdx's sigmoid: `1 / (1 + e^{−x})`.
fn sigmoid<E: Float>(x: E) -> E {
    E::one() / (E::one() + (-x).exp())
}

/// `act(x)`, each as dfdx computes it.
fn activation<E: Float>(act: Activation, x: E) -> E {
    match act {
        Activation::Relu => x.max(E::zero()),
        Activation::Gelu => {
            let alpha = E::from(std::f64::consts::FRAC_1_SQRT_2).unwrap();
            E::from(0.5).unwrap() * x * (E::one() + erf(x * alpha))
        }
        Activation::Silu => sigmoid(x) * x,
        Activation::Sigmoid => sigmoid(x),
    }
}

/// The erf GELU's derivative: `Φ(x) + x·φ(x)`, `Φ(x) = (1 + erf(x/√2))/2`,
/// `φ(x) = e^{−x²/2}/√(2π)`.
fn gelu_derivative<E: Float>(x: E) -> E {
    let alpha = E::from(std::f64::consts::FRAC_1_SQRT_2).unwrap();
    let half = E::from(0.5).unwrap();
    let inv_sqrt_2pi =
        E::from(0.5 * std::f64::consts::FRAC_2_SQRT_PI * alpha.to_f64().unwrap()).unwrap();
    let cdf = half * (E::one() + erf(x * alpha));
    let pdf = inv_sqrt_2pi * (-(half * x * x)).exp();
    cdf + x * pdf
}

/// `dropout(act(gate) ⊙ up)`; see [`crate::ops::Ops::glu_dropout`].
pub fn glu_dropout<S: Shape, E: Float, T: AnyTape<E, Cpu>>(
    gate: Tensor<S, E, Cpu, T>,
    up: Tensor<S, E, Cpu, T>,
    act: Activation,
    mask: Option<DropMask>,
) -> Tensor<S, E, Cpu, T>
where
    Cpu: Device<E>,
{
    let (gate, gate_tape) = gate.contiguous().split_tape();
    let (up, up_tape) = up.contiguous().split_tape();
    assert_eq!(
        gate.shape().concrete(),
        up.shape().concrete(),
        "glu_dropout of tensors of different shapes"
    );
    let mut tape = gate_tape.merge(up_tape);
    let (gs, us) = (view(&gate), view(&up));
    let n = gs.len();
    let record = T::OWNS_TAPE && mask.is_some();
    let mut kept = vec![0u8; if record { n } else { 0 }];
    let kept_ptr = SendPtr(kept.as_mut_ptr());
    let mut y = vec![E::zero(); n];
    y.par_chunks_mut(CHUNK).enumerate().for_each_init(
        || vec![E::zero(); CHUNK],
        |h, (c, y)| {
            let at = c * CHUNK..c * CHUNK + y.len();
            let (g, u) = (&gs[at.clone()], &us[at.clone()]);
            let h = &mut h[..y.len()];
            // the product, then the dropout kernel's own pass over it
            let dst = if mask.is_some() { &mut *h } else { &mut *y };
            for ((d, &g), &u) in dst.iter_mut().zip(g).zip(u) {
                *d = activation(act, g) * u;
            }
            match mask {
                Some(m) if record => {
                    // SAFETY: this chunk of `kept`, written by this task only
                    let k = unsafe {
                        std::slice::from_raw_parts_mut(kept_ptr.get().add(at.start), y.len())
                    };
                    m.apply_recording(h, y, k, at.start as u64);
                }
                Some(m) => m.apply(h, y, at.start as u64),
                None => {}
            }
        },
    );
    drop((gs, us));
    let out = gate.device().tensor_from_vec(y, *gate.shape());
    if !T::OWNS_TAPE {
        return out.put_tape(tape);
    }
    let out_id = out.clone();
    let scale = mask.map(|m| E::from_f64(m.scale).unwrap());
    tape.add_backward_op(move |grads| {
        // SAFETY: where a gradient comes unzeroed, each task zeroes its
        // chunk of it (in cache, where a cold pass cleared the whole
        // buffer) before adding into it
        let (gate_new, up_new) = unsafe {
            (
                alloc_grad_unzeroed(grads, &gate)?,
                alloc_grad_unzeroed(grads, &up)?,
            )
        };
        grads.try_alloc_for(&out_id)?;
        let (gy, ny) = cpu_grad::<E>(grads.get_or_alloc_mut(&out_id)?);
        let (gg, ng) = cpu_grad::<E>(grads.get_or_alloc_mut(&gate)?);
        let (gu, nu) = cpu_grad::<E>(grads.get_or_alloc_mut(&up)?);
        assert!(ny == n && ng == n && nu == n && gg != gu && gy != gg && gy != gu);
        let (gs, us) = (view(&gate), view(&up));
        // SAFETY: three distinct gradient buffers of n elements; the output's
        // only read
        let (gy, gg, gu) = unsafe {
            (
                std::slice::from_raw_parts(gy as *const E, n),
                std::slice::from_raw_parts_mut(gg, n),
                std::slice::from_raw_parts_mut(gu, n),
            )
        };
        gg.par_chunks_mut(CHUNK)
            .zip(gu.par_chunks_mut(CHUNK))
            .enumerate()
            .for_each(|(c, (gg, gu))| {
                let at = c * CHUNK..c * CHUNK + gg.len();
                let kept = kept.get(at.clone()).unwrap_or(&[]);
                let (gy, gs, us) = (&gy[at.clone()], &gs[at.clone()], &us[at]);
                if gate_new {
                    gg.fill(E::zero());
                }
                if up_new {
                    gu.fill(E::zero());
                }
                for j in 0..gg.len() {
                    // the dropout's backward (from zero), then the product's
                    let gh = match scale {
                        Some(scale) if kept[j] != 0 => E::zero() + gy[j] * scale,
                        Some(_) => E::zero(),
                        None => gy[j],
                    };
                    let x = gs[j];
                    let ga = E::zero() + us[j] * gh;
                    gu[j] += activation(act, x) * gh;
                    match act {
                        Activation::Relu => {
                            let df = if x > E::zero() { E::one() } else { E::zero() };
                            gg[j] += df * ga;
                        }
                        Activation::Gelu => gg[j] += gelu_derivative(x) * ga,
                        Activation::Sigmoid => {
                            let s = sigmoid(x);
                            gg[j] += s * (E::one() - s) * ga;
                        }
                        Activation::Silu => {
                            // `sigmoid(x) · x`: the product's backward (into
                            // x's gradient, and from zero into s's), then the
                            // sigmoid's
                            let s = sigmoid(x);
                            gg[j] += s * ga;
                            gg[j] += s * (E::one() - s) * (E::zero() + x * ga);
                        }
                    }
                }
            });
        Ok(())
    });
    out.put_tape(tape)
}
