//! Multi-head attention `dropout(softmax(q kᵀ + bias)) v` fused into one op,
//! parallel over (batch, head).
//!
//! dfdx's composition splits the heads with a permute copy, runs a batched
//! matmul, adds the broadcast bias into a fresh `[batch, heads, seq_q, seq_k]`
//! tensor, takes the softmax in several single-threaded passes, draws and
//! applies the dropout mask, runs the second matmul and copies the heads back
//! together; its backward again allocates and walks each intermediate.
//! Here the heads are read in place from the `[batch, seq, heads·dim_qkv]`
//! projections (a head is a strided sub-matrix), each (batch, head) pair is
//! one task on the rayon pool, and only the softmax probabilities and the
//! dropout's draws (a byte each) are kept for the backward. The mask is element for element the one [`Ctx::dropout`] draws
//! over `[batch, heads, seq_q, seq_k]`, so both paths compute the same
//! function (tested in `march-runtime/tests/kernels.rs`).
//!
//! [`Ctx::dropout`]: crate::layers::Ctx::dropout

use dfdx::prelude::*;
use rayon::prelude::*;

use super::product::gemm_into;
use super::tally::{self, Role};
use super::{alloc_grad_unzeroed, apply_kept, apply_kept_in_place, DropMask};
use super::{cpu_grad, f32s, f32s_mut, filled, simd, strided_rows, view, SendPtr};
use crate::alloc::unzeroed;
use crate::tensor::Float;

/// `[batch, seq, heads·dim_qkv]`.
pub type Flat<E, D, T = NoneTape> = Tensor<(usize, usize, usize), E, D, T>;

/// `dropout(softmax(q kᵀ + bias + head_bias)) v` per head, heads merged:
/// `q` `[batch, seq_q, H·DQK]` (carries the tape), `k`, `v`
/// `[batch, seq_k, H·DQK]` (tape-free; their gradients are accumulated under
/// their ids), `bias` `[batch, seq_q, seq_k]` (a constant, shared by the
/// heads), `head_bias` `[H, seq_q, seq_k]` (shared by the batch; contiguous
/// and tape-free, its gradient, summed over the batch, accumulated under its
/// id) → `[batch, seq_q, H·DQK]`.
pub fn fused_attention<const H: usize, const DQK: usize, E: Float, T: Tape<E, Cpu>>(
    q: Flat<E, Cpu, T>,
    k: &Flat<E, Cpu>,
    v: &Flat<E, Cpu>,
    bias: &Tensor<(usize, usize, usize), E, Cpu>,
    head_bias: Option<&Flat<E, Cpu>>,
    dropout: Option<DropMask>,
) -> Flat<E, Cpu, T>
where
    Cpu: Device<E>,
{
    attention_heads((H, DQK), q, k, v, bias, head_bias, dropout)
}

