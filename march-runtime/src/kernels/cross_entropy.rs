//! Masked cross-entropy fused with the log-softmax over the vocabulary, in
//! parallel over positions.
//!
//! dfdx's composition (`log_softmax` → `select` → weighted sum) runs on one
//! thread and keeps several `[batch, seq, vocab]` tensors for its backward.
//! Here each position's row is read once: its log-sum-exp gives the loss and,
//! when a tape is recording, the same pass writes the gradient of the mean
//! loss with respect to the logits, `w · (softmax(z) − onehot(label))`
//! (`w = 1 / unmasked positions`, zero rows for ignored positions).
//!
//! The gradient `G` is computed in the forward pass (it is what the row's
//! softmax already holds) and kept; the backward adds `ĝ · G` to the
//! logits' gradient, `ĝ` being the loss's incoming gradient. When that
//! gradient is still all zeros and `ĝ = 1` (the loss is what `backward`
//! starts from: always, in training), `G` becomes the logits' gradient
//! buffer itself instead: at seed scale that is 50 MB not read and
//! written again. dfdx's
//! composition took 337–456 ms forward + backward at 8 × 52 × 30,000 on
//! 2 cores (`cargo bench --bench kernels -- masked`); see that bench for
//! this kernel's figure.

use dfdx::prelude::*;
use rayon::prelude::*;

use super::{
    all_zero, alloc_grad_unzeroed, cpu_grad, cpu_grad_vec, f32s, f32s_mut, filled, simd, view,
    SendPtr,
};
use crate::tensor::{AnyTape, Float};

/// Loss of one position: `logsumexp(z) − z[label]`, and (with `grad`) its
/// gradient scaled by `w` written into `grad`. One `exp` per element: the
/// exponentials are written into `grad`, then scaled.
fn row<E: Float>(z: &[E], label: usize, w: f64, grad: Option<&mut [E]>) -> f64 {
    if let Some(z) = f32s(z) {
        let grad = grad.map(|g| f32s_mut(g).expect("f32 like the logits"));
        return row_f32(z, label, w, grad);
    }
    let max = z.iter().fold(E::neg_infinity(), |m, &x| m.max(x));
    let sum: f64 = match grad {
        None => z.iter().map(|&x| (x - max).exp().to_f64().unwrap()).sum(),
        Some(g) => {
            let mut sum = 0.0f64;
            for (gi, &x) in g.iter_mut().zip(z) {
                let e = (x - max).exp();
                *gi = e;
                sum += e.to_f64().unwrap();
            }
            let inv = E::from_f64(w / sum).unwrap();
            for gi in g.iter_mut() {
                *gi *= inv;
            }
            g[label] -= E::from_f64(w).unwrap();
            sum
        }
    };
    max.to_f64().unwrap() + sum.ln() - z[label].to_f64().unwrap()
}

/// [`row`] on [`simd`]'s loops.
fn row_f32(z: &[f32], label: usize, w: f64, grad: Option<&mut [f32]>) -> f64 {
    let max = simd::max(z);
    let sum = match grad {
        None => simd::exp_shifted_sum(z, max),
        Some(g) => {
            let sum = simd::exp_shifted_into(g, z, max);
            simd::scale(g, (w / sum) as f32);
            g[label] -= w as f32;
            sum
        }
    };
    max as f64 + sum.ln() - z[label] as f64
}

/// Mean cross-entropy of `logits` `[batch, seq, V]` over the positions whose
/// label (`[batch·seq]`, row-major) is not negative; see the module docs.
pub fn fused_masked_cross_entropy<const V: usize, E: Float, T: AnyTape<E, Cpu>>(
    logits: Tensor<(usize, usize, Const<V>), E, Cpu, T>,
    labels: &[i64],
) -> Tensor<Rank0, E, Cpu, T>
where
    Cpu: Device<E>,
{
    let (b, s, _) = *logits.shape();
    assert_eq!(labels.len(), b * s, "one label per position");
    for &l in labels {
        assert!(l < V as i64, "label {l} is outside the vocabulary of {V}");
    }
    let count = labels.iter().filter(|&&l| l >= 0).count();
    let w = 1.0 / count.max(1) as f64;
    let (logits, tape) = logits.contiguous().split_tape();
    let z = view(&logits);
    let dev = logits.device().clone();
    let row_loss = |(r, g): (&[E], Option<&mut [E]>), &l: &i64| {
        if l < 0 {
            0.0
        } else {
            row(r, l as usize, w, g)
        }
    };
    // the gradient's rows zeroed each by the task that then writes it, in
    // the same parallel pass (not by one thread beforehand: 50 MB at seed
    // scale, which one core of the Intel Xeon clears at ~29 GB/s)
    let mut grad: Vec<E> = Vec::new();
    let losses: Vec<f64> = if T::OWNS_TAPE {
        grad.reserve_exact(z.len());
        let at = SendPtr(grad.as_mut_ptr());
        let losses = z
            .par_chunks(V)
            .zip(labels.par_iter())
            .enumerate()
            .map(|(i, (r, l))| {
                // SAFETY: row i of the reserved buffer, this task's alone,
                // zeroed before it is made a slice
                let g = unsafe { filled(at.get().add(i * V), V, E::zero()) };
                row_loss((r, Some(g)), l)
            })
            .collect();
        // SAFETY: every row was zeroed (then written) above
        unsafe { grad.set_len(z.len()) };
        losses
    } else {
        z.par_chunks(V)
            .zip(labels.par_iter())
            .map(|(r, l)| row_loss((r, None), l))
            .collect()
    };
    drop(z);
    // summed in a fixed order: the same result on any number of threads
    let loss = losses.iter().sum::<f64>() * w;
    let out = dev.tensor(E::from_f64(loss).unwrap());
    if !T::OWNS_TAPE {
        return out.put_tape(tape);
    }
    let mut tape = tape;
    let out_id = out.clone();
    tape.add_backward_op(move |grads| {
        // SAFETY: where the logits' gradient comes unzeroed, it is replaced
        // or written (not added to) below
        let unzeroed = unsafe { alloc_grad_unzeroed(grads, &logits)? };
        grads.try_alloc_for(&out_id)?;
        let (gl, _) = cpu_grad::<E>(grads.get_or_alloc_mut(&out_id)?);
        // SAFETY: the loss's gradient is one element
        let gl = unsafe { *gl };
        let gz = cpu_grad_vec::<E>(grads.get_or_alloc_mut(&logits)?);
        assert_eq!(gz.len(), grad.len());
        if gl == E::one() && (unzeroed || all_zero(gz)) {
            // 0 + 1 · G is G: hand the buffer over (dfdx's gradient buffers
            // are plain vectors, freed or cached by their length)
            let mut grad = grad;
            grad.shrink_to_fit();
            std::mem::swap(gz, &mut grad);
            return Ok(());
        }
        gz.par_chunks_mut(V)
            .zip(grad.par_chunks(V))
            .for_each(|(gz, g)| {
                // into a new buffer what adding into zeros gives: 0 + gl · g
                if let (Some(gz), Some(g)) = (f32s_mut(gz), f32s(g)) {
                    return match unzeroed {
                        true => simd::axpy_set(gz, gl.to_f32().unwrap(), g),
                        false => simd::axpy(gz, gl.to_f32().unwrap(), g),
                    };
                }
                for (gz, &g) in gz.iter_mut().zip(g) {
                    *gz = if unzeroed { E::zero() } else { *gz } + gl * g;
                }
            });
        Ok(())
    });
    out.put_tape(tape)
}
