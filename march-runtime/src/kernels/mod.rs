//! CPU kernels for the steps where dfdx's own ops are slow (single threaded,
//! or materialising intermediate tensors). Each kernel is an op with its
//! gradient entering dfdx's tape, tested against the plain dfdx composition
//! it replaces (`march-runtime/tests/kernels.rs`) and benchmarked next to it
//! (`cargo bench --bench kernels`). A kernel replaces the composition in the
//! model only once the benchmark shows it faster: [`linear`] (every
//! projection and the LM head) and [`attention`] do; the fused
//! cross-entropy is correct but not faster yet (see its module).
//!
//! dfdx's kernel traits are crate-private, so the fast paths are chosen at
//! run time by the device's type ([`cpu_kernels`]); other devices (CUDA)
//! run dfdx's composition.

pub mod adamw;
pub mod attention;
pub mod cross_entropy;
pub mod dropout;
pub mod linear;
pub mod rms_norm;

use std::any::{Any, TypeId};

use dfdx::prelude::*;
use gemm::Parallelism;

use crate::layers::Float;

/// Whether the CPU kernels serve this device and element type: [`Cpu`] with
/// `f32` or `f64`.
pub fn cpu_kernels<E: 'static, D: 'static>() -> bool {
    TypeId::of::<D>() == TypeId::of::<Cpu>()
        && (TypeId::of::<E>() == TypeId::of::<f32>() || TypeId::of::<E>() == TypeId::of::<f64>())
}

/// A tensor's buffer, copied (dfdx keeps a tensor's storage private; the
/// copy is a `memcpy`). Contiguous tensors only: call `.contiguous()` first
/// where the layout is not known.
fn read<S: Shape, E: Float, D: Device<E>, T>(t: &Tensor<S, E, D, T>) -> Vec<E> {
    let mut v = vec![E::zero(); t.shape().num_elements()];
    t.copy_into(&mut v);
    v
}

/// A CPU gradient buffer's pointer and length. Only where [`cpu_kernels`]
/// holds. The pointer addresses the buffer's heap storage, which stays put
/// while the gradient exists (entries added to `Gradients` later do not move
/// it).
fn cpu_grad<E: Unit, D: Storage<E>>(v: &mut D::Vec) -> (*mut E, usize) {
    let v: &mut dyn Any = v;
    let v = v
        .downcast_mut::<<Cpu as Storage<E>>::Vec>()
        .expect("the CPU kernels run on the Cpu device only");
    (v.as_mut_ptr(), v.len())
}

/// A raw pointer that tasks on the rayon pool may share, each writing its
/// own disjoint part.
#[derive(Clone, Copy)]
struct SendPtr<E>(*mut E);
// SAFETY: the kernels give every task a disjoint region to write
unsafe impl<E> Send for SendPtr<E> {}
unsafe impl<E> Sync for SendPtr<E> {}
impl<E> SendPtr<E> {
    fn get(&self) -> *mut E {
        self.0
    }
}

/// `dst (m × n) [+]= lhs (m × k) · rhs (k × n)` on gemm 0.19, each operand
/// given by its pointer and `[row stride, column stride]` in elements;
/// `parallel`: split the product over the rayon pool (large products) or
/// run it on the calling thread (one task of a parallel loop).
///
/// # Safety
/// Every pointer must address the whole matrix its strides describe, and
/// `dst` must not alias `lhs` or `rhs`.
#[allow(clippy::too_many_arguments)]
unsafe fn gemm_into<E: Float>(
    (m, k, n): (usize, usize, usize),
    dst: *mut E,
    [dst_rs, dst_cs]: [isize; 2],
    accumulate: bool,
    lhs: *const E,
    [lhs_rs, lhs_cs]: [isize; 2],
    rhs: *const E,
    [rhs_rs, rhs_cs]: [isize; 2],
    parallel: bool,
) {
    let parallelism = match rayon::current_num_threads() {
        n if parallel && n > 1 => Parallelism::Rayon(n),
        _ => Parallelism::None,
    };
    gemm::gemm(
        m,
        n,
        k,
        dst,
        dst_cs,
        dst_rs,
        accumulate,
        lhs,
        lhs_cs,
        lhs_rs,
        rhs,
        rhs_cs,
        rhs_rs,
        E::one(),
        E::one(),
        false,
        false,
        false,
        parallelism,
    )
}
