//! CPU kernels for the steps where dfdx's own ops are slow (single threaded,
//! or materialising intermediate tensors). Each kernel is an op with its
//! gradient entering dfdx's tape, tested against the plain dfdx composition
//! it replaces (`march-runtime/tests/kernels.rs`) and benchmarked next to it
//! (`cargo bench --bench kernels`). A kernel replaces the composition in the
//! model only once the benchmark shows it faster; every op [`crate::ops`]
//! lists for the CPU does (e.g. the masked cross-entropy at 8 × 52 ×
//! 30,000, forward and backward: 13.2 ms fused against 154.6 ms for dfdx's
//! composition, AMD EPYC Zen 4, 2 threads, 7 December 2026).
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
pub mod microkernels;
mod panels;
mod product;
pub mod rms_norm;
pub mod rope;
pub mod simd;
pub mod tally;
mod transpose;

pub use mask::{
    apply_kept, apply_kept_add, apply_kept_in_place, apply_kept_set, mix64, DrawBuf, DropMask,
    DRAW_BLOCK,
};
pub use product::time_product;

use std::any::TypeId;
use std::borrow::Cow;

use dfdx::prelude::*;
use rayon::prelude::*;

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

/// Allocates `t`'s gradient where it has none yet, as
/// `grads.try_alloc_for(t)` does, and says whether the new buffer came
/// unzeroed ([`crate::alloc::unzeroed`]). Where it did, the kernel writes
/// every element instead of adding into it: the value its add into `+0`
/// would give (gemm's sums and `0 + v` are never `−0`; a bare `v` may be),
/// so the bits are the same either way.
///
/// # Safety
/// Where this returns `true`, the caller writes every element of `t`'s
/// gradient before anything reads one.
pub(crate) unsafe fn alloc_grad_unzeroed<S: Shape, E: Unit, T>(
    grads: &mut Gradients<E, Cpu>,
    t: &Tensor<S, E, Cpu, T>,
) -> Result<bool, CpuError> {
    // SAFETY: `try_alloc_for` makes one zeroed allocation, `t`'s gradient
    // buffer, or none where the gradient exists (its map's nodes are not
    // zeroed ones); the caller's contract covers the rest
    let (r, unzeroed) = unsafe { crate::alloc::unzeroed(|| grads.try_alloc_for(t)) };
    r.map(|()| unzeroed)
}

/// A CPU gradient buffer as the vector it is (to hand a whole buffer over).
pub(crate) fn cpu_grad_vec<E: Unit>(v: &mut <Cpu as Storage<E>>::Vec) -> &mut Vec<E> {
    v
}

/// Whether every element of `x` is zero (either sign), in parallel;
/// stops at the first block that is not.
pub(crate) fn all_zero<E: Float>(x: &[E]) -> bool {
    const CHUNK: usize = 1 << 14;
    match f32s(x) {
        Some(x) => x.par_chunks(CHUNK).all(simd::all_zero),
        None => x.par_iter().all(|&v| v == E::zero()),
    }
}

/// Two buffers of `n` elements (the second empty without `both`) made on
/// the rayon pool in chunks of `chunk`: each chunk set to `zero` by the task
/// that then gets it, `f(chunk index, first's chunk, second's chunk)`,
/// where `vec![zero; n]` would have one thread clear the whole buffer
/// first — a single-threaded `memset`, ~29 GB/s on one core of the Intel
/// Xeon (family 6 model 167) against ~53 on two, and the chunk cold again
/// by the time its task writes it.
pub(crate) fn zeroed_chunks<A: Copy + Send + Sync, B: Copy + Send + Sync>(
    (zero_a, zero_b): (A, B),
    n: usize,
    both: bool,
    chunk: usize,
    f: impl Fn(usize, &mut [A], &mut [B]) + Sync,
) -> (Vec<A>, Vec<B>) {
    let nb = if both { n } else { 0 };
    let mut a: Vec<A> = Vec::with_capacity(n);
    let mut b: Vec<B> = Vec::with_capacity(nb);
    let (pa, pb) = (SendPtr(a.as_mut_ptr()), SendPtr(b.as_mut_ptr()));
    (0..n.div_ceil(chunk)).into_par_iter().for_each(|c| {
        let (start, len) = (c * chunk, chunk.min(n - c * chunk));
        // SAFETY: chunk c of each buffer's reserved capacity, this task's
        // alone, every element set before the slice is made
        let (ca, cb) = unsafe {
            (
                filled(pa.get().add(start), len, zero_a),
                if both {
                    filled(pb.get().add(start), len, zero_b)
                } else {
                    &mut []
                },
            )
        };
        f(c, ca, cb)
    });
    // SAFETY: every chunk of both was set above
    unsafe {
        a.set_len(n);
        b.set_len(nb);
    }
    (a, b)
}

/// `len` elements at `p` set to `v`, as a slice.
///
/// # Safety
/// `p` must address `len` writable elements that nothing else uses while
/// the slice lives, and `T` must have no padding bytes (the kernels' numbers
/// and bytes: `v`'s bytes are compared with zero).
unsafe fn filled<'a, T: Copy>(p: *mut T, len: usize, v: T) -> &'a mut [T] {
    // SAFETY: the caller's; written as `MaybeUninit` before it is read as
    // `T`; `v`'s bytes are read as the plain bytes of a `Copy` value
    unsafe {
        let bytes = std::slice::from_raw_parts((&v as *const T).cast::<u8>(), size_of::<T>());
        if bytes.iter().all(|&b| b == 0) {
            // zero (the usual case): libc's `memset`, at the CPU's full
            // vector width, where the generic loop is built for the baseline
            std::ptr::write_bytes(p, 0, len);
            return std::slice::from_raw_parts_mut(p, len);
        }
        let s = std::slice::from_raw_parts_mut(p.cast::<std::mem::MaybeUninit<T>>(), len);
        s.fill(std::mem::MaybeUninit::new(v));
        &mut *(s as *mut [std::mem::MaybeUninit<T>] as *mut [T])
    }
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

    /// [`zeroed_chunks`] hands each chunk out once, zeroed, at its place
    /// (the last one short), and returns what the tasks wrote; without
    /// `both` the second buffer is empty.
    #[test]
    fn zeroed_chunks_hand_out_every_chunk_zeroed_once() {
        for (n, chunk, both) in [
            (10_000, 1024, true),
            (1024, 1024, true),
            (7, 3, false),
            (0, 4, true),
        ] {
            let seen = std::sync::atomic::AtomicUsize::new(0);
            let (a, b) = zeroed_chunks((0f32, 0u8), n, both, chunk, |c, a, b| {
                assert_eq!(a.len(), chunk.min(n - c * chunk));
                assert_eq!(b.len(), if both { a.len() } else { 0 });
                assert!(a.iter().all(|&x| x == 0.0) && b.iter().all(|&x| x == 0));
                for (i, x) in a.iter_mut().enumerate() {
                    *x = (c * chunk + i) as f32;
                }
                b.fill(c as u8 + 1);
                seen.fetch_add(a.len(), std::sync::atomic::Ordering::Relaxed);
            });
            assert_eq!(seen.into_inner(), n);
            assert_eq!(a, (0..n).map(|i| i as f32).collect::<Vec<_>>());
            let want: Vec<u8> = if both {
                (0..n).map(|i| (i / chunk) as u8 + 1).collect()
            } else {
                vec![]
            };
            assert_eq!(b, want);
        }
    }
}
