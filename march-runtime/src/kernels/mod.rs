//! CPU kernels for the steps where dfdx's own ops are slow (single threaded,
//! or materialising intermediate tensors). Each kernel is an op with its
//! gradient entering dfdx's tape, tested against the plain dfdx composition
//! it replaces (`march-runtime/tests/kernels.rs`) and benchmarked next to it
//! (`cargo bench --bench kernels`). A kernel replaces the composition in the
//! model only once the benchmark shows it faster: [`linear`] (every
//! projection and the LM head) and [`attention`] do; the fused
//! cross-entropy is correct but not faster yet (see its module).
//!
//! The kernels take concrete [`Cpu`] tensors. Which device runs a kernel and
//! which runs dfdx's composition is said in one place: [`crate::ops`].

pub mod adamw;
pub mod amx;
pub mod attention;
pub mod cross_entropy;
pub mod dpbf16;
pub mod dropout;
pub mod embedding;
pub mod glu;
pub mod linear;
mod mask;
pub mod rms_norm;
pub mod rope;
pub mod simd;
pub mod tally;

pub use mask::{apply_kept, apply_kept_add, apply_kept_in_place, mix64, DropMask};

use std::any::TypeId;
use std::borrow::Cow;

use dfdx::prelude::*;
use gemm::Parallelism;

use crate::tensor::Float;

/// The precision of [`linear`]'s matrix products on the CPU in `f32`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Matmul {
    /// `f32` factors and sums (gemm 0.19): the default.
    #[default]
    F32,
    /// Factors rounded to bf16, `f32` sums: mixed precision. On the AMX
    /// tile unit ([`amx`]) where there is one, else by AVX-512 BF16's
    /// `VDPBF16PS` ([`dpbf16`]). Needs either ([`Matmul::check`]).
    Bf16,
}

impl std::str::FromStr for Matmul {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "f32" => Ok(Matmul::F32),
            "bf16" => Ok(Matmul::Bf16),
            other => Err(format!("unknown matmul precision `{other}`: f32 or bf16")),
        }
    }
}

impl std::fmt::Display for Matmul {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Matmul::F32 => "f32",
            Matmul::Bf16 => "bf16",
        })
    }
}

impl Matmul {
    /// Whether this machine can run it: an error saying why not.
    pub fn check(self) -> Result<(), String> {
        if self == Matmul::Bf16 && bf16_unit().is_none() {
            return Err("bf16 matmuls run on Intel AMX (Sapphire Rapids or later, Linux) or AVX-512 BF16 (AMD Zen 4 or later, Intel Cooper Lake or later), which this CPU lacks: use f32".into());
        }
        Ok(())
    }
}

/// What runs the bf16 products ([`Matmul::Bf16`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bf16Unit {
    /// Intel AMX's tile unit ([`amx`]).
    Amx,
    /// AVX-512 BF16's `VDPBF16PS` ([`dpbf16`]): two products per lane
    /// where an `f32` FMA does one.
    Avx512Bf16,
}

impl std::fmt::Display for Bf16Unit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Bf16Unit::Amx => "Intel AMX",
            Bf16Unit::Avx512Bf16 => "AVX-512 BF16",
        })
    }
}

/// The unit this CPU's bf16 products run on: AMX where there is one (its
/// tiles do 16 times the work of one `VDPBF16PS`), else AVX-512 BF16; none
/// without either.
pub fn bf16_unit() -> Option<Bf16Unit> {
    if amx::available() {
        Some(Bf16Unit::Amx)
    } else if dpbf16::available() {
        Some(Bf16Unit::Avx512Bf16)
    } else {
        None
    }
}

/// A tensor's elements in row-major order: its own buffer, borrowed, for a
/// contiguous CPU tensor (what the kernels see in practice: they call
/// `.contiguous()` first and weights are contiguous); a copy otherwise.
///
/// dfdx keeps a tensor's storage private, but a CPU tensor indexes into it
/// (`Index<[usize; N]>` returns a reference into the buffer): the buffer is
/// borrowed from the first element's address once the strides are checked,
/// through the same indexing, to be the row-major ones, and the last
/// element is checked to be inside the buffer.
fn view<S: Shape, E: Float, T>(t: &Tensor<S, E, Cpu, T>) -> Cow<'_, [E]>
where
    Cpu: Device<E>,
{
    let n = t.shape().num_elements();
    if n > 0 && row_major(t) {
        let first: *const E = &t[S::Concrete::default()];
        // SAFETY: the strides are the row-major ones, so elements
        // 0..n are buffer offsets 0..n, and offset n − 1 was read by
        // `row_major` through dfdx's bounds-checked indexing
        return Cow::Borrowed(unsafe { std::slice::from_raw_parts(first, n) });
    }
    Cow::Owned(t.as_vec())
}