/// [`fused_attention`] with its heads and their dimension as run-time
/// numbers: compiled once, not once per shape.
fn attention_heads<E: Float, T: Tape<E, Cpu>>(
    (heads, dqk): (usize, usize),
    q: Flat<E, Cpu, T>,
    k: &Flat<E, Cpu>,
    v: &Flat<E, Cpu>,
    bias: &Tensor<(usize, usize, usize), E, Cpu>,
    head_bias: Option<&Flat<E, Cpu>>,
    dropout: Option<DropMask>,
) -> Flat<E, Cpu, T>
where
    Cpu: Device<E>,
{
    let q = q.contiguous();
    let (b, sq, i) = *q.shape();
    let sk = k.shape().1;
    assert_eq!(i, heads * dqk, "queries must have heads·dim_qkv features");
    assert_eq!(*k.shape(), (b, sk, i), "keys [batch, seq_k, heads·dim_qkv]");
    assert_eq!(
        *v.shape(),
        (b, sk, i),
        "values [batch, seq_k, heads·dim_qkv]"
    );
    assert_eq!(*bias.shape(), (b, sq, sk), "bias [batch, seq_q, seq_k]");
    if let Some(hb) = head_bias {
        assert_eq!(
            *hb.shape(),
            (heads, sq, sk),
            "head bias [heads, seq_q, seq_k]"
        );
        assert!(
            matches!(view(hb), std::borrow::Cow::Borrowed(_)),
            "a contiguous head bias (its gradient has its layout)"
        );
    }
    let hb_vals = head_bias.map(|hb| view(hb).into_owned());

    let (q, tape) = q.split_tape();
    let (qs, ks, vs) = (view(&q), view(k), view(v));
    // the bias is usually a broadcast: read it through its strides
    let (bias_vals, [bias_b, bias_q]) = strided_rows(bias);
    // the probabilities and the output are written whole by the tasks'
    // products (not accumulating), so they are not zero-filled first
    let (n_probs, n_out) = (b * heads * sq * sk, b * sq * i);
    let mut probs: Vec<E> = Vec::with_capacity(n_probs);
    let mut out: Vec<E> = Vec::with_capacity(n_out);
    let (probs_ptr, out_ptr) = (SendPtr(probs.as_mut_ptr()), SendPtr(out.as_mut_ptr()));
    // under a tape, the dropout's draws (a byte per probability), read
    // back by the backward instead of hashing twice more
    let record = T::OWNS_TAPE && dropout.is_some();
    // (each task's block zeroed by that task: see `zeroed_chunks`)
    let mut kept: Vec<u8> = Vec::with_capacity(if record { n_probs } else { 0 });
    let kept_ptr = SendPtr(kept.as_mut_ptr());
    let tallied = (sq, dqk, sk);
    let timer = tally::begin(Role::AttentionForward, b * heads, tallied);
    (0..b * heads).into_par_iter().for_each_init(
        // SAFETY: the scratch is read only as the dropout's output, which
        // `apply*` writes whole first
        || unsafe { unzeroed(|| vec![E::zero(); sq * sk]).0 },
        |scratch, task| {
            let (bi, hi) = (task / heads, task % heads);
            let (qo, ko) = (bi * sq * i + hi * dqk, bi * sk * i + hi * dqk);
            // SAFETY: each operand lies inside its buffer (`probs` and `out`
            // have capacity n_probs and n_out); this task's block of
            // `probs` and its output head block are written by this task
            // only, the first whole by S = Q Kᵀ before it is read
            let p = unsafe {
                let p = probs_ptr.get().add(task * sq * sk);
                // S = Q Kᵀ  (seq_q × seq_k)
                gemm_into(
                    (sq, dqk, sk),
                    p,
                    [sk as isize, 1],
                    false,
                    qs[qo..].as_ptr(),
                    [i as isize, 1],
                    ks[ko..].as_ptr(),
                    [1, i as isize],
                    false,
                );
                std::slice::from_raw_parts_mut(p, sq * sk)
            };
            if let Some(hb) = &hb_vals {
                for (x, &h) in p.iter_mut().zip(&hb[hi * sq * sk..(hi + 1) * sq * sk]) {
                    *x += h;
                }
            }
            for (qi, row) in p.chunks_mut(sk).enumerate() {
                softmax_row(row, &bias_vals[bi * bias_b + qi * bias_q..][..sk]);
            }
            let pd: &[E] = match &dropout {
                None => p,
                Some(m) if record => {
                    // SAFETY: this task's own chunk of `kept`'s capacity
                    let k = unsafe { filled(kept_ptr.get().add(task * sq * sk), sq * sk, 0u8) };
                    m.apply_recording(p, scratch, k, (task * sq * sk) as u64);
                    scratch
                }
                Some(m) => {
                    m.apply(p, scratch, (task * sq * sk) as u64);
                    scratch
                }
            };
            unsafe {
                // O = P_drop V  (seq_q × dim_qkv), into the merged heads
                gemm_into(
                    (sq, sk, dqk),
                    out_ptr.get().add(bi * sq * i + hi * dqk),
                    [i as isize, 1],
                    false,
                    pd.as_ptr(),
                    [sk as isize, 1],
                    vs[ko..].as_ptr(),
                    [i as isize, 1],
                    false,
                );
            }
        },
    );
    timer.end();
    // SAFETY: every task wrote its sq × sk block of `probs` and, by O =
    // P_drop V, its sq × dqk head block of `out`: together all of both; and
    // under `record`, its block of `kept`
    unsafe {
        probs.set_len(n_probs);
        out.set_len(n_out);
        kept.set_len(kept.capacity());
    }
    drop((qs, ks, vs));
    let out = q.device().tensor_from_vec(out, (b, sq, i));
    if !T::OWNS_TAPE {
        return out.put_tape(tape);
    }
    let mut tape = tape;
    let (k, v, out_id) = (k.clone(), v.clone(), out.clone());
    let head_bias = head_bias.cloned();
    tape.add_backward_op(move |grads| {
        let timer = tally::begin(Role::AttentionBackward, b * heads, tallied);
        // SAFETY: where a gradient comes unzeroed, every (batch, head)
        // block of it is written (not added to) below by its task
        let (q_new, k_new, v_new) = unsafe {
            (
                alloc_grad_unzeroed(grads, &q)?,
                alloc_grad_unzeroed(grads, &k)?,
                alloc_grad_unzeroed(grads, &v)?,
            )
        };
        grads.try_alloc_for(&out_id)?;
        let g_out = cpu_grad::<E>(grads.get_or_alloc_mut(&out_id)?);
        let g_q = cpu_grad::<E>(grads.get_or_alloc_mut(&q)?);
        let g_k = cpu_grad::<E>(grads.get_or_alloc_mut(&k)?);
        let g_v = cpu_grad::<E>(grads.get_or_alloc_mut(&v)?);
        assert!(g_out.1 == b * sq * i && g_q.1 == b * sq * i);
        assert!(g_k.1 == b * sk * i && g_v.1 == b * sk * i);
        let (qs, ks, vs) = (view(&q), view(&k), view(&v));
        let (g_out, g_q, g_k, g_v) = (
            SendPtr(g_out.0),
            SendPtr(g_q.0),
            SendPtr(g_k.0),
            SendPtr(g_v.0),
        );
        // each (batch, head)'s logit gradient, summed over the batch below
        let mut ds_all = vec![
            E::zero();
            if head_bias.is_some() {
                b * heads * sq * sk
            } else {
                0
            }
        ];
        let ds_all_empty = ds_all.is_empty();
        let ds_ptr = SendPtr(ds_all.as_mut_ptr());
        probs.par_chunks(sq * sk).enumerate().for_each_init(
            // SAFETY: `pd` is read only as the dropout's output, which
            // `apply_kept` writes whole first; `dp` is written whole by
            // dP_drop = dO Vᵀ (not accumulating) before it is read
            || unsafe {
                (
                    unzeroed(|| vec![E::zero(); sq * sk]).0,
                    unzeroed(|| vec![E::zero(); sq * sk]).0,
                )
            },
            |(pd, dp), (task, p)| {
                let (bi, hi) = (task / heads, task % heads);
                let (qo, ko) = (bi * sq * i + hi * dqk, bi * sk * i + hi * dqk);
                let kept = kept
                    .get(task * sq * sk..(task + 1) * sq * sk)
                    .unwrap_or(&[]);
                let pd: &[E] = match &dropout {
                    None => p,
                    Some(m) => {
                        apply_kept(kept, m.scale, p, pd);
                        pd
                    }
                };
                // SAFETY: as in the forward; the gradient head blocks of
                // (batch, head) are written by this task only, and the four
                // gradient buffers are distinct
                unsafe {
                    // dP_drop = dO Vᵀ  (seq_q × seq_k)
                    gemm_into(
                        (sq, dqk, sk),
                        dp.as_mut_ptr(),
                        [sk as isize, 1],
                        false,
                        g_out.get().add(qo),
                        [i as isize, 1],
                        vs[ko..].as_ptr(),
                        [1, i as isize],
                        false,
                    );
                    // dV += P_dropᵀ dO  (seq_k × dim_qkv), = where new
                    gemm_into(
                        (sk, sq, dqk),
                        g_v.get().add(ko),
                        [i as isize, 1],
                        !v_new,
                        pd.as_ptr(),
                        [1, sk as isize],
                        g_out.get().add(qo),
                        [i as isize, 1],
                        false,
                    );
                }
                if let Some(m) = &dropout {
                    apply_kept_in_place(kept, m.scale, dp);
                }
                // dS = P ⊙ (dP − ⟨dP, P⟩ per row)
                for (dp_row, p_row) in dp.chunks_mut(sk).zip(p.chunks(sk)) {
                    softmax_backward_row(dp_row, p_row);
                }
                if !ds_all_empty {
                    // SAFETY: this task's own chunk of `ds_all`
                    unsafe {
                        std::ptr::copy_nonoverlapping(
                            dp.as_ptr(),
                            ds_ptr.get().add(task * sq * sk),
                            sq * sk,
                        );
                    }
                }
                unsafe {
                    // dQ += dS K  (seq_q × dim_qkv), = where new
                    gemm_into(
                        (sq, sk, dqk),
                        g_q.get().add(qo),
                        [i as isize, 1],
                        !q_new,
                        dp.as_ptr(),
                        [sk as isize, 1],
                        ks[ko..].as_ptr(),
                        [i as isize, 1],
                        false,
                    );
                    // dK += dSᵀ Q  (seq_k × dim_qkv), = where new
                    gemm_into(
                        (sk, sq, dqk),
                        g_k.get().add(ko),
                        [i as isize, 1],
                        !k_new,
                        dp.as_ptr(),
                        [1, sk as isize],
                        qs[qo..].as_ptr(),
                        [i as isize, 1],
                        false,
                    );
                }
            },
        );
        if let Some(hb) = &head_bias {
            grads.try_alloc_for(hb)?;
            let (g_hb, n) = cpu_grad::<E>(grads.get_or_alloc_mut(hb)?);
            assert_eq!(n, heads * sq * sk);
            // SAFETY: the head bias's gradient buffer, of the asserted size
            let g_hb = unsafe { std::slice::from_raw_parts_mut(g_hb, n) };
            // summed over the batch in order: the same on any number of threads
            g_hb.par_chunks_mut(sk).enumerate().for_each(|(r, g)| {
                let (hi, row) = (r / sq, r % sq);
                for bi in 0..b {
                    let off = ((bi * heads + hi) * sq + row) * sk;
                    for (g, &d) in g.iter_mut().zip(&ds_all[off..off + sk]) {
                        *g += d;
                    }
                }
            });
        }
        timer.end();
        Ok(())
    });
    out.put_tape(tape)
}

