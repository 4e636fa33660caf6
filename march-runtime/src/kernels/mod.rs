//! Fast CPU kernels for the steps where dfdx's own ops are slow (single
//! threaded, or materialising intermediate tensors). Each kernel is an op
//! with its gradient registered through dfdx's public tape API, used on the
//! CPU and tested against the plain dfdx composition it replaces
//! (`march-runtime/tests/kernels.rs`); other devices keep the composition.

pub mod cross_entropy;

/// Whether `D` is dfdx's CPU device (the kernels' home).
pub fn is_cpu<D: 'static>() -> bool {
    std::any::TypeId::of::<D>() == std::any::TypeId::of::<dfdx::tensor::Cpu>()
}
