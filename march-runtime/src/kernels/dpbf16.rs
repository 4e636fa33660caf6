//! Matrix products in bf16 on AVX-512 BF16 (`VDPBF16PS`: AMD Zen 4 and
//! later, Intel Cooper Lake and Sapphire Rapids): the function [`amx`](super::amx)
//! computes, for CPUs without the tile unit. `dst (m × n) [+]= lhs (m × k) ·
//! rhs (k × n)` with both factors rounded to bf16 (nearest, ties to even)
//! and the products summed in `f32`.
//!
//! One `VDPBF16PS` multiplies 16 pairs of bf16 by 16 pairs and adds each
//! pair's two products to one of 16 `f32` lanes: 64 flops, where an `f32`
//! FMA on 16 lanes does 32. The products of two bf16 are exact in `f32`, so
//! each addition rounds once, as an FMA's does; only the factors lose
//! precision (8 significant bits).
//!
//! Layout. The factors are packed as for AMX (`amx::pack_lhs`,
//! `amx::pack_rhs`): the left one in row tiles of 16 × 32 bf16, the right
//! one in column tiles of pair rows (16 `u32`, each two consecutive `k` of
//! one column: one register). A left factor with contiguous columns is
//! packed pair-major instead, the way the right one is (the kernel reads
//! either through strides). The microkernel holds 8 rows × 32 columns of
//! sums in 16 registers; for each pair of `k` it loads two pair rows of the
//! right factor and broadcasts each row's pair of the left one. A task
//! takes 64 rows against a group of 256 columns, over `k` in chunks of 512:
//! the group's chunk of the right factor stays in L2 while the rows pass.

#![cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]

use std::sync::OnceLock;

use rayon::prelude::*;

use super::amx::{pack_lhs, pack_rhs, Out, Strided, KT, T, TILE};

/// Rows of sums one microkernel call holds (two calls per row tile).
const ROWS: usize = 8;
/// Column blocks (of 32 = two column tiles) per task.
const GROUP: usize = 8;
/// `k` tiles (of 32) per pass over a task's group: 512 of `k`.
const K_CHUNK: usize = 16;
/// Row tiles (of 16) per task: 64 rows share each chunk of the group.
const ROW_TILES: usize = 4;

/// Whether this CPU runs `VDPBF16PS` (AVX-512 F and BF16).
pub fn available() -> bool {
    static OK: OnceLock<bool> = OnceLock::new();
    *OK.get_or_init(|| {
        #[cfg(target_arch = "x86_64")]
        {
            std::arch::is_x86_feature_detected!("avx512f")
                && std::arch::is_x86_feature_detected!("avx512bf16")
        }
        #[cfg(not(target_arch = "x86_64"))]
        false
    })
}

