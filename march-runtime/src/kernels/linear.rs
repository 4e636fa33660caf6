//! The projections `x · W` (and the tied LM head `x · Eᵀ`) on gemm 0.19
//! with AVX-512 on stable Rust.
//!
//! dfdx 0.13's matmul uses gemm 0.15, whose AVX-512 kernels need nightly:
//! 181–186 GFLOP/s at 2048³ on this machine's 2 cores against 355–360 for
//! gemm 0.19 with `x86-v4` (chosen at run time; CPUs without AVX-512 get
//! its FMA kernels), see `shared/notes/crates.md`.
//!
//! [`crate::ops::Ops`] runs these on [`Cpu`] with `f32` or `f64`; any other
//! device (CUDA) takes dfdx's `matmul`.
//! The backward accumulates straight into dfdx's gradient buffers:
//! `dX += dY · Wᵀ` and `dW += Xᵀ · dY`, with transposes expressed as strides,
//! never copied.
//!
//! With [`Matmul::Bf16`] the three products of an `f32` projection (forward
//! and both gradients) run in bf16 on AMX ([`amx`](super::amx)) or AVX-512
//! BF16 ([`dpbf16`](super::dpbf16)); the
//! precision is the forward's argument and is kept for its backward.

use dfdx::prelude::*;

use super::product::{product_into, written};
use super::tally::{self, Role};
use super::{alloc_grad_unzeroed, cpu_grad, realized, view, Matmul};
use crate::tensor::Float;

/// `[batch, seq, K]`.
type Rows<const K: usize, E, D, T> = Tensor<(usize, usize, Const<K>), E, D, T>;

/// `x · w`: `[batch, seq, K] × [K, N] → [batch, seq, N]`. The tape travels on
/// `x`; `w`'s gradient is accumulated under `w`'s id (as `w.retaped()` would).
pub fn linear<const K: usize, const N: usize, E: Float, T: Tape<E, Cpu>>(
    x: Rows<K, E, Cpu, T>,
    w: &Tensor<Rank2<K, N>, E, Cpu>,
    precision: Matmul,
) -> Rows<N, E, Cpu, T>
where
    Cpu: Device<E>,
{
    // element (k, n) of the right factor is at k·N + n
    let y = product(
        realized(x),
        realized(w.clone()),
        (K, N),
        [N as isize, 1],
        precision,
    );
    realized(y)
}

/// `x · wᵀ`: `[batch, seq, K] × [N, K]ᵀ → [batch, seq, N]` (the tied LM head:
/// hidden states times the transposed embedding).
pub fn linear_transposed<const K: usize, const N: usize, E: Float, T: Tape<E, Cpu>>(
    x: Rows<K, E, Cpu, T>,
    w: &Tensor<Rank2<N, K>, E, Cpu>,
    precision: Matmul,
) -> Rows<N, E, Cpu, T>
where
    Cpu: Device<E>,
{
    // element (k, n) of the right factor is at n·K + k
    let y = product(
        realized(x),
        realized(w.clone()),
        (K, N),
        [1, K as isize],
        precision,
    );
    realized(y)
}

/// `x · W` where element `(k, n)` of `W` is at `k·w_strides[0] + n·w_strides[1]`
/// of `w`'s buffer: `[batch, seq, k] × [k, n]`, the dimensions at run time
/// (compiled once, not once per shape).
fn product<E: Float, T: Tape<E, Cpu>>(
    x: Tensor<(usize, usize, usize), E, Cpu, T>,
    w: Tensor<(usize, usize), E, Cpu>,
    (k, n): (usize, usize),
    w_strides: [isize; 2],
    precision: Matmul,
) -> Tensor<(usize, usize, usize), E, Cpu, T>
where
    Cpu: Device<E>,
{
    let x = x.contiguous();
    let (b, s, _) = *x.shape();
    let m = b * s;
    let (x, tape) = x.split_tape();
    let (xs, ws) = (view(&x), view(&w));
    // the precision of this product and of its backward
    let bf16 = precision == Matmul::Bf16;
    // SAFETY: the buffers hold m×k, k×n and m×n elements; y is fresh and
    // the product (not accumulating) writes all of it; bf16 was checked
    // available when it was set
    let y = unsafe {
        written(m * n, |y| {
            tally::timed(Role::Forward, (m, k, n), (y, m * n, false), || {
                product_into(
                    bf16,
                    (m, k, n),
                    y,
                    [n as isize, 1],
                    false,
                    xs.as_ptr(),
                    [k as isize, 1],
                    ws.as_ptr(),
                    w_strides,
                )
            })
        })
    };
    drop((xs, ws));
    let out = x.device().tensor_from_vec(y, (b, s, n));
    if !T::OWNS_TAPE {
        return out.put_tape(tape);
    }
    let mut tape = tape;
    let out_id = out.clone();
    tape.add_backward_op(move |grads| {
        // SAFETY: where x's gradient comes unzeroed, dX below writes it whole
        let gx_unzeroed = unsafe { alloc_grad_unzeroed(grads, &x)? };
        grads.try_alloc_for(&w)?;
        grads.try_alloc_for(&out_id)?;
        // the three buffers are distinct entries whose heap storage does not
        // move while no entry is added
        let (gy, gy_len) = cpu_grad::<E>(grads.get_or_alloc_mut(&out_id)?);
        let (gx, gx_len) = cpu_grad::<E>(grads.get_or_alloc_mut(&x)?);
        let (gw, gw_len) = cpu_grad::<E>(grads.get_or_alloc_mut(&w)?);
        assert!(gy_len == m * n && gx_len == m * k && gw_len == k * n);
        let (xs, ws) = (view(&x), view(&w));
        let [w_rs, w_cs] = w_strides;
        // SAFETY: sizes asserted above; gradients are distinct buffers, and
        // xs, ws are private copies
        unsafe {
            // dX (m × k) += dY (m × n) · Wᵀ (n × k), or = where dX is new
            let accumulate = !gx_unzeroed;
            tally::timed(
                Role::InputGradient,
                (m, n, k),
                (gx, m * k, accumulate),
                || {
                    product_into(
                        bf16,
                        (m, n, k),
                        gx,
                        [k as isize, 1],
                        accumulate,
                        gy,
                        [n as isize, 1],
                        ws.as_ptr(),
                        [w_cs, w_rs],
                    )
                },
            );
            // dW (k × n) += Xᵀ (k × m) · dY (m × n)
            tally::timed(Role::WeightGradient, (k, m, n), (gw, k * n, true), || {
                product_into(
                    bf16,
                    (k, m, n),
                    gw,
                    [w_rs, w_cs],
                    true,
                    xs.as_ptr(),
                    [1, k as isize],
                    gy,
                    [n as isize, 1],
                )
            });
        }
        Ok(())
    });
    out.put_tape(tape)
}
