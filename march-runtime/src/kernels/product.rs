//! The matrix products on the CPU: gemm 0.19 driven with strides (no
//! operand copied to change its layout, except the factors gemm would
//! gather element by element: packed by march into gemm's panels,
//! `Product::panels`, or transposed first, `Product::transposing`), split over the
//! threads where gemm's own split leaves one thread packing
//! (`Product::split`), split by their depth where the destination is too
//! small for gemm's split to share (`Product::split_depth`: the weight
//! gradients), or the bf16 units ([`super::amx`],
//! [`super::dpbf16`]) with [`Matmul::Bf16`].

use std::any::TypeId;

use gemm::Parallelism;

use super::{amx, dpbf16, f32s, f32s_mut, microkernels, panels, simd, transpose, Matmul, SendPtr};
use crate::tensor::Float;

/// A fresh buffer of `n` elements, every one written by `fill` through the
/// pointer it is given, not zero-filled first: the outputs of products
/// with `accumulate` false, which neither gemm (its `read_dst` false sets
/// its α to 0, and no path reads the destination then) nor the AMX path
/// reads. Zero-filling them was ~2% of the small model's step (`perf`).
///
/// # Safety
/// `fill` must write all `n` elements and read none it has not written.
pub(crate) unsafe fn written<E>(n: usize, fill: impl FnOnce(*mut E)) -> Vec<E> {
    let mut v = Vec::with_capacity(n);
    fill(v.as_mut_ptr());
    // SAFETY: the capacity is n, and `fill` wrote all n (the caller)
    unsafe { v.set_len(n) };
    v
}

/// Factors of an `m × k · k × n` product, `m × k` and `k × n` elements of
/// small, exactly representable values (for timing and tests).
fn factors((m, k, n): (usize, usize, usize)) -> (Vec<f32>, Vec<f32>) {
    let lhs = (0..m * k)
        .map(|i| ((i % 97) as f32 - 48.0) * 1e-2)
        .collect();
    let rhs = (0..k * n)
        .map(|i| ((i % 89) as f32 - 44.0) * 1e-2)
        .collect();
    (lhs, rhs)
}

