//! Rotary position embedding (Su et al., RoFormer) of queries or keys, as
//! one parallel op.
//!
//! In each head of `DQK` features, feature `j` and `j + DQK/2` of position
//! `p` are rotated by the angle `p · θ^(−2j/DQK)` (GPT-NeoX's halves, the
//! layout of the original's BaselineV2):
//! `(a, c) → (a cos − c sin, c cos + a sin)`. The backward is the transposed
//! rotation. The composition (`ops::composed::rope`) is two broadcast
//! products and a product with the half-swap matrix; this pass reads and
//! writes each element once, parallel over the `[batch·seq]` rows.

use dfdx::prelude::*;
use rayon::prelude::*;

use super::attention::Flat;
use super::{alloc_grad_unzeroed, cpu_grad, view, SendPtr};
use crate::tensor::Float;

/// `cos` and `sin` of the angles of `seq` positions, `[seq, DQK/2]` each, in
/// f64: angle `(p, j) = p · θ^(−2j/DQK)`.
pub fn angles(seq: usize, dqk: usize, theta: f64) -> (Vec<f64>, Vec<f64>) {
    let half = dqk / 2;
    let mut cos = Vec::with_capacity(seq * half);
    let mut sin = Vec::with_capacity(seq * half);
    for p in 0..seq {
        for j in 0..half {
            let a = p as f64 * theta.powf(-2.0 * j as f64 / dqk as f64);
            cos.push(a.cos());
            sin.push(a.sin());
        }
    }
    (cos, sin)
}

/// Rotates each head's feature pairs of `x` (`[batch, seq, H·DQK]`, one
/// position per row of `seq`) by their positions `0..seq`.
pub fn rope<const H: usize, const DQK: usize, E: Float, T: Tape<E, Cpu>>(
    x: Flat<E, Cpu, T>,
    theta: f64,
) -> Flat<E, Cpu, T>
where
    Cpu: Device<E>,
{
    rope_heads((H, DQK), x, theta)
}

/// [`rope`] with its heads and their dimension as run-time numbers.
fn rope_heads<E: Float, T: Tape<E, Cpu>>(
    (heads, dqk): (usize, usize),
    x: Flat<E, Cpu, T>,
    theta: f64,
) -> Flat<E, Cpu, T>
where
    Cpu: Device<E>,
{
    let x = x.contiguous();
    let (b, s, i) = *x.shape();
    assert_eq!(i, heads * dqk, "rope needs [batch, seq, heads·dim_qkv]");
    assert!(
        dqk.is_multiple_of(2),
        "rope rotates pairs: dim_qkv must be even"
    );
    let half = dqk / 2;
    let (cos, sin) = angles(s, dqk, theta);
    let e = |v: Vec<f64>| -> Vec<E> { v.into_iter().map(|a| E::from_f64(a).unwrap()).collect() };
    let (cos, sin) = (e(cos), e(sin));
    let (x, tape) = x.split_tape();
    let xs = view(&x);
    let mut out = vec![E::zero(); b * s * i];
    out.par_chunks_mut(i)
        .zip(xs.par_chunks(i))
        .enumerate()
        .with_min_len(16)
        .for_each(|(row, (o, x))| {
            let p = row % s;
            rotate::<E>(
                dqk,
                o,
                x,
                &cos[p * half..][..half],
                &sin[p * half..][..half],
                E::one(),
                false,
            )
        });
    drop(xs);
    let out = x.device().tensor_from_vec(out, (b, s, i));
    if !T::OWNS_TAPE {
        return out.put_tape(tape);
    }
    let mut tape = tape;
    let out_id = out.clone();
    tape.add_backward_op(move |grads| {
        // SAFETY: where x's gradient comes unzeroed, each task zeroes its
        // row before adding into it
        let x_new = unsafe { alloc_grad_unzeroed(grads, &x)? };
        grads.try_alloc_for(&out_id)?;
        let (g_out, n) = cpu_grad::<E>(grads.get_or_alloc_mut(&out_id)?);
        let (g_x, nx) = cpu_grad::<E>(grads.get_or_alloc_mut(&x)?);
        assert!(n == b * s * i && nx == n);
        let (g_out, g_x) = (SendPtr(g_out), SendPtr(g_x));
        (0..b * s).into_par_iter().with_min_len(16).for_each(|row| {
            // SAFETY: two distinct gradient buffers of the asserted size;
            // each task reads and writes its own row
            let (go, gx) = unsafe {
                (
                    std::slice::from_raw_parts(g_out.get().add(row * i), i),
                    std::slice::from_raw_parts_mut(g_x.get().add(row * i), i),
                )
            };
            if x_new {
                gx.fill(E::zero());
            }
            let p = row % s;
            rotate::<E>(
                dqk,
                gx,
                go,
                &cos[p * half..][..half],
                &sin[p * half..][..half],
                -E::one(),
                true,
            );
        });
        Ok(())
    });
    out.put_tape(tape)
}

/// One row's heads: `dst ← R(dir) src` (or `+=` with `add`), where `R(1)`
/// rotates each pair `(j, j + dqk/2)` by the angles `c`, `sn` (cos, sin) and
/// `R(−1)` is its transpose; heads of `dqk` features.
fn rotate<E: Float>(dqk: usize, dst: &mut [E], src: &[E], c: &[E], sn: &[E], dir: E, add: bool) {
    let half = dqk / 2;
    for (dh, sh) in dst.chunks_exact_mut(dqk).zip(src.chunks_exact(dqk)) {
        let (da, dc) = dh.split_at_mut(half);
        let (sa, sc) = sh.split_at(half);
        for j in 0..half {
            let (a, z) = (sa[j], sc[j]);
            let (ra, rc) = (a * c[j] - dir * z * sn[j], z * c[j] + dir * a * sn[j]);
            if add {
                da[j] += ra;
                dc[j] += rc;
            } else {
                da[j] = ra;
                dc[j] = rc;
            }
        }
    }
}