/// The rows `t[i, j, ..]` of a 3-d CPU tensor read through its strides, so
/// that a broadcast (the attention masks) is not copied out element by
/// element: `(buffer, [stride of i, stride of j])` with row `(i, j)` at
/// `buffer[i·s₀ + j·s₁..][..n]`, where the last axis is contiguous; a
/// row-major copy otherwise.
fn strided_rows<E: Float, T>(
    t: &Tensor<(usize, usize, usize), E, Cpu, T>,
) -> (Cow<'_, [E]>, [usize; 2])
where
    Cpu: Device<E>,
{
    let (a, b, n) = *t.shape();
    let copy = |t: &Tensor<(usize, usize, usize), E, Cpu, T>| (Cow::Owned(t.as_vec()), [b * n, n]);
    if a * b * n == 0 {
        return copy(t);
    }
    let base: *const E = &t[[0, 0, 0]];
    // SAFETY (each offset): both point into the tensor's buffer
    let offset = |at: [usize; 3]| unsafe { (&t[at] as *const E).offset_from(base) };
    let stride = |axis: usize, len: usize| {
        let mut at = [0; 3];
        at[axis] = 1;
        if len > 1 {
            offset(at)
        } else {
            0
        }
    };
    let (s0, s1, s2) = (stride(0, a), stride(1, b), stride(2, n));
    if (n > 1 && s2 != 1) || s0 < 0 || s1 < 0 {
        return copy(t);
    }
    let last = offset([a - 1, b - 1, n - 1]);
    if last != (a as isize - 1) * s0 + (b as isize - 1) * s1 + n as isize - 1 {
        return copy(t);
    }
    // SAFETY: offsets 0..=last of the buffer hold elements [0, 0, 0] and
    // [a−1, b−1, n−1] (read through dfdx's bounds-checked indexing), so the
    // span between them lies inside it
    let buffer = unsafe { std::slice::from_raw_parts(base, last as usize + 1) };
    (Cow::Borrowed(buffer), [s0 as usize, s1 as usize])
}

/// Whether `t`'s strides are the row-major ones of its shape (checked
/// through indexing), reading its last element (bounds-checked).
fn row_major<S: Shape, E: Unit, T>(t: &Tensor<S, E, Cpu, T>) -> bool {
    let dims = t.shape().concrete();
    let strides = t.shape().strides();
    let base: *const E = &t[S::Concrete::default()];
    for j in 0..S::NUM_DIMS {
        if dims[j] > 1 {
            let mut at = S::Concrete::default();
            at[j] = 1;
            let p: *const E = &t[at];
            // SAFETY: both point into the same buffer
            if unsafe { p.offset_from(base) } != strides[j] as isize {
                return false;
            }
        }
    }
    let mut last = S::Concrete::default();
    for j in 0..S::NUM_DIMS {
        last[j] = dims[j] - 1;
    }
    let p: *const E = &t[last];
    // SAFETY: as above
    unsafe { p.offset_from(base) == t.shape().num_elements() as isize - 1 }
}

/// `x` as `f32`s, when `E` is `f32`: the kernels' inner loops then run
/// [`simd`]'s versions.
pub fn f32s<E: 'static>(x: &[E]) -> Option<&[f32]> {
    if TypeId::of::<E>() == TypeId::of::<f32>() {
        // SAFETY: `E` is `f32`
        Some(unsafe { &*(x as *const [E] as *const [f32]) })
    } else {
        None
    }
}

/// [`f32s`], mutably.
pub fn f32s_mut<E: 'static>(x: &mut [E]) -> Option<&mut [f32]> {
    if TypeId::of::<E>() == TypeId::of::<f32>() {
        // SAFETY: `E` is `f32`
        Some(unsafe { &mut *(x as *mut [E] as *mut [f32]) })
    } else {
        None
    }
}

