//! Dropout as one parallel op.
//!
//! The composition builds the `{0, 1/(1−p)}` mask as a tensor on one thread,
//! multiplies by it and keeps it for the backward's multiply: ~28 ns per
//! element forward + backward at 8 × 230 × 2048 (`cargo bench --bench
//! kernels -- dropout`). The mask is a hash of the element's index
//! ([`DropMask`]), so here the forward draws it chunk by chunk on the rayon
//! pool; under a tape it records the draws, one byte per element, and the
//! backward reads them instead of hashing again (the hash's two 64-bit
//! multiplies have no AVX2 instruction). Same mask, same values as
//! [`Ctx::dropout`](crate::layers::Ctx::dropout)'s composition.
//!
//! Two fusions take the single-threaded dfdx op next to a dropout into the
//! same pass: [`dropout_add`] (every pre-norm sub-layer's `x + dropout(f(x))`)
//! and [`relu_dropout`] (the dense feed-forward's `dropout(relu(up(x)))`).

use dfdx::prelude::*;
use rayon::prelude::*;

use super::{alloc_grad_unzeroed, cpu_grad, f32s, f32s_mut, simd, view, zeroed_chunks};
use super::{apply_kept_add, apply_kept_set, DropMask};
use crate::tensor::Float;

const CHUNK: usize = 1 << 14;

/// `t ⊙ mask`.
pub fn dropout<S: Shape, E: Float, T: Tape<E, Cpu>>(
    t: Tensor<S, E, Cpu, T>,
    mask: DropMask,
) -> Tensor<S, E, Cpu, T>
where
    Cpu: Device<E>,
{
    let t = t.contiguous();
    let shape = *t.shape();
    let (t, tape) = t.split_tape();
    let xs = view(&t);
    if !T::OWNS_TAPE {
        let (y, _) = zeroed_chunks((E::zero(), 0u8), xs.len(), false, CHUNK, |c, y, _| {
            mask.apply(&xs[c * CHUNK..][..y.len()], y, (c * CHUNK) as u64)
        });
        drop(xs);
        return t.device().tensor_from_vec(y, shape).put_tape(tape);
    }
    drop(xs);
    recorded_op(t, tape, mask, DropMask::apply_recording)
}

/// `t ⊙ mask + x`: a sub-layer's dropout and the residual add after it in
/// one parallel pass, `x` (the residual stream) tape-free; the same values
/// and gradients as [`dropout`] then dfdx's add, without the dropped
/// tensor or dfdx's single-threaded add and its backward.
pub fn dropout_add<S: Shape, E: Float, T: Tape<E, Cpu>>(
    t: Tensor<S, E, Cpu, T>,
    x: Tensor<S, E, Cpu>,
    mask: DropMask,
) -> Tensor<S, E, Cpu, T>
where
    Cpu: Device<E>,
{
    let t = t.contiguous();
    let x = x.contiguous();
    assert_eq!(
        t.shape().concrete(),
        x.shape().concrete(),
        "dropout_add of tensors of different shapes"
    );
    let (t, tape) = t.split_tape();
    let (ts, xs) = (view(&t), view(&x));
    let (y, kept) = recorded(ts.len(), |c, y, k| {
        let at = c * CHUNK..c * CHUNK + y.len();
        mask.apply_recording_add(&ts[at.clone()], &xs[at], y, k, (c * CHUNK) as u64)
    });
    drop((ts, xs));
    let out = t.device().tensor_from_vec(y, *t.shape());
    kept_backward(out, tape, t, Some(x), kept, mask.scale)
}

/// `relu(t) ⊙ mask` in one parallel pass; the backward reads one byte per
/// element (drawn kept and positive), not `t`. The same values and
/// gradients as dfdx's `relu` then [`dropout`].
pub fn relu_dropout<S: Shape, E: Float, T: Tape<E, Cpu>>(
    t: Tensor<S, E, Cpu, T>,
    mask: DropMask,
) -> Tensor<S, E, Cpu, T>
where
    Cpu: Device<E>,
{
    let (t, tape) = t.contiguous().split_tape();
    recorded_op(t, tape, mask, DropMask::apply_relu_recording)
}