/// `dst (m × n) [+]= bf16(lhs) · bf16(rhs)`, `f32` sums. `dst` is given by
/// its pointer and `[row stride, column stride]`; not read unless
/// `accumulate`.
///
/// # Safety
/// [`available`] must hold; every pointer must address the whole matrix
/// its strides describe, and `dst` must not alias `lhs` or `rhs`.
#[cfg(target_arch = "x86_64")]
pub unsafe fn matmul(
    (m, k, n): (usize, usize, usize),
    dst: *mut f32,
    [dst_rs, dst_cs]: [isize; 2],
    accumulate: bool,
    lhs: Strided,
    rhs: Strided,
) {
    debug_assert!(available());
    if m == 0 || n == 0 {
        return;
    }
    let kbs = k.div_ceil(KT).max(1);
    let m_tiles = m.div_ceil(T);
    // column tiles in pairs: a microkernel's 32 columns
    let n_tiles = 2 * n.div_ceil(2 * T);
    // a left factor with contiguous columns (a weight's gradient: Xᵀ) is
    // packed as the right one is, pairs of its rows' k side by side
    // (element (r, q) of a tile at u32 q·16 + r): rows of k interleaved in
    // one pass, where AMX's row layout would scatter every element
    let pair_major = lhs.rs == 1 && lhs.cs != 1 && lhs.cs > 0;
    let (a_pairs, a_rows);
    let a = Pairs(if pair_major {
        let t = Strided {
            ptr: lhs.ptr,
            rs: lhs.cs,
            cs: lhs.rs,
        };
        a_pairs = pack_rhs(t, k, m, m_tiles, kbs);
        a_pairs.as_ptr()
    } else {
        // the row layout's bf16 as u32 pairs (read unaligned)
        a_rows = pack_lhs(lhs, m, k, m_tiles, kbs);
        a_rows.as_ptr() as *const u32
    });
    let b = pack_rhs(rhs, k, n, n_tiles, kbs);
    let blocks = n_tiles / 2;
    let groups = blocks.div_ceil(GROUP);
    let row_runs = m_tiles.div_ceil(ROW_TILES);
    // the kernel for the left layout, and the u32 step between its rows
    let (kernel, row_step): (Kernel, usize) = if pair_major {
        (kernel::<1, T>, 1)
    } else {
        (kernel::<T, 1>, T)
    };
    let out = Out(dst, dst_rs, dst_cs);
    let b = &b[..];
    (0..row_runs * groups).into_par_iter().for_each_init(
        || vec![0f32; ROW_TILES * T * GROUP * 2 * T],
        |sums, task| {
            // consecutive tasks share a group: its panels stay in cache
            let (g, run) = (task / row_runs, task % row_runs);
            let (nb0, nb1) = (g * GROUP, ((g + 1) * GROUP).min(blocks));
            let (mt0, mt1) = (run * ROW_TILES, ((run + 1) * ROW_TILES).min(m_tiles));
            let width = (nb1 - nb0) * 2 * T;
            let sums = &mut sums[..(mt1 - mt0) * T * width];
            sums.fill(0.0);
            for kb0 in (0..kbs).step_by(K_CHUNK) {
                let kb1 = (kb0 + K_CHUNK).min(kbs);
                // the group's chunk of the right factor (512 × 256 bf16)
                // serves every row tile of the run from L2
                for mt in mt0..mt1 {
                    for nb in nb0..nb1 {
                        for half in 0..T / ROWS {
                            let row = (mt - mt0) * T + half * ROWS;
                            // SAFETY: the CPU has AVX-512 BF16 (caller);
                            // row tile mt and column tiles 2nb, 2nb + 1 lie
                            // inside the packed factors, k tiles kb0..kb1
                            // inside each; `sums` holds the run's rows of
                            // `width` columns
                            unsafe {
                                kernel(
                                    a.at(mt * kbs * P + half * ROWS * row_step),
                                    b.as_ptr().add(2 * nb * kbs * P),
                                    b.as_ptr().add((2 * nb + 1) * kbs * P),
                                    kb0..kb1,
                                    sums.as_mut_ptr().add(row * width + (nb - nb0) * 2 * T),
                                    width,
                                );
                            }
                        }
                    }
                }
            }
            let (i0, j0) = (mt0 * T, nb0 * 2 * T);
            let cols = width.min(n - j0);
            for r in 0..((mt1 - mt0) * T).min(m - i0) {
                // SAFETY: row i0 + r, columns j0..j0 + cols, are inside
                // m × n; this task alone writes them
                unsafe { out.put_row(i0 + r, j0, &sums[r * width..r * width + cols], accumulate) };
            }
        },
    );
}

/// AVX-512 BF16 exists on x86-64 only: [`available`] is false elsewhere.
///
/// # Safety
/// Never to be called (see [`available`]).
#[cfg(not(target_arch = "x86_64"))]
pub unsafe fn matmul(
    _: (usize, usize, usize),
    _: *mut f32,
    _: [isize; 2],
    _: bool,
    _: Strided,
    _: Strided,
) {
    unreachable!("VDPBF16PS products need x86-64, where `dpbf16::available` holds")
}

