//! f32 products whose left factor (in gemm's orientation) is row-major and
//! at least as tall as the destination is wide, packed straight into gemm
//! 0.19's panels and multiplied by gemm's own microkernels: the tied LM
//! head's forward `x · Eᵀ` and the decoder's `dX += dY · Wᵀ`.
//!
//! gemm packs such a factor element by element, so [`super::product`]
//! first transposed it into a column-major scratch buffer, which gemm then
//! packed again, each of two threads all of it where gemm splits the
//! destination by columns. Here the factor's rows are transposed once,
//! tile by tile, straight into the `MR`-row panels the microkernel reads,
//! and the threads split the destination by those rows: each packs its own
//! part of the long factor and reads (or, by gemm's own rule, packs) all of
//! the short one. That pays where the left factor is the taller side (the
//! LM head's forward: 30,000 rows against 416 columns; the decoder's
//! gradients: 512 or 2,048 against 416); where the destination's columns
//! outnumber the factor's rows (the encoder's 1,840 against 512), gemm's
//! split, which packs the right factor once for all threads, is faster
//! ([`super::product`] chooses).
//!
//! Every element is the sum gemm computes, bit for bit: the same depth
//! blocks (gemm's `kc`, which depends on the depth alone), the same
//! microkernels (each element one FMA chain over a block, in order), added
//! to the destination block after block as gemm adds them (tested against
//! gemm in `product.rs`).

use gemm_common::cache::kernel_params;
use gemm_common::microkernel::MicroKernelFn;
use rayon::prelude::*;

use super::microkernels::{self, Family};
use super::transpose;

/// gemm's f32 microkernels for one instruction set: `UKR[v − 1][c − 1]`
/// multiplies `v` vectors of rows by `c` columns.
struct Kernels {
    /// f32 lanes of a vector.
    lanes: usize,
    /// Vectors of rows of the largest kernel: its rows `MR` = `vectors · lanes`.
    vectors: usize,
    /// Columns of the largest kernel (`NR`).
    cols: usize,
    ukr: &'static [[MicroKernelFn<f32>; 6]],
}

/// gemm's AVX-512 kernels: 64 rows (4 vectors of 16) by 6 columns.
#[cfg(target_arch = "x86_64")]
static AVX512: Kernels = Kernels {
    lanes: 16,
    vectors: gemm_f32::microkernel::avx512f::f32::MR_DIV_N,
    cols: gemm_f32::microkernel::avx512f::f32::NR,
    ukr: &gemm_f32::microkernel::avx512f::f32::UKR,
};

/// gemm's AVX2 + FMA kernels: 16 rows (2 vectors of 8) by 6 columns.
#[cfg(target_arch = "x86_64")]
static FMA: Kernels = Kernels {
    lanes: 8,
    vectors: gemm_f32::microkernel::fma::f32::MR_DIV_N,
    cols: gemm_f32::microkernel::fma::f32::NR,
    ukr: &gemm_f32::microkernel::fma::f32::UKR,
};

impl Kernels {
    /// The kernels march's products run ([`microkernels::chosen`]: gemm
    /// 0.19's own choice, by `avx512f`, then `fma`, unless narrowed), where
    /// they are vector ones.
    fn detected() -> Option<&'static Kernels> {
        #[cfg(target_arch = "x86_64")]
        match microkernels::chosen() {
            Family::Avx512f => return Some(&AVX512),
            Family::Fma => return Some(&FMA),
            Family::Scalar => {}
        }
        None
    }

    fn mr(&self) -> usize {
        self.vectors * self.lanes
    }
}

/// Whether [`RowMajor::run`] runs on this CPU.
pub(crate) fn available() -> bool {
    Kernels::detected().is_some()
}

/// One product `dst (m × n) [+]= a (m × k) · b (k × n)` in gemm's
/// orientation: `a` row-major with `a_rs` between rows, `b` and `dst` with
/// any `[row stride, column stride]` (`dst` fastest with unit row stride:
/// gemm's column-major destination).
#[derive(Clone, Copy)]
pub(crate) struct RowMajor {
    pub mkn: (usize, usize, usize),
    pub dst: *mut f32,
    pub dst_strides: [isize; 2],
    pub accumulate: bool,
    pub a: *const f32,
    pub a_rs: isize,
    pub b: *const f32,
    pub b_strides: [isize; 2],
}

