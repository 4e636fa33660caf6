//! CPU kernels for the steps where dfdx's own ops are slow (single threaded,
//! or materialising intermediate tensors). Each kernel is an op with its
//! gradient entering dfdx's tape, tested against the plain dfdx composition
//! it replaces (`march-runtime/tests/kernels.rs`) and benchmarked next to it
//! (`cargo bench --bench kernels`). A kernel replaces the composition in
//! the model only once the benchmark shows it faster: none does yet (the
//! fused cross-entropy is correct but slower; see its module).

pub mod cross_entropy;
