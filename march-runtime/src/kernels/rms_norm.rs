//! RMS norm, `y = x / √(mean(x²) + ε) · w` over the last axis, as one
//! parallel op.
//!
//! The composition (`square` → `mean` → `+ ε` → `sqrt` → `recip` →
//! broadcasts → two products) allocates a tensor per step and its backward
//! walks each again, on one thread: ~25 ms forward + backward at
//! 8 × 230 × 512, a dozen times a step. Here one pass per row computes the
//! reciprocal RMS (kept for the backward) and the output; the backward is
//! one pass per row for `dx` and per-block partial sums for `dw`, added in
//! a fixed order (the same result on any number of threads).

use dfdx::prelude::*;
use rayon::prelude::*;

use super::{alloc_grad_unzeroed, cpu_grad, f32s, f32s_mut, filled, realized, simd, view, SendPtr};
use crate::tensor::{Float, Hidden};

/// Rows per task.
const ROWS: usize = 64;

/// `x / √(mean(x²) + eps) · w`; a gain `w` of one element (`G = 1`) is
/// broadcast over the features, and its gradient is the sum of theirs.
pub fn rms_norm<const M: usize, const G: usize, E: Float, T: Tape<E, Cpu>>(
    x: Hidden<M, E, Cpu, T>,
    w: &Tensor<Rank1<G>, E, Cpu>,
    eps: f64,
) -> Hidden<M, E, Cpu, T>
where
    Cpu: Device<E>,
{
    realized(rms_norm_rows(realized(x), realized(w.clone()), eps))
}

/// [`rms_norm`] on `[batch, seq, dim]` with a gain of `dim` elements or
/// one, the dimensions at run time (compiled once, not once per shape).
fn rms_norm_rows<E: Float, T: Tape<E, Cpu>>(
    x: Tensor<(usize, usize, usize), E, Cpu, T>,
    w: Tensor<(usize,), E, Cpu>,
    eps: f64,
) -> Tensor<(usize, usize, usize), E, Cpu, T>
where
    Cpu: Device<E>,
{
    let (dim, gain) = (x.shape().2, w.shape().0);
    let x = x.contiguous();
    let shape = *x.shape();
    let (x, tape) = x.split_tape();
    assert!(gain == dim || gain == 1, "a gain of dim elements or one");
    let xs = view(&x);
    // the gain per feature
    let ws: Vec<E> = if gain == dim {
        view(&w).to_vec()
    } else {
        vec![view(&w)[0]; dim]
    };
    let rows = xs.len() / dim;
    let mut inv = vec![E::zero(); rows];
    // each row zeroed by the task that writes it (see `zeroed_chunks`)
    let mut y: Vec<E> = Vec::with_capacity(xs.len());
    let y_ptr = SendPtr(y.as_mut_ptr());
    let (eps, m) = (E::from_f64(eps).unwrap(), E::from_usize(dim).unwrap());
    xs.par_chunks(dim)
        .zip(inv.par_iter_mut())
        .enumerate()
        .with_min_len(ROWS)
        .for_each(|(r, (x, inv))| {
            // SAFETY: row r of `y`'s capacity, this task's alone
            let y = unsafe { filled(y_ptr.get().add(r * dim), dim, E::zero()) };
            if let (Some(yf), Some(xf), Some(wf)) = (f32s_mut(y), f32s(x), f32s(&ws)) {
                let e = eps.to_f32().unwrap();
                *inv = E::from_f32(simd::rms_norm_row(yf, xf, wf, e)).unwrap();
                return;
            }
            let ms = x.iter().fold(E::zero(), |a, &v| a + v * v) / m;
            *inv = (ms + eps).sqrt().recip();
            for ((y, &x), &w) in y.iter_mut().zip(x).zip(ws.iter()) {
                *y = *inv * x * w;
            }
        });
    // SAFETY: every row was written above
    unsafe { y.set_len(xs.len()) };
    drop(xs);
    let out = x.device().tensor_from_vec(y, shape);
    if !T::OWNS_TAPE {
        return out.put_tape(tape);
    }
    let mut tape = tape;
    let out_id = out.clone();
    tape.add_backward_op(move |grads| {
        // SAFETY: where x's gradient comes unzeroed, each task zeroes its
        // rows before adding into them
        let x_new = unsafe { alloc_grad_unzeroed(grads, &x)? };
        grads.try_alloc_for(&out_id)?;
        grads.try_alloc_for(&w)?;
        let (gy, n) = cpu_grad::<E>(grads.get_or_alloc_mut(&out_id)?);
        let (gx, nx) = cpu_grad::<E>(grads.get_or_alloc_mut(&x)?);
        let (gw, nw) = cpu_grad::<E>(grads.get_or_alloc_mut(&w)?);
        assert!(n == nx && nw == gain);
        // SAFETY: three distinct gradient buffers of the asserted sizes
        let (gy, gx, gw) = unsafe {
            (
                std::slice::from_raw_parts(gy, n),
                std::slice::from_raw_parts_mut(gx, n),
                std::slice::from_raw_parts_mut(gw, gain),
            )
        };
        let xs = view(&x);
        // dx = inv·w·gy − x · inv³/dim · Σ gy·w·x ; partial dw = Σ gy·x·inv
        let partial_dw: Vec<Vec<E>> = gx
            .par_chunks_mut(dim * ROWS)
            .zip(gy.par_chunks(dim * ROWS))
            .zip(xs.par_chunks(dim * ROWS))
            .zip(inv.par_chunks(ROWS))
            .map(|(((gx, gy), x), inv)| {
                if x_new {
                    gx.fill(E::zero());
                }
                let mut dw = vec![E::zero(); dim];
                for (((gx, gy), x), &inv) in gx
                    .chunks_mut(dim)
                    .zip(gy.chunks(dim))
                    .zip(x.chunks(dim))
                    .zip(inv)
                {
                    if let (Some(gx), Some(dw), Some(gy), Some(x), Some(w)) = (
                        f32s_mut(gx),
                        f32s_mut(&mut dw),
                        f32s(gy),
                        f32s(x),
                        f32s(&ws),
                    ) {
                        simd::rms_norm_backward_row(gx, dw, gy, x, w, inv.to_f32().unwrap());
                        continue;
                    }
                    let mut dot = E::zero();
                    for ((&g, &x), &w) in gy.iter().zip(x).zip(ws.iter()) {
                        dot += g * w * x;
                    }
                    let c = inv * inv * inv * dot / m;
                    for ((((gx, &g), &x), &w), dw) in gx
                        .iter_mut()
                        .zip(gy)
                        .zip(x)
                        .zip(ws.iter())
                        .zip(dw.iter_mut())
                    {
                        *gx += inv * w * g - x * c;
                        *dw += g * x * inv;
                    }
                }
                dw
            })
            .collect();
        for dw in partial_dw {
            if gain == 1 {
                gw[0] += dw.into_iter().fold(E::zero(), |a, d| a + d);
                continue;
            }
            for (gw, d) in gw.iter_mut().zip(dw) {
                *gw += d;
            }
        }
        Ok(())
    });
    out.put_tape(tape)
}