/// Seconds of one `m × k · k × n` f32 product through the projections'
/// own path (gemm, or bf16 with [`Matmul::Bf16`]), into a fresh buffer:
/// what `march bench` measures its ceiling with. Errors where
/// [`Matmul::check`] does.
pub fn time_product((m, k, n): (usize, usize, usize), precision: Matmul) -> Result<f64, String> {
    precision.check()?;
    let (lhs, rhs) = factors((m, k, n));
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
/// [`dpbf16::matmul`] (see [`bf16_unit`](super::bf16_unit)).
///
/// # Safety
/// As [`gemm_into`]; with `bf16`, [`bf16_unit`](super::bf16_unit) must be some unit.
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn product_into<E: Float>(
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
pub(crate) unsafe fn gemm_into<E: Float>(
    mkn: (usize, usize, usize),
    dst: *mut E,
    dst_strides: [isize; 2],
    accumulate: bool,
    lhs: *const E,
    lhs_strides: [isize; 2],
    rhs: *const E,
    rhs_strides: [isize; 2],
    parallel: bool,
) {
    let product = Product {
        mkn,
        dst,
        dst_strides,
        accumulate,
        lhs,
        lhs_strides,
        rhs,
        rhs_strides,
    };
    // SAFETY: the caller's
    unsafe { product.run(parallel) }
}

/// How [`Product::run`] computes a product.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Path {
    /// [`Product::transposing`].
    Transposing,
    /// [`Product::panels`].
    Panels,
    /// [`Product::split`] into this many parts.
    Split(usize),
    /// [`Product::split_depth`] into [`DEPTH_PARTS`] parts.
    SplitDepth,
    /// [`Product::flipped`].
    Flipped,
    /// gemm alone, on the pool's threads or the caller's.
    Gemm,
}

/// One product `dst (m × n) [+]= lhs (m × k) · rhs (k × n)`, each matrix
/// by its pointer and `[row stride, column stride]` in elements.
#[derive(Clone, Copy)]
struct Product<E> {
    mkn: (usize, usize, usize),
    dst: *mut E,
    dst_strides: [isize; 2],
    accumulate: bool,
    lhs: *const E,
    lhs_strides: [isize; 2],
    rhs: *const E,
    rhs_strides: [isize; 2],
}

// SAFETY: the tasks sharing a product write disjoint blocks of its
// destination and only read its factors
unsafe impl<E> Send for Product<E> {}
unsafe impl<E> Sync for Product<E> {}

impl<E: Float> Product<E> {
    /// Whether gemm transposes the product: it works on a column-major
    /// destination, so a row-major one is computed as `dstᵀ = rhsᵀ ·
    /// lhsᵀ`, its rows ours along `n` and its left factor our right one.
    fn transposed(&self) -> bool {
        let [rs, cs] = self.dst_strides;
        cs.abs() < rs.abs()
    }

    /// The rows of gemm's destination and left factor.
    fn rows(&self) -> usize {
        let (m, _, n) = self.mkn;
        if self.transposed() {
            n
        } else {
            m
        }
    }

    /// gemm's left factor: its pointer and `[row stride, column stride]`
    /// in gemm's orientation.
    fn factor(&self) -> (*const E, [isize; 2]) {
        if self.transposed() {
            let [rs, cs] = self.rhs_strides;
            (self.rhs, [cs, rs])
        } else {
            (self.lhs, self.lhs_strides)
        }
    }

    /// Rows `start..start + len` of gemm's destination and left factor:
    /// each of their elements the same sum as in the whole product.
    ///
    /// # Safety
    /// `start + len` must not exceed [`Product::rows`].
    unsafe fn rows_block(mut self, start: usize, len: usize) -> Self {
        let (m, k, n) = self.mkn;
        let at = start as isize;
        // SAFETY: inside the matrices (the caller's bound)
        unsafe {
            if self.transposed() {
                self.mkn = (m, k, len);
                self.dst = self.dst.offset(at * self.dst_strides[1]);
                self.rhs = self.rhs.offset(at * self.rhs_strides[1]);
            } else {
                self.mkn = (len, k, n);
                self.dst = self.dst.offset(at * self.dst_strides[0]);
                self.lhs = self.lhs.offset(at * self.lhs_strides[0]);
            }
        }
        self
    }

    /// The same product as gemm sees it (see [`Product::transposed`]):
    /// `dstᵀ = rhsᵀ · lhsᵀ` where the destination is row-major.
    fn in_gemm_orientation(self) -> Self {
        if !self.transposed() {
            return self;
        }
        let (m, k, n) = self.mkn;
        let swap = |[rs, cs]: [isize; 2]| [cs, rs];
        Product {
            mkn: (n, k, m),
            dst: self.dst,
            dst_strides: swap(self.dst_strides),
            accumulate: self.accumulate,
            lhs: self.rhs,
            lhs_strides: swap(self.rhs_strides),
            rhs: self.lhs,
            rhs_strides: swap(self.lhs_strides),
        }
    }

    /// [`Product::run`] where gemm's left factor is row-major and has at
    /// least as many rows as the destination has columns (gemm's
    /// orientation; `f32`, on gemm's vector microkernels): its rows packed
    /// straight into gemm's panels and split over the threads by
    /// [`panels::RowMajor`], every element gemm's own sum (tested
    /// bit for bit). The LM head's forward (30,000 rows, 416 columns) and
    /// the decoder's `dX += dY · Wᵀ` (512 or 2,048 rows, 416 columns);
    /// where the columns outnumber the rows (the encoder's 1,840),
    /// [`Product::transposing`] is as fast or faster: gemm splits the
    /// columns and packs the right factor once for both threads.
    /// Measured on the Intel Xeon (family 6 model 167, 2 threads, 7
    /// December 2026, `march bench Baseline --products`, alternated with
    /// the build before): the LM head's forward 49.9–52.0 → 44.8–45.2 ms,
    /// the decoder's `416×512·512×512` gradients 17.5–17.9 → 15.4–16.1 ms
    /// (18 a step).
    ///
    /// # Safety
    /// As [`gemm_into`]; `E` must be `f32` and [`panels::available`] hold.
    unsafe fn panels(self, parallel: bool) {
        let threads = match parallel {
            true => rayon::current_num_threads(),
            false => 1,
        };
        let g = self.in_gemm_orientation();
        let [a_rs, a_cs] = g.lhs_strides;
        debug_assert_eq!(a_cs, 1, "a row-major left factor");
        let product = panels::RowMajor {
            mkn: g.mkn,
            dst: g.dst as *mut f32,
            dst_strides: g.dst_strides,
            accumulate: g.accumulate,
            a: g.lhs as *const f32,
            a_rs,
            b: g.rhs as *const f32,
            b_strides: g.rhs_strides,
        };
        // SAFETY: the caller's (E is f32)
        unsafe { product.run(threads) }
    }

    /// The product with gemm's left factor read from `factor` instead:
    /// the same matrix, column-major in gemm's orientation, each column
    /// `rows` long.
    fn with_factor(mut self, factor: *const E, rows: usize) -> Self {
        if self.transposed() {
            self.rhs = factor;
            self.rhs_strides = [rows as isize, 1];
        } else {
            self.lhs = factor;
            self.lhs_strides = [1, rows as isize];
        }
        self
    }

    /// How [`Product::run`] computes the product: a row-major left factor
    /// (in gemm's orientation) transposed first, a narrow product with a
    /// strided one split over the threads, anything else straight on gemm.
    fn path(&self, parallel: bool) -> Path {
        let (_, k, _) = self.mkn;
        let rows = self.rows();
        let (_, [factor_rs, factor_cs]) = self.factor();
        if factor_cs == 1 && factor_rs.abs() != 1 && rows * k >= TRANSPOSE_MIN {
            let (m, _, n) = self.mkn;
            let cols = if self.transposed() { m } else { n };
            if TypeId::of::<E>() == TypeId::of::<f32>() && panels::available() && rows >= cols {
                return Path::Panels;
            }
            return Path::Transposing;
        }
        let parts = rayon::current_num_threads().min(rows / NARROW_PART);
        if parallel && rows <= NARROW_ROWS && factor_rs.abs() != 1 && parts > 1 {
            return Path::Split(parts);
        }
        if parallel && self.deep() {
            return Path::SplitDepth;
        }
        if parallel && self.short_and_wide() {
            return Path::Flipped;
        }
        Path::Gemm
    }

    /// Runs the product by its [`Product::path`].
    ///
    /// # Safety
    /// As [`gemm_into`].
    unsafe fn run(self, parallel: bool) {
        // SAFETY (all three): the caller's
        match self.path(parallel) {
            Path::Transposing => return unsafe { self.transposing(parallel) },
            Path::Panels => return unsafe { self.panels(parallel) },
            Path::Split(parts) => return unsafe { self.split(parts) },
            Path::SplitDepth => return unsafe { self.split_depth() },
            Path::Flipped => return unsafe { self.flipped() },
            Path::Gemm => {}
        }
        let threads = if parallel {
            rayon::current_num_threads()
        } else {
            1
        };
        // SAFETY: the caller's
        unsafe { self.gemm(threads) }
    }

    /// The product on gemm alone, split by gemm over `threads` of the pool
    /// (its own split keeps every element's sum in one order).
    ///
    /// # Safety
    /// As [`gemm_into`].
    unsafe fn gemm(self, threads: usize) {
        let parallelism = match threads {
            n if n > 1 => Parallelism::Rayon(n),
            _ => Parallelism::None,
        };
        let (m, k, n) = self.mkn;
        let ([dst_rs, dst_cs], [lhs_rs, lhs_cs], [rhs_rs, rhs_cs]) =
            (self.dst_strides, self.lhs_strides, self.rhs_strides);
        #[cfg(target_arch = "x86_64")]
        if TypeId::of::<E>() == TypeId::of::<f32>() && microkernels::narrowed() {
            // SAFETY: the caller's; E is f32
            return unsafe {
                microkernels::gemm_on_fma(
                    (m, n, k),
                    self.dst as *mut f32,
                    [dst_cs, dst_rs],
                    self.accumulate,
                    self.lhs as *const f32,
                    [lhs_cs, lhs_rs],
                    self.rhs as *const f32,
                    [rhs_cs, rhs_rs],
                    parallelism,
                )
            };
        }
        // SAFETY: the caller's
        unsafe {
            gemm::gemm(
                m,
                n,
                k,
                self.dst,
                dst_cs,
                dst_rs,
                self.accumulate,
                self.lhs,
                lhs_cs,
                lhs_rs,
                self.rhs,
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
    }

    /// [`Product::run`] where gemm's left factor is row-major (gemm packs
    /// such a factor element by element, gathering across its rows): the
    /// factor is transposed block by block of its rows into a
    /// column-major scratch buffer, by cache-sized tiles, and each block
    /// multiplied by gemm from there. gemm packs a column-major factor
    /// into the same panels as a row-major one, so every element is the
    /// same sum in the same order either way (tested bit for bit; a
    /// training run's checkpoint is byte-identical with and without this
    /// path).
    ///
    /// This was every `dX += dY · Wᵀ` of a projection and the tied LM
    /// head's forward `x · Eᵀ`; those whose factor is the taller side now
    /// take [`Product::panels`], and this path keeps the encoder's `dX`
    /// (1,840 columns), `f64` and CPUs without gemm's vector kernels.
    /// Measured on the AMD EPYC Zen 4 (6 December 2026, 2 threads, `cargo
    /// bench --bench kernels`): the LM head forward 74.2 → 68.2 ms (−8.1%);
    /// in `march bench Baseline --products` the decoder's `dX` products
    /// from 156–170 to 177–194 GFLOP/s.
    ///
    /// # Safety
    /// As [`gemm_into`].
    unsafe fn transposing(self, parallel: bool) {
        let (_, k, _) = self.mkn;
        let rows = self.rows();
        let (factor, [factor_rs, _]) = self.factor();
        let per_block = (TRANSPOSE_BLOCK_BYTES / (k * std::mem::size_of::<E>()))
            .max(64)
            .div_ceil(64)
            * 64;
        let per_block = per_block.min(rows);
        let mut scratch: Vec<E> = Vec::with_capacity(per_block * k);
        let buf = SendPtr(scratch.as_mut_ptr());
        let src = SendPtr(factor as *mut E);
        let mut start = 0;
        while start < rows {
            let len = per_block.min(rows - start);
            // scratch[c·len + r] = factor[(start + r)·factor_rs + c], by
            // strips of columns (each task writes its own columns)
            let strip = |c0: usize| {
                let (src, buf) = (src.get() as *const E, buf.get());
                // SAFETY: rows start..start+len and columns c0..c0+STRIP of
                // the factor, the same columns of the scratch's len × k
                unsafe {
                    transpose::transpose(
                        (len, STRIP.min(k - c0)),
                        src.offset(start as isize * factor_rs + c0 as isize),
                        factor_rs,
                        buf.add(c0 * len),
                        len,
                    )
                }
            };
            if parallel {
                use rayon::prelude::*;
                (0..k.div_ceil(STRIP))
                    .into_par_iter()
                    .for_each(|s| strip(s * STRIP));
            } else {
                (0..k.div_ceil(STRIP)).for_each(|s| strip(s * STRIP));
            }
            // SAFETY: rows start..start+len, the factor's now column-major
            // in the scratch; on gemm itself (not `run`, which could split
            // a deep block's depth), so that the bits are gemm's own
            unsafe {
                self.rows_block(start, len)
                    .with_factor(buf.get(), len)
                    .gemm(if parallel {
                        rayon::current_num_threads()
                    } else {
                        1
                    })
            }
            start += len;
        }
    }

    /// [`Product::run`] of a narrow product with a strided left factor (see
    /// [`NARROW_ROWS`]), split by gemm's rows ([`Product::rows_block`]) into
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
    unsafe fn split(self, parts: usize) {
        let rows = self.rows();
        // block boundaries on whole 16-lane vectors
        let edge = |p: usize| (rows * p / parts).div_ceil(16) * 16;
        rayon::scope(|scope| {
            for p in 0..parts {
                let (start, end) = (edge(p).min(rows), edge(p + 1).min(rows));
                if start == end {
                    continue;
                }
                // SAFETY: block start..end of gemm's rows; the blocks'
                // destinations are disjoint
                scope.spawn(move |_| unsafe { self.rows_block(start, end - start).run(false) });
            }
        });
    }

    /// Whether the product is deep: its depth longer than either side of
    /// its (small) destination, each of [`DEPTH_PARTS`] parts at least
    /// [`DEPTH_PART_MIN`] deep, and the destination contiguous along one
    /// side — every weight gradient `dW += Xᵀ·dY` of a projection whose
    /// rows (batch × positions) outnumber its width: gemm 0.19 splits a
    /// product over its threads by the destination's blocks only, and a
    /// 128 × 128 or 512 × 512 destination has too few of them for two
    /// threads to share one depth block's packing and microkernels well.
    fn deep(&self) -> bool {
        let (m, k, n) = self.mkn;
        let [rs, cs] = self.dst_strides;
        k >= m.max(n)
            && k >= DEPTH_PARTS * DEPTH_PART_MIN
            && m * n <= DEPTH_DST_MAX
            && (rs == 1 || cs == 1)
    }

    /// [`Product::run`] of a [`Product::deep`] product: its depth split
    /// into [`DEPTH_PARTS`] blocks, each a product of its own run side by
    /// side on the pool (each on gemm over its share of the threads), the
    /// first summing into the destination, the others into scratch
    /// destinations; then the destination gets each scratch added in
    /// order. Every element is `((d + Σ₀) + Σ₁)`, `Σᵢ` the gemm sum of
    /// part `i`: a fixed order, the same on any number of threads (the
    /// parts are fixed, and gemm's own split does not reorder a sum), but
    /// not the unsplit product's bits.
    ///
    /// # Safety
    /// As [`gemm_into`].
    unsafe fn split_depth(self) {
        let (m, k, n) = self.mkn;
        let [rs, cs] = self.dst_strides;
        // the scratch destinations laid out as the destination's
        // contiguous side runs: (lines, line length, line stride)
        let (lines, len, stride, scratch_strides) = if rs == 1 {
            (n, m, cs, [1, m as isize])
        } else {
            (m, n, rs, [n as isize, 1])
        };
        let threads = rayon::current_num_threads();
        let per_part = threads.div_ceil(DEPTH_PARTS).max(1);
        let edge = |p: usize| (k * p / DEPTH_PARTS).div_ceil(16) * 16;
        let part = |p: usize| {
            let (start, end) = (edge(p).min(k), edge(p + 1).min(k));
            let mut block = self;
            block.mkn = (m, end - start, n);
            // SAFETY: depth start..end lies inside both factors
            unsafe {
                block.lhs = block.lhs.offset(start as isize * self.lhs_strides[1]);
                block.rhs = block.rhs.offset(start as isize * self.rhs_strides[0]);
            }
            block
        };
        let mut scratch: Vec<Vec<E>> = (1..DEPTH_PARTS)
            .map(|_| Vec::with_capacity(m * n))
            .collect();
        rayon::scope(|scope| {
            let first = part(0);
            // SAFETY: the caller's destination, written by this part alone
            scope.spawn(move |_| unsafe { first.gemm(per_part) });
            for (p, buf) in scratch.iter_mut().enumerate() {
                let mut block = part(p + 1);
                block.dst = buf.as_mut_ptr();
                block.dst_strides = scratch_strides;
                block.accumulate = false;
                // SAFETY: the scratch's m × n elements, this part's alone
                scope.spawn(move |_| unsafe { block.gemm(per_part) });
            }
        });
        for buf in &mut scratch {
            // SAFETY: its part's product, not accumulating, wrote all m × n
            // elements (as `written` relies on)
            unsafe { buf.set_len(m * n) };
        }
        let dst = SendPtr(self.dst);
        let add = |line: usize| {
            // SAFETY: line `line` of the destination, its own task's
            let d = unsafe {
                std::slice::from_raw_parts_mut(dst.get().offset(line as isize * stride), len)
            };
            for s in &scratch {
                let s = &s[line * len..(line + 1) * len];
                // (`d + 1·s` is `d + s`: the same bits, at the vector width)
                if let (Some(d), Some(s)) = (f32s_mut(&mut *d), f32s(s)) {
                    simd::axpy(d, 1.0, s);
                    continue;
                }
                for (d, &s) in d.iter_mut().zip(s) {
                    *d += s;
                }
            }
        };
        use rayon::prelude::*;
        (0..lines).into_par_iter().for_each(add);
    }
}

impl<E: Float> Product<E> {
    /// Whether the product is short and wide in gemm's orientation, with a
    /// strided right factor, and its destination contiguous: the tied LM
    /// head's weight gradient `dEᵀ += Xᵀ·dY`
    /// (model width × vocabulary, over batch × positions). gemm packs such a
    /// right factor (`dY`, the vocabulary wide) into panels that its few
    /// rows use once, where the product the other way round,
    /// `dE = dYᵀ·X`, runs tall and narrow like the projections.
    /// [`FLIP_MAX_ROWS`] says how short.
    fn short_and_wide(&self) -> bool {
        let g = self.in_gemm_orientation();
        let (m, _, n) = g.mkn;
        if m == 0 || m > FLIP_MAX_ROWS || n < FLIP_MIN_WIDTH * m || g.rhs_strides[0].abs() == 1 {
            return false;
        }
        g.dst_strides == [1, m as isize]
    }

    /// Whether every element of a [`Product::short_and_wide`] product's
    /// destination is zero, read by the pool's threads.
    ///
    /// # Safety
    /// As [`gemm_into`].
    unsafe fn zero_destination(&self) -> bool {
        use rayon::prelude::*;
        let (m, _, n) = self.mkn;
        // SAFETY: the destination's m × n contiguous elements (the caller's)
        let dst = unsafe { std::slice::from_raw_parts(self.dst as *const E, m * n) };
        dst.par_chunks(1 << 16).all(|c| match f32s(c) {
            Some(c) => simd::all_zero(c),
            None => c.iter().all(|v| v.is_zero()),
        })
    }

    /// [`Product::run`] of a [`Product::short_and_wide`] product whose
    /// destination is zero or not read (else on gemm as it is): computed
    /// the other way round, `dstᵀ = rhsᵀ · lhsᵀ` in gemm's orientation,
    /// block by block of the destination's columns into a scratch (each
    /// block on gemm itself over the pool's threads), each block then
    /// transposed by the 8 × 8 tiles and added into (or, not accumulating,
    /// written to) its columns of the destination. Every element is the
    /// same sum in the same order (gemm's depth blocks depend on the depth
    /// alone, and a zero destination added to gives what gemm's first
    /// block's read of it gives, signed zeros included): tested bit for bit
    /// against gemm's own product, and a training checkpoint is
    /// byte-identical with and without this path. Measured on two threads
    /// of an Intel Xeon (family 6 model 167, 7 December 2026, `march bench
    /// SmallBaseline --batch 16 --products`, alternated with the path off):
    /// the small model's `128 × 832 · 832 × 8192` 11.6 → 9.0 ms a step on
    /// gemm's `avx512f` kernels, 16.9 → 13.9 on its `fma` ones (`--gemm
    /// fma`); the seed scale's `512 × 416 · 416 × 30000` was no faster this
    /// way (85.6 → 89.4 ms a step on `fma`; alone, a scratch timing, 56.2 →
    /// 56.8 on `avx512f`), hence [`FLIP_MAX_ROWS`].
    ///
    /// # Safety
    /// As [`gemm_into`].
    unsafe fn flipped(self) {
        let g = self.in_gemm_orientation();
        let (m, k, n) = g.mkn;
        let threads = rayon::current_num_threads();
        // SAFETY (both): the caller's
        if g.accumulate && !unsafe { g.zero_destination() } {
            return unsafe { self.gemm(threads) };
        }
        // columns of the destination a block takes: a scratch of ~2 MiB
        let width = (FLIP_BLOCK_BYTES / (m * std::mem::size_of::<E>()))
            .max(64)
            .min(n);
        let mut scratch: Vec<E> = Vec::with_capacity(width * m);
        let (dst, buf) = (SendPtr(g.dst), SendPtr(scratch.as_mut_ptr()));
        let mut c0 = 0;
        while c0 < n {
            let w = width.min(n - c0);
            // S (w × m, column-major) = rhsᵀ[c0..c0 + w] (w × k) · lhsᵀ (k × m)
            let block = Product {
                mkn: (w, k, m),
                dst: buf.get(),
                dst_strides: [1, w as isize],
                accumulate: false,
                // SAFETY: column c0 of the right factor lies inside it
                lhs: unsafe { g.rhs.offset(c0 as isize * g.rhs_strides[1]) },
                lhs_strides: [g.rhs_strides[1], g.rhs_strides[0]],
                rhs: g.lhs,
                rhs_strides: [g.lhs_strides[1], g.lhs_strides[0]],
            };
            // SAFETY: the scratch holds w × m; on gemm itself (as
            // `transposing` does), so that the bits are gemm's own
            unsafe { block.gemm(threads) };
            // destination column c0 + j, row r (at (c0 + j)·m + r) gets
            // S(j, r) (at r·w + j): strips of columns, one task each
            let strip = |j0: usize| {
                let jn = FLIP_STRIP.min(w - j0);
                let mut t: Vec<E> = Vec::with_capacity(jn * m);
                // SAFETY: rows 0..m, columns j0..j0 + jn of Sᵀ (m × w, row
                // stride w) into t (jn columns of m); then this strip's own
                // columns of the destination
                unsafe {
                    transpose::transpose(
                        (m, jn),
                        buf.get().add(j0) as *const E,
                        w as isize,
                        t.as_mut_ptr(),
                        m,
                    );
                    t.set_len(jn * m);
                    let d = std::slice::from_raw_parts_mut(dst.get().add((c0 + j0) * m), jn * m);
                    if !g.accumulate {
                        d.copy_from_slice(&t);
                    } else if let (Some(d), Some(s)) = (f32s_mut(&mut *d), f32s(&t)) {
                        // (`d + 1·s` is `d + s`: the same bits, at the vector width)
                        simd::axpy(d, 1.0, s);
                    } else {
                        for (d, &s) in d.iter_mut().zip(&t) {
                            *d += s;
                        }
                    }
                }
            };
            use rayon::prelude::*;
            (0..w.div_ceil(FLIP_STRIP))
                .into_par_iter()
                .for_each(|s| strip(s * FLIP_STRIP));
            c0 += w;
        }
    }
}

/// The most rows (in gemm's orientation) of a product [`Product::flipped`]
/// computes the other way round: the small family's model width, not the
/// seed scale's 512 (measured, see there).
const FLIP_MAX_ROWS: usize = 128;

/// How many times its rows a [`Product::flipped`] product's columns
/// number at least.
const FLIP_MIN_WIDTH: usize = 16;

/// The bytes of one block of [`Product::flipped`]'s scratch.
const FLIP_BLOCK_BYTES: usize = 2 << 20;

/// Columns of one block one task of [`Product::flipped`] transposes and adds.
const FLIP_STRIP: usize = 64;

/// Parts of the depth [`Product::split_depth`] splits a deep product into:
/// fixed, not the pool's threads, so that its sums do not depend on them.
const DEPTH_PARTS: usize = 2;

/// The fewest depth elements (rows of both factors) of each part of
/// [`Product::split_depth`].
const DEPTH_PART_MIN: usize = 256;

/// The most elements of a destination [`Product::split_depth`] splits the
/// product of: each part past the first sums into a scratch copy of it.
const DEPTH_DST_MAX: usize = 1 << 20;

/// The fewest elements of a row-major left factor (in gemm's orientation)
/// that [`Product::transposing`] transposes rather than letting gemm pack
/// it: every projection's weight, and the keys and values of the
/// attention's per-head `Q·Kᵀ` and `dO·Vᵀ` over the encoder's 230
/// positions (230 × 64); not the decoder's 52 × 64 heads. Measured on the
/// AMD EPYC Zen 4 (6 December 2026, `cargo bench --bench kernels --
/// "attention_8x8x230x230/fused$"`, one encoder layer's attention forward
/// and backward): 22.5 ms with 2¹⁶ here (the weights alone), 21.4 (−5.4%)
/// with 2¹².
const TRANSPOSE_MIN: usize = 1 << 12;

/// The most bytes of a left factor [`Product::transposing`] transposes at a
/// time (a block that stays in the last-level cache for gemm to pack).
/// Measured for the LM head's forward (AMD EPYC Zen 4, 2 threads, medians
/// of 8): blocks of 1,024 embedding rows (2 MiB) 65.1 ms, 2,048 65.4,
/// 4,096 68.0, 8,192 69.5, all 30,000 at once 70.9, gemm packing the
/// embedding itself 74.6.
const TRANSPOSE_BLOCK_BYTES: usize = 2 << 20;

/// Columns of the factor one task of [`Product::transposing`] transposes.
const STRIP: usize = 64;

/// The widest destination (in gemm's column-major orientation: its
/// contiguous side) for which gemm 0.19 packs a strided left factor on the
/// calling thread alone before its threads start (its "prepack" path:
/// destinations of at most 2 × its row block, which is at most 8 × 64 rows
/// with AVX-512): `dX += dY · Wᵀ` of every projection from the model width.
const NARROW_ROWS: usize = 1024;

/// The fewest of those rows each thread's part of a split product gets (a
/// whole AVX-512 microkernel's height).
const NARROW_PART: usize = 64;

#[cfg(test)]
mod tests {
    use super::*;

    /// A starting destination of `n` elements for products that accumulate.
    fn destination(n: usize) -> Vec<f32> {
        (0..n).map(|i| ((i % 13) as f32 - 6.0) * 0.5).collect()
    }

    /// Where element `(i, j)` of a matrix with these strides lies.
    fn at([rs, cs]: [isize; 2], i: usize, j: usize) -> usize {
        i * rs as usize + j * cs as usize
    }

    /// The path of a tall row-major factor's product: [`Path::Panels`]
    /// where the CPU has gemm's vector kernels.
    fn panels_path() -> Path {
        match super::panels::available() {
            true => Path::Panels,
            false => Path::Transposing,
        }
    }

    /// A product of this shape and these strides with no matrices behind
    /// it: enough to ask its [`Product::path`].
    fn shaped(
        mkn: (usize, usize, usize),
        dst_strides: [isize; 2],
        lhs_strides: [isize; 2],
        rhs_strides: [isize; 2],
    ) -> Product<f32> {
        Product {
            mkn,
            dst: std::ptr::null_mut(),
            dst_strides,
            accumulate: true,
            lhs: std::ptr::null(),
            lhs_strides,
            rhs: std::ptr::null(),
            rhs_strides,
        }
    }

    /// The product `start [+]= lhs · rhs` (under these strides) run on one
    /// thread and on the pool's, each from a copy of `start`: (single,
    /// parallel).
    #[allow(clippy::too_many_arguments)]
    fn single_and_parallel(
        pool: &rayon::ThreadPool,
        mkn: (usize, usize, usize),
        start: &[f32],
        ds: [isize; 2],
        accumulate: bool,
        (lhs, ls): (&[f32], [isize; 2]),
        (rhs, rs): (&[f32], [isize; 2]),
    ) -> (Vec<f32>, Vec<f32>) {
        let run = |parallel: bool| {
            let mut dst = start.to_vec();
            // SAFETY: the caller's buffers hold m×k, k×n and m×n elements
            // under the given strides
            pool.install(|| unsafe {
                gemm_into(
                    mkn,
                    dst.as_mut_ptr(),
                    ds,
                    accumulate,
                    lhs.as_ptr(),
                    ls,
                    rhs.as_ptr(),
                    rs,
                    parallel,
                )
            });
            dst
        };
        (run(false), run(true))
    }

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
    /// is split over the threads by [`Product::split`] (factors too small
    /// for [`Product::transposing`]; the larger ones take that path): every
    /// element equals the single-threaded gemm's, bit for bit,
    /// accumulating, for both orientations of the destination and blocks
    /// that do not divide evenly.
    #[test]
    fn split_products_equal_whole_ones_bit_for_bit() {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(3)
            .build()
            .unwrap();
        // (m, k, n, dst, lhs, rhs strides) as `linear`'s gradients pass
        // them, and the path each takes on 3 threads
        let rm = |c: usize| [c as isize, 1];
        let cm = |r: usize| [1, r as isize];
        let panels = panels_path();
        for (m, k, n, ds, ls, rs, path) in [
            (230, 300, 512, rm(512), rm(300), cm(300), panels),
            (97, 520, 200, rm(200), rm(520), cm(520), panels),
            (512, 230, 300, cm(512), rm(230), rm(300), panels),
            (300, 230, 512, cm(300), rm(230), rm(512), Path::Transposing),
            (200, 16, 33, cm(200), rm(16), cm(16), Path::Split(3)),
            (230, 12, 150, rm(150), rm(12), cm(12), Path::Split(2)),
            (256, 10, 90, cm(256), rm(10), rm(90), Path::Split(3)),
        ] {
            let product = shaped((m, k, n), ds, ls, rs);
            assert_eq!(pool.install(|| product.path(true)), path, "{m}×{k}·{k}×{n}");
            let (lhs, rhs) = factors((m, k, n));
            let start = destination(m * n);
            let (whole, split) =
                single_and_parallel(&pool, (m, k, n), &start, ds, true, (&lhs, ls), (&rhs, rs));
            for (at, (a, b)) in whole.iter().zip(&split).enumerate() {
                assert_eq!(a.to_bits(), b.to_bits(), "{m}×{k}·{k}×{n} at {at}");
            }
            // and it is the product: one element checked in f64
            let (r, c) = (m / 2, n / 3);
            let want = start[at(ds, r, c)] as f64
                + (0..k)
                    .map(|j| lhs[at(ls, r, j)] as f64 * rhs[at(rs, j, c)] as f64)
                    .sum::<f64>();
            assert!((split[at(ds, r, c)] as f64 - want).abs() < 1e-3 * want.abs().max(1.0));
        }
    }

    /// A short, wide product with a strided right factor (in gemm's
    /// orientation: the tied LM head's weight gradient, as `linear` passes
    /// it) is computed the other way round by [`Product::flipped`]: every
    /// element equals the single-threaded gemm's, bit for bit, into a zero
    /// destination (signed zeros included: one element a sum of −0
    /// products, the destination starting at +0 or −0), into one that is
    /// not (gemm then, as it is) and not accumulating (a NaN left would
    /// show), over several scratch blocks with ragged strips and edges.
    #[test]
    fn short_wide_products_flipped_equal_gemms_bit_for_bit() {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(3)
            .build()
            .unwrap();
        for &(m, k, n) in &[(128, 832, 8192), (96, 300, 12_000), (37, 50, 2000)] {
            // dst (m × n) column-major, lhs Xᵀ column-major, rhs dY row-major
            let (ds, ls, rs) = ([1, m as isize], [1, m as isize], [n as isize, 1]);
            let product = shaped((m, k, n), ds, ls, rs);
            assert_eq!(product.path(true), Path::Flipped, "{m}×{k}·{k}×{n}");
            assert_ne!(product.path(false), Path::Flipped, "{m}×{k}·{k}×{n}");
            // element (0, 0) a sum of −0 products (gemm's sums start at
            // +0): row 0 of the left factor −0, column 0 of the right one
            // positive
            let (mut lhs, mut rhs) = factors((m, k, n));
            for j in 0..k {
                lhs[at(ls, 0, j)] = -0.0;
                rhs[at(rs, j, 0)] = rhs[at(rs, j, 0)].abs() + 0.01;
            }
            let starts: [(bool, Vec<f32>); 4] = [
                (true, vec![0.0; m * n]),
                (true, vec![-0.0; m * n]),
                (true, destination(m * n)),
                (false, vec![f32::NAN; m * n]),
            ];
            for (accumulate, start) in starts {
                let (whole, flipped) = single_and_parallel(
                    &pool,
                    (m, k, n),
                    &start,
                    ds,
                    accumulate,
                    (&lhs, ls),
                    (&rhs, rs),
                );
                for (at, (a, b)) in whole.iter().zip(&flipped).enumerate() {
                    assert_eq!(
                        a.to_bits(),
                        b.to_bits(),
                        "{m}×{k}·{k}×{n}, accumulate {accumulate}, at {at}"
                    );
                }
            }
        }
    }

    /// A deep product (`dW += Xᵀ·dY` of a projection over many rows) is
    /// split by its depth ([`Product::split_depth`]): the same bits on 1,
    /// 2 and 3 threads, accumulating or not, for both orientations of the
    /// destination and depths that do not divide evenly; within f32
    /// rounding of the f64 product; and products that are not deep (the
    /// forward, `dX`, a shallow `dW`, the attention's per-head products run
    /// on one thread) keep their paths.
    #[test]
    fn deep_products_split_their_depth_the_same_on_any_threads() {
        let rm = |c: usize| [c as isize, 1];
        let cm = |r: usize| [1, r as isize];
        for (m, k, n, ds, ls, rs, parallel, path) in [
            // a 128-wide projection's dW over 16 × 230 rows, as `linear` passes it
            (
                128,
                3680,
                128,
                cm(128),
                cm(128),
                rm(128),
                true,
                Path::SplitDepth,
            ),
            (96, 1001, 80, rm(80), cm(96), rm(80), true, Path::SplitDepth),
            (
                64,
                700,
                200,
                cm(64),
                cm(64),
                rm(200),
                true,
                Path::SplitDepth,
            ),
            // not deep: shallower than the destination is wide, too
            // shallow to split, one thread's task
            (512, 416, 512, cm(512), cm(512), rm(512), true, Path::Gemm),
            (128, 500, 128, cm(128), cm(128), rm(128), true, Path::Gemm),
            (128, 3680, 128, cm(128), cm(128), rm(128), false, Path::Gemm),
        ] {
            let product = shaped((m, k, n), ds, ls, rs);
            assert_eq!(product.path(parallel), path, "{m}×{k}·{k}×{n}");
            if path != Path::SplitDepth {
                continue;
            }
            let (lhs, rhs) = factors((m, k, n));
            let start = destination(m * n);
            for accumulate in [true, false] {
                let run = |threads: usize| {
                    let pool = rayon::ThreadPoolBuilder::new()
                        .num_threads(threads)
                        .build()
                        .unwrap();
                    let mut dst = if accumulate {
                        start.clone()
                    } else {
                        vec![f32::NAN; m * n]
                    };
                    // SAFETY: the buffers hold m×k, k×n and m×n elements
                    // under the given strides
                    pool.install(|| unsafe {
                        gemm_into(
                            (m, k, n),
                            dst.as_mut_ptr(),
                            ds,
                            accumulate,
                            lhs.as_ptr(),
                            ls,
                            rhs.as_ptr(),
                            rs,
                            true,
                        )
                    });
                    dst
                };
                let one = run(1);
                for threads in [2, 3] {
                    let other = run(threads);
                    for (i, (a, b)) in one.iter().zip(&other).enumerate() {
                        assert_eq!(
                            a.to_bits(),
                            b.to_bits(),
                            "{m}×{k}·{k}×{n} at {i}, {threads} threads"
                        );
                    }
                }
                for r in 0..m {
                    for c in 0..n {
                        let base = if accumulate {
                            start[at(ds, r, c)] as f64
                        } else {
                            0.0
                        };
                        let want = base
                            + (0..k)
                                .map(|j| lhs[at(ls, r, j)] as f64 * rhs[at(rs, j, c)] as f64)
                                .sum::<f64>();
                        let got = one[at(ds, r, c)] as f64;
                        assert!(
                            (got - want).abs() <= 1e-4 * want.abs().max(1.0),
                            "{m}×{k}·{k}×{n} at ({r}, {c}): {got} against {want}"
                        );
                    }
                }
            }
        }
    }

    /// A product whose left factor (in gemm's orientation) is row-major
    /// goes through [`Product::panels`] where that factor has at least as
    /// many rows as the destination has columns, else through
    /// [`Product::transposing`]: every element equals gemm's own product
    /// of the untransposed factor, bit for bit, accumulating or not (then
    /// reading nothing of the destination), in parallel and not, for both
    /// orientations of the destination, factors of several blocks and
    /// panels (the last ones short: a last row panel of 4 rows, a last
    /// column panel of 4 columns), depths of several of gemm's depth
    /// blocks, the right factor read in place and packed; as the model
    /// passes them (the LM head's forward, every projection's `dX += dY ·
    /// Wᵀ`).
    #[test]
    fn transposed_factors_give_gemms_own_bits() {
        let rm = |c: usize| [c as isize, 1];
        let cm = |r: usize| [1, r as isize];
        let panels = panels_path();
        // (m, k, n, dst, lhs, rhs strides, path): rhs row-major seen
        // transposed under a row-major destination, and lhs row-major under
        // a column-major one
        for (m, k, n, ds, ls, rs, path) in [
            (52, 300, 2500, rm(2500), rm(300), cm(300), panels),
            (33, 1100, 700, rm(700), rm(1100), cm(1100), panels),
            // the right factor's depth strided: packed, as gemm would
            (2300, 250, 40, cm(2300), rm(250), rm(40), panels),
            (130, 520, 129, cm(130), rm(520), cm(520), panels),
            (100, 300, 700, cm(100), rm(300), rm(700), Path::Transposing),
            (700, 300, 90, rm(90), rm(300), cm(300), Path::Transposing),
        ] {
            let product = shaped((m, k, n), ds, ls, rs);
            assert_eq!(product.path(true), path, "{m}×{k}·{k}×{n}");
            assert_eq!(product.path(false), path, "{m}×{k}·{k}×{n}");
            let (lhs, rhs) = factors((m, k, n));
            for accumulate in [true, false] {
                // a product that does not accumulate reads nothing of its
                // destination: NaN there would show
                let start = match accumulate {
                    true => destination(m * n),
                    false => vec![f32::NAN; m * n],
                };
                let mut want = start.clone();
                // SAFETY: the buffers hold m×k, k×n and m×n elements under
                // the given strides
                unsafe {
                    gemm::gemm(
                        m,
                        n,
                        k,
                        want.as_mut_ptr(),
                        ds[1],
                        ds[0],
                        accumulate,
                        lhs.as_ptr(),
                        ls[1],
                        ls[0],
                        rhs.as_ptr(),
                        rs[1],
                        rs[0],
                        1.0,
                        1.0,
                        false,
                        false,
                        false,
                        Parallelism::None,
                    )
                };
                assert!(want.iter().all(|x| x.is_finite()));
                for parallel in [false, true] {
                    let mut got = start.clone();
                    // SAFETY: as above
                    unsafe {
                        gemm_into(
                            (m, k, n),
                            got.as_mut_ptr(),
                            ds,
                            accumulate,
                            lhs.as_ptr(),
                            ls,
                            rhs.as_ptr(),
                            rs,
                            parallel,
                        )
                    };
                    for (at, (a, b)) in want.iter().zip(&got).enumerate() {
                        assert_eq!(a.to_bits(), b.to_bits(), "{m}×{k}·{k}×{n} at {at}");
                    }
                }
            }
        }
    }
}