// SAFETY: the threads sharing a product write disjoint rows of its
// destination and only read its factors
unsafe impl Send for RowMajor {}
unsafe impl Sync for RowMajor {}

impl RowMajor {
    /// The product, its rows split over `threads` of the rayon pool.
    ///
    /// # Safety
    /// Every pointer must address the whole matrix its strides describe,
    /// `dst` must not alias `a` or `b`, and [`available`] must hold.
    pub unsafe fn run(self, threads: usize) {
        let ker = Kernels::detected().expect("vector microkernels");
        // SAFETY: the caller's; the CPU runs gemm's choice of kernels
        unsafe { self.run_on(ker, threads) }
    }

    /// [`RowMajor::run`] on the kernels `ker`.
    ///
    /// # Safety
    /// As [`RowMajor::run`]; the CPU must run `ker`.
    unsafe fn run_on(self, ker: &Kernels, threads: usize) {
        let (m, k, n) = self.mkn;
        let (mr, nr) = (ker.mr(), ker.cols);
        if m == 0 || n == 0 {
            return;
        }
        // gemm's depth blocks (`kc` depends on the depth alone, but for
        // its small products) and its row block for the L2 cache
        let params = kernel_params(m, n, k, mr, nr, size_of::<f32>());
        let kc = match m <= 64 && n <= 64 {
            true => k.min(512),
            false => params.kc,
        }
        .max(1);
        let mc = params.mc.max(mr) / mr * mr;
        // whole panels of rows to each thread
        let panels = m.div_ceil(mr);
        let parts = threads.clamp(1, panels);
        let edge = |p: usize| (panels * p / parts * mr).min(m);
        let part = |p: usize| {
            let rows = edge(p)..edge(p + 1);
            if !rows.is_empty() {
                // SAFETY: the caller's matrices; these rows of `dst` are
                // this part's own
                unsafe { self.rows(ker, (kc, mc), rows) };
            }
        };
        if parts == 1 {
            part(0);
        } else {
            (0..parts).into_par_iter().for_each(part);
        }
    }