/// A contiguous CPU tensor's buffer, mutably (shared buffers are unshared
/// first, as dfdx's own in-place ops do).
pub(crate) fn view_mut<S: Shape, E: Float>(t: &mut Tensor<S, E, Cpu>) -> &mut [E]
where
    Cpu: Device<E>,
{
    let n = t.shape().num_elements();
    // tensors of no elements are not parameters (`layers::module!`): never here
    assert!(n > 0 && row_major(t), "a contiguous tensor");
    let first: *mut E = &mut t[S::Concrete::default()];
    // SAFETY: as in `view`; `IndexMut` made the buffer this tensor's own
    unsafe { std::slice::from_raw_parts_mut(first, n) }
}

/// A CPU gradient buffer's pointer and length. The pointer addresses the buffer's heap storage, which stays put
/// while the gradient exists (entries added to `Gradients` later do not move
/// it).
pub(crate) fn cpu_grad<E: Unit>(v: &mut <Cpu as Storage<E>>::Vec) -> (*mut E, usize) {
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

/// A fresh buffer of `n` elements, every one written by `fill` through the
/// pointer it is given, not zero-filled first: the outputs of products
/// with `accumulate` false, which neither gemm (its `read_dst` false sets
/// its α to 0, and no path reads the destination then) nor the AMX path
/// reads. Zero-filling them was ~2% of the small model's step (`perf`).
///
/// # Safety
/// `fill` must write all `n` elements and read none it has not written.
unsafe fn written<E>(n: usize, fill: impl FnOnce(*mut E)) -> Vec<E> {
    let mut v = Vec::with_capacity(n);
    fill(v.as_mut_ptr());
    // SAFETY: the capacity is n, and `fill` wrote all n (the caller)
    unsafe { v.set_len(n) };
    v
}

/// Seconds of one `m × k · k × n` f32 product through the projections'
/// own path (gemm, or bf16 with [`Matmul::Bf16`]), into a fresh buffer:
/// what `march bench` measures its ceiling with. Errors where
/// [`Matmul::check`] does.
pub fn time_product((m, k, n): (usize, usize, usize), precision: Matmul) -> Result<f64, String> {
    precision.check()?;
    let lhs: Vec<f32> = (0..m * k)
        .map(|i| ((i % 97) as f32 - 48.0) * 1e-2)
        .collect();
    let rhs: Vec<f32> = (0..k * n)
        .map(|i| ((i % 89) as f32 - 44.0) * 1e-2)
        .collect();
    let mut dst = vec![0f32; m * n];
    let bf16 = precision == Matmul::Bf16;
    let t0 = std::time::Instant::now();
    // SAFETY: the buffers hold m×k, k×n and m×n elements in row-major
    // order; bf16 was checked available when it was set
    unsafe {
        product_into(
            bf16,
            (m, k, n),
            dst.as_mut_ptr(),
            [n as isize, 1],
            false,
            lhs.as_ptr(),
            [k as isize, 1],
            rhs.as_ptr(),
            [n as isize, 1],
        );
    }
    let dt = t0.elapsed().as_secs_f64();
    std::hint::black_box(&dst);
    Ok(dt)
}

/// [`gemm_into`], or with `bf16` (and `E` = `f32`) [`amx::matmul`] or
/// [`dpbf16::matmul`] (see [`bf16_unit`]).
///
/// # Safety
/// As [`gemm_into`]; with `bf16`, [`bf16_unit`] must be some unit.
#[allow(clippy::too_many_arguments)]
unsafe fn product_into<E: Float>(
    bf16: bool,
    mkn: (usize, usize, usize),
    dst: *mut E,
    dst_strides: [isize; 2],
    accumulate: bool,
    lhs: *const E,
    [lhs_rs, lhs_cs]: [isize; 2],
    rhs: *const E,
    [rhs_rs, rhs_cs]: [isize; 2],
) {
    if bf16 && TypeId::of::<E>() == TypeId::of::<f32>() {
        let [dst_rs, dst_cs] = dst_strides;
        if dst_rs == 1 && dst_cs != 1 {
            // a column-major destination (a weight's gradient, stored
            // transposed): the transposed product writes it by rows, not
            // one strided element at a time — dstᵀ = rhsᵀ · lhsᵀ
            let (m, k, n) = mkn;
            #[rustfmt::skip]
            return product_into(
                bf16, (n, k, m), dst, [dst_cs, dst_rs], accumulate,
                rhs, [rhs_cs, rhs_rs], lhs, [lhs_cs, lhs_rs],
            );
        }
        let lhs = amx::Strided {
            ptr: lhs as *const f32,
            rs: lhs_rs,
            cs: lhs_cs,
        };
        let rhs = amx::Strided {
            ptr: rhs as *const f32,
            rs: rhs_rs,
            cs: rhs_cs,
        };
        let dst = dst as *mut f32;
        if amx::available() {
            return amx::matmul(mkn, dst, dst_strides, accumulate, lhs, rhs);
        }
        return dpbf16::matmul(mkn, dst, dst_strides, accumulate, lhs, rhs);
    }
    gemm_into(
        mkn,
        dst,
        dst_strides,
        accumulate,
        lhs,
        [lhs_rs, lhs_cs],
        rhs,
        [rhs_rs, rhs_cs],
        true,
    )
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
    let threads = rayon::current_num_threads();
    if parallel && threads > 1 {
        // gemm works on a column-major destination: a row-major one is
        // transposed first (dstᵀ = rhsᵀ · lhsᵀ), so its "rows" are ours
        // along `split` and its left factor is the one `split` indexes
        let transposed = dst_cs.abs() < dst_rs.abs();
        let (rows, factor_rs) = if transposed { (n, rhs_cs) } else { (m, lhs_rs) };
        let parts = threads.min(rows / NARROW_PART);
        if rows <= NARROW_ROWS && factor_rs.abs() != 1 && parts > 1 {
            // SAFETY: the caller's, each part a block of the same product
            return unsafe {
                gemm_split(
                    parts,
                    transposed,
                    (m, k, n),
                    SendPtr(dst),
                    [dst_rs, dst_cs],
                    accumulate,
                    SendPtr(lhs as *mut E),
                    [lhs_rs, lhs_cs],
                    SendPtr(rhs as *mut E),
                    [rhs_rs, rhs_cs],
                )
            };
        }
    }
    let parallelism = match threads {
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

/// The widest destination (in gemm's column-major orientation: its
/// contiguous side) for which gemm 0.19 packs a strided left factor on the
/// calling thread alone before its threads start (its "prepack" path:
/// destinations of at most 2 × its row block, which is at most 8 × 64 rows
/// with AVX-512): `dX += dY · Wᵀ` of every projection from the model width.
const NARROW_ROWS: usize = 1024;

/// The fewest of those rows each thread's part of a split product gets (a
/// whole AVX-512 microkernel's height).
const NARROW_PART: usize = 64;

/// [`gemm_into`] of a narrow product with a strided left factor (see
/// [`NARROW_ROWS`]), split by gemm's rows — ours along `n` for a
/// `transposed` (row-major) destination, along `m` otherwise — into
/// `parts` blocks of whole vectors, one single-threaded gemm each on the
/// rayon pool, so that each thread packs its own part of the factor
/// instead of one thread packing all of it while the others wait.
/// Measured on the AMD EPYC Zen 4 (6 December 2026, 2 threads): the
/// encoder's `1840 × 2048 · 2048 × 512` gradient at 143 GFLOP/s through
/// gemm's own split, 200 split here. Every element is the same sum in the
/// same order either way (same depth blocks, same microkernels).
///
/// # Safety
/// As [`gemm_into`].
#[allow(clippy::too_many_arguments)]
unsafe fn gemm_split<E: Float>(
    parts: usize,
    transposed: bool,
    (m, k, n): (usize, usize, usize),
    dst: SendPtr<E>,
    [dst_rs, dst_cs]: [isize; 2],
    accumulate: bool,
    lhs: SendPtr<E>,
    [lhs_rs, lhs_cs]: [isize; 2],
    rhs: SendPtr<E>,
    [rhs_rs, rhs_cs]: [isize; 2],
) {
    let rows = if transposed { n } else { m };
    // block boundaries on whole 16-lane vectors
    let edge = |p: usize| (rows * p / parts).div_ceil(16) * 16;
    rayon::scope(|scope| {
        for p in 0..parts {
            let (start, end) = (edge(p).min(rows), edge(p + 1).min(rows));
            if start == end {
                continue;
            }
            let len = end - start;
            scope.spawn(move |_| {
                let (dst, lhs, rhs) = (dst.get(), lhs.get() as *const E, rhs.get() as *const E);
                let at = start as isize;
                // SAFETY: block `start..end` of the split side of each
                // operand it indexes; the blocks' destinations are disjoint
                unsafe {
                    if transposed {
                        gemm_into(
                            (m, k, len),
                            dst.offset(at * dst_cs),
                            [dst_rs, dst_cs],
                            accumulate,
                            lhs,
                            [lhs_rs, lhs_cs],
                            rhs.offset(at * rhs_cs),
                            [rhs_rs, rhs_cs],
                            false,
                        )
                    } else {
                        gemm_into(
                            (len, k, n),
                            dst.offset(at * dst_rs),
                            [dst_rs, dst_cs],
                            accumulate,
                            lhs.offset(at * lhs_rs),
                            [lhs_rs, lhs_cs],
                            rhs,
                            [rhs_rs, rhs_cs],
                            false,
                        )
                    }
                }
            });
        }
    });
}

/// `t` as a tensor of run-time dimensions (the same id, data and tape), so
/// that a kernel taking it is compiled once, not once per shape; and back.
pub(crate) fn realized<S, Dst, E, T>(t: Tensor<S, E, Cpu, T>) -> Tensor<Dst, E, Cpu, T>
where
    S: Shape + RealizeShapeTo<Dst>,
    Dst: Shape<Concrete = S::Concrete>,
    E: Dtype,
    T: Tape<E, Cpu>,
{
    t.try_realize()
        .unwrap_or_else(|_| panic!("a tensor realized to a shape of other dimensions"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What [`written`] relies on: a product that does not accumulate
    /// writes every element of its destination and reads none (a NaN left
    /// in it, or read from it, would show), for the shapes of gemm's
    /// paths: empty inner dimension, vectors, small and large blocks, in
    /// parallel and not.
    #[test]
    fn products_not_accumulating_write_their_whole_destination() {
        for &(m, k, n) in &[
            (1, 1, 1),
            (3, 0, 5),
            (1, 7, 9),
            (9, 7, 1),
            (5, 3, 4),
            (17, 33, 65),
            (230, 64, 230),
            (96, 128, 512),
        ] {
            let lhs: Vec<f32> = (0..m * k).map(|i| (i % 13) as f32 - 6.0).collect();
            let rhs: Vec<f32> = (0..k * n).map(|i| (i % 7) as f32 - 3.0).collect();
            for parallel in [false, true] {
                let mut dst = vec![f32::NAN; m * n];
                // SAFETY: the buffers hold m×k, k×n and m×n elements
                unsafe {
                    gemm_into(
                        (m, k, n),
                        dst.as_mut_ptr(),
                        [n as isize, 1],
                        false,
                        lhs.as_ptr(),
                        [k as isize, 1],
                        rhs.as_ptr(),
                        [n as isize, 1],
                        parallel,
                    );
                }
                for (at, &d) in dst.iter().enumerate() {
                    let (r, c) = (at / n, at % n);
                    let want: f32 = (0..k).map(|j| lhs[r * k + j] * rhs[j * n + c]).sum();
                    assert_eq!(d, want, "{m}×{k}·{k}×{n} at ({r}, {c})");
                }
            }
        }
    }

    /// A narrow product with a strided left factor (in gemm's orientation)
    /// is split over the threads by [`gemm_split`]: every element equals
    /// the single-threaded gemm's, bit for bit, accumulating, for both
    /// orientations of the destination and blocks that do not divide evenly.
    #[test]
    fn split_products_equal_whole_ones_bit_for_bit() {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(3)
            .build()
            .unwrap();
        // (m, k, n, dst, lhs, rhs strides) as `linear`'s gradients pass them
        let rm = |c: usize| [c as isize, 1];
        let cm = |r: usize| [1, r as isize];
        for (m, k, n, ds, ls, rs) in [
            (230, 300, 512, rm(512), rm(300), cm(300)),
            (97, 520, 200, rm(200), rm(520), cm(520)),
            (512, 230, 300, cm(512), rm(230), rm(300)),
            (200, 64, 33, cm(200), rm(64), cm(64)),
        ] {
            let lhs: Vec<f32> = (0..m * k)
                .map(|i| ((i % 97) as f32 - 48.0) * 1e-2)
                .collect();
            let rhs: Vec<f32> = (0..k * n)
                .map(|i| ((i % 89) as f32 - 44.0) * 1e-2)
                .collect();
            let start: Vec<f32> = (0..m * n).map(|i| ((i % 13) as f32 - 6.0) * 0.5).collect();
            let run = |parallel: bool| {
                let mut dst = start.clone();
                // SAFETY: the buffers hold m×k, k×n and m×n elements
                // under the given strides
                pool.install(|| unsafe {
                    gemm_into(
                        (m, k, n),
                        dst.as_mut_ptr(),
                        ds,
                        true,
                        lhs.as_ptr(),
                        ls,
                        rhs.as_ptr(),
                        rs,
                        parallel,
                    )
                });
                dst
            };
            let (whole, split) = (run(false), run(true));
            for (at, (a, b)) in whole.iter().zip(&split).enumerate() {
                assert_eq!(a.to_bits(), b.to_bits(), "{m}×{k}·{k}×{n} at {at}");
            }
            // and it is the product: one element checked in f64
            let (r, c) = (m / 2, n / 3);
            let at =
                |[rs_, cs_]: [isize; 2], i: usize, j: usize| i * rs_ as usize + j * cs_ as usize;
            let want = start[at(ds, r, c)] as f64
                + (0..k)
                    .map(|j| lhs[at(ls, r, j)] as f64 * rhs[at(rs, j, c)] as f64)
                    .sum::<f64>();
            assert!((split[at(ds, r, c)] as f64 - want).abs() < 1e-3 * want.abs().max(1.0));
        }
    }

    #[test]
    fn views_borrow_contiguous_buffers_and_copy_the_rest() {
        let dev = Cpu::default();
        let t: Tensor<Rank3<2, 3, 4>, f32, Cpu> =
            dev.tensor_from_vec((0..24).map(|x| x as f32).collect(), (Const, Const, Const));
        assert!(matches!(view(&t), Cow::Borrowed(_)));
        assert_eq!(view(&t).to_vec(), t.as_vec());
        let p = t.clone().permute::<Rank3<3, 2, 4>, _>();
        assert!(matches!(view(&p), Cow::Owned(_)));
        assert_eq!(view(&p).to_vec(), p.as_vec());
        let b: Tensor<Rank3<2, 3, 4>, f32, Cpu> = dev
            .tensor_from_vec(vec![1.0, 2.0, 3.0, 4.0], (Const::<4>,))
            .broadcast();
        assert!(matches!(view(&b), Cow::Owned(_)));
        assert_eq!(view(&b).to_vec(), b.as_vec());
        // rows through strides: a broadcast is borrowed, not copied
        let rows: Tensor<(usize, usize, usize), f32, Cpu> = dev
            .tensor_from_vec((0..8).map(|x| x as f32).collect(), (2, 4))
            .broadcast_like::<_, Axis<1>>(&(2, 3, 4));
        let (buf, [s0, s1]) = strided_rows(&rows);
        assert!(matches!(buf, Cow::Borrowed(_)) && buf.len() == 8 && (s0, s1) == (4, 0));
        let flat = rows.as_vec();
        for (i, j) in (0..2).flat_map(|i| (0..3).map(move |j| (i, j))) {
            let at = (i * 3 + j) * 4;
            assert_eq!(&buf[i * s0 + j * s1..][..4], &flat[at..at + 4]);
        }
        let causal: Tensor<(usize, usize, usize), f32, Cpu> = dev
            .tensor_from_vec((0..12).map(|x| x as f32).collect(), (3, 4))
            .broadcast_like::<_, Axis<0>>(&(2, 3, 4));
        let (buf, strides) = strided_rows(&causal);
        assert!(matches!(buf, Cow::Borrowed(_)) && strides == [0, 4]);
        let swapped = causal.clone().permute::<_, Axes3<0, 2, 1>>();
        let (buf, strides) = strided_rows(&swapped);
        assert!(matches!(buf, Cow::Owned(_)) && strides == [12, 3]);
        assert_eq!(buf.to_vec(), swapped.as_vec());
        let mut m = t.clone();
        view_mut(&mut m)[5] = -1.0;
        assert_eq!(m.as_vec()[5], -1.0);
        assert_eq!(t.as_vec()[5], 5.0, "a shared buffer is unshared first");
    }
}