/// `row ← softmax(row + bias)`, in place.
fn softmax_row<E: Float>(row: &mut [E], bias: &[E]) {
    if let (Some(row), Some(bias)) = (f32s_mut(row), f32s(bias)) {
        let max = simd::add_max(row, bias);
        let sum = simd::exp_shifted(row, max);
        return simd::scale(row, 1.0 / sum);
    }
    let mut max = E::neg_infinity();
    for (x, &b) in row.iter_mut().zip(bias) {
        *x += b;
        max = max.max(*x);
    }
    let mut sum = E::zero();
    for x in row.iter_mut() {
        *x = (*x - max).exp();
        sum += *x;
    }
    let inv = sum.recip();
    for x in row.iter_mut() {
        *x *= inv;
    }
}

/// The softmax's backward on one row: `dp ← p ⊙ (dp − ⟨dp, p⟩)`.
fn softmax_backward_row<E: Float>(dp: &mut [E], p: &[E]) {
    if let (Some(dp), Some(p)) = (f32s_mut(dp), f32s(p)) {
        return simd::softmax_backward(dp, p);
    }
    let dot = dp
        .iter()
        .zip(p)
        .fold(E::zero(), |acc, (&g, &pv)| acc + g * pv);
    for (g, &pv) in dp.iter_mut().zip(p) {
        *g = pv * (*g - dot);
    }
}