    /// Rows `rows` of the destination (all its columns), over the whole
    /// depth, on the calling thread: for each depth block, the right
    /// factor's block packed into `NR`-column panels where gemm would pack
    /// it (else read in place), then for each `mc` rows their left factor
    /// transposed into `MR`-row panels, and every (row panel, column panel)
    /// tile multiplied by the microkernel of its size.
    ///
    /// # Safety
    /// As [`RowMajor::run_on`], and no other thread may write these rows.
    unsafe fn rows(self, ker: &Kernels, (kc, mc): (usize, usize), rows: std::ops::Range<usize>) {
        let RowMajor {
            mkn: (_, k, n),
            dst,
            dst_strides: [d_rs, d_cs],
            accumulate,
            a,
            a_rs,
            b,
            b_strides: [b_rs, b_cs],
        } = self;
        let (mr, nr) = (ker.mr(), ker.cols);
        let n_panels = n.div_ceil(nr);
        let kb_max = kc.min(k);
        // gemm's rule for packing its right factor, for this thread's rows
        let pack_b = match b_rs.unsigned_abs() {
            1 => rows.len() > gemm_common::gemm::get_rhs_packing_threshold() * mr,
            _ => rows.len() > 2 * mr,
        };
        let a_len = mc.min(rows.len().div_ceil(mr) * mr) * kb_max;
        let b_len = if pack_b { n_panels * nr * kb_max } else { 0 };
        SCRATCH.with(|scratch| {
            let (packed_a, packed_b) = &mut *scratch.borrow_mut();
            // grown (and zeroed) only when a larger product comes
            if packed_a.len() < a_len {
                packed_a.resize(a_len, 0.0);
            }
            if packed_b.len() < b_len {
                packed_b.resize(b_len, 0.0);
            }
            let mut k0 = 0;
            while k0 < k {
                let kb = kc.min(k - k0);
                let b_block = b.wrapping_offset(k0 as isize * b_rs);
                if pack_b {
                    // SAFETY: the block's kb rows of `b`, into n_panels panels
                    unsafe { pack_columns((kb, n), b_block, (b_rs, b_cs), nr, packed_b) };
                }
                // column panel j's first element, its depth and column strides
                let rhs = |j: usize| -> (*const f32, isize, isize) {
                    match pack_b {
                        true => (packed_b[j * nr * kb..].as_ptr(), nr as isize, 1),
                        false => (
                            b_block.wrapping_offset((j * nr) as isize * b_cs),
                            b_rs,
                            b_cs,
                        ),
                    }
                };
                // the first block of a product that does not accumulate writes
                // the destination without reading it (gemm's α = 0)
                let alpha_status = if k0 == 0 && !accumulate { 0 } else { 1 };
                let mut m0 = rows.start;
                while m0 < rows.end {
                    let mb = mc.min(rows.end - m0);
                    let row_panels = mb.div_ceil(mr);
                    for i in 0..row_panels {
                        let (r0, len) = (m0 + i * mr, mr.min(mb - i * mr));
                        let panel = &mut packed_a[i * mr * kb..(i + 1) * mr * kb];
                        // SAFETY: rows r0..r0 + len and depth k0..k0 + kb of
                        // `a`, into a panel of kb columns of `mr` rows
                        unsafe {
                            transpose::transpose(
                                (len, kb),
                                a.offset(r0 as isize * a_rs + k0 as isize),
                                a_rs,
                                panel.as_mut_ptr(),
                                mr,
                            )
                        };
                        if len < mr {
                            // the rows the last vector loads past the matrix
                            let vec_rows = len.div_ceil(ker.lanes) * ker.lanes;
                            for col in panel.chunks_exact_mut(mr) {
                                col[len..vec_rows].fill(0.0);
                            }
                        }
                    }
                    for j in 0..n_panels {
                        let width = nr.min(n - j * nr);
                        let (rhs, rhs_rs, rhs_cs) = rhs(j);
                        for i in 0..row_panels {
                            let (r0, len) = (m0 + i * mr, mr.min(mb - i * mr));
                            let ukr = ker.ukr[len.div_ceil(ker.lanes) - 1][width - 1];
                            // SAFETY: tile (r0.., j·nr..) of `dst`, this
                            // thread's rows; the left panel holds kb columns of
                            // mr rows, the right one kb rows of `width` columns
                            unsafe {
                                ukr(
                                    len,
                                    width,
                                    kb,
                                    dst.offset(r0 as isize * d_rs + (j * nr) as isize * d_cs),
                                    packed_a[i * mr * kb..].as_ptr(),
                                    rhs,
                                    d_cs,
                                    d_rs,
                                    mr as isize,
                                    rhs_rs,
                                    rhs_cs,
                                    1.0,
                                    1.0,
                                    alpha_status,
                                    false,
                                    false,
                                    false,
                                    std::ptr::null(),
                                )
                            };
                        }
                    }
                    m0 += mb;
                }
                k0 += kb;
            }
        })
    }
}

thread_local! {
    /// Each thread's packed panels (left, right), kept for its next product.
    static SCRATCH: std::cell::RefCell<(Vec<f32>, Vec<f32>)> = const {
        std::cell::RefCell::new((Vec::new(), Vec::new()))
    };
}