/// u32 pairs per tile.
const P: usize = TILE / 2;

/// The packed left factor, shared read-only by the tasks.
#[derive(Clone, Copy)]
struct Pairs(*const u32);
// SAFETY: read-only while the tasks run; its buffer outlives them
unsafe impl Send for Pairs {}
unsafe impl Sync for Pairs {}

impl Pairs {
    /// The address `i` pairs in.
    ///
    /// # Safety
    /// Inside the packed factor.
    unsafe fn at(self, i: usize) -> *const u32 {
        self.0.add(i)
    }
}

#[cfg(target_arch = "x86_64")]
type Kernel =
    unsafe fn(*const u32, *const u32, *const u32, std::ops::Range<usize>, *mut f32, usize);

/// `sums (8 × 32, row stride ldc) += a · b` over `k` tiles `kbs`: `a` the
/// first of 8 rows of the left factor's tiles, row `r`'s pair `q` of tile
/// `kb` at u32 `kb·P + r·ROW + q·PAIR` (the row layout: `ROW` 16, `PAIR`
/// 1; pair-major: 1, 16); `b0`, `b1` two column tiles (pair row `p` of the
/// whole `k` at `16p`).
///
/// # Safety
/// The CPU has AVX-512 F and BF16; the pointers address the tiles and
/// sums described.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bf16")]
unsafe fn kernel<const ROW: usize, const PAIR: usize>(
    a: *const u32,
    b0: *const u32,
    b1: *const u32,
    kbs: std::ops::Range<usize>,
    sums: *mut f32,
    ldc: usize,
) {
    use std::arch::x86_64::*;
    let bh = |x: __m512i| -> __m512bh { std::mem::transmute(x) };
    let mut acc = [[_mm512_setzero_ps(); 2]; ROWS];
    for (r, acc) in acc.iter_mut().enumerate() {
        acc[0] = _mm512_loadu_ps(sums.add(r * ldc));
        acc[1] = _mm512_loadu_ps(sums.add(r * ldc + T));
    }
    for kb in kbs {
        let at = a.add(kb * P);
        let (bt0, bt1) = (b0.add(kb * P), b1.add(kb * P));
        for q in 0..KT / 2 {
            let x0 = bh(_mm512_loadu_si512(bt0.add(q * T) as *const _));
            let x1 = bh(_mm512_loadu_si512(bt1.add(q * T) as *const _));
            for (r, acc) in acc.iter_mut().enumerate() {
                // row r's pair q: elements 2q (low half) and 2q + 1
                let w = at.add(r * ROW + q * PAIR).read_unaligned();
                let w = bh(_mm512_set1_epi32(w as i32));
                acc[0] = _mm512_dpbf16_ps(acc[0], w, x0);
                acc[1] = _mm512_dpbf16_ps(acc[1], w, x1);
            }
        }
    }
    for (r, acc) in acc.iter().enumerate() {
        _mm512_storeu_ps(sums.add(r * ldc), acc[0]);
        _mm512_storeu_ps(sums.add(r * ldc + T), acc[1]);
    }
}

#[cfg(test)]
mod tests {
    use super::super::amx::tests::product_matches_the_reference;
    use super::*;

    /// Shapes ragged in every dimension; the second spans several `k`
    /// chunks (1,100 > 512), column groups (300 > 256) and row tiles; one
    /// row and one column; and `k` = 0 (a zero product: the destination
    /// set to zero, or left as it was when accumulating).
    #[test]
    fn dpbf16_product_matches_the_reference_on_rounded_factors() {
        if !available() {
            eprintln!("no AVX-512 BF16 on this machine: the VDPBF16PS product is not exercised");
            return;
        }
        for mkn in [(45, 71, 83), (37, 1100, 300), (1, 3, 1), (5, 0, 7)] {
            product_matches_the_reference(mkn, matmul);
        }
    }
}
