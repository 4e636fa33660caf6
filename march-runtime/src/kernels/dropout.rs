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

use dfdx::prelude::*;
use rayon::prelude::*;

use super::{apply_kept_add, DropMask};
use super::{cpu_grad, view};
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
    let mut y = vec![E::zero(); xs.len()];
    if !T::OWNS_TAPE {
        y.par_chunks_mut(CHUNK)
            .zip(xs.par_chunks(CHUNK))
            .enumerate()
            .for_each(|(c, (y, x))| mask.apply(x, y, (c * CHUNK) as u64));
        drop(xs);
        return t.device().tensor_from_vec(y, shape).put_tape(tape);
    }
    let mut kept = vec![0u8; xs.len()];
    y.par_chunks_mut(CHUNK)
        .zip(xs.par_chunks(CHUNK))
        .zip(kept.par_chunks_mut(CHUNK))
        .enumerate()
        .for_each(|(c, ((y, x), k))| mask.apply_recording(x, y, k, (c * CHUNK) as u64));
    drop(xs);
    let out = t.device().tensor_from_vec(y, shape);
    let mut tape = tape;
    let out_id = out.clone();
    tape.add_backward_op(move |grads| {
        grads.try_alloc_for(&t)?;
        grads.try_alloc_for(&out_id)?;
        let (gy, ny) = cpu_grad::<E>(grads.get_or_alloc_mut(&out_id)?);
        let (gx, nx) = cpu_grad::<E>(grads.get_or_alloc_mut(&t)?);
        assert_eq!(nx, ny);
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
            .for_each(|((gx, gy), k)| apply_kept_add(k, mask.scale, gx, gy));
        Ok(())
    });
    out.put_tape(tape)
}