/// The `kb × n` block of the right factor at `b` (strides `(b_rs, b_cs)`)
/// into `nr`-column panels: panel `j`'s depth `d` at
/// `packed[j·nr·kb + d·nr ..][..nr]`, the last panel's missing columns zero.
///
/// # Safety
/// `b` must address the block's every element.
unsafe fn pack_columns(
    (kb, n): (usize, usize),
    b: *const f32,
    (b_rs, b_cs): (isize, isize),
    nr: usize,
    packed: &mut [f32],
) {
    for (j, panel) in packed
        .chunks_exact_mut(nr * kb)
        .take(n.div_ceil(nr))
        .enumerate()
    {
        let c0 = j * nr;
        let width = nr.min(n - c0);
        for c in 0..nr {
            if c >= width {
                for d in 0..kb {
                    panel[d * nr + c] = 0.0;
                }
                continue;
            }
            let col = (c0 + c) as isize * b_cs;
            for d in 0..kb {
                // SAFETY: element (d, c0 + c) of the block
                panel[d * nr + c] = unsafe { *b.offset(d as isize * b_rs + col) };
            }
        }
    }
}

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::{Kernels, RowMajor, AVX512, FMA};

    /// Every set of kernels this CPU runs (the AVX2 + FMA ones that an AMD
    /// Zen 3 gets, here too where the CPU has AVX-512) multiplies a
    /// row-major factor as the `f64` product does, to f32 rounding: partial
    /// row and column panels, several depth blocks, the right factor packed
    /// (its depth strided) and read in place, accumulating into the
    /// destination and writing it (a NaN left there would show), on one
    /// thread and three.
    #[test]
    fn each_kernel_set_computes_the_product() {
        let mut sets: Vec<&Kernels> = Vec::new();
        if std::arch::is_x86_feature_detected!("fma") {
            sets.push(&FMA);
        }
        if std::arch::is_x86_feature_detected!("avx512f") {
            sets.push(&AVX512);
        }
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(3)
            .build()
            .unwrap();
        // (m, k, n, right factor's depth stride is 1)
        for &(m, k, n, b_depth_contiguous) in &[
            (100, 37, 13, true),
            (300, 1100, 29, true),
            (67, 700, 50, false),
            (1, 9, 1, false),
        ] {
            let a: Vec<f32> = (0..m * k)
                .map(|i| ((i * 7 % 23) as f32 - 11.0) * 0.03)
                .collect();
            let b: Vec<f32> = (0..k * n)
                .map(|i| ((i * 5 % 19) as f32 - 9.0) * 0.05)
                .collect();
            // b as a k × n matrix: column-major (depth contiguous) or row-major
            let (b_rs, b_cs) = match b_depth_contiguous {
                true => (1, k as isize),
                false => (n as isize, 1),
            };
            let b_at = |d: usize, j: usize| b[d * b_rs as usize + j * b_cs as usize] as f64;
            let start: Vec<f32> = (0..m * n).map(|i| (i % 5) as f32 - 2.0).collect();
            for ker in &sets {
                for accumulate in [true, false] {
                    for threads in [1, 3] {
                        // the destination column-major (gemm's orientation)
                        let mut dst = match accumulate {
                            true => start.clone(),
                            false => vec![f32::NAN; m * n],
                        };
                        // SAFETY: the buffers hold m×k, k×n and m×n elements
                        // under these strides; the CPU runs `ker`
                        let product = RowMajor {
                            mkn: (m, k, n),
                            dst: dst.as_mut_ptr(),
                            dst_strides: [1, m as isize],
                            accumulate,
                            a: a.as_ptr(),
                            a_rs: k as isize,
                            b: b.as_ptr(),
                            b_strides: [b_rs, b_cs],
                        };
                        pool.install(|| unsafe { product.run_on(ker, threads) });
                        for i in 0..m {
                            for j in 0..n {
                                let dot: f64 =
                                    (0..k).map(|d| a[i * k + d] as f64 * b_at(d, j)).sum();
                                let want = dot
                                    + if accumulate {
                                        start[i + j * m] as f64
                                    } else {
                                        0.0
                                    };
                                let got = dst[i + j * m] as f64;
                                assert!(
                                    (got - want).abs()
                                        <= 1e-5 * (1.0 + want.abs()) * (k as f64).sqrt(),
                                    "{} lanes, {m}×{k}·{k}×{n} ({i}, {j}): {got} against {want}",
                                    ker.lanes
                                );
                            }
                        }
                    }
                }
            }
        }
    }
}
