//! The model's input, `combine(dropout(E[ids]), dropout(table[:seq]))`, as
//! one parallel op.
//!
//! dfdx's composition runs six single-threaded passes over `[batch, seq,
//! M]` (two gathers, the broadcast table made contiguous for its dropout,
//! the add, the mean's product) and as many in the backward, the table's
//! broadcast summed element by element through its strides. Here the
//! forward writes each output row from its embedding row and its table row
//! in one pass on the rayon pool, recording both dropouts' draws; the
//! backward scatters the rows' gradients into the embedding's in row order
//! (parallel over blocks of columns, so that each element sums in the
//! composition's order) and sums the table's over the batch, parallel over
//! positions. Every value and gradient is the composition's exactly: each
//! step is the same floating-point operation in the same order
//! (`tests/kernels.rs`).

use std::borrow::Cow;

use dfdx::prelude::*;
use rayon::prelude::*;

use super::{cpu_grad, f32s, f32s_mut, filled, simd, view, DropMask, SendPtr};
use crate::arch::Combine;
use crate::tensor::{AnyTape, Float, Hidden};

/// Output rows per task of the forward.
const ROWS: usize = 16;
/// Columns per task of the embedding's gradient.
const COLUMNS: usize = 64;

/// `combine(dropout(E[ids]), dropout(table[:seq]))`; `dropout(E[ids])` for a
/// table of no rows. See [`crate::ops::Ops::embed_positions`].
pub fn embed_positions<const V: usize, const M: usize, const L: usize, E: Float, T>(
    embedding: &Tensor<Rank2<V, M>, E, Cpu>,
    table: &Tensor<Rank2<L, M>, E, Cpu>,
    ids: &Tensor<(usize, usize), usize, Cpu>,
    masks: [Option<DropMask>; 2],
    combine: Combine,
) -> Hidden<M, E, Cpu, T>
where
    Cpu: Device<E>,
    T: AnyTape<E, Cpu>,
{
    let (b, s) = *ids.shape();
    let with_table = L > 0;
    if with_table {
        assert!(s <= L, "sequence of {s} tokens is longer than max_len {L}");
    }
    let ids = ids.as_vec();
    if let Some(&id) = ids.iter().find(|&&id| id >= V) {
        panic!("token id {id} is outside the vocabulary of {V}");
    }
    let masks = if with_table { masks } else { [masks[0], None] };
    let half = E::from_f64(0.5).unwrap();
    let mean = with_table && combine == Combine::Mean;
    let n = b * s * M;
    // under a tape, each dropout's draws (a byte per element)
    // (each row zeroed by the task that writes it: see `zeroed_chunks`)
    let mut kept: [Vec<u8>; 2] =
        masks.map(|m| Vec::with_capacity(if T::OWNS_TAPE && m.is_some() { n } else { 0 }));
    let kept_ptr = [SendPtr(kept[0].as_mut_ptr()), SendPtr(kept[1].as_mut_ptr())];
    let es = view(embedding);
    // (dfdx's `as_vec` of a tensor of no elements panics)
    let ts = if with_table {
        view(table)
    } else {
        Cow::Borrowed(&[][..])
    };
    let mut y: Vec<E> = Vec::with_capacity(n);
    let y_ptr = SendPtr(y.as_mut_ptr());
    (0..n.div_ceil(ROWS * M)).into_par_iter().for_each_init(
        || vec![E::zero(); M],
        |dropped, task| {
            let start = task * ROWS * M;
            // SAFETY: this task's rows of `y`'s capacity, its own
            let y = unsafe { filled(y_ptr.get().add(start), (ROWS * M).min(n - start), E::zero()) };
            for (r, y) in (task * ROWS..).zip(y.chunks_mut(M)) {
                let at = r * M;
                // SAFETY (each): row r of a recording's capacity, made once
                // and by this task only
                let record = |d: usize| unsafe { filled(kept_ptr[d].get().add(at), M, 0u8) };
                let dropout_row = |d: usize, src: &[E], dst: &mut [E]| match masks[d] {
                    Some(m) if T::OWNS_TAPE => m.apply_recording(src, dst, record(d), at as u64),
                    Some(m) => m.apply(src, dst, at as u64),
                    None => dst.copy_from_slice(src),
                };
                dropout_row(0, &es[ids[r] * M..][..M], y);
                if with_table {
                    dropout_row(1, &ts[(r % s) * M..][..M], dropped);
                    for (y, &t) in y.iter_mut().zip(dropped.iter()) {
                        *y = if mean { (*y + t) * half } else { *y + t };
                    }
                }
            }
        },
    );
    drop((es, ts));
    // SAFETY: every row of `y` was written above, and of each recording
    // that exists (a dropout under a tape) by its dropout
    unsafe {
        y.set_len(n);
        for k in &mut kept {
            k.set_len(k.capacity());
        }
    }
    let out = embedding
        .device()
        .tensor_from_vec(y, (b, s, Const::<M>))
        .put_tape(T::default());
    if !T::OWNS_TAPE {
        return out;
    }
    let (out, mut tape) = out.split_tape();
    let (embedding, table, out_id) = (embedding.clone(), table.clone(), out.clone());
    let scales = masks.map(|m| m.map(|m| E::from_f64(m.scale).unwrap()));
    tape.add_backward_op(move |grads| {
        grads.try_alloc_for(&out_id)?;
        grads.try_alloc_for(&embedding)?;
        if with_table {
            grads.try_alloc_for(&table)?;
        }
        let (gy, ny) = cpu_grad::<E>(grads.get_or_alloc_mut(&out_id)?);
        let (ge, ne) = cpu_grad::<E>(grads.get_or_alloc_mut(&embedding)?);
        assert!(ny == n && ne == V * M);
        // SAFETY: the output's gradient, n elements, only read
        let gy = unsafe { std::slice::from_raw_parts(gy as *const E, ny) };
        // the composition's gradient of each dropout's input: the mean's
        // product and the add (each from zero), then the dropout's (from
        // zero); without a table the output is the first dropout's
        let c = if mean { half } else { E::one() };
        // `dst[j] += d(src[j], kept[j])` over a row's columns `at`, for
        // dropout `which`
        let add_row = |which: usize, dst: &mut [E], r: usize, at: std::ops::Range<usize>| {
            let gy = &gy[r * M..][at.clone()];
            if let (Some(dst), Some(gy)) = (f32s_mut(dst), f32s(gy)) {
                let s = scales[which].map(|s| s.to_f32().unwrap());
                let kept = if s.is_some() {
                    &kept[which][r * M..][at]
                } else {
                    &[][..]
                };
                let c = with_table.then(|| c.to_f32().unwrap());
                return simd::embedding_grad_add(kept, s, c, dst, gy);
            }
            let g = |g: E| if with_table { E::zero() + c * g } else { g };
            match scales[which] {
                Some(scale) => {
                    let kept = &kept[which][r * M..][at];
                    for ((d, &y), &k) in dst.iter_mut().zip(gy).zip(kept) {
                        *d += if k != 0 {
                            E::zero() + g(y) * scale
                        } else {
                            E::zero()
                        };
                    }
                }
                None => dst.iter_mut().zip(gy).for_each(|(d, &y)| *d += g(y)),
            }
        };
        // the embedding: rows added in order, each block of columns a task
        let ge = SendPtr(ge);
        (0..M.div_ceil(COLUMNS)).into_par_iter().for_each(|block| {
            let cols = block * COLUMNS..((block + 1) * COLUMNS).min(M);
            for (r, &id) in ids.iter().enumerate() {
                // SAFETY: columns `cols` of row `id` of the V × M gradient:
                // this task's columns only
                let dst = unsafe {
                    std::slice::from_raw_parts_mut(ge.get().add(id * M + cols.start), cols.len())
                };
                add_row(0, dst, r, cols.clone());
            }
        });
        if with_table {
            let (gt, nt) = cpu_grad::<E>(grads.get_or_alloc_mut(&table)?);
            assert!(nt == L * M && !std::ptr::eq(gt, ge.get()));
            // SAFETY: the table's gradient, L × M elements, distinct from
            // the others; its first s rows, one per task
            let gt = unsafe { std::slice::from_raw_parts_mut(gt, nt) };
            gt[..s * M].par_chunks_mut(M).enumerate().for_each_init(
                || vec![E::zero(); M],
                |sum, (p, gt)| {
                    // the broadcast's gradient: from zero, in batch order
                    sum.fill(E::zero());
                    for bi in 0..b {
                        add_row(1, sum, bi * s + p, 0..M);
                    }
                    gt.iter_mut().zip(sum.iter()).for_each(|(gt, &v)| *gt += v);
                },
            );
        }
        Ok(())
    });
    out.put_tape(tape)
}