/// `apply(mask, t chunk, output chunk, bytes chunk, offset)` over the
/// contiguous `t`, the bytes recorded for [`kept_backward`].
fn recorded_op<S: Shape, E: Float, T: Tape<E, Cpu>>(
    t: Tensor<S, E, Cpu>,
    tape: T,
    mask: DropMask,
    apply: impl Fn(&DropMask, &[E], &mut [E], &mut [u8], u64) + Sync,
) -> Tensor<S, E, Cpu, T>
where
    Cpu: Device<E>,
{
    let ts = view(&t);
    let (y, kept) = recorded(ts.len(), |c, y, k| {
        let at = c * CHUNK..c * CHUNK + y.len();
        apply(&mask, &ts[at], y, k, (c * CHUNK) as u64)
    });
    drop(ts);
    let out = t.device().tensor_from_vec(y, *t.shape());
    kept_backward(out, tape, t, None, kept, mask.scale)
}

/// `n` outputs and `n` recorded bytes, written chunk by chunk on the rayon
/// pool by `f(chunk index, output chunk, bytes chunk)`.
fn recorded<E: Float>(
    n: usize,
    f: impl Fn(usize, &mut [E], &mut [u8]) + Sync,
) -> (Vec<E>, Vec<u8>) {
    zeroed_chunks((E::zero(), 0u8), n, true, CHUNK, f)
}

/// `out` with `tape`, and under a tape the backward `g_input += g_out · scale`
/// where `kept` (and `g_residual += g_out`).
fn kept_backward<S: Shape, E: Float, T: Tape<E, Cpu>>(
    out: Tensor<S, E, Cpu>,
    mut tape: T,
    input: Tensor<S, E, Cpu>,
    residual: Option<Tensor<S, E, Cpu>>,
    kept: Vec<u8>,
    scale: f64,
) -> Tensor<S, E, Cpu, T>
where
    Cpu: Device<E>,
{
    if !T::OWNS_TAPE {
        return out.put_tape(tape);
    }
    let out_id = out.clone();
    tape.add_backward_op(move |grads| {
        // SAFETY: where the input's gradient comes unzeroed, it is written
        // whole below (and the residual's likewise)
        let input_new = unsafe { alloc_grad_unzeroed(grads, &input)? };
        grads.try_alloc_for(&out_id)?;
        let (gy, ny) = cpu_grad::<E>(grads.get_or_alloc_mut(&out_id)?);
        let (gx, nx) = cpu_grad::<E>(grads.get_or_alloc_mut(&input)?);
        assert!(nx == ny && gx != gy);
        // SAFETY: two distinct gradient buffers of `nx` elements
        let (gy, gx) = unsafe {
            (
                std::slice::from_raw_parts(gy, ny),
                std::slice::from_raw_parts_mut(gx, nx),
            )
        };
        gx.par_chunks_mut(CHUNK)
            .zip(gy.par_chunks(CHUNK))
            .zip(kept.par_chunks(CHUNK))
            .for_each(|((gx, gy), k)| match input_new {
                true => apply_kept_set(k, scale, gx, gy),
                false => apply_kept_add(k, scale, gx, gy),
            });
        if let Some(residual) = &residual {
            // SAFETY: as the input's
            let residual_new = unsafe { alloc_grad_unzeroed(grads, residual)? };
            let (gr, nr) = cpu_grad::<E>(grads.get_or_alloc_mut(residual)?);
            assert!(nr == ny && !std::ptr::eq(gr, gy.as_ptr()) && !std::ptr::eq(gr, gx.as_ptr()));
            // SAFETY: a third distinct buffer of `nr` elements
            let gr = unsafe { std::slice::from_raw_parts_mut(gr, nr) };
            gr.par_chunks_mut(CHUNK)
                .zip(gy.par_chunks(CHUNK))
                .for_each(|(gr, gy)| add_assign(gr, gy, residual_new));
        }
        Ok(())
    });
    out.put_tape(tape)
}

/// `dst += src`, or where `dst` is `new` (unzeroed, not read) what that
/// gives into zeros: `dst = 0 + src`.
fn add_assign<E: Float>(dst: &mut [E], src: &[E], new: bool) {
    if let (Some(dst), Some(src)) = (f32s_mut(dst), f32s(src)) {
        return match new {
            true => simd::axpy_set(dst, 1.0, src),
            false => simd::axpy(dst, 1.0, src),
        };
    }
    for (d, &s) in dst.iter_mut().zip(src) {
        *d = if new { E::zero() } else { *d } + s;
    }
}
